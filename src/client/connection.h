#pragma once
// Connection: one long-lived connection to one server, over TCP ("host:port")
// or the server's Unix socket (a path), shared by every thread of the
// process. Connect() connects and attaches; then any number of requests are
// in flight together, matched to their replies by request id, in whatever
// order the server answers.
//
// Ownership and threads: a Connection is a handle; the connection itself
// lives on one I/O thread of an IoThreads pool, where all its state is
// confined (no locks: callers' requests are posted to it). Destroying the
// handle closes the connection (pending requests fail with errc::closed)
// and, unless called on an I/O thread, waits until the connection has
// released its socket and buffers.
//
// Every request comes in three forms:
//   - blocking: `Ping()`, `Get(...)`, ... wait on a future; never call them on
//     one of the pool's I/O threads;
//   - callback: `AsyncPing(..., cb)`: `cb` runs once, on the I/O thread, and
//     must not block;
//   - awaitable: client/awaitable.h (`co_await co::Ping(conn)`), resumed on
//     the awaiting coroutine's own executor.
//
// Deadlines: each request has one (options.request_timeout unless given).
// When it passes the caller gets errc::timeout at once, but the request's
// buffers stay with the library until the reply or the connection's end:
//   - Put over tcp: value bytes are kept alive by PutBatch::owner (no copy),
//     or copied into the request when no owner is given;
//   - Get over tcp: bytes are copied into the destination on the I/O thread
//     only while the request is still waiting, so after its callback (success,
//     error or timeout) the library never touches the destination again;
//   - shm Put/Get: the request holds the region; the server may still read
//     or write the entries' ranges until the reply, so do not reuse a range
//     whose request timed out before the connection has been closed.
// When the connection breaks every pending request fails with
// errc::connection_lost, and later requests fail at once; a Connection does
// not reconnect (the engine above makes a new one).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "client/callback.h"
#include "client/error.h"
#include "client/io_threads.h"
#include "client/shared_region.h"
#include "common/checksum.h"
#include "common/result.h"
#include "proto/auth.h"
#include "proto/messages.h"
#include "proto/status.h"

namespace memkv::rdma {
class Fabric;
}  // namespace memkv::rdma

