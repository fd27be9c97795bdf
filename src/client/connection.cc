#include "client/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <bit>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "client/handshake.h"
#include "common/checksum.h"
#include "common/log.h"
#include "common/low_water.h"
#include "common/send_all.h"
#include "proto/chunk.h"
#include "proto/frame.h"
#include "rdma/fabric_api.h"

namespace memkv::client {

namespace asio = boost::asio;
using GenericSocket = asio::generic::stream_protocol::socket;
using GenericEndpoint = asio::generic::stream_protocol::endpoint;
using proto::StatusCode;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t kBatchOverhead = 12;  // BatchHead
constexpr uint64_t kWriteFrameBytes = 2u << 20;  // inline bytes a write request carries, about
constexpr size_t kMaxFramesPerWrite = 64;
constexpr size_t kMaxBytesPerWrite = 4u << 20;

// One frame waiting in the write queue. `data` points into memory kept
// alive by `keep` (the caller's owner or the request's copy).
struct OutFrame {
  proto::HeaderBytes header{};  // untagged: sealed by the writer, in wire order
  Buffer control;
  std::vector<Bytes> data;
  std::shared_ptr<const void> keep;
  int fd = -1;  // sent in SCM_RIGHTS with the frame (RegisterRegion)
  uint64_t request_id() const {
    uint64_t id;
    std::memcpy(&id, header.data() + 8, sizeof id);  // little-endian, as on the wire
    return id;
  }
  uint64_t bytes() const {
    uint64_t n = header.size() + control.size();
    for (Bytes b : data) n += b.size();
    return n;
  }
  bool request = true;  // false: a WriteChunk of a request already counted in flight
  // Bytes this request puts on the wire both ways (the frame and the reply
  // it expects), counted against max_outstanding_bytes until it is answered.
  uint64_t budget = 0;
};

struct Sub;

// One caller's request: one or more request ids (a batch too large for one
// frame is sent as several requests), one deadline, one completion.
// Loop-confined.
// Where a reply's data section goes when it is received straight into the
// caller's buffers: pieces in order, each to `p` (nullptr: dropped).
struct DataPiece {
  std::byte* p = nullptr;
  size_t len = 0;
};

class Op {
 public:
  virtual ~Op() = default;
  // Before a reply's data section is read: the pieces it goes to, or false
  // to have it read into a buffer and passed to OnReply.
  virtual bool PlanData(Sub&, const proto::FrameHeader&, Bytes /*control*/,
                        std::vector<DataPiece>& /*out*/) {
    return false;
  }
  // `filled` bytes of planned piece `k` are in (called as they arrive).
  virtual void OnData(size_t /*k*/, size_t /*filled*/) {}
  // One reply frame of `sub` (after PlanData: `data` is empty, the bytes
  // are in place); an error fails the whole request.
  virtual Status OnReply(Sub& sub, const proto::FrameHeader& h, Bytes control, Bytes data) = 0;
  // Completes the caller, once; later calls do nothing.
  virtual void Finish(Status s) = 0;

  bool done = false;
  uint32_t subs_left = 0;
  std::optional<asio::steady_timer> timer;
  // While bytes are being received into the caller's buffers the request
  // cannot complete (the caller could free them): a timeout then waits here
  // until the frame is in.
  bool receiving = false;
  std::optional<error_code> deferred;
};

// One request id in flight: entries [base, base + count) of its Op.
struct Sub {
  std::shared_ptr<Op> op;
  uint32_t base = 0;
  uint32_t count = 0;
  uint32_t received = 0;
  std::shared_ptr<const void> keep;  // held until the reply (shm regions)
  uint64_t budget = 0;               // its frame's, returned with the last reply
};

template <class T>
class TypedOp : public Op {
 public:
  using Value = std::conditional_t<std::is_void_v<T>, char, T>;
  explicit TypedOp(Callback<T> cb) : cb_(std::move(cb)) {}
  void Finish(Status s) final {
    if (done) return;
    done = true;
    if (timer) timer->cancel();
    if (!s) {
      cb_(s.error());
    } else if constexpr (std::is_void_v<T>) {
      cb_(Result<void>{});
    } else {
      cb_(std::move(value_));
    }
  }

 protected:
  Callback<T> cb_;
  Value value_{};
};

Status CheckSlice(const Sub& sub, const proto::BatchHead& b, size_t n) {
  if (b.total != sub.count || uint64_t{b.first} + b.count > b.total || n != b.count ||
      uint64_t{sub.received} + b.count > sub.count)
    return errc::bad_reply;
  return {};
}
Status CheckLast(const Sub& sub, const proto::FrameHeader& h) {
  if (!h.has_more() && sub.received != sub.count) return errc::bad_reply;
  return {};
}

class PingOp final : public TypedOp<void> {
 public:
  PingOp(Callback<void> cb, uint64_t token) : TypedOp(std::move(cb)), token_(token) {}
  Status OnReply(Sub&, const proto::FrameHeader&, Bytes control, Bytes) override {
    proto::Ping ping;
    if (proto::Decode(control, ping)) return ping.token == token_ ? Status{} : errc::bad_reply;
    proto::ReplyHead head;
    if (proto::Decode(control, head) && head.status != StatusCode::kOk)
      return make_status_error(head.status);
    return errc::bad_reply;
  }

 private:
  uint64_t token_;
};

// BatchWrite (tcp and shm) and Delete: a status per entry.
class StatusOp final : public TypedOp<std::vector<StatusCode>> {
 public:
  StatusOp(Callback<std::vector<StatusCode>> cb, size_t n) : TypedOp(std::move(cb)) {
    value_.assign(n, StatusCode::kInternal);
  }
  Status OnReply(Sub& sub, const proto::FrameHeader& h, Bytes control, Bytes) override {
    if (!proto::Decode(control, reply_)) return errc::bad_reply;
    if (reply_.head.status != StatusCode::kOk) return make_status_error(reply_.head.status);
    MEMKV_TRY(CheckSlice(sub, reply_.batch, reply_.statuses.size()));
    for (size_t i = 0; i < reply_.statuses.size(); ++i)
      value_[sub.base + reply_.batch.first + i] = reply_.statuses[i];
    sub.received += reply_.batch.count;
    return CheckLast(sub, h);
  }

 private:
  proto::StatusReply reply_;
};

class ExistsOp final : public TypedOp<std::vector<KeyInfo>> {
 public:
  ExistsOp(Callback<std::vector<KeyInfo>> cb, size_t n) : TypedOp(std::move(cb)) {
    value_.resize(n);
  }
  Status OnReply(Sub& sub, const proto::FrameHeader& h, Bytes control, Bytes) override {
    if (!proto::Decode(control, reply_)) return errc::bad_reply;
    if (reply_.head.status != StatusCode::kOk) return make_status_error(reply_.head.status);
    MEMKV_TRY(CheckSlice(sub, reply_.batch, reply_.results.size()));
    for (size_t i = 0; i < reply_.results.size(); ++i)
      value_[sub.base + reply_.batch.first + i] = {
          reply_.results[i].status, reply_.results[i].value_size, reply_.results[i].version};
    sub.received += reply_.batch.count;
    return CheckLast(sub, h);
  }

 private:
  proto::ExistsReply reply_;
};

// BatchRead over tcp (inline bytes copied into each entry's destination) or
// shm (bytes placed in the region by the server). The destination is touched
// only here, on the loop, and only while the request is not done.
class GetOp final : public TypedOp<std::vector<GetResult>> {
 public:
  struct Dest {
    std::byte* p = nullptr;
    uint64_t capacity = 0;
  };
  GetOp(Callback<std::vector<GetResult>> cb, std::vector<Dest> dests, bool shm)
      : TypedOp(std::move(cb)), dests_(std::move(dests)), shm_(shm) {
    value_.resize(dests_.size());
  }
  // Inline bytes go straight into each entry's destination and are checked
  // a piece at a time as they land, while still in cache.
  bool PlanData(Sub& sub, const proto::FrameHeader& h, Bytes control,
                std::vector<DataPiece>& out) override {
    if (h.opcode != proto::Opcode::kBatchRead || shm_) return false;
    if (!proto::Decode(control, uint64_t{h.data_len}, reply_) ||
        reply_.head.status != StatusCode::kOk ||
        !CheckSlice(sub, reply_.batch, reply_.results.size()))
      return false;  // read whole; OnReply reports it
    checks_.clear();
    for (size_t i = 0; i < reply_.results.size(); ++i) {
      const proto::ReadResult& r = reply_.results[i];
      if (r.status != StatusCode::kOk || r.delivery != proto::Delivery::kInline || r.length == 0)
        continue;
      const Dest& dest = dests_[sub.base + reply_.batch.first + i];
      const bool fits = r.length <= dest.capacity;
      out.push_back({fits ? dest.p : nullptr, r.length});
      checks_.emplace_back(i, out.back().p, r.length);
      if (fits && r.pages() == 0) checks_.back().whole = std::make_unique<Xxh3Stream>();
      if (fits && r.pages() > 0) checks_.back().pieces.emplace(out.back().p, r.length, r.page_sums);
    }
    planned_ = true;
    return true;
  }

  void OnData(size_t k, size_t filled) override {
    Check& c = checks_[k];
    if (c.pieces) return c.pieces->Landed(filled);
    if (!c.whole) return;
    c.whole->Update(c.p + c.verified, filled - c.verified);
    c.verified = filled;
  }

