#pragma once
// The messages of the control plane and their codec. Pure: bytes in,
// messages out, no sockets. Decoded messages hold views (std::string_view,
// Bytes) into the frame's buffer, which must outlive them; decoding into a
// message reuses its vectors, so a batch of any size allocates at most once
// (nothing per entry), and nothing once the vectors have grown.
//
// Every request and reply of a batch starts with a BatchHead: a batch larger
// than a frame is sent as several frames of the same request id, each
// carrying entries [first, first + count) of `total` (kFlagMore on all but
// the last). A value larger than a frame travels as kStream: its bytes follow
// in WriteChunk (or ReadChunk) frames, numbered from 0, after the BatchWrite
// (or the BatchReadReply); docs/wire-protocol.md has the exchange.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "proto/auth.h"
#include "proto/frame.h"
#include "proto/status.h"
#include "proto/wire.h"

namespace memkv::proto {

// Rails, as bits of Attach's `rails`.
inline constexpr uint32_t kRailTcp = 1;
inline constexpr uint32_t kRailShm = 2;
inline constexpr uint32_t kRailRdma = 4;

// What a server offers beyond the core messages, as bits of AttachReply's
// `features`. A message whose bit is clear is answered kUnsupported.
inline constexpr uint32_t kFeatureList = 1;         // List
inline constexpr uint32_t kFeatureCapacity = 2;     // Capacity
inline constexpr uint32_t kFeatureRename = 4;       // Rename
inline constexpr uint32_t kFeatureOpenStream = 8;   // writes of kOpenStream (length at the end)
inline constexpr uint32_t kFeaturePinnedReads = 16; // ReadEntry::version is honoured
inline constexpr uint32_t kFeaturePageSums = 32;    // read replies may carry per-4 KiB checksums
inline constexpr uint32_t kFeatureRdma = 64;        // the rdma rail (endpoints exchanged at Attach)
inline constexpr uint32_t kFeaturePlacedSteps = 128; // shm entries placed in steps, for kFlagSteps reads

inline constexpr size_t kMaxNameSize = 255;      // host ids, socket paths, rdma endpoints
inline constexpr size_t kPageSize = 4096;        // the unit of per-page checksums
inline constexpr size_t kMaxMessageSize = 1024;  // error text in a reply

// What the receiver allows; the decoder enforces the entry count so that a
// huge batch is refused before anything is reserved for it.
struct DecodeLimits {
  uint32_t max_batch_entries = UINT32_MAX;
};

// Where an entry's bytes are in the client's memory.
enum class LocationKind : uint8_t {
  kInline = 0,  // in the frame's data section (tcp rail)
  kShm = 1,     // a registered shared-memory region
  kRdma = 2,    // a registered RDMA buffer
  kStream = 3,  // too large for a frame: in numbered chunk frames
  // Writes only: a value of a length not known when the request is sent;
  // its chunks follow as for kStream, and the last one carries the checksum
  // (value_len and checksum are 0 in the entry).
  kOpenStream = 4,
};
inline constexpr uint8_t kMaxLocationKind = 4;

struct Location {
  LocationKind kind = LocationKind::kInline;
  uint32_t region = 0;    // shm: region id; rdma: rkey
  uint64_t address = 0;   // shm: offset in the region; rdma: remote virtual address
  uint64_t capacity = 0;  // shm, rdma: bytes available there
};

struct BatchHead {
  uint32_t total = 0;  // entries in the whole batch
  uint32_t first = 0;  // index of this frame's first entry
  uint32_t count = 0;  // entries in this frame
};

// Every reply starts with the status of the request as a whole; an error
// carries a message for people and no body.
struct ReplyHead {
  StatusCode status = StatusCode::kOk;
  std::string_view message;
};

// ---- Hello / Attach / Detach ----

// The first frame each way, untagged (the session key comes from it): the
// newest version the client speaks and its nonce; the server's answer, its
// version and its nonce. From then on every frame of the connection is
// tagged with AuthKey::Session(client nonce, server nonce) when a key is set.
struct Hello {
  uint16_t max_version = kProtocolVersion;
  Nonce nonce{};
};

struct HelloReply {
  ReplyHead head;
  uint16_t version = kProtocolVersion;
  Nonce nonce{};
};

using ClientId = std::array<std::byte, 16>;

struct AttachRequest {
  ClientId client_id{};
  uint32_t rails = kRailTcp;
  std::string_view host_id;        // the client's host, so the server can offer shm
  std::string_view rdma_endpoint;  // the client's fabric address (empty: no rdma)
  Tag proof{};                     // AttachProof(session key, client_id), zero without a key
};

struct AttachReply {
  ReplyHead head;
  uint16_t version = kProtocolVersion;
  uint64_t session_id = 0;
  uint32_t rails = kRailTcp;        // rails the server offers this client
  std::string_view host_id;         // the server's host
  std::string_view unix_socket;     // for a client on the same host
  uint64_t max_value_size = 0;
  uint32_t max_batch_entries = 0;
  uint32_t max_inflight = 0;
  uint32_t features = 0;            // kFeature* bits
  std::string_view rdma_endpoint;   // the server's fabric address (empty: no rdma)
};

// The proof a client sends with Attach: HMAC under the connection's session
// key over a domain string and its id, showing it holds the key (and took
// part in this connection's Hello) before any other request is taken.
Tag AttachProof(const AuthKey& session_key, const ClientId& client_id);

// ---- BatchRead ----

struct ReadEntry {
  std::string_view key;
  uint64_t offset = 0;  // first byte of the value to read
  uint64_t length = 0;  // bytes to read; 0 = to the end of the value
  Location dest;        // where to put them
  uint64_t version = 0; // the value's version seen before (Exists, an earlier read); 0 = any
};

struct BatchReadRequest {
  BatchHead batch;
  std::vector<ReadEntry> entries;
};

enum class Delivery : uint8_t {
  kNone = 0,      // nothing delivered (status is not Ok)
  kInline = 1,    // in this reply's data section, in entry order
  kPlaced = 2,    // written to the entry's shm or rdma destination
  kStreamed = 3,  // in ReadChunk frames that follow
  // Being written to the entry's shm destination: ReadPlaced frames that
  // follow say which bytes are in place. With page sums, for a request
  // flagged kFlagSteps only.
  kPlacedInSteps = 4,
};
inline constexpr uint8_t kMaxDelivery = 4;

struct ReadResult {
  StatusCode status = StatusCode::kOk;
  Delivery delivery = Delivery::kNone;
  uint64_t value_size = 0;  // size of the whole value
  uint64_t length = 0;      // bytes delivered
  uint64_t checksum = 0;    // XXH3 of the delivered bytes; 0 when page_sums are given
  uint64_t version = 0;     // the version read (a later read can pin it)
  // Per-4 KiB checksums instead: XXH3 of each 4 KiB of the delivered bytes
  // (the last piece may be shorter), little-endian u64s. A view into the
  // reply's control payload.
  Bytes page_sums;
  size_t pages() const { return page_sums.size() / 8; }
  uint64_t page_sum(size_t i) const;
};
// The i-th of a run of little-endian u64 piece sums, and all of them.
uint64_t PieceSumAt(Bytes sums, size_t i);
std::vector<uint64_t> PieceSumsOf(Bytes sums);

// Checks `len` bytes at `p` against their piece sums as they land, 4 KiB at
// a time: each piece is hashed as soon as it is whole, while still in cache.
class PieceCheck {
 public:
  PieceCheck(const std::byte* p, size_t len, Bytes sums)
      : p_(p), len_(len), sums_(sums), ok_(sums.size() == 8 * ((len + kPageSize - 1) / kPageSize)) {}
  // Bytes [0, filled) are in.
  void Landed(size_t filled);
  // Every byte in and every piece matched.
  bool ok() const { return ok_ && verified_ == len_; }