namespace memkv::client {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::milliseconds;

struct ConnectionOptions {
  // "host:port" (TCP; host may be a name, an IPv4 address or [IPv6]) or a
  // Unix socket path (anything containing '/').
  std::string address;
  std::optional<proto::AuthKey> auth_key;  // network.auth_key of the server
  Duration connect_timeout{5000};          // connect + attach
  Duration request_timeout{30000};         // default deadline of a request
  // Requests written and not yet answered; more wait in the write queue.
  // The server's max in-flight (from Attach) lowers it.
  uint32_t max_inflight = 512;
  // Bytes of those requests and of the replies they expect (inline values
  // read); more wait in the write queue, and a request larger than this goes
  // alone. Half the server's default limits.max_buffered_bytes_per_connection,
  // so that the server never has to stop reading this connection.
  uint64_t max_outstanding_bytes = 32ull << 20;
  // Bytes of requests waiting to be written (their values, mostly the
  // callers' own memory, stay referenced until then). A request that would
  // pass it fails at once with queue_full, so async callers of a server that
  // stopped answering cannot pile up requests without end; requests also
  // leave the queue when their deadline passes. Large by default: 64
  // threads each with a 7,500-entry batch of 16 KiB values queue ~4 GiB
  // legitimately behind the in-flight window. A request larger than this
  // still goes when the queue is empty.
  uint64_t max_queued_bytes = 16ull << 30;
  // This process's fabric endpoint ("<provider>|<address>", the rdma rail),
  // offered at Attach; empty: not over rdma.
  std::string rdma_endpoint;
  // Or the fabric itself, for the address exchange (docs/rdma.md): a peer
  // offered before Attach (OfferPeer), completed with the server's answer
  // (CompletePeer), removed when the connection goes; what verbs needs (a
  // queue pair per server) and ofi takes too. Its completions run on I/O
  // thread 0 of the connection's pool, where these calls are made. Takes
  // precedence over rdma_endpoint.
  std::shared_ptr<rdma::Fabric> rdma_fabric;
};

// What the server said in its AttachReply.
struct AttachInfo {
  uint16_t version = 0;
  uint64_t session_id = 0;
  uint32_t rails = 0;  // proto::kRail* offered on this connection
  std::string host_id;
  std::string unix_socket;  // set when the server is on this host
  uint64_t max_value_size = 0;
  uint32_t max_batch_entries = 0;  // 0: no limit given
  uint32_t max_inflight = 0;       // 0: no limit given
  uint32_t features = 0;           // proto::kFeature* the server offers
  std::string rdma_endpoint;       // the server's fabric address ("provider|address"), or empty
};

// ---- requests and their per-entry results ----

struct KeyInfo {  // Exists
  proto::StatusCode status = proto::StatusCode::kOk;  // kOk or kNotFound, or an error
  uint64_t size = 0;                                   // the value's size when kOk
  uint64_t version = 0;                                // the value's version when kOk
};

// List: one server's page. The strings are copies (the reply's frame is gone).
struct ListItem {
  std::string key;
  uint64_t size = 0;
  uint64_t version = 0;
};
struct ListResult {
  std::vector<ListItem> entries;  // in byte order
  std::string cursor;             // empty: this server has no more
};

struct CapacityResult {
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t keys = 0;
  uint64_t max_value_size = 0;
};

struct PutEntry {
  std::string key;
  // 1 byte up to the server's limits.max_value_size; a value larger than a
  // frame (16 MiB less the entry) is streamed in WriteChunk frames.
  std::span<const std::byte> value;
};
struct PutBatch {
  std::vector<PutEntry> entries;
  // Keeps every value's bytes alive; held by the library until every reply
  // (or the connection's end). Null: the values are copied into the request.
  std::shared_ptr<const void> owner;
};

struct GetEntry {
  std::string key;
  uint64_t offset = 0;            // first byte of the value to read
  uint64_t length = 0;            // bytes to read; 0 = to the end of the value
  std::span<std::byte> dest;      // where the bytes go; must hold them all
  uint64_t version = 0;           // pinned version (kFeaturePinnedReads); 0 = any
};
struct GetResult {
  proto::StatusCode status = proto::StatusCode::kOk;
  uint64_t value_size = 0;  // size of the whole value
  uint64_t length = 0;      // bytes delivered into dest
  uint64_t version = 0;     // the version read
};

// shm rail: entries name ranges of one registered region.
struct ShmPutEntry {
  std::string key;
  uint64_t region_offset = 0;
  uint64_t length = 0;  // the value's size (>= 1)
};
struct ShmPutBatch {
  std::shared_ptr<SharedRegion> region;  // registered on this connection
  std::vector<ShmPutEntry> entries;
};
struct ShmGetEntry {
  std::string key;
  uint64_t offset = 0;         // first byte of the value to read
  uint64_t length = 0;         // bytes to read; 0 = to the end of the value
  uint64_t region_offset = 0;  // where they go in the region
  uint64_t capacity = 0;       // room there (>= 1)
  uint64_t version = 0;        // pinned version (kFeaturePinnedReads); 0 = any
};
struct ShmGetBatch {
  std::shared_ptr<SharedRegion> region;  // registered on this connection
  std::vector<ShmGetEntry> entries;
};

// rdma rail: entries name the caller's memory, registered with the
// process's fabric, by the (address, key) the server transfers to or from.
struct RdmaPutEntry {
  std::string key;
  const std::byte* data = nullptr;  // the value, in registered memory
  uint64_t length = 0;              // its size (>= 1)
  uint64_t address = 0;             // how the server names `data`
  uint32_t rkey = 0;
};
struct RdmaGetEntry {
  std::string key;
  uint64_t offset = 0;         // first byte of the value to read
  uint64_t length = 0;         // bytes to read; 0 = to the end of the value
  std::span<std::byte> dest;   // where they go, in registered memory
  uint64_t address = 0;        // how the server names dest.data()
  uint32_t rkey = 0;
  uint64_t version = 0;        // pinned version (kFeaturePinnedReads); 0 = any
};

class StreamWriter;

class Connection {
 public:
  // Connects and attaches, within options.connect_timeout. `threads`: the
  // pool to live on (IoThreads::Acquire() when null).
  static Result<Connection> Connect(const ConnectionOptions& options,
                                    std::shared_ptr<IoThreads> threads = nullptr);
  static void AsyncConnect(const ConnectionOptions& options, std::shared_ptr<IoThreads> threads,
                           Callback<Connection> done);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  const AttachInfo& attach_info() const;
  const std::string& address() const;
  bool is_unix_socket() const;
  // False once the connection has broken or been closed.
  bool is_open() const;
  // Closes the connection: pending requests fail with errc::closed.
  void Close();

