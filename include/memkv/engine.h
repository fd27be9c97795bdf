#pragma once
// memkv::Engine: the client library's entry point. An Engine routes keys to
// servers by rendezvous (HRW) hashing and moves batches of values between
// the caller's buffers and the servers.
//
//   auto engine = memkv::Engine::FromEnvironment();   // MEMKV_CONFIG, MEMKV_SERVERS, ...
//   if (!engine) { fprintf(stderr, "%s\n", engine.error().message.c_str()); ... }
//   memkv::PutEntry put{"key", data, size};
//   auto r = engine->BatchPut({&put, 1});              // r.entries[0] == Code::kOk
//
// Ownership and threads: an Engine is a cheap, copyable handle; all copies
// share one state. Every thread of the process may call any method at any
// time. Connections (one per server and rail for the whole process, shared
// by every Engine naming the same server and key) are made on first use and
// live on the library's own I/O threads (`io_threads`), started with the
// first Engine and stopped with the last.
//
// Each batch call comes in two forms:
//   - blocking: `BatchGet(...)` waits for the result; never call it from a
//     completion (those run on the library's I/O threads);
//   - callback: `AsyncBatchGet(..., done)`: `done` runs once, on an I/O
//     thread, and must not block.
// Callers on an Asio loop use the awaitable forms of the library
// (client/engine_awaitable.h, not part of this public header set).
//
// Buffers: a buffer named in a request belongs to the library until the
// call completes (or, when the deadline fired first, until the reply or the
// connection's end). Put values from unregistered memory are copied before
// the call returns; values inside registered memory (RegisterMemory) or
// shared memory (AllocateShared) are not copied. Get destinations outside
// shared memory are written only while the call is waiting, so after a
// completion the library never touches them again; shared memory may still
// be written by the server after a timeout, until its reply.
//
// This header depends on the standard library only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace memkv {

// The outcome of an entry or a call. The values are part of the C ABI
// (memkv.h, MEMKV_*): append, never renumber.
enum class Code : int {
  kOk = 0,
  kNotFound = 1,           // no such key (never written, deleted, evicted)
  kInvalidArgument = 2,    // an empty or over-long key, a 0-byte value, bad options
  kTooLarge = 3,           // value over the server's limit or a frame
  kTooManyEntries = 4,     // batch over the server's limit
  kBusy = 5,               // the server is overloaded: try again later
  kNoSpace = 6,            // the server is full and cannot evict
  kChecksumMismatch = 7,   // the bytes did not match their checksum
  kUnavailable = 8,        // the server (or its drive) is down or unreachable
  kTimeout = 9,            // the deadline passed before the reply
  kUnauthorized = 10,      // auth key refused
  kUnsupported = 11,       // not available in this build (the rdma transport)
  kBufferTooSmall = 12,    // the destination cannot hold the value (or range)
  kRangeOutOfBounds = 13,  // a read range past the end of the value
  kInternal = 14,          // a bug or an I/O error on either side
  kNoMemory = 15,          // allocation or mapping failed in this process
};
inline constexpr int kMaxCode = 15;

// "Ok", "NotFound", ...
const char* CodeName(Code code);

// A call's outcome: a code and, when not kOk, a message naming the thing
// and the fix.
struct Outcome {
  Code code = Code::kOk;
  std::string message;
  bool ok() const { return code == Code::kOk; }
  explicit operator bool() const { return ok(); }
};

// A value or the Outcome that explains its absence.
template <class T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}        // NOLINT: implicit on purpose
  Expected(Outcome error) : error_(std::move(error)) {}  // NOLINT: implicit on purpose
  bool has_value() const { return value_.has_value(); }
  explicit operator bool() const { return has_value(); }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  const Outcome& error() const { return error_; }

 private:
  std::optional<T> value_;
  Outcome error_;
};

enum class Transport {
  kAuto,  // shm for shared memory when the server is on this host, else tcp
  kShm,   // shared memory must move over shm (same host only)
  kTcp,   // bytes inline in the frames
  kRdma,  // refused: no RDMA rail in this build
};
const char* TransportName(Transport t);

// The client config of DESIGN.md ("Config").
struct EngineOptions {
  std::vector<std::string> servers;  // "host:port" or a Unix socket path
  std::string auth_key;              // 64 hex characters, or empty for none
  Transport transport = Transport::kAuto;
  std::chrono::milliseconds timeout{30000};         // deadline of every call
  std::chrono::milliseconds connect_timeout{5000};  // connect + attach
  size_t io_threads = 1;                            // the library's I/O threads
  // Keys are written once and never change: a write whose server is down
  // goes to the next server of the key's HRW ranking, and a read whose
  // server is down tries it too.
  bool immutable_keys = false;
  // A server that could not be reached is retried after this, doubling per
  // failure up to max_reconnect_backoff; until then its keys fail at once.
  std::chrono::milliseconds reconnect_backoff{200};
  std::chrono::milliseconds max_reconnect_backoff{5000};
  // The rdma rail (docs/rdma.md): the libfabric provider, pinned, as the
  // servers' rdma.ofi_provider ("tcp;ofi_rxm", "verbs;ofi_rxm", "efa"), and
  // the local address its endpoint listens on (empty: the provider's
  // choice). transport rdma uses "tcp;ofi_rxm" when rdma_provider is empty;
  // auto opens a fabric only when rdma_provider is set.
  std::string rdma_provider;
  std::string rdma_address;
  // The NIC: with rdma_provider "verbs" (the verbs provider, RC queue
  // pairs), the HCA ("mlx5_0", required); with a libfabric provider its
  // domain, or empty for the provider's first.
  std::string rdma_device;