  Status OnReply(Sub& sub, const proto::FrameHeader& h, Bytes control, Bytes data) override {
    if (h.opcode == proto::Opcode::kReadChunk) return OnChunk(sub, h, control, data);
    if (h.opcode == proto::Opcode::kReadPlaced) return OnStep(sub, h, control, data);
    const bool placed = std::exchange(planned_, false);
    if (!placed) {
      if (!proto::Decode(control, data, reply_)) return errc::bad_reply;
      if (reply_.head.status != StatusCode::kOk) return make_status_error(reply_.head.status);
      MEMKV_TRY(CheckSlice(sub, reply_.batch, reply_.results.size()));
    }
    size_t at = 0;  // next inline byte of this frame
    size_t k = 0;   // next planned piece
    for (size_t i = 0; i < reply_.results.size(); ++i) {
      const proto::ReadResult& r = reply_.results[i];
      const size_t idx = sub.base + reply_.batch.first + i;
      GetResult& out = value_[idx];
      const Dest& dest = dests_[idx];
      out = {r.status, r.value_size, 0, r.version};
      if (r.status != StatusCode::kOk) continue;
      if (r.delivery == proto::Delivery::kInline && !shm_) {
        bool ok;
        if (r.length > dest.capacity) {
          out.status = StatusCode::kBufferTooSmall;
          if (placed && r.length) ++k;
          continue;
        } else if (placed && r.length) {
          const Check& c = checks_[k++];
          ok = c.pieces ? c.pieces->ok()
                        : c.whole && c.verified == c.len && c.whole->Digest() == r.checksum;
        } else {
          // Not planned (or nothing to receive): checked, then copied.
          Bytes bytes = reply_.data.subspan(at, r.length);
          at += r.length;
          ok = proto::ChecksumsMatch(r, bytes);
          if (ok && r.length) std::memcpy(dest.p, bytes.data(), r.length);
        }
        if (!ok) {
          out.status = StatusCode::kChecksumMismatch;  // the destination's bytes are not the value's
        } else {
          out.length = r.length;
        }
      } else if (r.delivery == proto::Delivery::kPlaced && shm_) {
        if (r.length > dest.capacity) return errc::bad_reply;
        if (!proto::ChecksumsMatch(r, Bytes(dest.p, r.length))) {
          out.status = StatusCode::kChecksumMismatch;
        } else {
          out.length = r.length;
        }
      } else if (r.delivery == proto::Delivery::kPlacedInSteps && shm_) {
        // Checked step by step as ReadPlaced frames say the bytes are in.
        if (r.length > dest.capacity) return errc::bad_reply;
        steps_.emplace(idx, std::make_unique<Steps>(dest.p, r.length, r.page_sums));
      } else if (r.delivery == proto::Delivery::kStreamed && !shm_ && r.length > 0) {
        // The bytes follow in ReadChunk frames; the last carries the checksum.
        streams_.emplace(idx, std::make_unique<Stream>(r.length, r.length <= dest.capacity));
      } else {
        return errc::bad_reply;  // a delivery this request did not ask for
      }
    }
    sub.received += reply_.batch.count;
    return CheckDone(sub, h);
  }

 private:
  struct Stream {
    Stream(uint64_t length, bool f) : seq(length), fits(f) {}
    proto::ChunkSequencer seq;
    Xxh3Stream hash;
    bool fits;  // the destination holds it (else the bytes are dropped)
  };

  // One ReadChunk: copied into its entry's destination at its offset.
  Status OnChunk(Sub& sub, const proto::FrameHeader& h, Bytes control, Bytes data) {
    proto::ChunkHeader c;
    if (!proto::Decode(control, data, c)) {
      // A stream the server could not finish ends with a status, no bytes.
      proto::ReplyHead head;
      if (data.empty() && proto::Decode(control, head) && head.status != StatusCode::kOk)
        return make_status_error(head.status);
      return errc::bad_reply;
    }
    if (c.entry >= sub.count) return errc::bad_reply;
    const size_t idx = sub.base + c.entry;
    auto it = streams_.find(idx);
    if (it == streams_.end()) return errc::bad_reply;
    Stream& st = *it->second;
    if (!st.seq.Accept(c, data.size())) return errc::bad_reply;
    st.hash.Update(data.data(), data.size());
    if (st.fits) std::memcpy(dests_[idx].p + c.offset, data.data(), data.size());
    if (st.seq.complete()) {
      GetResult& out = value_[idx];
      if (!st.fits) {
        out.status = StatusCode::kBufferTooSmall;
      } else if (!c.checksum || *c.checksum != st.hash.Digest()) {
        out.status = StatusCode::kChecksumMismatch;
      } else {
        out.length = st.seq.value_size();
      }
      streams_.erase(it);
    }
    return CheckDone(sub, h);
  }

  // An entry placed in steps: its page sums (copied out of the reply's
  // frame) and how far its bytes have been checked.
  struct Steps {
    Steps(std::byte* p, uint64_t length, Bytes page_sums)
        : seq(length), sums(page_sums.begin(), page_sums.end()), pieces(p, length, Bytes(sums)) {}
    proto::ChunkSequencer seq;
    std::vector<std::byte> sums;
    proto::PieceCheck pieces;
  };

  // One ReadPlaced: the next stretch of its entry is in the region, checked
  // now against the entry's page sums, while the server copies the next.
  Status OnStep(Sub& sub, const proto::FrameHeader& h, Bytes control, Bytes data) {
    proto::PlacedStep s;
    if (!data.empty() || !proto::Decode(control, s) || s.entry >= sub.count) return errc::bad_reply;
    const size_t idx = sub.base + s.entry;
    auto it = steps_.find(idx);
    if (it == steps_.end()) return errc::bad_reply;
    Steps& st = *it->second;
    if (!st.seq.Accept({s.entry, s.seq, s.offset, s.last, std::nullopt}, s.length)) return errc::bad_reply;
    st.pieces.Landed(s.offset + s.length);
    if (st.seq.complete()) {
      GetResult& out = value_[idx];
      if (st.pieces.ok()) out.length = st.seq.value_size();
      else out.status = StatusCode::kChecksumMismatch;
      steps_.erase(it);
    }
    return CheckDone(sub, h);
  }

  // The request's last frame: every entry answered, every stream whole and
  // every entry placed in steps in place.
  Status CheckDone(const Sub& sub, const proto::FrameHeader& h) {
    MEMKV_TRY(CheckLast(sub, h));
    auto mine = [&](size_t idx) { return idx >= sub.base && idx < sub.base + sub.count; };
    if (!h.has_more()) {
      for (const auto& [idx, st] : streams_)
        if (mine(idx)) return errc::bad_reply;
      for (const auto& [idx, st] : steps_)
        if (mine(idx)) return errc::bad_reply;
    }
    return {};
  }

  // A planned piece being checked as it lands.
  struct Check {
    Check(size_t r, std::byte* d, size_t n) : result(r), p(d), len(n) {}
    size_t result;  // in reply_
    std::byte* p;   // nullptr: dropped (the destination is too small)
    size_t len;
    size_t verified = 0;                  // bytes hashed into `whole`
    std::optional<proto::PieceCheck> pieces;  // with piece sums
    std::unique_ptr<Xxh3Stream> whole;    // without: one XXH3 of it all
  };

  std::vector<Dest> dests_;
  bool shm_;
  proto::BatchReadReply reply_;
  bool planned_ = false;  // reply_ decoded by PlanData, its bytes in place
  std::vector<Check> checks_;
  std::unordered_map<size_t, std::unique_ptr<Stream>> streams_;  // by entry, until whole
  std::unordered_map<size_t, std::unique_ptr<Steps>> steps_;     // by entry, until in place
};

// RegisterRegion / ReleaseRegion: a bare ReplyHead.
class RegionOp final : public TypedOp<void> {
 public:
  RegionOp(Callback<void> cb, std::function<void()> on_ok)
      : TypedOp(std::move(cb)), on_ok_(std::move(on_ok)) {}
  Status OnReply(Sub&, const proto::FrameHeader&, Bytes control, Bytes) override {
    proto::ReplyHead head;
    if (!proto::Decode(control, head)) return errc::bad_reply;
    if (head.status != StatusCode::kOk) return make_status_error(head.status);
    if (on_ok_) on_ok_();
    return {};
  }

 private:
  std::function<void()> on_ok_;
};

// List: one ListReply (its entries copied out of the frame).
class ListOp final : public TypedOp<ListResult> {
 public:
  using TypedOp::TypedOp;
  Status OnReply(Sub&, const proto::FrameHeader&, Bytes control, Bytes) override {
    proto::ListReply reply;
    if (!proto::Decode(control, reply)) return errc::bad_reply;
    if (reply.head.status != StatusCode::kOk) return make_status_error(reply.head.status);
    for (const proto::ListEntry& e : reply.entries)
      value_.entries.push_back({std::string(e.key), e.value_size, e.version});
    value_.cursor = std::string(reply.cursor);
    return {};
  }
};

class CapacityOp final : public TypedOp<CapacityResult> {
 public:
  using TypedOp::TypedOp;
  Status OnReply(Sub&, const proto::FrameHeader&, Bytes control, Bytes) override {
    proto::CapacityReply reply;
    if (!proto::Decode(control, reply)) return errc::bad_reply;
    if (reply.head.status != StatusCode::kOk) return make_status_error(reply.head.status);
    value_ = {reply.total_bytes, reply.used_bytes, reply.keys, reply.max_value_size};
    return {};
  }
};

// A request with no deadline until one is armed (an open stream's, at Finish).
constexpr Duration kNoDeadline = Duration::max();

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  std::string s(buf);
  if (s.size() > proto::kMaxNameSize) s.resize(proto::kMaxNameSize);
  return s;
}

void LogFailure(const char* what, std::exception_ptr e) {
  LogTaskFailure(std::string("memkv client: ") + what, e);
}

// One frame of the handshake, read before the reader runs.
struct HandshakeReply {
  proto::HeaderBytes raw{};
  proto::FrameHeader header;
  Buffer payload;
  Bytes control() const { return Bytes(payload.data(), header.control_len); }
};

}  // namespace

// ---------------------------------------------------------------------------