  // Blocking forms. `timeout`: this request's deadline (0: the default).
  Status Ping(Duration timeout = Duration{0});
  Result<std::vector<KeyInfo>> Exists(std::vector<std::string> keys, Duration timeout = Duration{0});
  Result<std::vector<proto::StatusCode>> Delete(std::vector<std::string> keys,
                                                Duration timeout = Duration{0});
  Result<std::vector<proto::StatusCode>> Put(PutBatch batch, Duration timeout = Duration{0});
  Result<std::vector<GetResult>> Get(std::vector<GetEntry> entries, Duration timeout = Duration{0});
  Status RegisterRegion(std::shared_ptr<SharedRegion> region, Duration timeout = Duration{0});
  Status ReleaseRegion(std::shared_ptr<SharedRegion> region, Duration timeout = Duration{0});
  Result<std::vector<proto::StatusCode>> PutShm(ShmPutBatch batch, Duration timeout = Duration{0});
  Result<std::vector<GetResult>> GetShm(ShmGetBatch batch, Duration timeout = Duration{0});
  Result<ListResult> List(std::string prefix, std::string cursor, uint32_t limit,
                          Duration timeout = Duration{0});
  Result<CapacityResult> Capacity(Duration timeout = Duration{0});
  // One Rename entry (a batch of one): the entry's status.
  Result<proto::StatusCode> Rename(std::string from, std::string to, Duration timeout = Duration{0});
  // A put of unknown length (LocationKind::kOpenStream) of `key`; see
  // StreamWriter. Nothing goes on the wire before the first chunk.
  // `window`: bytes of the stream queued and not yet written to the socket
  // before Write blocks (>= 1); `timeout`: how long Write waits for room and
  // Finish for the reply.
  Result<std::unique_ptr<StreamWriter>> OpenStream(std::string key, size_t window,
                                                   Duration timeout = Duration{0});

  // Callback forms: `done` runs once on the connection's I/O thread.
  void AsyncPing(Duration timeout, Callback<void> done);
  void AsyncExists(std::vector<std::string> keys, Duration timeout,
                   Callback<std::vector<KeyInfo>> done);
  void AsyncDelete(std::vector<std::string> keys, Duration timeout,
                   Callback<std::vector<proto::StatusCode>> done);
  void AsyncPut(PutBatch batch, Duration timeout, Callback<std::vector<proto::StatusCode>> done);
  void AsyncGet(std::vector<GetEntry> entries, Duration timeout,
                Callback<std::vector<GetResult>> done);
  void AsyncRegisterRegion(std::shared_ptr<SharedRegion> region, Duration timeout,
                           Callback<void> done);
  void AsyncReleaseRegion(std::shared_ptr<SharedRegion> region, Duration timeout,
                          Callback<void> done);
  void AsyncPutShm(ShmPutBatch batch, Duration timeout,
                   Callback<std::vector<proto::StatusCode>> done);
  void AsyncGetShm(ShmGetBatch batch, Duration timeout, Callback<std::vector<GetResult>> done);
  // The rdma rail (attach_info().rails has kRailRdma): the server READs each
  // value from, or WRITEs it into, the entry's registered memory. `owner`
  // keeps that memory's registration until the reply.
  void AsyncPutRdma(std::vector<RdmaPutEntry> entries, std::shared_ptr<const void> owner,
                    Duration timeout, Callback<std::vector<proto::StatusCode>> done);
  void AsyncGetRdma(std::vector<RdmaGetEntry> entries, std::shared_ptr<const void> owner,
                    Duration timeout, Callback<std::vector<GetResult>> done);
  void AsyncList(std::string prefix, std::string cursor, uint32_t limit, Duration timeout,
                 Callback<ListResult> done);
  void AsyncCapacity(Duration timeout, Callback<CapacityResult> done);
  void AsyncRename(std::string from, std::string to, Duration timeout,
                   Callback<proto::StatusCode> done);