 private:
  const std::byte* p_;
  size_t len_;
  Bytes sums_;
  size_t verified_ = 0;
  bool ok_;
};
// Bytes of one ReadResult without page sums in a BatchReadReply's control
// payload; EncodedSize(result) with them.
inline constexpr uint64_t kReadResultSize = 1 + 1 + 8 + 8 + 8 + 8 + 4;
size_t EncodedSize(const ReadResult& r);
// Whether the bytes delivered for `r` match its checksums: each 4 KiB
// against its page sum when the reply has them, else all of them at once.
bool ChecksumsMatch(const ReadResult& r, Bytes delivered);

struct BatchReadReply {
  ReplyHead head;
  BatchHead batch;
  std::vector<ReadResult> results;
  Bytes data;  // inline bytes of kInline results, in entry order
};

// ---- BatchWrite ----

struct WriteEntry {
  std::string_view key;
  uint64_t value_len = 0;
  uint64_t checksum = 0;  // XXH3 of the whole value; 0 when piece_sums are given
  // Per-4 KiB checksums instead, as in ReadResult: XXH3 of each 4 KiB of the
  // value (the last piece may be shorter), little-endian u64s. The server
  // checks each piece as it stores it, and keeps the sums for reads.
  Location src;
  Bytes piece_sums;
};
// Whether `value` matches the entry's piece sums, or its checksum without them.
bool ChecksumsMatch(const WriteEntry& e, Bytes value);

struct BatchWriteRequest {
  BatchHead batch;
  std::vector<WriteEntry> entries;
  Bytes data;  // inline values, in entry order
};

struct StatusReply {  // BatchWrite and Delete
  ReplyHead head;
  BatchHead batch;
  std::vector<StatusCode> statuses;
};

// ---- Exists / Delete ----

struct KeysRequest {  // Exists and Delete
  BatchHead batch;
  std::vector<std::string_view> keys;
};

struct ExistsResult {
  StatusCode status = StatusCode::kOk;  // kOk or kNotFound, or an error
  uint64_t value_size = 0;
  uint64_t version = 0;  // what a later range read may pin
};

// ---- List / Capacity / Rename ----

struct ListRequest {
  std::string_view prefix;  // 0 to kMaxKeySize bytes; empty lists every key
  std::string_view cursor;  // empty to start; else the previous reply's `cursor`
  uint32_t limit = 0;       // keys wanted at most (the server may send fewer)
};

struct ListEntry {
  std::string_view key;
  uint64_t value_size = 0;
  uint64_t version = 0;
};

struct ListReply {
  ReplyHead head;
  std::vector<ListEntry> entries;
  std::string_view cursor;  // empty: no more keys
};

struct CapacityReply {  // the request has an empty payload
  ReplyHead head;
  uint64_t total_bytes = 0;  // usable bytes of the store
  uint64_t used_bytes = 0;
  uint64_t keys = 0;
  uint64_t max_value_size = 0;
};

struct RenameEntry {
  std::string_view from;
  std::string_view to;  // replaced if it exists
};

struct RenameRequest {  // answered with a StatusReply
  BatchHead batch;
  std::vector<RenameEntry> entries;
};

struct ExistsReply {
  ReplyHead head;
  BatchHead batch;
  std::vector<ExistsResult> results;
};

// ---- Ping, chunks, regions ----

struct Ping {
  uint64_t token = 0;  // echoed by the reply
};

struct ChunkHeader {  // WriteChunk and ReadChunk; the bytes are the data section
  uint32_t entry = 0;   // index of the entry in its request frame
  uint32_t seq = 0;     // 0, 1, 2, ...
  uint64_t offset = 0;  // offset of these bytes in the value (read: in the range read)
  bool last = false;
  // Last chunk only, optional: XXH3 of all the streamed bytes (a ReadChunk
  // carries it, since the reply that announced the stream could not).
  std::optional<uint64_t> checksum;
};

// The bytes memkv puts in one chunk frame. A receiver takes any size from 1
// byte up to what fits a frame.
inline constexpr uint64_t kStreamChunkSize = 8u << 20;

// ReadPlaced (no data section): bytes [offset, offset + length) of a
// kPlacedInSteps entry are in its shm destination. An entry's steps are
// numbered from 0, contiguous from offset 0, and the last says so.
struct PlacedStep {
  uint32_t entry = 0;   // index of the entry in its request frame
  uint32_t seq = 0;     // 0, 1, 2, ...
  uint64_t offset = 0;  // in the range read
  uint64_t length = 0;  // at least 1
  bool last = false;
};

struct RegisterRegion {  // the memfd travels in SCM_RIGHTS with this frame
  uint32_t region_id = 0;
  uint64_t size = 0;
};

struct ReleaseRegion {
  uint32_t region_id = 0;
};

// ---- the codec ----
// Encode* append the control payload to `out`. Decode* parse a control
// payload (and, where the message has one, the data section) and check it
// whole: keys, lengths, counts, enum values, trailing bytes.

void Encode(const Hello& m, Buffer& out);
void Encode(const HelloReply& m, Buffer& out);
void Encode(const AttachRequest& m, Buffer& out);
void Encode(const AttachReply& m, Buffer& out);
void Encode(const BatchReadRequest& m, Buffer& out);
void Encode(const BatchReadReply& m, Buffer& out);  // m.data is not copied: send it as the data section
void Encode(const BatchWriteRequest& m, Buffer& out);  // likewise m.data
void Encode(const StatusReply& m, Buffer& out);
void Encode(const KeysRequest& m, Buffer& out);
void Encode(const ExistsReply& m, Buffer& out);
void Encode(const ReplyHead& m, Buffer& out);  // replies with no body (Detach, regions)
void Encode(const Ping& m, Buffer& out);
void Encode(const ChunkHeader& m, Buffer& out);
void Encode(const PlacedStep& m, Buffer& out);
void Encode(const RegisterRegion& m, Buffer& out);
void Encode(const ReleaseRegion& m, Buffer& out);
void Encode(const ListRequest& m, Buffer& out);
void Encode(const ListReply& m, Buffer& out);
void Encode(const CapacityReply& m, Buffer& out);
void Encode(const RenameRequest& m, Buffer& out);

Status Decode(Bytes control, Hello& m);
Status Decode(Bytes control, HelloReply& m);
Status Decode(Bytes control, AttachRequest& m);
Status Decode(Bytes control, AttachReply& m);
Status Decode(Bytes control, Bytes data, BatchReadRequest& m, const DecodeLimits& limits = {});
Status Decode(Bytes control, Bytes data, BatchReadReply& m, const DecodeLimits& limits = {});
// The same before the data section is read (its length alone): m.data is
// left empty, for a reader that receives the bytes where they belong.
Status Decode(Bytes control, uint64_t data_len, BatchReadReply& m, const DecodeLimits& limits = {});
Status Decode(Bytes control, Bytes data, BatchWriteRequest& m, const DecodeLimits& limits = {});
// The same before the data section is read (its length alone): m.data is
// left empty, for a server that receives values where they will be kept.
Status Decode(Bytes control, uint64_t data_len, BatchWriteRequest& m, const DecodeLimits& limits = {});
Status Decode(Bytes control, StatusReply& m, const DecodeLimits& limits = {});
Status Decode(Bytes control, KeysRequest& m, const DecodeLimits& limits = {});
Status Decode(Bytes control, ExistsReply& m, const DecodeLimits& limits = {});
Status Decode(Bytes control, ReplyHead& m);
Status Decode(Bytes control, Ping& m);
Status Decode(Bytes control, Bytes data, ChunkHeader& m);
Status Decode(Bytes control, PlacedStep& m);
Status Decode(Bytes control, RegisterRegion& m);
Status Decode(Bytes control, ReleaseRegion& m);
Status Decode(Bytes control, ListRequest& m);
Status Decode(Bytes control, ListReply& m);
Status Decode(Bytes control, CapacityReply& m);
Status Decode(Bytes control, RenameRequest& m, const DecodeLimits& limits = {});

// Checks a key against the protocol's rule (1 to kMaxKeySize bytes).
Status CheckKey(std::string_view key);

// Encoded control bytes of one entry (for planning frames).
size_t EncodedSize(const ReadEntry& e);
size_t EncodedSize(const WriteEntry& e);

// Splits a batch into consecutive slices that each fit one frame. `cost[i]`
// is entry i's control plus inline bytes; `overhead` the per-frame bytes
// besides entries. An entry too large for any frame gets a slice of its own
// (its value must then travel as kStream).
struct Slice {
  uint32_t first = 0;
  uint32_t count = 0;
};
std::vector<Slice> PlanSlices(std::span<const uint64_t> cost, uint64_t overhead,
                              uint64_t max_payload = kMaxPayload);

}  // namespace memkv::proto