class Connection::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(std::shared_ptr<IoThreads> threads, ConnectionOptions options)
      : threads_(std::move(threads)),
        ctx_(threads_->Next()),
        options_(std::move(options)),
        unix_(options_.address.find('/') != std::string::npos),
        socket_(ctx_),
        writer_wake_(ctx_) {}

  // The rdma peer this connection offered goes with it, on the fabric's loop
  // (which the task keeps running: this may hold the pool's last reference).
  ~Impl() {
    if (!rdma_peer_) return;
    asio::co_spawn(
        threads_->context(0),
        [fabric = options_.rdma_fabric, peer = *rdma_peer_,
         pool = threads_]() -> asio::awaitable<void> {
          if (auto st = co_await fabric->RemovePeer(peer); !st)
            spdlog::debug("memkv client: removing rdma peer {}: {}", peer, st.error().message());
        },
        asio::detached);
  }


  // The key frames are tagged with: the session key Hello made, when an
  // auth key is set.
  const proto::AuthKey* key() const { return session_key_ ? &*session_key_ : nullptr; }

  asio::awaitable<Status> ConnectAndAttach();
  void Start();
  void Close() {
    asio::post(ctx_, [self = shared_from_this()] {
      self->Shutdown(errc::closed, "closed by the client");
    });
  }
  void Shutdown(error_code why, const std::string& detail);
  // A request that timed out before it was written is taken out of the
  // write queue, with what it holds (the caller's values or a copy).
  void DropUnsent(const Op& op);

  OutFrame MakeFrame(proto::Opcode opcode, Buffer control, std::vector<Bytes> data,
                     std::shared_ptr<const void> keep) {
    OutFrame f;
    proto::FrameHeader h;
    h.opcode = opcode;
    h.request_id = next_id_.fetch_add(1, std::memory_order_relaxed);
    h.control_len = static_cast<uint32_t>(control.size());
    size_t data_len = 0;
    for (Bytes b : data) data_len += b.size();
    h.data_len = static_cast<uint32_t>(data_len);
    f.header = proto::EncodeHeader(h, control, nullptr);
    f.control = std::move(control);
    f.data = std::move(data);
    f.keep = std::move(keep);
    return f;
  }

  // Sets `flag` in a frame not yet sealed.
  static void AddFlag(OutFrame& f, uint8_t flag) {
    auto h = proto::DecodeHeader(f.header);
    if (!h) return;
    h->flags |= flag;
    f.header = proto::EncodeHeader(*h, f.control, nullptr);
  }

  struct Planned {
    OutFrame frame;
    uint32_t base = 0;
    uint32_t count = 0;
    std::shared_ptr<const void> keep_until_reply;
    std::vector<OutFrame> chunks = {};  // WriteChunk frames sent right after `frame`
  };

  // Adds the WriteChunk frames of the streamed entries (`streamed[i]`) of
  // each planned BatchWrite, and flags the frames that more follow.
  void AddChunks(std::vector<Planned>& subs, const std::vector<bool>& streamed,
                 std::span<const Bytes> values, const std::vector<proto::WriteEntry>& wire,
                 const std::shared_ptr<const void>& keep) {
    for (Planned& p : subs) {
      auto h = proto::DecodeHeader(p.frame.header);
      if (!h) continue;
      for (uint32_t k = 0; k < p.count; ++k) {
        const size_t i = p.base + k;
        if (!streamed[i]) continue;
        for (proto::ChunkHeader c : proto::PlanChunks(k, values[i].size(), proto::kStreamChunkSize)) {
          if (c.last) c.checksum = wire[i].checksum;
          Buffer control;
          proto::Encode(c, control);
          proto::FrameHeader ch;
          ch.opcode = proto::Opcode::kWriteChunk;
          ch.request_id = h->request_id;
          ch.flags = proto::kFlagMore;
          ch.control_len = static_cast<uint32_t>(control.size());
          const Bytes bytes = values[i].subspan(c.offset, std::min<uint64_t>(proto::kStreamChunkSize,
                                                                            values[i].size() - c.offset));
          ch.data_len = static_cast<uint32_t>(bytes.size());
          OutFrame f;
          f.header = proto::EncodeHeader(ch, control, nullptr);
          f.control = std::move(control);
          f.data = {bytes};
          f.keep = keep;
          f.request = false;
          p.chunks.push_back(std::move(f));
        }
      }
      if (p.chunks.empty()) continue;
      // More frames of the request follow its BatchWrite and every chunk but the last.
      AddFlag(p.frame, proto::kFlagMore);
      auto last = proto::DecodeHeader(p.chunks.back().header);
      last->flags &= ~proto::kFlagMore;
      p.chunks.back().header = proto::EncodeHeader(*last, p.chunks.back().control, nullptr);
    }
  }

  // A batch handed over one request at a time (SubmitInParts): this is
  // part `index` of `total`; `bytes` are all the parts' frames together,
  // checked against max_queued_bytes with the first part as a whole
  // batch's are. total 0 (as `Parts{}` has it): the whole batch at once.
  struct Parts {
    uint32_t index;
    uint32_t total;
    uint64_t bytes;
  };
  // Hands a request to the loop: registers its request ids, queues its
  // frames, arms its deadline. From any thread.
  void Submit(std::shared_ptr<Op> op, std::vector<Planned> subs, Duration timeout,
              std::vector<uint32_t> needs_regions = {}, Parts parts = {}) {
    if (timeout.count() <= 0) timeout = options_.request_timeout;
    asio::post(ctx_, [self = shared_from_this(), op = std::move(op), subs = std::move(subs),
                      timeout, needs = std::move(needs_regions), parts]() mutable {
      self->OnSubmit(std::move(op), std::move(subs), timeout, needs, parts);
    });
  }
  void Reject(std::shared_ptr<Op> op, error_code ec) {
    asio::post(ctx_, [op = std::move(op), ec] { op->Finish(ec); });
  }

  // Splits a batch so that each request fits a frame (and the server's
  // max_batch_entries).
  std::vector<proto::Slice> Plan(std::span<const uint64_t> cost,
                                 uint64_t max_payload = proto::kMaxPayload) const {
    auto slices = proto::PlanSlices(cost, kBatchOverhead, max_payload);
    const uint32_t max = attach_.max_batch_entries;
    if (max == 0) return slices;
    std::vector<proto::Slice> out;
    for (const proto::Slice& s : slices)
      for (uint32_t f = 0; f < s.count; f += max)
        out.push_back({s.first + f, std::min(max, s.count - f)});
    return out;
  }

  // One request per slice of Plan(cost): a `Request` (BatchWriteRequest or
  // BatchReadRequest) over the slice's `wire` entries. `values`, when not
  // empty, are the entries' inline bytes, kept alive by `frame_keep` until
  // sent; `reply_keep` stays with each request until its reply (a region).
  template <class Request, class Entry>
  std::vector<Planned> PlanRequests(proto::Opcode opcode, const std::vector<Entry>& wire,
                                    std::span<const uint64_t> cost, std::span<const Bytes> values,
                                    std::shared_ptr<const void> frame_keep,
                                    std::shared_ptr<const void> reply_keep,
                                    uint64_t max_payload = proto::kMaxPayload) {
    std::vector<Planned> subs;
    for (const proto::Slice& s : Plan(cost, max_payload))
      subs.push_back(PlanSlice<Request>(opcode, wire, cost, values, frame_keep, reply_keep, s));
    return subs;
  }
  // PlanRequests' request for one slice.
  template <class Request, class Entry>
  Planned PlanSlice(proto::Opcode opcode, const std::vector<Entry>& wire,
                    std::span<const uint64_t> cost, std::span<const Bytes> values,
                    const std::shared_ptr<const void>& frame_keep,
                    const std::shared_ptr<const void>& reply_keep, const proto::Slice& s) {
    Request req;
    req.batch = {s.count, 0, s.count};
    req.entries.assign(wire.begin() + s.first, wire.begin() + s.first + s.count);
    Buffer control;
    proto::Encode(req, control);
    std::vector<Bytes> data;
    if (!values.empty()) data.assign(values.begin() + s.first, values.begin() + s.first + s.count);
    Planned p{MakeFrame(opcode, std::move(control), std::move(data),
                        values.empty() ? nullptr : frame_keep),
              s.first, s.count, reply_keep};
    uint64_t budget = proto::kHeaderSize + kBatchOverhead;
    for (uint32_t i = s.first; i < s.first + s.count; ++i) budget += cost[i];
    p.frame.budget = budget;
    return p;
  }

  // Submits a batch of writes one request at a time, each handed to the
  // loop as soon as `ready(slice)` has readied its entries (taken their
  // piece sums): the server receives and stores the first request while
  // the caller hashes the next, instead of waiting for the whole batch.
  // Requests carry about `max_bytes` of `plan_cost` each; `cost` gives
  // their budgets; `chunks(planned)` adds a request's streamed chunks.
  template <class Ready, class Chunks>
  void SubmitInParts(std::shared_ptr<Op> op, const std::vector<proto::WriteEntry>& wire,
                     std::span<const uint64_t> cost, std::span<const uint64_t> plan_cost,
                     uint64_t max_bytes, std::span<const Bytes> values,
                     const std::shared_ptr<const void>& frame_keep,
                     const std::shared_ptr<const void>& reply_keep, Duration timeout,
                     std::vector<uint32_t> needs_regions, Ready ready, Chunks chunks) {
    const std::vector<proto::Slice> slices = Plan(plan_cost, max_bytes);
    if (slices.empty()) return Submit(std::move(op), {}, timeout, std::move(needs_regions));
    Parts parts{0, static_cast<uint32_t>(slices.size()), 0};
    for (uint64_t c : cost) parts.bytes += c;  // what is queued: not the bytes left in shm regions
    parts.bytes += slices.size() * (proto::kHeaderSize + kBatchOverhead);
    for (const proto::Slice& s : slices) {
      ready(s);
      std::vector<Planned> one;
      one.push_back(PlanSlice<proto::BatchWriteRequest>(proto::Opcode::kBatchWrite, wire, cost,
                                                        values, frame_keep, reply_keep, s));
      chunks(one);
      Submit(op, std::move(one), timeout, parts.index == 0 ? needs_regions : std::vector<uint32_t>{},
             parts);
      ++parts.index;
    }
  }

  void SubmitKeys(proto::Opcode opcode, std::shared_ptr<Op> op, const std::vector<std::string>& keys,
                  Duration timeout);

  // Loop-side.
  void OnSubmit(std::shared_ptr<Op> op, std::vector<Planned> subs, Duration timeout,
                const std::vector<uint32_t>& needs_regions, Parts parts);
  void ArmTimer(const std::shared_ptr<Op>& op, Duration timeout);
  // An open stream's next chunk, queued behind whatever is queued now
  // (frames posted from one thread keep their order). From any thread.
  void SubmitChunk(std::shared_ptr<Op> op, OutFrame f);
  // Gives a request submitted with kNoDeadline its deadline. From any thread.
  void ArmDeadline(std::shared_ptr<Op> op, Duration timeout);
  void Dispatch(const proto::FrameHeader& h, Bytes control, Bytes data);
  asio::awaitable<void> Reader(std::shared_ptr<Impl> self);
  asio::awaitable<error_code> ReceiveInto(Op& op, const std::vector<DataPiece>& plan);
  Buffer scratch_;  // where dropped bytes are received
  asio::awaitable<void> Writer(std::shared_ptr<Impl> self);
  asio::awaitable<error_code> SendWithFd(OutFrame& f);
  // Numbers and tags a frame as it takes its place on the wire.
  void Seal(OutFrame& f) { proto::SealHeader(f.header, out_seq_++, f.control, key()); }
  // The handshake: sends one frame, reads its one reply (checked: a reply,
  // the same opcode, the next sequence number, the tag).
  asio::awaitable<Result<HandshakeReply>> RoundTrip(proto::Opcode opcode, Buffer control);
  void Spawn(asio::awaitable<void> aw, const char* what) {
    asio::co_spawn(ctx_, std::move(aw), [what](std::exception_ptr e) { LogFailure(what, e); });
  }

  // Tells the handle that the connection is gone. Declared first, so it
  // fires last: after threads_ has been released here, which leaves the
  // handle's reference the last one and the pool is joined on the user's
  // thread, not handed to a helper.
  struct DestroySignal {
    std::promise<void>* promise = nullptr;  // set by the handle before it lets go
    ~DestroySignal() {
      if (promise) promise->set_value();
    }
  };
  DestroySignal destroyed_;

  // Constant after construction.
  std::shared_ptr<IoThreads> threads_;  // the loop outlives everything below
  asio::io_context& ctx_;
  const ConnectionOptions options_;
  const bool unix_;
  // Written by ConnectAndAttach before the handle exists; constant after.
  AttachInfo attach_;
  std::optional<rdma::PeerId> rdma_peer_;  // offered by this connection (verbs)
  uint32_t limit_ = 1;
  std::optional<proto::AuthKey> session_key_;
  // Any thread.
  std::atomic<bool> open_{false};
  std::atomic<uint64_t> next_id_{1};

  // Loop-confined.
  GenericSocket socket_;
  asio::steady_timer writer_wake_;
  std::deque<OutFrame> queue_;
  std::unordered_map<uint64_t, Sub> pending_;
  std::unordered_map<uint32_t, std::shared_ptr<SharedRegion>> regions_;
  uint32_t inflight_ = 0;  // request ids written and not yet fully answered
  uint64_t outstanding_ = 0;  // their budgets (OutFrame::budget)
  uint64_t out_seq_ = 0;      // the next frame's sequence number
  uint64_t queued_bytes_ = 0;  // of the frames in queue_ (max_queued_bytes)
  proto::SequenceCheck in_seq_;  // the server's frames
  error_code close_reason_ = errc::connection_lost;
};