  // MEMKV_CONFIG (a YAML file with the fields above: servers, auth_key,
  // transport, timeout, connect_timeout, io_threads, immutable_keys,
  // rdma_provider, rdma_address, rdma_device), then MEMKV_SERVERS,
  // MEMKV_AUTH_KEY, MEMKV_TRANSPORT, MEMKV_RDMA_PROVIDER, MEMKV_RDMA_ADDRESS
  // and MEMKV_RDMA_DEVICE over it.
  // Errors name the variable or field.
  static Expected<EngineOptions> FromEnvironment();
  // The same with another environment (tests): `getenv(name)` or null.
  static Expected<EngineOptions> FromEnvironment(const char* (*getenv)(const char*));
  // Parses the YAML text of a MEMKV_CONFIG file; `origin` names it in errors.
  static Expected<EngineOptions> FromYaml(std::string_view yaml,
                                          std::string_view origin = "config");
  // Checks the fields; the error names the first bad one.
  Outcome Validate() const;
};

// ---- batch entries and results ----

struct PutEntry {
  std::string_view key;
  const void* data = nullptr;
  size_t size = 0;  // >= 1
};

struct GetEntry {
  std::string_view key;
  void* buffer = nullptr;
  size_t capacity = 0;  // room in buffer
  uint64_t offset = 0;  // first byte of the value to read
  uint64_t length = 0;  // bytes to read; 0: to the end of the value
  // The value's version seen before (GetResult::version, Exists, List): the
  // read is of that version or fails with kNotFound. 0: whatever is current.
  uint64_t version = 0;
};

struct GetResult {
  Code status = Code::kOk;
  uint64_t value_size = 0;  // the whole value's size
  uint64_t length = 0;      // bytes written into the buffer
  uint64_t version = 0;     // the version read (a later read can pin it)
};

struct ExistsResult {
  Code status = Code::kOk;  // kOk or kNotFound, or an error
  uint64_t size = 0;        // the value's size when kOk
  uint64_t version = 0;     // the value's version when kOk
};

// ---- listing, capacity, renaming ----

struct ListEntry {
  std::string key;
  uint64_t size = 0;
  uint64_t version = 0;
};

// One page of keys in byte order, merged over every server.
struct ListPage {
  Outcome outcome;
  std::vector<ListEntry> entries;
  std::string cursor;  // pass to the next List; empty: no more keys
};

// The servers' capacity, summed (what statvfs reports).
struct CapacityInfo {
  Outcome outcome;
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t keys = 0;
  uint64_t max_value_size = 0;  // the smallest of the servers'
};

// A batch's outcome: `outcome` is not ok when the call as a whole was
// refused (a bad argument); then every entry carries its code too.
template <class E>
struct BatchResult {
  Outcome outcome;
  std::vector<E> entries;
  // Entries that are not kOk.
  size_t failed() const;
  bool ok() const { return outcome.ok() && failed() == 0; }
};
using PutResults = BatchResult<Code>;
using DeleteResults = BatchResult<Code>;
using GetResults = BatchResult<GetResult>;
using ExistsResults = BatchResult<ExistsResult>;

// BatchXferForServer: one entry moving `size` bytes between `buffer` and
// the value (a put writes buffer[0, size) as the whole value; a get reads
// `length` bytes (0: all) from `offset` into buffer, at most `size`).
enum class XferOp { kGet, kPut };
struct XferEntry {
  std::string_view key;
  void* buffer = nullptr;
  size_t size = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// ---- completions ----

// A move-only completion `void(T)`, called exactly once.
template <class T>
class Completion {
 public:
  Completion() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Completion>>>
  Completion(F f) : impl_(std::make_unique<Model<F>>(std::move(f))) {}  // NOLINT: implicit
  explicit operator bool() const { return impl_ != nullptr; }
  void operator()(T v) {
    auto impl = std::move(impl_);
    impl->Call(std::move(v));
  }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void Call(T v) = 0;
  };
  template <class F>
  struct Model final : Concept {
    explicit Model(F fn) : f(std::move(fn)) {}
    void Call(T v) override { f(std::move(v)); }
    F f;
  };
  std::unique_ptr<Concept> impl_;
};

// ---- memory ----

// A registered range of the caller's memory (RegisterMemory). Copyable;
// the registration lasts until UnregisterMemory, not the handle's life.
class MemoryHandle {
 public:
  MemoryHandle() = default;
  void* data() const;
  size_t size() const;
  uint64_t id() const;
  explicit operator bool() const { return impl_ != nullptr; }
  struct Impl;