  class Impl;  // connection.cc

 private:
  Connection(std::shared_ptr<Impl> impl, std::shared_ptr<IoThreads> threads);

  std::shared_ptr<Impl> impl_;
  std::shared_ptr<IoThreads> threads_;  // released after impl_ is gone
};

// One open-stream put (Connection::OpenStream): the value's bytes go to the
// server in WriteChunk frames as they are written, numbered from 0 like a
// kStream value's; the last chunk carries the XXH3 of them all, and the
// server's StatusReply (the entry's status) comes after it.
//
// Threads: one caller at a time; Write and Finish block (never call them on
// one of the pool's I/O threads). The reply is delivered on the I/O thread
// into state shared with the writer (guarded by its mutex).
//
// Memory: Write copies bytes into chunks of at most min(window,
// kStreamChunkSize) bytes. A full chunk is queued once a byte beyond it is
// written (so the last chunk, sent by Finish, is never empty), and only
// while this stream's queued and unwritten bytes stay within `window` (or
// none are queued): Write waits for the connection's writer to put earlier
// chunks on the socket. At most window + one chunk of the stream is ever in
// this process.
//
// Abandoning: Abort (and the destructor of an unfinished stream) sends a
// last chunk whose checksum is deliberately wrong, so the server discards
// the value at once (ChecksumMismatch) and releases its space, instead of
// holding it until limits.stream_idle_seconds; the protocol has no other
// abort. A stream that never sent a byte sent nothing, so it needs nothing.
// Once the request has its reply (or failed, or the connection closed)
// nothing more of it is sent.
class StreamWriter {
 public:
  ~StreamWriter();  // Abort() unless finished
  // Appends bytes (copied). An error is final: the stream is then aborted.
  Status Write(const void* data, size_t size);
  // Sends the last chunk and waits for the reply: the entry's status. An
  // empty stream (0 bytes) fails with errc::bad_argument and sends nothing.
  Result<proto::StatusCode> Finish();
  void Abort();
  uint64_t written() const { return written_; }

  // For tests: this stream's bytes queued and not yet written to the
  // socket, and whether Write is waiting for room.
  uint64_t queued_bytes() const;
  bool waiting() const;

  struct Shared;  // connection.cc

 private:
  friend class Connection;
  StreamWriter() = default;
  // Queues `current_` as the next chunk (`last`: with `checksum`).
  Status Flush(bool last, uint64_t checksum);
  Status Fail(Status s);

  std::shared_ptr<Connection::Impl> impl_;
  std::shared_ptr<Shared> shared_;
  std::string key_;
  size_t window_ = 0;
  size_t chunk_size_ = 0;
  Duration timeout_{0};
  uint64_t request_id_ = 0;
  bool begun_ = false;     // the BatchWrite is submitted
  bool ended_ = false;     // the last chunk is queued (or the stream failed)
  std::optional<error_code> error_;
  uint64_t written_ = 0;   // bytes accepted by Write
  uint64_t sent_ = 0;      // bytes handed to the connection in chunks
  uint32_t seq_ = 0;
  Buffer current_;         // bytes not yet in a chunk
  std::unique_ptr<Xxh3Stream> hash_;
};

}  // namespace memkv::client