asio::awaitable<Status> Connection::Impl::ConnectAndAttach() {
  auto self = shared_from_this();
  struct Guard {
    bool done = false;
    bool timed_out = false;
    const char* step = "resolving its address";  // what was pending, for the timeout's warning
    std::optional<asio::ip::tcp::resolver> resolver;
  };
  auto guard = std::make_shared<Guard>();
  asio::steady_timer timer(ctx_);
  timer.expires_after(options_.connect_timeout);
  timer.async_wait([this, self, guard](error_code ec) {
    if (ec || guard->done) return;
    guard->timed_out = true;
    if (guard->resolver) guard->resolver->cancel();
    error_code ignored;
    socket_.close(ignored);
  });
  auto finish = [&](Status s) -> Status {
    guard->done = true;
    timer.cancel();
    if (!s && guard->timed_out) {
      spdlog::warn("memkv client: {}: connect_timeout ({} ms) ran out while {}", options_.address,
                   options_.connect_timeout.count(), guard->step);
      return errc::connect_timeout;
    }
    return s;
  };

  // Connect.
  std::vector<GenericEndpoint> endpoints;
  if (unix_) {
    endpoints.emplace_back(asio::local::stream_protocol::endpoint(options_.address));
  } else {
    const std::string& a = options_.address;
    const size_t colon = a.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.size())
      co_return finish(errc::bad_address);
    std::string host = a.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    guard->resolver.emplace(ctx_);
    auto [ec, results] =
        co_await guard->resolver->async_resolve(host, a.substr(colon + 1), kTuple);
    if (ec) {
      spdlog::warn("memkv client: cannot resolve {}: {}", a, ec.message());
      co_return finish(guard->timed_out ? Status(errc::connect_timeout) : Status(errc::bad_address));
    }
    for (const auto& r : results) endpoints.emplace_back(r.endpoint());
  }
  error_code last;
  bool connected = false;
  for (const GenericEndpoint& ep : endpoints) {
    if (guard->timed_out) break;
    error_code ignored;
    socket_.close(ignored);
    guard->step = "connecting";
    auto [ec] = co_await socket_.async_connect(ep, kTuple);
    if (!ec) {
      connected = true;
      break;
    }
    last = ec;
  }
  if (!connected) {
    if (!guard->timed_out)
      spdlog::warn("memkv client: cannot connect to {}: {}", options_.address, last.message());
    co_return finish(errc::connect_failed);
  }
  if (!unix_) {
    error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }

  // Hello, then Attach (client/handshake.h says what is in them); every
  // frame after Hello is tagged with the session key both nonces make.
  Handshake handshake(options_.auth_key);
  const auto failed = [&](Status s) {
    if (s.error() == errc::attach_refused && !handshake.refusal().empty())
      spdlog::warn("memkv client: {} refused {}", options_.address, handshake.refusal());
    return finish(s);
  };
  Buffer hello = handshake.HelloControl();
  guard->step = "waiting for the server's answer to Hello";
  auto hr = co_await RoundTrip(proto::Opcode::kHello, std::move(hello));
  if (!hr) co_return finish(hr.error());
  if (Status s = handshake.OnHelloReply(hr->control()); !s) co_return failed(s);
  if (handshake.session_key()) session_key_ = *handshake.session_key();

  std::string endpoint = options_.rdma_endpoint;
  const std::shared_ptr<rdma::Fabric>& fabric = options_.rdma_fabric;
  // No temporary with a destructor inside a co_await here: with GCC 12 the
  // lambdas below, made inside their co_await, released the process
  // fabric's reference once too often (its use count read -1 after an
  // engine's connections closed, and the next engine got the freed
  // fabric). As named locals they are released once.
  if (fabric && !unix_) {
    guard->step = "offering an rdma peer";
    auto offer_peer = [fabric]() -> asio::awaitable<Result<rdma::Fabric::PeerOffer>> {
      co_return fabric->OfferPeer();
    };
    auto offer = co_await asio::co_spawn(threads_->context(0), std::move(offer_peer),
                                         asio::use_awaitable);
    if (!offer) {
      spdlog::warn("memkv client: {}: no rdma rail: offering a peer on {}: {}", options_.address,
                   fabric->provider_name(), offer.error().message());
      endpoint.clear();
    } else {
      if (offer->peer) rdma_peer_ = offer->peer;
      endpoint = fabric->provider_name() + "|" + offer->address;
    }
  }
  const std::string host = HostName();
  Buffer attach = handshake.AttachControl({.host_id = host, .local = unix_, .rdma_endpoint = endpoint});
  guard->step = "waiting for the server's answer to Attach";
  auto ar = co_await RoundTrip(proto::Opcode::kAttach, std::move(attach));
  if (!ar) co_return finish(ar.error());
  Result<AttachInfo> attached = handshake.OnAttachReply(ar->control());
  if (!attached) co_return failed(attached.error());
  if (rdma_peer_ && (attached->rails & proto::kRailRdma)) {
    // The server connected its end to the peer offered: connect this one.
    const std::string_view answer = attached->rdma_endpoint;
    const size_t bar = answer.find('|');
    const std::string address(bar == std::string_view::npos ? std::string_view{} : answer.substr(bar + 1));
    guard->step = "connecting the rdma peer";
    auto complete_peer = [fabric, peer = *rdma_peer_, address]() -> asio::awaitable<Status> {
      co_return fabric->CompletePeer(peer, address);
    };
    const Status st =
        co_await asio::co_spawn(threads_->context(0), std::move(complete_peer), asio::use_awaitable);
    if (!st) {
      spdlog::warn("memkv client: {}: no rdma rail: connecting to the server's answer: {}",
                   options_.address, st.error().message());
      attached->rails &= ~proto::kRailRdma;
    }
  }
  attach_ = std::move(*attached);
  limit_ = std::max<uint32_t>(1, options_.max_inflight);
  if (attach_.max_inflight) limit_ = std::min(limit_, attach_.max_inflight);
  if (guard->timed_out) co_return finish(errc::connect_timeout);
  co_return finish({});
}

asio::awaitable<Result<HandshakeReply>> Connection::Impl::RoundTrip(proto::Opcode opcode,
                                                                     Buffer control) {
  OutFrame f = MakeFrame(opcode, std::move(control), {}, nullptr);
  Seal(f);
  const std::array<asio::const_buffer, 2> bufs = {asio::buffer(f.header), asio::buffer(f.control)};
  if (auto [ec, n] = co_await asio::async_write(socket_, bufs, kTuple); ec)
    co_return errc::connection_lost;
  HandshakeReply r;
  if (auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(r.raw), kTuple); ec) {
    // A server that refuses (wrong key, too many sessions) may just close.
    co_return errc::attach_refused;
  }
  auto h = proto::DecodeHeader(r.raw);
  if (!h) {
    spdlog::warn("memkv client: {}: bad {} reply header: {}", options_.address,
                 proto::OpcodeName(opcode), h.error().message());
    co_return h.error() == proto::errc::unsupported_version ? errc::attach_refused : errc::bad_reply;
  }
  if (h->version < proto::kMinProtocolVersion) {
    spdlog::warn("memkv client: {} speaks memkv protocol version {}; this client speaks version {}: "
                 "upgrade the server",
                 options_.address, h->version, proto::kProtocolVersion);
    co_return errc::attach_refused;
  }
  r.header = *h;
  r.payload.resize(h->payload_len());
  if (auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(r.payload), kTuple); ec)
    co_return errc::connection_lost;
  if (!h->is_response() || h->opcode != opcode) co_return errc::bad_reply;
  // A refusal may come before the session key exists (untagged): read it
  // for its message, but take nothing else that way.
  Status checked = proto::VerifyTag(r.raw, *h, r.control(), key());
  if (checked) checked = in_seq_.Accept(*h);
  if (!checked) {
    proto::ReplyHead head;
    if (proto::Decode(r.control(), head) && head.status != StatusCode::kOk) co_return r;
    spdlog::warn("memkv client: {} refused {}: {} (do the auth keys match?)", options_.address,
                 proto::OpcodeName(opcode), checked.error().message());
    co_return errc::attach_refused;
  }
  co_return r;
}

void Connection::Impl::Start() {
  open_ = true;
  Spawn(Reader(shared_from_this()), "connection reader");
  Spawn(Writer(shared_from_this()), "connection writer");
}

void Connection::Impl::Shutdown(error_code why, const std::string& detail) {
  if (!open_.exchange(false)) return;
  close_reason_ = why;
  if (why != errc::closed)
    spdlog::warn("memkv client: connection to {} lost: {}", options_.address, detail);
  error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
  writer_wake_.cancel();
  auto pending = std::move(pending_);
  pending_.clear();
  queue_.clear();
  queued_bytes_ = 0;
  regions_.clear();
  inflight_ = 0;
  outstanding_ = 0;
  for (auto& [id, sub] : pending) sub.op->Finish(why);
}

void Connection::Impl::OnSubmit(std::shared_ptr<Op> op, std::vector<Planned> subs,
                                Duration timeout, const std::vector<uint32_t>& needs_regions,
                                Parts parts) {
  // A later part of a batch whose earlier part failed (or timed out) goes no further.
  const bool later = parts.index > 0;
  if (later && op->done) return;
  if (!open_) {
    op->Finish(close_reason_);
    return;
  }
  for (uint32_t id : needs_regions) {
    if (!regions_.count(id)) {
      op->Finish(errc::region_not_registered);
      return;
    }
  }
  if (subs.empty()) {
    op->Finish({});
    return;
  }
  uint64_t bytes = 0;
  for (const Planned& p : subs) {
    bytes += p.frame.bytes();
    for (const OutFrame& c : p.chunks) bytes += c.bytes();
  }
  const uint64_t batch_bytes = parts.total > 0 ? parts.bytes : bytes;
  if (!later && !queue_.empty() && queued_bytes_ + batch_bytes > options_.max_queued_bytes) {
    op->Finish(errc::queue_full);
    return;
  }
  queued_bytes_ += bytes;
  if (!later) op->subs_left = parts.total > 0 ? parts.total : static_cast<uint32_t>(subs.size());
  for (Planned& p : subs) {
    pending_.emplace(p.frame.request_id(),
                     Sub{op, p.base, p.count, 0, std::move(p.keep_until_reply), p.frame.budget});
    queue_.push_back(std::move(p.frame));
    for (OutFrame& c : p.chunks) queue_.push_back(std::move(c));
  }
  if (!later && timeout != kNoDeadline) ArmTimer(op, timeout);
  writer_wake_.cancel();
}