 private:
  friend class Engine;
  explicit MemoryHandle(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Memory from AllocateShared: a sealed memfd mapping that the shm rail
// moves without copies. Freed when the last copy of the handle goes and
// every request naming it has had its reply.
class SharedBuffer {
 public:
  SharedBuffer() = default;
  void* data() const;
  size_t size() const;
  explicit operator bool() const { return impl_ != nullptr; }
  struct Impl;

 private:
  friend class Engine;
  explicit SharedBuffer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Diagnostics: one configured server as the engine sees it now.
struct ServerState {
  std::string address;
  bool connected = false;    // its main connection is open
  bool backing_off = false;  // unreachable: its keys fail at once until the retry
  bool shm = false;          // shared memory moves over its shm rail
};

class PutStream;

class Engine {
 public:
  static Expected<Engine> Create(EngineOptions options);
  static Expected<Engine> FromEnvironment();

  const EngineOptions& options() const;
  size_t server_count() const;
  const std::string& server(size_t i) const;
  std::vector<ServerState> Servers() const;

  // The index of the server a key (or a numeric block id) goes to.
  size_t RouteKey(std::string_view key) const;
  size_t RouteBlock(uint64_t block) const;
  // All servers, best first: the order writes fall back through.
  std::vector<size_t> RankKey(std::string_view key) const;

  // Blocking forms.
  ExistsResults Exists(std::span<const std::string_view> keys);
  GetResults BatchGet(std::span<const GetEntry> entries);
  PutResults BatchPut(std::span<const PutEntry> entries);
  DeleteResults Delete(std::span<const std::string_view> keys);
  // A batch already grouped by server: every entry goes to `server`, with
  // no routing and no fallback. The results of a put carry length = size.
  GetResults BatchXferForServer(size_t server, XferOp op, std::span<const XferEntry> entries);

  // Callback forms: `done` runs once, on an I/O thread (or on this thread
  // when the batch is refused before anything is sent).
  void AsyncExists(std::span<const std::string_view> keys, Completion<ExistsResults> done);
  void AsyncBatchGet(std::span<const GetEntry> entries, Completion<GetResults> done);
  void AsyncBatchPut(std::span<const PutEntry> entries, Completion<PutResults> done);
  void AsyncDelete(std::span<const std::string_view> keys, Completion<DeleteResults> done);
  void AsyncBatchXferForServer(size_t server, XferOp op, std::span<const XferEntry> entries,
                               Completion<GetResults> done);

  // Keys that start with `prefix`, after `cursor` (exclusive; empty: from
  // the first), at most `limit` of them, in byte order over all servers.
  ListPage List(std::string_view prefix, std::string_view cursor = {}, size_t limit = 1000);
  CapacityInfo Capacity();
  // Moves the value of `from` to `to` (replacing `to`'s) without moving its
  // bytes when both keys live on one server; otherwise copies, then deletes.
  Outcome Rename(std::string_view from, std::string_view to);

  // A put whose length is known only at its end: bytes stream to the server
  // as they are written, and the value appears (whole) at Finish. See
  // PutStream. `window`: the most bytes the stream keeps queued and not yet
  // sent; Write blocks beyond it.
  Expected<class PutStream> OpenPutStream(std::string_view key, size_t window = 16u << 20);

  // Registers [ptr, ptr + len): values put from it are not copied. A range
  // inside one already registered returns that registration. CUDA device
  // memory (classified through the CUDA driver, where one is loaded) is
  // accepted and staged through host memory by each call that names it:
  // copied out of the device before a put, into it after a get. Unregistered
  // device memory is not detected: register it.
  Expected<MemoryHandle> RegisterMemory(void* ptr, size_t len);
  // Ends a registration; requests already made keep what they need.
  void UnregisterMemory(const MemoryHandle& handle);
  // `size` bytes of zeroed, sealed, memfd-backed memory that moves over the
  // shm rail to servers on this host (and over tcp to the others).
  Expected<SharedBuffer> AllocateShared(size_t size);

  class Impl;

 private:
  explicit Engine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// A streamed put (Engine::OpenPutStream). One thread at a time. Dropped or
// aborted before Finish, nothing of it is ever visible.
class PutStream {
 public:
  PutStream() = default;
  PutStream(PutStream&&) noexcept;
  PutStream& operator=(PutStream&&) noexcept;
  ~PutStream();  // aborts an unfinished stream
  // Appends bytes (copied; the caller may reuse its buffer on return).
  // Blocks while the stream's queue is over its window. An error is final.
  Outcome Write(const void* data, size_t size);
  // Ends the value: its length and checksum go last; returns the server's
  // answer (the value is then stored and visible, durably in drive modes).
  Outcome Finish();
  void Abort();
  uint64_t written() const;
  explicit operator bool() const { return impl_ != nullptr; }
  struct Impl;

 private:
  friend class Engine;
  explicit PutStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

template <class E>
size_t BatchResult<E>::failed() const {
  size_t n = 0;
  for (const E& e : entries) {
    if constexpr (std::is_same_v<E, Code>) {
      n += e != Code::kOk;
    } else {
      n += e.status != Code::kOk;
    }
  }
  return n;
}

}  // namespace memkv