void Connection::Impl::ArmTimer(const std::shared_ptr<Op>& op, Duration timeout) {
  op->timer.emplace(ctx_);  // a timer armed before is cancelled with it
  op->timer->expires_after(timeout);
  op->timer->async_wait([weak = std::weak_ptr<Op>(op), self = weak_from_this()](error_code ec) {
    if (ec) return;
    auto o = weak.lock();
    if (!o) return;
    if (o->receiving) {
      o->deferred = errc::timeout;  // finished once the frame being received is in
      return;
    }
    o->Finish(errc::timeout);
    if (auto impl = self.lock()) impl->DropUnsent(*o);
  });
}

void Connection::Impl::SubmitChunk(std::shared_ptr<Op> op, OutFrame f) {
  asio::post(ctx_, [self = shared_from_this(), op = std::move(op), f = std::move(f)]() mutable {
    // Once its request is answered (or failed) nothing more of it is sent;
    // dropping the frame releases its bytes (and wakes its writer).
    if (!self->open_ || op->done) return;
    self->queued_bytes_ += f.bytes();
    self->queue_.push_back(std::move(f));
    self->writer_wake_.cancel();
  });
}

void Connection::Impl::ArmDeadline(std::shared_ptr<Op> op, Duration timeout) {
  asio::post(ctx_, [self = shared_from_this(), op = std::move(op), timeout] {
    if (self->open_ && !op->done) self->ArmTimer(op, timeout);
  });
}

void Connection::Impl::DropUnsent(const Op& op) {
  std::unordered_set<uint64_t> ids;
  for (const auto& [id, sub] : pending_)
    if (sub.op.get() == &op) ids.insert(id);
  if (ids.empty()) return;
  // A request not yet begun on the wire goes, with its chunks; one begun
  // must be finished (the server is reading it) and its reply is dropped.
  std::unordered_set<uint64_t> dropped;
  std::erase_if(queue_, [&](const OutFrame& f) {
    const uint64_t id = f.request_id();
    if (!ids.count(id)) return false;
    if (f.request) dropped.insert(id);
    if (!dropped.count(id)) return false;
    queued_bytes_ -= std::min(queued_bytes_, f.bytes());
    return true;
  });
  for (uint64_t id : dropped) pending_.erase(id);
}

void Connection::Impl::Dispatch(const proto::FrameHeader& h, Bytes control, Bytes data) {
  auto it = pending_.find(h.request_id);
  if (it == pending_.end()) {
    spdlog::warn("memkv client: {}: reply for unknown request {} ({})", options_.address,
                 h.request_id, proto::OpcodeName(h.opcode));
    return;
  }
  Sub& sub = it->second;
  Op& op = *sub.op;
  if (!op.done) {
    if (auto s = op.OnReply(sub, h, control, data); !s) {
      if (s.error() == errc::bad_reply)
        spdlog::warn("memkv client: {}: bad {} reply to request {}", options_.address,
                     proto::OpcodeName(h.opcode), h.request_id);
      op.Finish(s);
    }
  }
  if (h.has_more()) return;
  auto keep_op = std::move(sub.op);
  const uint64_t budget = sub.budget;
  pending_.erase(it);
  if (inflight_ > 0 && inflight_-- == limit_) writer_wake_.cancel();
  if (budget > 0) {
    outstanding_ -= std::min(outstanding_, budget);
    writer_wake_.cancel();
  }
  if (--keep_op->subs_left == 0) keep_op->Finish({});
}

asio::awaitable<void> Connection::Impl::Reader(std::shared_ptr<Impl> self) {
  proto::HeaderBytes raw;
  Buffer payload;
  std::vector<DataPiece> plan;
  for (;;) {
    auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(raw), kTuple);
    if (ec) {
      Shutdown(errc::connection_lost, ec == asio::error::eof ? "closed by the server" : ec.message());
      co_return;
    }
    auto h = proto::DecodeHeader(raw);
    if (!h) {
      Shutdown(errc::connection_lost, "bad frame header: " + h.error().message());
      co_return;
    }
    // The control part first: it says where the data section goes.
    payload.resize(h->control_len);
    if (!payload.empty()) {
      auto [ec2, n2] = co_await asio::async_read(socket_, asio::buffer(payload), kTuple);
      if (ec2) {
        Shutdown(errc::connection_lost, ec2.message());
        co_return;
      }
    }
    Bytes control(payload.data(), h->control_len);
    if (auto t = proto::VerifyTag(raw, *h, control, key()); !t) {
      Shutdown(errc::connection_lost, "reply refused: " + t.error().message());
      co_return;
    }
    if (auto t = in_seq_.Accept(*h); !t) {
      Shutdown(errc::connection_lost, "reply refused: " + t.error().message());
      co_return;
    }
    if (!h->is_response()) {
      Shutdown(errc::connection_lost, "the server sent a request frame");
      co_return;
    }
    if (!open_) co_return;
    Bytes data;
    if (h->data_len > 0) {
      auto it = pending_.find(h->request_id);
      std::shared_ptr<Op> op = it == pending_.end() ? nullptr : it->second.op;
      plan.clear();
      if (op && !op->done && op->PlanData(it->second, *h, control, plan)) {
        // Straight into the caller's buffers, checked as it lands.
        op->receiving = true;
        auto ec = co_await ReceiveInto(*op, plan);
        op->receiving = false;
        if (ec) {
          Shutdown(errc::connection_lost, ec.message());
          co_return;
        }
        if (op->deferred) op->Finish(*op->deferred);
      } else {
        payload.resize(h->control_len + size_t{h->data_len});
        auto [ec2, n2] = co_await asio::async_read(
            socket_, asio::buffer(payload.data() + h->control_len, h->data_len), kTuple);
        if (ec2) {
          Shutdown(errc::connection_lost, ec2.message());
          co_return;
        }
        control = Bytes(payload.data(), h->control_len);
        data = Bytes(payload.data() + h->control_len, h->data_len);
      }
      if (!open_) co_return;
    }
    Dispatch(*h, control, data);
  }
}

// Reads a data section into its planned pieces, up to 64 pieces and 256 KiB
// a read (one readv), and lets the op check each stretch while it is still
// in cache. Dropped pieces go to a scratch buffer.
asio::awaitable<error_code> Connection::Impl::ReceiveInto(Op& op, const std::vector<DataPiece>& plan) {
  constexpr size_t kStretch = 256 << 10;
  if (scratch_.size() < kStretch) scratch_.resize(kStretch);
  std::vector<asio::mutable_buffer> bufs;
  // Woken once a stretch has come (common/low_water.h), never for more than
  // the section still owes (each read takes what is there, and the mark
  // follows what is left); back to 1 at the end.
  uint64_t left = 0;
  for (const DataPiece& p : plan) left += p.len;
  ReceiveLowWater lowat(socket_.native_handle(), !unix_ && left > kStretch);
  size_t k = 0, off = 0;  // the next piece, and its bytes already in
  while (k < plan.size()) {
    lowat.Want(std::min<uint64_t>(left, kStretch));
    bufs.clear();
    size_t want = 0;
    for (size_t j = k, o = off; j < plan.size() && bufs.size() < 64 && want < kStretch;) {
      const size_t take = std::min(plan[j].len - o, kStretch - want);
      std::byte* p = plan[j].p ? plan[j].p + o : scratch_.data();
      bufs.push_back(asio::buffer(p, take));
      want += take;
      o += take;
      if (o == plan[j].len) {
        ++j;
        o = 0;
      }
    }
    auto [ec, n] = co_await socket_.async_read_some(bufs, kTuple);
    if (ec) co_return ec;
    left -= n;
    for (size_t got = n; got > 0;) {
      const size_t take = std::min(got, plan[k].len - off);
      off += take;
      got -= take;
      op.OnData(k, off);
      if (off == plan[k].len) {
        ++k;
        off = 0;
      }
    }
  }
  co_return error_code{};
}

asio::awaitable<error_code> Connection::Impl::SendWithFd(OutFrame& f) {
  Seal(f);
  Buffer bytes(f.header.begin(), f.header.end());
  bytes.insert(bytes.end(), f.control.begin(), f.control.end());
  for (Bytes b : f.data) bytes.insert(bytes.end(), b.begin(), b.end());
  error_code ec;
  socket_.native_non_blocking(true, ec);
  if (ec) co_return ec;
  size_t sent = 0;
  for (;;) {
    iovec iov{bytes.data(), bytes.size()};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &f.fd, sizeof(int));
    const ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      sent = static_cast<size_t>(n);
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      co_return error_code(errno, boost::system::system_category());
    auto [wec] = co_await socket_.async_wait(asio::socket_base::wait_write, kTuple);
    if (wec) co_return wec;
  }
  if (sent < bytes.size()) {
    auto [wec, n] =
        co_await asio::async_write(socket_, asio::buffer(bytes.data() + sent, bytes.size() - sent),
                                   kTuple);
    if (wec) co_return wec;
  }
  co_return error_code{};
}

asio::awaitable<void> Connection::Impl::Writer(std::shared_ptr<Impl> self) {
  std::vector<OutFrame> batch;
  batch.reserve(kMaxFramesPerWrite);
  std::vector<iovec> bufs;
  // A request waits while the requests in flight are at the limit, or
  // their bytes both ways would pass max_outstanding_bytes with it (a
  // request larger than that goes once nothing else is in flight). The
  // server then never has to stop reading this connection, and neither
  // side's socket queue runs over.
  const auto must_wait = [this](const OutFrame& f) {
    return f.request && (inflight_ >= limit_ || (outstanding_ > 0 && outstanding_ + f.budget >
                                                                         options_.max_outstanding_bytes));
  };
  while (open_) {
    if (queue_.empty() || must_wait(queue_.front())) {
      writer_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await writer_wake_.async_wait(kTuple);
      continue;
    }
    if (queue_.front().fd >= 0) {
      OutFrame f = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= std::min(queued_bytes_, f.bytes());
      ++inflight_;
      outstanding_ += f.budget;
      if (error_code ec = co_await SendWithFd(f); ec) {
        Shutdown(errc::connection_lost, "send: " + ec.message());
        co_return;
      }
      continue;
    }
    // Gather several frames into one write: headers, control payloads and
    // the callers' value bytes, none of them copied.
    size_t bytes = 0;
    while (!queue_.empty() && queue_.front().fd < 0 && !must_wait(queue_.front()) &&
           batch.size() < kMaxFramesPerWrite && bytes < kMaxBytesPerWrite) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      queued_bytes_ -= std::min(queued_bytes_, batch.back().bytes());
      Seal(batch.back());
      if (batch.back().request) {
        ++inflight_;
        outstanding_ += batch.back().budget;
      }
      const OutFrame& f = batch.back();
      bytes += f.header.size() + f.control.size();
      for (Bytes b : f.data) bytes += b.size();
    }
    bufs.clear();
    for (const OutFrame& f : batch) {
      bufs.push_back(Iovec(f.header));
      bufs.push_back(Iovec(f.control));
      for (Bytes b : f.data) bufs.push_back(Iovec(b));
    }
    const error_code ec = co_await SendAll(socket_, std::span<iovec>(bufs));
    batch.clear();
    if (ec) {
      Shutdown(errc::connection_lost, "write: " + ec.message());
      co_return;
    }
  }
}

void Connection::Impl::SubmitKeys(proto::Opcode opcode, std::shared_ptr<Op> op,
                                  const std::vector<std::string>& keys, Duration timeout) {
  std::vector<uint64_t> cost(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!proto::CheckKey(keys[i])) return Reject(std::move(op), errc::bad_argument);
    cost[i] = 2 + keys[i].size();
  }
  std::vector<Planned> subs;
  proto::KeysRequest req;
  for (const proto::Slice& s : Plan(cost)) {
    req.batch = {s.count, 0, s.count};
    req.keys.assign(keys.begin() + s.first, keys.begin() + s.first + s.count);
    Buffer control;
    proto::Encode(req, control);
    subs.push_back({MakeFrame(opcode, std::move(control), {}, nullptr), s.first, s.count, nullptr});
  }
  Submit(std::move(op), std::move(subs), timeout);
}

// ---------------------------------------------------------------------------
// The handle.

namespace {
template <class T, class Start>
Result<T> Block(Start start) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  start(Callback<T>([p](Result<T> r) { p->set_value(std::move(r)); }));
  try {
    return f.get();
  } catch (const std::future_error&) {
    return errc::closed;
  }
}
}  // namespace

Connection::Connection(std::shared_ptr<Impl> impl, std::shared_ptr<IoThreads> threads)
    : impl_(std::move(impl)), threads_(std::move(threads)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    Connection old(std::move(*this));  // closed as it goes out of scope
    impl_ = std::move(o.impl_);
    threads_ = std::move(o.threads_);
  }
  return *this;
}

Connection::~Connection() {
  if (!impl_) return;
  std::promise<void> gone;
  auto fut = gone.get_future();
  const bool wait = !threads_->InPool();
  if (wait) impl_->destroyed_.promise = &gone;
  impl_->Close();
  impl_.reset();
  if (wait) fut.wait();
  threads_.reset();
}

void Connection::AsyncConnect(const ConnectionOptions& options, std::shared_ptr<IoThreads> threads,
                              Callback<Connection> done) {
  if (!threads) threads = IoThreads::Acquire();
  auto impl = std::make_shared<Impl>(threads, options);
  asio::io_context& ctx = impl->ctx_;
  asio::co_spawn(ctx, impl->ConnectAndAttach(),
                 [impl, threads, done = std::move(done)](std::exception_ptr e, Status s) mutable {
                   if (e) {
                     LogFailure("connect", e);
                     s = errc::connect_failed;
                   }
                   if (!s) {
                     error_code ignored;
                     impl->socket_.close(ignored);
                     done(s.error());
                     return;
                   }
                   impl->Start();
                   done(Connection(std::move(impl), std::move(threads)));
                 });
}

Result<Connection> Connection::Connect(const ConnectionOptions& options,
                                       std::shared_ptr<IoThreads> threads) {
  return Block<Connection>([&](Callback<Connection> cb) {
    AsyncConnect(options, std::move(threads), std::move(cb));
  });
}

const AttachInfo& Connection::attach_info() const { return impl_->attach_; }
const std::string& Connection::address() const { return impl_->options_.address; }
bool Connection::is_unix_socket() const { return impl_->unix_; }
bool Connection::is_open() const { return impl_ && impl_->open_; }
void Connection::Close() {
  if (impl_) impl_->Close();
}

void Connection::AsyncPing(Duration timeout, Callback<void> done) {
  static std::atomic<uint64_t> tokens{1};
  const uint64_t token = tokens.fetch_add(1) * 0x9E3779B97F4A7C15ull;
  auto op = std::make_shared<PingOp>(std::move(done), token);
  Buffer control;
  proto::Encode(proto::Ping{token}, control);
  std::vector<Impl::Planned> subs;
  subs.push_back({impl_->MakeFrame(proto::Opcode::kPing, std::move(control), {}, nullptr), 0, 0, nullptr});
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncExists(std::vector<std::string> keys, Duration timeout,
                             Callback<std::vector<KeyInfo>> done) {
  auto op = std::make_shared<ExistsOp>(std::move(done), keys.size());
  impl_->SubmitKeys(proto::Opcode::kExists, std::move(op), keys, timeout);
}

void Connection::AsyncDelete(std::vector<std::string> keys, Duration timeout,
                             Callback<std::vector<StatusCode>> done) {
  auto op = std::make_shared<StatusOp>(std::move(done), keys.size());
  impl_->SubmitKeys(proto::Opcode::kDelete, std::move(op), keys, timeout);
}

void Connection::AsyncPut(PutBatch batch, Duration timeout, Callback<std::vector<StatusCode>> done) {
  const size_t n = batch.entries.size();
  auto op = std::make_shared<StatusOp>(std::move(done), n);
  std::vector<proto::WriteEntry> wire(n);
  std::vector<uint64_t> cost(n);
  std::vector<bool> streamed(n, false);
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const PutEntry& e = batch.entries[i];
    if (!proto::CheckKey(e.key) || e.value.empty())
      return impl_->Reject(std::move(op), errc::bad_argument);
    wire[i].key = e.key;
    wire[i].value_len = e.value.size();
    // With its piece sums (8 bytes per 4 KiB), set below.
    cost[i] = proto::EncodedSize(wire[i]) + 8 * PiecesOf(e.value.size()) + e.value.size();
    if (cost[i] + kBatchOverhead > proto::kMaxPayload) {
      // Too large for a frame: its bytes follow the request in WriteChunk frames.
      streamed[i] = true;
      wire[i].src.kind = proto::LocationKind::kStream;
      cost[i] = proto::EncodedSize(wire[i]);
    }
    total += e.value.size();
  }
  // Each value's piece sums (the XXH3 of each 4 KiB), taken in the same
  // pass as the copy when there is one; a streamed value's XXH3 instead.
  // They are taken a request at a time, just before it is handed over.
  std::vector<size_t> sums_at(n, 0);
  size_t pieces = 0;
  for (size_t i = 0; i < n; ++i) {
    sums_at[i] = pieces;
    if (!streamed[i]) pieces += PiecesOf(batch.entries[i].value.size());
  }
  std::vector<uint64_t> sums(pieces);
  static_assert(std::endian::native == std::endian::little, "piece sums are sent as computed");
  std::shared_ptr<const void> keep = std::move(batch.owner);
  // No owner: copy, so the caller may reuse its buffers as soon as this returns.
  std::shared_ptr<Buffer> copy = keep ? nullptr : std::make_shared<Buffer>(total);
  std::vector<Bytes> values(n);
  std::vector<size_t> copy_at(n, 0);  // where each value goes in `copy`
  for (size_t i = 0, at = 0; i < n; ++i) {
    const auto& v = batch.entries[i].value;
    copy_at[i] = at;
    values[i] = copy ? Bytes(copy->data() + at, v.size()) : v;
    at += v.size();
    if (streamed[i]) continue;
    wire[i].piece_sums = Bytes(reinterpret_cast<const std::byte*>(sums.data() + sums_at[i]),
                               8 * PiecesOf(v.size()));
    cost[i] = proto::EncodedSize(wire[i]) + v.size();
  }
  if (copy) keep = copy;
  const auto ready = [&](const proto::Slice& s) {
    for (size_t i = s.first; i < s.first + s.count; ++i) {
      const auto& v = batch.entries[i].value;
      std::byte* to = copy ? copy->data() + copy_at[i] : nullptr;
      if (streamed[i]) {
        if (to) std::memcpy(to, v.data(), v.size());
        wire[i].checksum = Xxh3(values[i]);
      } else if (to) {
        CopyWithPieceSums(to, v.data(), v.size(), sums.data() + sums_at[i]);
      } else {
        PieceSums(v.data(), v.size(), sums.data() + sums_at[i]);
      }
    }
  };
  // Streamed values are not in their request's data section.
  std::vector<Bytes> inline_values = values;
  for (size_t i = 0; i < n; ++i)
    if (streamed[i]) inline_values[i] = {};
  const auto chunks = [&](std::vector<Impl::Planned>& one) {
    impl_->AddChunks(one, streamed, values, wire, keep);
  };
  // Requests of about kWriteFrameBytes: the server stores one while the
  // next is hashed and on the wire, instead of waiting for a whole batch.
  impl_->SubmitInParts(std::move(op), wire, cost, cost, kWriteFrameBytes, inline_values, keep,
                       nullptr, timeout, {}, ready, chunks);
}

void Connection::AsyncGet(std::vector<GetEntry> entries, Duration timeout,
                          Callback<std::vector<GetResult>> done) {
  const size_t n = entries.size();
  std::vector<GetOp::Dest> dests(n);
  std::vector<proto::ReadEntry> wire(n);
  std::vector<uint64_t> cost(n);
  bool bad = false;
  for (size_t i = 0; i < n; ++i) {
    const GetEntry& e = entries[i];
    if (!proto::CheckKey(e.key)) bad = true;
    dests[i] = {e.dest.data(), e.dest.size()};
    wire[i] = {e.key, e.offset, e.length, {}, e.version};
    // The reply's bytes count too: a request's inline reply then fits a
    // frame, and its bytes count against max_outstanding_bytes.
    cost[i] = proto::EncodedSize(wire[i]) + proto::kReadResultSize + e.dest.size();
  }
  auto op = std::make_shared<GetOp>(std::move(done), std::move(dests), false);
  if (bad) return impl_->Reject(std::move(op), errc::bad_argument);
  auto subs = impl_->PlanRequests<proto::BatchReadRequest>(proto::Opcode::kBatchRead, wire, cost,
                                                           {}, nullptr, nullptr);
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncRegisterRegion(std::shared_ptr<SharedRegion> region, Duration timeout,
                                     Callback<void> done) {
  Impl* impl = impl_.get();
  auto op = std::make_shared<RegionOp>(std::move(done), [impl, region] {
    impl->regions_[region->id()] = region;
  });
  if (!region) return impl_->Reject(std::move(op), errc::bad_argument);
  if (!impl_->unix_) return impl_->Reject(std::move(op), errc::shm_needs_unix_socket);
  Buffer control;
  proto::Encode(proto::RegisterRegion{region->id(), region->size()}, control);
  OutFrame f = impl_->MakeFrame(proto::Opcode::kRegisterRegion, std::move(control), {}, region);
  f.fd = region->fd();
  std::vector<Impl::Planned> subs;
  subs.push_back({std::move(f), 0, 0, region});
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncReleaseRegion(std::shared_ptr<SharedRegion> region, Duration timeout,
                                    Callback<void> done) {
  Impl* impl = impl_.get();
  const uint32_t id = region ? region->id() : 0;
  auto op = std::make_shared<RegionOp>(std::move(done), [impl, id] { impl->regions_.erase(id); });
  if (!region) return impl_->Reject(std::move(op), errc::bad_argument);
  Buffer control;
  proto::Encode(proto::ReleaseRegion{id}, control);
  std::vector<Impl::Planned> subs;
  subs.push_back({impl_->MakeFrame(proto::Opcode::kReleaseRegion, std::move(control), {}, nullptr),
                  0, 0, region});
  impl_->Submit(std::move(op), std::move(subs), timeout, {id});
}

void Connection::AsyncPutShm(ShmPutBatch batch, Duration timeout,
                             Callback<std::vector<StatusCode>> done) {
  const size_t n = batch.entries.size();
  auto op = std::make_shared<StatusOp>(std::move(done), n);
  const auto& region = batch.region;
  if (!region) return impl_->Reject(std::move(op), errc::bad_argument);
  std::vector<proto::WriteEntry> wire(n);
  std::vector<uint64_t> cost(n);
  std::vector<size_t> sums_at(n, 0);
  size_t pieces = 0;
  for (size_t i = 0; i < n; ++i) {
    const ShmPutEntry& e = batch.entries[i];
    if (!proto::CheckKey(e.key) || e.length == 0)
      return impl_->Reject(std::move(op), errc::bad_argument);
    if (e.region_offset > region->size() || e.length > region->size() - e.region_offset)
      return impl_->Reject(std::move(op), errc::region_out_of_bounds);
    wire[i].key = e.key;
    wire[i].value_len = e.length;
    wire[i].src = {proto::LocationKind::kShm, region->id(), e.region_offset, e.length};
    sums_at[i] = pieces;
    pieces += PiecesOf(e.length);
  }
  // Piece sums: the server checks each 4 KiB as it copies it out of the
  // region. Taken a request (about kWriteFrameBytes of values) at a time, so
  // that the server copies one while the next is hashed.
  std::vector<uint64_t> sums(pieces);
  std::vector<uint64_t> plan_cost(n);
  for (size_t i = 0; i < n; ++i) {
    const ShmPutEntry& e = batch.entries[i];
    wire[i].piece_sums = Bytes(reinterpret_cast<const std::byte*>(sums.data() + sums_at[i]),
                               8 * PiecesOf(e.length));
    cost[i] = proto::EncodedSize(wire[i]);
    plan_cost[i] = cost[i] + e.length;
  }
  const auto ready = [&](const proto::Slice& s) {
    for (size_t i = s.first; i < s.first + s.count; ++i) {
      const ShmPutEntry& e = batch.entries[i];
      PieceSums(region->data() + e.region_offset, e.length, sums.data() + sums_at[i]);
    }
  };
  impl_->SubmitInParts(std::move(op), wire, cost, plan_cost, kWriteFrameBytes, {}, nullptr, region,
                       timeout, {region->id()}, ready, [](std::vector<Impl::Planned>&) {});
}

void Connection::AsyncGetShm(ShmGetBatch batch, Duration timeout,
                             Callback<std::vector<GetResult>> done) {
  const size_t n = batch.entries.size();
  const auto& region = batch.region;
  std::vector<GetOp::Dest> dests(n);
  std::vector<proto::ReadEntry> wire(n);
  std::vector<uint64_t> cost(n);
  error_code bad;
  for (size_t i = 0; i < n && region; ++i) {
    const ShmGetEntry& e = batch.entries[i];
    if (!proto::CheckKey(e.key) || e.capacity == 0) bad = errc::bad_argument;
    if (e.region_offset > region->size() || e.capacity > region->size() - e.region_offset)
      bad = errc::region_out_of_bounds;
    if (bad) break;
    dests[i] = {region->data() + e.region_offset, e.capacity};
    wire[i] = {e.key, e.offset, e.length,
               {proto::LocationKind::kShm, region->id(), e.region_offset, e.capacity}, e.version};
    cost[i] = proto::EncodedSize(wire[i]);
  }
  auto op = std::make_shared<GetOp>(std::move(done), std::move(dests), true);
  if (!region) return impl_->Reject(std::move(op), errc::bad_argument);
  if (bad) return impl_->Reject(std::move(op), bad);
  auto subs = impl_->PlanRequests<proto::BatchReadRequest>(proto::Opcode::kBatchRead, wire, cost,
                                                           {}, nullptr, region);
  // Large entries placed a step at a time, each checked while the next is
  // copied, where the server offers it.
  if (attach_info().features & proto::kFeaturePlacedSteps)
    for (Impl::Planned& p : subs) impl_->AddFlag(p.frame, proto::kFlagSteps);
  impl_->Submit(std::move(op), std::move(subs), timeout, {region->id()});
}

void Connection::AsyncPutRdma(std::vector<RdmaPutEntry> entries, std::shared_ptr<const void> owner,
                              Duration timeout, Callback<std::vector<proto::StatusCode>> done) {
  const size_t n = entries.size();
  auto op = std::make_shared<StatusOp>(std::move(done), n);
  if (!(attach_info().rails & proto::kRailRdma)) return impl_->Reject(std::move(op), errc::bad_argument);
  std::vector<proto::WriteEntry> wire(n);
  std::vector<uint64_t> cost(n);
  std::vector<size_t> sums_at(n, 0);
  size_t pieces = 0;
  for (size_t i = 0; i < n; ++i) {
    const RdmaPutEntry& e = entries[i];
    if (!proto::CheckKey(e.key) || e.length == 0 || !e.data)
      return impl_->Reject(std::move(op), errc::bad_argument);
    wire[i].key = e.key;
    wire[i].value_len = e.length;
    wire[i].src = {proto::LocationKind::kRdma, e.rkey, e.address, e.length};
    sums_at[i] = pieces;
    pieces += PiecesOf(e.length);
  }
  // Piece sums: the server checks each 4 KiB of what it READ against them.
  auto sums = std::make_shared<std::vector<uint64_t>>(pieces);
  for (size_t i = 0; i < n; ++i) {
    const RdmaPutEntry& e = entries[i];
    PieceSums(e.data, e.length, sums->data() + sums_at[i]);
    wire[i].piece_sums = Bytes(reinterpret_cast<const std::byte*>(sums->data() + sums_at[i]),
                               8 * PiecesOf(e.length));
    // The bytes count too, so that one request stays within a frame's worth
    // of transfers (the server stages at most limits.max_buffered_bytes).
    cost[i] = proto::EncodedSize(wire[i]) + e.length;
  }
  auto keep = std::make_shared<std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(
      std::move(owner), sums);
  auto subs = impl_->PlanRequests<proto::BatchWriteRequest>(proto::Opcode::kBatchWrite, wire, cost,
                                                            {}, nullptr, keep);
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncGetRdma(std::vector<RdmaGetEntry> entries, std::shared_ptr<const void> owner,
                              Duration timeout, Callback<std::vector<GetResult>> done) {
  const size_t n = entries.size();
  std::vector<GetOp::Dest> dests(n);
  std::vector<proto::ReadEntry> wire(n);
  std::vector<uint64_t> cost(n);
  error_code bad;
  if (!(attach_info().rails & proto::kRailRdma)) bad = errc::bad_argument;
  for (size_t i = 0; i < n && !bad; ++i) {
    const RdmaGetEntry& e = entries[i];
    if (!proto::CheckKey(e.key) || e.dest.empty()) bad = errc::bad_argument;
    dests[i] = {e.dest.data(), e.dest.size()};
    wire[i] = {e.key, e.offset, e.length,
               {proto::LocationKind::kRdma, e.rkey, e.address, e.dest.size()}, e.version};
    cost[i] = proto::EncodedSize(wire[i]) + e.dest.size();  // as for puts
  }
  // Placed: each value's bytes are checked in place against the reply's
  // sums, as on the shm rail.
  auto op = std::make_shared<GetOp>(std::move(done), std::move(dests), true);
  if (bad) return impl_->Reject(std::move(op), bad);
  auto subs = impl_->PlanRequests<proto::BatchReadRequest>(proto::Opcode::kBatchRead, wire, cost,
                                                           {}, nullptr, std::move(owner));
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncList(std::string prefix, std::string cursor, uint32_t limit,
                           Duration timeout, Callback<ListResult> done) {
  auto op = std::make_shared<ListOp>(std::move(done));
  if (prefix.size() > proto::kMaxKeySize || cursor.size() > proto::kMaxKeySize || limit == 0)
    return impl_->Reject(std::move(op), errc::bad_argument);
  Buffer control;
  proto::Encode(proto::ListRequest{prefix, cursor, limit}, control);
  std::vector<Impl::Planned> subs;
  subs.push_back({impl_->MakeFrame(proto::Opcode::kList, std::move(control), {}, nullptr), 0, 0,
                  nullptr, {}});
  // The reply's bytes count against max_outstanding_bytes: keys of up to 1 KiB each.
  subs.back().frame.budget = proto::kHeaderSize + subs.back().frame.control.size() +
                             uint64_t{limit} * (2 + 16 + 64);
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncCapacity(Duration timeout, Callback<CapacityResult> done) {
  auto op = std::make_shared<CapacityOp>(std::move(done));
  std::vector<Impl::Planned> subs;
  subs.push_back({impl_->MakeFrame(proto::Opcode::kCapacity, {}, {}, nullptr), 0, 0, nullptr, {}});
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

void Connection::AsyncRename(std::string from, std::string to, Duration timeout,
                             Callback<StatusCode> done) {
  auto op = std::make_shared<StatusOp>(
      [done = std::move(done)](Result<std::vector<StatusCode>> r) mutable {
        if (!r) return done(r.error());
        if (r->size() != 1) return done(error_code(errc::bad_reply));
        done(r->front());
      },
      1);
  if (!proto::CheckKey(from) || !proto::CheckKey(to))
    return impl_->Reject(std::move(op), errc::bad_argument);
  proto::RenameRequest req;
  req.batch = {1, 0, 1};
  req.entries.push_back({from, to});
  Buffer control;
  proto::Encode(req, control);
  std::vector<Impl::Planned> subs;
  subs.push_back({impl_->MakeFrame(proto::Opcode::kRename, std::move(control), {}, nullptr), 0, 1,
                  nullptr, {}});
  impl_->Submit(std::move(op), std::move(subs), timeout);
}

// ---------------------------------------------------------------------------
// Open streams.

// What the writer and the I/O thread share.
struct StreamWriter::Shared {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t queued = 0;   // guarded by mu: bytes of chunks queued, not yet written
  bool waiting = false;  // guarded by mu: Write waits for room
  std::optional<Result<std::vector<StatusCode>>> reply;  // guarded by mu
  std::shared_ptr<Op> op;  // the BatchWrite's; constant once begun

  void Release(uint64_t n) {
    std::lock_guard lock(mu);
    queued -= std::min(queued, n);
    cv.notify_all();
  }
};

namespace {
// One chunk's bytes: released (and its writer woken) when the frame is
// gone, whether written to the socket, dropped unsent or cut off by a close.
struct ChunkBytes {
  Buffer bytes;
  std::shared_ptr<StreamWriter::Shared> shared;
  ~ChunkBytes() {
    if (shared) shared->Release(bytes.size());
  }
};
}  // namespace

Result<std::unique_ptr<StreamWriter>> Connection::OpenStream(std::string key, size_t window,
                                                             Duration timeout) {
  if (!proto::CheckKey(key) || window == 0) return errc::bad_argument;
  std::unique_ptr<StreamWriter> w(new StreamWriter());
  w->impl_ = impl_;
  w->shared_ = std::make_shared<StreamWriter::Shared>();
  w->key_ = std::move(key);
  w->window_ = window;
  w->chunk_size_ = static_cast<size_t>(std::min<uint64_t>(window, proto::kStreamChunkSize));
  w->timeout_ = timeout.count() > 0 ? timeout : impl_->options_.request_timeout;
  w->hash_ = std::make_unique<Xxh3Stream>();
  return w;
}

StreamWriter::~StreamWriter() { Abort(); }

uint64_t StreamWriter::queued_bytes() const {
  std::lock_guard lock(shared_->mu);
  return shared_->queued;
}

bool StreamWriter::waiting() const {
  std::lock_guard lock(shared_->mu);
  return shared_->waiting;
}

Status StreamWriter::Fail(Status s) {
  error_ = s.error();
  Abort();
  return s;
}

Status StreamWriter::Write(const void* data, size_t size) {
  if (error_) return *error_;
  if (ended_ || (size > 0 && data == nullptr)) return errc::bad_argument;
  const auto* p = static_cast<const std::byte*>(data);
  while (size > 0) {
    // A full chunk goes once a byte beyond it comes: the last is never empty.
    if (current_.size() == chunk_size_) MEMKV_TRY(Flush(false, 0));
    if (current_.capacity() < chunk_size_) current_.reserve(chunk_size_);
    const size_t take = std::min(size, chunk_size_ - current_.size());
    current_.insert(current_.end(), p, p + take);
    hash_->Update(p, take);
    written_ += take;
    p += take;
    size -= take;
  }
  return {};
}

Status StreamWriter::Flush(bool last, uint64_t checksum) {
  Shared& sh = *shared_;
  if (!begun_) {
    // The BatchWrite: one entry of unknown length, its chunks to follow.
    sh.op = std::make_shared<StatusOp>(
        [shared = shared_](Result<std::vector<StatusCode>> r) {
          std::lock_guard lock(shared->mu);
          shared->reply = std::move(r);
          shared->cv.notify_all();
        },
        1);
    proto::BatchWriteRequest req;
    req.batch = {1, 0, 1};
    proto::WriteEntry e;
    e.key = key_;
    e.src.kind = proto::LocationKind::kOpenStream;
    req.entries.push_back(e);
    Buffer control;
    proto::Encode(req, control);
    OutFrame f = impl_->MakeFrame(proto::Opcode::kBatchWrite, std::move(control), {}, nullptr);
    auto h = proto::DecodeHeader(f.header);
    h->flags |= proto::kFlagMore;
    f.header = proto::EncodeHeader(*h, f.control, nullptr);
    f.budget = proto::kHeaderSize + f.control.size();
    request_id_ = h->request_id;
    std::vector<Connection::Impl::Planned> subs;
    subs.push_back({std::move(f), 0, 1, nullptr, {}});
    impl_->Submit(sh.op, std::move(subs), kNoDeadline);
    begun_ = true;
  }
  const bool abort = last && !ended_ && error_.has_value();
  {
    std::unique_lock lock(sh.mu);
    // Room in the window, unless this is the last chunk (its bytes are in
    // memory already) or an abort (which must not wait).
    const auto deadline = Clock::now() + timeout_;
    while (!last && !sh.reply && sh.queued > 0 && sh.queued + current_.size() > window_) {
      sh.waiting = true;
      if (sh.cv.wait_until(lock, deadline) == std::cv_status::timeout && !sh.reply &&
          sh.queued > 0 && sh.queued + current_.size() > window_) {
        sh.waiting = false;
        lock.unlock();
        return Fail(errc::timeout);
      }
    }
    sh.waiting = false;
    if (sh.reply && !abort) {
      // Answered before the last chunk: the stream failed on the server.
      const auto r = *sh.reply;
      lock.unlock();
      if (!r) return Fail(r.error());
      const StatusCode st = r->size() == 1 ? r->front() : StatusCode::kInternal;
      return Fail(st == StatusCode::kOk ? error_code(errc::bad_reply) : make_status_error(st));
    }
    sh.queued += current_.size();
  }
  proto::ChunkHeader c;
  c.entry = 0;
  c.seq = seq_++;
  c.offset = sent_;
  c.last = last;
  if (last) c.checksum = checksum;
  Buffer control;
  proto::Encode(c, control);
  auto bytes = std::make_shared<ChunkBytes>();
  bytes->bytes = std::move(current_);
  bytes->shared = shared_;
  current_ = Buffer();
  proto::FrameHeader ch;
  ch.opcode = proto::Opcode::kWriteChunk;
  ch.request_id = request_id_;
  ch.flags = last ? 0 : proto::kFlagMore;
  ch.control_len = static_cast<uint32_t>(control.size());
  ch.data_len = static_cast<uint32_t>(bytes->bytes.size());
  OutFrame f;
  f.header = proto::EncodeHeader(ch, control, nullptr);
  f.control = std::move(control);
  f.data = {Bytes(bytes->bytes.data(), bytes->bytes.size())};
  f.request = false;
  sent_ += bytes->bytes.size();
  f.keep = std::move(bytes);
  impl_->SubmitChunk(sh.op, std::move(f));
  if (last) ended_ = true;
  return {};
}

Result<StatusCode> StreamWriter::Finish() {
  if (error_) return *error_;
  if (ended_) return errc::bad_argument;
  if (written_ == 0) {
    ended_ = true;  // nothing was sent: nothing to abort
    return errc::bad_argument;
  }
  MEMKV_TRY(Flush(true, hash_->Digest()));
  impl_->ArmDeadline(shared_->op, timeout_);
  std::unique_lock lock(shared_->mu);
  shared_->cv.wait(lock, [&] { return shared_->reply.has_value(); });
  const auto r = *shared_->reply;
  if (!r) {
    error_ = r.error();
    return r.error();
  }
  if (r->size() != 1) return errc::bad_reply;
  return r->front();
}

void StreamWriter::Abort() {
  if (!begun_ || ended_) {
    ended_ = true;
    return;
  }
  if (!error_) error_ = errc::bad_argument;  // later calls: "already aborted"
  // A last chunk (never empty: current_ holds the bytes after the last
  // full chunk) with a checksum that cannot match: the server drops the
  // value. Not sent once the request has its answer.
  (void)Flush(true, ~hash_->Digest());
  ended_ = true;
}

// Blocking forms.
Status Connection::Ping(Duration timeout) {
  return Block<void>([&](Callback<void> cb) { AsyncPing(timeout, std::move(cb)); });
}
Result<std::vector<KeyInfo>> Connection::Exists(std::vector<std::string> keys, Duration timeout) {
  return Block<std::vector<KeyInfo>>(
      [&](auto cb) { AsyncExists(std::move(keys), timeout, std::move(cb)); });
}
Result<std::vector<StatusCode>> Connection::Delete(std::vector<std::string> keys, Duration timeout) {
  return Block<std::vector<StatusCode>>(
      [&](auto cb) { AsyncDelete(std::move(keys), timeout, std::move(cb)); });
}
Result<std::vector<StatusCode>> Connection::Put(PutBatch batch, Duration timeout) {
  return Block<std::vector<StatusCode>>(
      [&](auto cb) { AsyncPut(std::move(batch), timeout, std::move(cb)); });
}
Result<std::vector<GetResult>> Connection::Get(std::vector<GetEntry> entries, Duration timeout) {
  return Block<std::vector<GetResult>>(
      [&](auto cb) { AsyncGet(std::move(entries), timeout, std::move(cb)); });
}
Status Connection::RegisterRegion(std::shared_ptr<SharedRegion> region, Duration timeout) {
  return Block<void>(
      [&](Callback<void> cb) { AsyncRegisterRegion(std::move(region), timeout, std::move(cb)); });
}
Status Connection::ReleaseRegion(std::shared_ptr<SharedRegion> region, Duration timeout) {
  return Block<void>(
      [&](Callback<void> cb) { AsyncReleaseRegion(std::move(region), timeout, std::move(cb)); });
}
Result<std::vector<StatusCode>> Connection::PutShm(ShmPutBatch batch, Duration timeout) {
  return Block<std::vector<StatusCode>>(
      [&](auto cb) { AsyncPutShm(std::move(batch), timeout, std::move(cb)); });
}
Result<std::vector<GetResult>> Connection::GetShm(ShmGetBatch batch, Duration timeout) {
  return Block<std::vector<GetResult>>(
      [&](auto cb) { AsyncGetShm(std::move(batch), timeout, std::move(cb)); });
}
Result<ListResult> Connection::List(std::string prefix, std::string cursor, uint32_t limit,
                                    Duration timeout) {
  return Block<ListResult>([&](auto cb) {
    AsyncList(std::move(prefix), std::move(cursor), limit, timeout, std::move(cb));
  });
}
Result<CapacityResult> Connection::Capacity(Duration timeout) {
  return Block<CapacityResult>([&](auto cb) { AsyncCapacity(timeout, std::move(cb)); });
}
Result<StatusCode> Connection::Rename(std::string from, std::string to, Duration timeout) {
  return Block<StatusCode>(
      [&](auto cb) { AsyncRename(std::move(from), std::move(to), timeout, std::move(cb)); });
}

}  // namespace memkv::client
