#include "server/server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <ctime>
#include <deque>
#include <future>
#include <filesystem>
#include <limits>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/log.h"
#include "common/low_water.h"
#include "common/mutex.h"
#include "common/send_all.h"
#include "common/stream_copy.h"
#include "proto/chunk.h"
#include "proto/messages.h"
#include "rdma/buffer_pool.h"
#include "rdma/fabric_api.h"
#include "server/config.h"
#include "server/loops.h"
#include "server/metrics.h"
#include "store/error.h"
#include "store/store.h"

namespace memkv::server {
namespace asio = boost::asio;
using io::Awaitable;
using asio::use_awaitable;
using proto::StatusCode;
using Socket = asio::generic::stream_protocol::socket;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// The wire status for a store error.
StatusCode ToStatus(const error_code& ec) {
  if (ec.category() == store::category()) {
    switch (static_cast<store::errc>(ec.value())) {
      case store::errc::not_found: return StatusCode::kNotFound;
      case store::errc::no_space: return StatusCode::kNoSpace;
      case store::errc::too_large: return StatusCode::kTooLarge;
      case store::errc::empty_value:
      case store::errc::bad_key: return StatusCode::kInvalidArgument;
      case store::errc::range_out_of_bounds: return StatusCode::kRangeOutOfBounds;
      case store::errc::checksum_mismatch: return StatusCode::kChecksumMismatch;
      case store::errc::unavailable: return StatusCode::kUnavailable;
      case store::errc::closed: return StatusCode::kBusy;
      default: break;
    }
  }
  return StatusCode::kInternal;
}

// Bytes received or about to be sent, not zero-filled first (a frame is up
// to 16 MiB, and every byte is overwritten).
struct RawBuffer {
  explicit RawBuffer(size_t n) : data(new std::byte[n]), size(n) {}
  std::unique_ptr<std::byte[]> data;
  size_t size;
};

// One frame on its way out: header, control, and data that `hold` keeps
// alive: slices of a read's buffer or of stored values, gathered by the
// socket write without another copy.
struct OutFrame {
  proto::HeaderBytes header;  // sealed (sequence number, tag) as it is queued
  proto::Buffer control;
  std::shared_ptr<const void> hold;
  std::vector<proto::Bytes> data;
  bool sealed = false;  // already final: an answer in an old version's framing
  size_t data_bytes() const {
    size_t n = 0;
    for (proto::Bytes b : data) n += b.size();
    return n;
  }
  size_t bytes() const { return header.size() + control.size() + data_bytes(); }
};

// What a read's reply frames keep alive: the buffer of values copied out of
// the store, and the pins of values sent straight from it.
struct ReadHold {
  std::shared_ptr<RawBuffer> copied;
  std::vector<store::Store::Pinned> pins;
  std::vector<std::vector<uint64_t>> sums;  // piece sums taken here (large rdma reads)
};

// Frames a peer may send before it has attached: Hello and Attach are
// small, and nothing larger is read from a peer that has proven nothing.
constexpr size_t kMaxPayloadBeforeAttach = 64 << 10;

// Writes with at least this much inline data are received straight into the
// store (memory mode); smaller ones are read whole, in one system call.
constexpr size_t kDirectWriteMin = 64 << 10;

}  // namespace

// ---- the server's shared state ----

class Connection;

class Server::Impl {
 public:
  Impl(Server& s) : server(s), host_name(HostName()) {}

  Server& server;
  const std::string host_name;
  store::Store& store() { return server.store_; }
  std::unique_ptr<asio::ip::tcp::acceptor> tcp;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_sock;
  std::atomic<size_t> next_loop{0};
  std::atomic<uint64_t> open{0}, total{0}, requests{0}, protocol_errors{0};
  std::atomic<bool> stopping{false};
  Metrics metrics;
  // The rdma rail: open from Start to Shutdown, its completions on loop 0.
  std::unique_ptr<rdma::Fabric> fabric;
  // Registered memory the values are staged in for their transfers, reused
  // request after request (destroyed before the fabric).
  std::shared_ptr<rdma::BufferPool> stage_pool;
  std::string rdma_endpoint;  // "<provider>|<fabric address>", sent at Attach
  std::atomic<uint64_t> rdma_peers{0};
  std::atomic<bool> rdma_stopped{false};

  Mutex mu;
  std::vector<std::weak_ptr<Connection>> connections GUARDED_BY(mu);
  // Connections not yet attached, oldest first: bounded by
  // limits.max_unattached_connections, the oldest closed to admit one more.
  std::deque<std::weak_ptr<Connection>> unattached GUARDED_BY(mu);

  Awaitable<void> AcceptTcp();
  Awaitable<void> AcceptUnix();
  // After a failed accept: true to go on (after a pause when the process or
  // the system is out of descriptors, so the loop does not spin on a
  // connection it cannot take), false to stop.
  Awaitable<bool> AcceptFailed(const boost::system::error_code& ec, const char* where);
  void Adopt(int fd, bool is_unix, std::string peer);
};

// ---- one connection, confined to its loop ----

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& impl, Socket socket, bool is_unix, std::string peer)
      : impl_(impl),
        opt_(impl.server.options()),
        store_(impl.store()),
        socket_(std::move(socket)),
        is_unix_(is_unix),
        peer_(std::move(peer)),
        flow_(socket_.get_executor()),
        rdma_room_(socket_.get_executor()),
        attach_timer_(socket_.get_executor()) {
    flow_.expires_at(asio::steady_timer::time_point::max());
    rdma_room_.expires_at(asio::steady_timer::time_point::max());
  }

  ~Connection() {
    for (int fd : pending_fds_) ::close(fd);
  }

  // Reads frames until the peer goes, a frame ends the connection or it is
  // closed. `self` keeps the connection alive for as long as this runs. An
  // idle session waits in here for its next header, with no coroutine below
  // this one: its memory is this frame, the socket's wait and the
  // connection (limits on idle sessions).
  Awaitable<void> Run(std::shared_ptr<Connection> self) {
    impl_.open.fetch_add(1);
    // Nobody holds a connection without attaching: closed at the deadline.
    attach_timer_.expires_after(opt_.limits.attach_timeout);
    attach_timer_.async_wait([weak = std::weak_ptr<Connection>(self)](boost::system::error_code ec) {
      auto c = weak.lock();
      if (ec || !c || c->session_id_ || c->closed_) return;
      spdlog::warn("{}: closing the connection: not attached within limits.attach_timeout", c->peer_);
      c->CloseNow();
    });
    for (;;) {
      // Flow control: stop reading while too much is in flight or held.
      while (!closed_ && (inflight_ >= opt_.limits.max_inflight_per_connection ||
                          buffered_ >= opt_.limits.max_buffered_bytes_per_connection))
        co_await WaitFlow();
      if (closed_) break;
      proto::HeaderBytes raw;
      size_t got = 0;
      while (got < raw.size()) {
        iovec iov{raw.data() + got, raw.size() - got};
        const Result<size_t> n = TryRead(&iov, 1);
        if (n) {
          got += *n;
          continue;
        }
        if (n.error() != asio::error::would_block) break;
        auto [ec] = co_await socket_.async_wait(Socket::wait_read, kTuple);
        if (ec) break;
      }
      if (got < raw.size()) break;
      if (!co_await OnFrame(raw)) break;
    }
    co_await Finish();
  }

  // After the last frame: the session's requests drain and what it holds goes.
  Awaitable<void> Finish() {
    attach_timer_.cancel();
    unattached_ = false;
    closed_ = true;
    AbortStreams();  // values cut off mid-stream never become visible
    if (rdma_peer_) {
      // The peer goes first, before the requests drain: its transfers still
      // posted are taken back from the provider and fail, and those not yet
      // posted fail at once. Waiting for them instead would wait forever for
      // a client whose fabric stopped making progress (a process stopped in
      // a debugger: libfabric's tcp provider lands bytes only while the
      // receiver polls), and the server's shutdown with it.
      // The id stays set for the requests still running: the fabric fails
      // their transfers to it (ids are never reused).
      if (auto st = co_await impl_.fabric->RemovePeer(*rdma_peer_); !st)
        spdlog::warn("{}: removing its rdma peer: {}", peer_, st.error().message());
      impl_.rdma_peers.fetch_sub(1);
    }
    // Wait for requests in flight: they hold regions and buffers.
    while (inflight_ > 0) co_await WaitFlow();
    rdma_peer_.reset();
    if (session_id_) impl_.server.sessions().Remove(*session_id_);
    regions_.clear();
    boost::system::error_code ignored;
    socket_.close(ignored);
    impl_.open.fetch_sub(1);
  }

  // From any thread: closes the socket on the connection's loop.
  void Close() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->CloseNow(); });
  }

  // Whether it still counts against limits.max_unattached_connections.
  bool unattached() const { return unattached_; }

 private:
  // ---- reading ----

  // One recvmsg on the native socket, without waiting (would_block when
  // nothing is there), so descriptors sent with SCM_RIGHTS on the Unix
  // socket are collected.
  Result<size_t> TryRead(iovec* iov, size_t count) {
    for (;;) {
      if (closed_) return error_code(asio::error::operation_aborted);
      alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      if (is_unix_) {
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
      }
      const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n > 0) {
        if (is_unix_) TakeDescriptors(msg);
        return static_cast<size_t>(n);
      }
      if (n == 0) return error_code(asio::error::eof);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return error_code(asio::error::would_block);
      return error_code(errno, boost::system::system_category());
    }
  }

  // A client that keeps its socket full would never make the reader wait:
  // after kReadSlice bytes read without waiting, ReadSome steps back through
  // the loop, so that the loop's other connections (a newcomer's Hello among
  // them) are read too. Without it, 6 clients streaming 60 MB batches into a
  // loaded 2-thread server left two newcomers unanswered past their 5 s
  // connect_timeout. One read asks for at most a slice, or a Unix socket
  // would hand over a whole 16 MiB frame in one call.
  static constexpr size_t kReadSlice = 1 << 20;
  Result<size_t> TryReadSlice(iovec* iov, size_t count) {
    size_t total = 0;
    for (size_t i = 0; i < count; ++i) {
      if (iov[i].iov_len < kReadSlice - total) {
        total += iov[i].iov_len;
        continue;
      }
      const size_t whole = iov[i].iov_len;
      iov[i].iov_len = kReadSlice - total;
      Result<size_t> n = TryRead(iov, i + 1);
      iov[i].iov_len = whole;
      return n;
    }
    return TryRead(iov, count);
  }

  // TryReadSlice, waiting through the loop when nothing is there.
  Awaitable<Result<size_t>> ReadSome(iovec* iov, size_t count) {
    for (;;) {
      Result<size_t> n = TryReadSlice(iov, count);
      if (n) {
        read_unyielded_ += *n;
        if (read_unyielded_ >= kReadSlice) {
          read_unyielded_ = 0;
          const auto ex = socket_.get_executor();
          co_await asio::post(ex, use_awaitable);
        }
        co_return n;
      }
      if (n.error() != asio::error::would_block) co_return n;
      read_unyielded_ = 0;
      auto [ec] = co_await socket_.async_wait(Socket::wait_read, kTuple);
      if (ec) co_return ec;
    }
  }

  // On the loop: stops reading and writing, and wakes every wait of the
  // connection and its requests, so that they finish.
  void CloseNow() {
    boost::system::error_code ignored;
    closed_ = true;
    unattached_ = false;
    socket_.cancel(ignored);
    socket_.shutdown(asio::socket_base::shutdown_both, ignored);
    attach_timer_.cancel();
    AbortStreams();
    Wake();
  }

  void TakeDescriptors(msghdr& msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        // Bounded: a client cannot park descriptors here without regions.
        if (pending_fds_.size() >= 4) {
          ::close(fd);
        } else {
          pending_fds_.push_back(fd);
        }
      }
    }
  }

  Awaitable<Status> ReadExactly(std::byte* buf, size_t len) {
    size_t got = 0;
    while (got < len) {
      // Straight to the iovec form: an idle connection waits here, and a
      // wrapper coroutine would hold another frame per session.
      iovec iov{buf + got, len - got};
      auto n = co_await ReadSome(&iov, 1);
      if (!n) co_return n.error();
      got += *n;
    }
    co_return Status{};
  }

  // One frame whose header was read: false when the connection ends.
  Awaitable<bool> OnFrame(const proto::HeaderBytes& raw) {
    auto header = proto::DecodeHeader(raw);
    if (!header) {
      co_await FailFrame(raw, header.error());
      co_return false;
    }
    if (header->version < proto::kMinProtocolVersion) {
      co_await RefuseOldVersion(*header);
      co_return false;
    }
    // A peer that has not attached has proven nothing: only a small frame
    // is read from it (no 16 MiB buffer for a stranger).
    if (!session_id_ && header->payload_len() > kMaxPayloadBeforeAttach) {
      co_await Fail(*header, StatusCode::kProtocolError,
                    "a frame of " + std::to_string(header->payload_len()) +
                        " bytes before Attach (at most " +
                        std::to_string(kMaxPayloadBeforeAttach) + ")");
      co_return false;
    }
    // A write's values may be received straight into the store (below):
    // its control part comes first, alone.
    const bool direct = session_id_ && header->opcode == proto::Opcode::kBatchWrite &&
                        header->data_len >= kDirectWriteMin &&
                        store_.mode() == store::Mode::kMemory;
    // The payload buffer lives only while its request is handled.
    auto payload = std::make_shared<RawBuffer>(direct ? header->control_len : header->payload_len());
    if (!co_await ReadExactly(payload->data.get(), payload->size)) co_return false;
    proto::Bytes control(payload->data.get(), header->control_len);
    proto::Bytes data(payload->data.get() + header->control_len, direct ? 0 : header->data_len);
    // Tagged with the session key from Hello on; a frame recorded on
    // another connection, or replayed out of its place, is refused.
    if (auto st = proto::VerifyTag(raw, *header, control, FrameKey()); !st) {
      co_await Fail(*header, StatusCode::kUnauthorized, st.error().message());
      co_return false;
    }
    if (auto st = in_seq_.Accept(*header); !st) {
      co_await Fail(*header, StatusCode::kUnauthorized, st.error().message());
      co_return false;
    }
    if (header->is_response()) {
      co_await FailFrame(raw, proto::errc::bad_flags);
      co_return false;
    }
    impl_.requests.fetch_add(1, std::memory_order_relaxed);
    ++requests_;
    if (!hello_done_) {
      if (header->opcode != proto::Opcode::kHello) {
        co_await Fail(*header, StatusCode::kNotAttached, "send Hello, then Attach");
        co_return false;
      }
      if (!co_await Hello(*header, control)) co_return false;
      co_return true;
    }
    if (header->opcode == proto::Opcode::kHello) {
      co_await Fail(*header, StatusCode::kProtocolError, "a second Hello");
      co_return false;
    }
    if (header->opcode == proto::Opcode::kAttach) {
      // Attach is answered before anything else is read.
      if (!co_await Attach(*header, control)) co_return false;
      co_return true;
    }
    if (!session_id_) {
      co_await Reply(ErrorFrame(*header, StatusCode::kNotAttached, "Attach first"));
      co_return true;
    }
    if (header->opcode == proto::Opcode::kRegisterRegion ||
        header->opcode == proto::Opcode::kReleaseRegion) {
      // Loop-confined and quick: handled in order, so the descriptor that
      // came with the frame is the one it names.
      co_await Reply(RegionFrame(*header, control));
      co_return true;
    }
    if (header->opcode == proto::Opcode::kWriteChunk) {
      // Written into its value's allocation before the next frame is read:
      // a stream is bounded by one frame, whatever the value's size.
      co_await TakeChunk(*header, control, data);
      co_return true;
    }
    if (direct) {
      const DirectOutcome done = co_await DirectWrite(*header, control);
      if (done == DirectOutcome::kClosed) co_return false;
      if (done == DirectOutcome::kDone) co_return true;
      // Not for this path: the data is read after the control, as usual.
      auto whole = std::make_shared<RawBuffer>(header->payload_len());
      std::memcpy(whole->data.get(), payload->data.get(), header->control_len);
      if (!co_await ReadExactly(whole->data.get() + header->control_len, header->data_len)) co_return false;
      payload = std::move(whole);
      control = proto::Bytes(payload->data.get(), header->control_len);
      data = proto::Bytes(payload->data.get() + header->control_len, header->data_len);
    }
    std::shared_ptr<proto::BatchWriteRequest> write;
    if (header->opcode == proto::Opcode::kBatchWrite) write = co_await OpenStreams(*header, control, data);
    ++inflight_;
    buffered_ += payload->size;
    asio::co_spawn(socket_.get_executor(), Handle(*header, payload, std::move(write)),
                   [self = shared_from_this(), size = payload->size, op = OpOf(header->opcode),
                    t0 = std::chrono::steady_clock::now()](std::exception_ptr e) {
                     self->impl_.metrics.Request(op, size, std::chrono::steady_clock::now() - t0);
                     LogTaskFailure(self->peer_ + ": request", e);
                     --self->inflight_;
                     self->buffered_ -= size;
                     self->Wake();
                   });
  co_return true;
  }

  // A frame that cannot be taken: answered (when its header could be read)
  // and the connection closed.
  Awaitable<void> FailFrame(const proto::HeaderBytes& raw, error_code why) {
    impl_.protocol_errors.fetch_add(1);
    spdlog::warn("{}: closing the connection: {}", peer_, why.message());
    proto::FrameHeader h;
    std::memcpy(&h.request_id, raw.data() + 8, sizeof h.request_id);
    const uint8_t op = std::to_integer<uint8_t>(raw[6]);
    h.opcode = op >= 1 && op <= proto::kMaxOpcode ? static_cast<proto::Opcode>(op)
                                                  : proto::Opcode::kPing;
    const StatusCode status = why == proto::errc::unsupported_version
                                  ? StatusCode::kUnsupportedVersion
                                  : StatusCode::kProtocolError;
    if (why != proto::errc::bad_magic) co_await Reply(ErrorFrame(h, status, why.message()));
  }

  // Answers a request with an error and ends the connection.
  Awaitable<void> Fail(const proto::FrameHeader& h, StatusCode status, std::string why) {
    if (status == StatusCode::kProtocolError) impl_.protocol_errors.fetch_add(1);
    spdlog::warn("{}: closing the connection: {}", peer_, why);
    co_await Reply(ErrorFrame(h, status, why));
  }

  // A client of an older protocol is told, in its own version's framing
  // (which it can read), which versions the two sides speak.
  Awaitable<void> RefuseOldVersion(const proto::FrameHeader& req) {
    const std::string why = "the client speaks memkv protocol version " +
                            std::to_string(req.version) + "; this server speaks version " +
                            std::to_string(proto::kProtocolVersion) + ": upgrade the client";
    spdlog::warn("{}: closing the connection: {}", peer_, why);
    proto::Buffer control;
    proto::Encode(proto::ReplyHead{StatusCode::kUnsupportedVersion, why}, control);
    proto::FrameHeader h;
    h.version = req.version;
    h.opcode = req.opcode;
    h.request_id = req.request_id;
    h.flags = proto::kFlagResponse;
    h.control_len = static_cast<uint32_t>(control.size());
    OutFrame f;
    f.header = proto::EncodeHeader(h, control, opt_.auth_key ? &*opt_.auth_key : nullptr);
    f.control = std::move(control);
    f.sealed = true;
    co_await Reply(std::move(f));
  }

  // The key frames are tagged with: none before Hello, the session key after.
  const proto::AuthKey* FrameKey() const { return session_key_ ? &*session_key_ : nullptr; }

  // ---- writing ----

  OutFrame Frame(const proto::FrameHeader& req, proto::Buffer control,
                 std::shared_ptr<const void> hold = nullptr, std::vector<proto::Bytes> data = {},
                 bool more = false) {
    OutFrame f;
    f.control = std::move(control);
    f.hold = std::move(hold);
    f.data = std::move(data);
    proto::FrameHeader h;
    h.opcode = req.opcode;
    h.request_id = req.request_id;
    h.flags = proto::kFlagResponse | (more ? proto::kFlagMore : 0);
    h.control_len = static_cast<uint32_t>(f.control.size());
    h.data_len = static_cast<uint32_t>(f.data_bytes());
    f.header = proto::EncodeHeader(h, f.control, nullptr);  // sealed by Reply
    return f;
  }

  OutFrame ErrorFrame(const proto::FrameHeader& req, StatusCode status, std::string_view message) {
    proto::Buffer control;
    proto::Encode(proto::ReplyHead{status, message}, control);
    return Frame(req, std::move(control));
  }

  // Queues a reply; one writer at a time drains the queue, so frames never
  // interleave on the socket (no lock: the connection is loop-confined).
  // The request that finds no writer writes one turn itself
  // (the frames queued then, its own among them: a reply goes out without a
  // coroutine of its own in the common case). Frames queued meanwhile go to a
  // writer coroutine of their own, so that no request is held writing every
  // other request's frames for as long as they keep coming: with 64 threads
  // on one connection, that held a read answered in slices back for minutes.
  Awaitable<void> Reply(OutFrame frame) {
    // Numbered and tagged here, in the order the writer sends them.
    if (!frame.sealed) proto::SealHeader(frame.header, out_seq_++, frame.control, FrameKey());
    buffered_ += frame.bytes();
    out_.push_back(std::move(frame));
    if (writing_) co_return;
    writing_ = true;
    // (co_await kept out of || and &&: GCC 12 miscompiles it there.)
    const bool written = co_await WriteTurn();
    if (!written || out_.empty()) {
      writing_ = false;
      co_return;
    }
    ++inflight_;  // Finish waits for the writer as for a request
    asio::co_spawn(socket_.get_executor(), WriteQueue(),
                   [self = shared_from_this()](std::exception_ptr e) {
                     LogTaskFailure(self->peer_ + ": writer", e);
                     --self->inflight_;
                     self->Wake();
                   });
  }

  // The writer coroutine: turns until the queue is empty.
  Awaitable<void> WriteQueue() {
    while (!out_.empty()) {
      const bool written = co_await WriteTurn();
      if (!written) break;
    }
    writing_ = false;
  }

  // One turn of the writer: it takes the queue whole, and frames queued
  // meanwhile wait for the next turn (an idle session keeps no queue
  // storage). False when the socket failed: the queue is dropped.
  Awaitable<bool> WriteTurn() {
    std::vector<OutFrame> turn = std::exchange(out_, {});
    for (OutFrame& f : turn) {
      // One gathered write: header, control and every slice of data.
      bufs_.clear();
      bufs_.push_back(Iovec(f.header));
      bufs_.push_back(Iovec(f.control));
      for (proto::Bytes b : f.data) bufs_.push_back(Iovec(b));
      const error_code ec = co_await SendAll(socket_, std::span<iovec>(bufs_));
      buffered_ -= f.bytes();
      f = OutFrame{};  // its holds go now, not with the turn
      Wake();
      if (ec) {
        closed_ = true;
        out_.clear();
        buffered_ = 0;
        co_return false;
      }
    }
    co_return true;
  }

  Awaitable<void> WaitFlow() { co_await flow_.async_wait(kTuple); }
  void Wake() { flow_.cancel(); }

  // ---- requests ----

  // The first frame: versions and nonces. From its answer on, every frame
  // both ways is tagged with the session key both nonces make.
  Awaitable<bool> Hello(const proto::FrameHeader& h, proto::Bytes control) {
    proto::Hello req;
    if (auto st = proto::Decode(control, req); !st) {
      co_await Fail(h, StatusCode::kProtocolError, st.error().message());
      co_return false;
    }
    proto::HelloReply rep;
    rep.version = proto::kProtocolVersion;
    rep.nonce = proto::RandomNonce();
    proto::Buffer out;
    proto::Encode(rep, out);
    co_await Reply(Frame(h, std::move(out)));
    if (opt_.auth_key) session_key_ = opt_.auth_key->Session(req.nonce, rep.nonce);
    hello_done_ = true;
    co_return true;
  }

  Awaitable<bool> Attach(const proto::FrameHeader& h, proto::Bytes control) {
    proto::AttachRequest req;
    if (auto st = proto::Decode(control, req); !st) {
      co_await Reply(ErrorFrame(h, StatusCode::kProtocolError, st.error().message()));
      co_return false;
    }
    if (session_id_) {
      co_await Reply(ErrorFrame(h, StatusCode::kInvalidArgument, "already attached"));
      co_return true;
    }
    if (session_key_ && !proto::TagsEqual(req.proof, proto::AttachProof(*session_key_, req.client_id))) {
      co_await Reply(ErrorFrame(h, StatusCode::kUnauthorized, "wrong attach proof"));
      co_return false;
    }
    SessionInfo info;
    info.peer = peer_;
    info.host_id = std::string(req.host_id);
    info.rail = is_unix_ ? "unix" : "tcp";
    info.attached_unix = static_cast<uint64_t>(std::time(nullptr));
    session_id_ = impl_.server.sessions().Add(std::move(info));
    if (!session_id_) {
      co_await Reply(ErrorFrame(h, StatusCode::kTooManySessions,
                                "limits.max_sessions sessions are attached"));
      co_return false;
    }
    proto::AttachReply rep;
    rep.session_id = *session_id_;
    rep.rails = proto::kRailTcp | (is_unix_ ? proto::kRailShm : 0);
    rep.host_id = impl_.host_name;
    std::string socket_path;
    if (req.host_id == impl_.host_name && !opt_.unix_socket.empty()) {
      std::error_code ec;
      socket_path = std::filesystem::absolute(opt_.unix_socket, ec).string();
      rep.unix_socket = socket_path;
    }
    rep.max_value_size = opt_.limits.max_value_size;
    rep.max_batch_entries = opt_.limits.max_batch_entries;
    rep.max_inflight = opt_.limits.max_inflight_per_connection;
    rep.features = proto::kFeatureCapacity | proto::kFeaturePageSums | proto::kFeatureList |
                   proto::kFeaturePinnedReads | proto::kFeatureOpenStream | proto::kFeatureRename |
                   proto::kFeaturePlacedSteps;
    // What rep.rdma_endpoint (a view) names when this session answers with
    // a peer address of its own: alive until the reply is encoded.
    std::string rdma_endpoint;
    if (impl_.fabric) {
      rep.features |= proto::kFeatureRdma;
      rep.rdma_endpoint = impl_.rdma_endpoint;
      if (!req.rdma_endpoint.empty()) AttachRdma(req.rdma_endpoint, rep, rdma_endpoint);
    }
    proto::Buffer control_out;
    proto::Encode(rep, control_out);
    attach_timer_.cancel();
    unattached_ = false;
    co_await Reply(Frame(h, std::move(control_out)));
    co_return true;
  }

  // The client's fabric endpoint ("<provider>|<address>"): inserted as a
  // peer when its provider is this server's, so reads and writes of this
  // session may name its registered memory. `answer` holds the endpoint
  // that rep.rdma_endpoint then views.
  void AttachRdma(std::string_view endpoint, proto::AttachReply& rep, std::string& answer) {
    const size_t bar = endpoint.find('|');
    const std::string_view provider = endpoint.substr(0, bar);
    if (bar == std::string_view::npos || provider != impl_.fabric->provider_name()) {
      spdlog::warn("{}: not over rdma: the client's fabric is '{}', this server's '{}'", peer_,
                   provider, impl_.fabric->provider_name());
      return;
    }
    // AcceptPeer: ofi inserts the address; verbs connects a queue pair to
    // it and answers with that queue pair's own address.
    auto peer = impl_.fabric->AcceptPeer(endpoint.substr(bar + 1));
    if (!peer) {
      spdlog::warn("{}: not over rdma: its fabric address is refused: {}", peer_,
                   peer.error().message());
      return;
    }
    rdma_peer_ = peer->peer;
    answer = impl_.fabric->provider_name() + "|" + peer->address;
    rep.rdma_endpoint = answer;
    impl_.rdma_peers.fetch_add(1);
    rep.rails |= proto::kRailRdma;
  }

  OutFrame RegionFrame(const proto::FrameHeader& h, proto::Bytes control) {
    if (h.opcode == proto::Opcode::kReleaseRegion) {
      proto::ReleaseRegion m;
      if (auto st = proto::Decode(control, m); !st)
        return ErrorFrame(h, StatusCode::kProtocolError, st.error().message());
      if (!regions_.erase(m.region_id)) return ErrorFrame(h, StatusCode::kBadRegion, "no such region");
      RecordSession();
      return ErrorFrame(h, StatusCode::kOk, "");
    }
    proto::RegisterRegion m;
    if (auto st = proto::Decode(control, m); !st)
      return ErrorFrame(h, StatusCode::kProtocolError, st.error().message());
    if (!is_unix_ || pending_fds_.empty())
      return ErrorFrame(h, StatusCode::kBadRegion,
                        "RegisterRegion needs a memfd sent with it over the Unix socket");
    const int fd = pending_fds_.front();
    pending_fds_.erase(pending_fds_.begin());
    if (regions_.count(m.region_id)) {
      ::close(fd);
      return ErrorFrame(h, StatusCode::kBadRegion, "region id already in use");
    }
    if (regions_.size() >= opt_.limits.max_regions_per_session) {
      ::close(fd);
      return ErrorFrame(h, StatusCode::kTooManyRegions, "limits.max_regions_per_session reached");
    }
    auto region = Region::Map(fd, m.size);
    if (!region) {
      const char* why = region.error().value() == EPERM   ? "memfd not sealed with F_SEAL_SHRINK"
                        : region.error().value() == ERANGE ? "memfd smaller than the region"
                                                           : "not a mappable memfd";
      return ErrorFrame(h, StatusCode::kBadRegion, why);
    }
    regions_.emplace(m.region_id, std::move(*region));
    RecordSession();
    return ErrorFrame(h, StatusCode::kOk, "");
  }

  // What GET /v1/sessions shows of this session: its regions now, and its
  // requests as of the last region change or every 64th request (the
  // registry's lock is not taken per request).
  void RecordSession() {
    if (!session_id_) return;
    impl_.server.sessions().Update(*session_id_, regions_.size(), requests_);
    recorded_requests_ = requests_;
  }

  // The region slice an entry names, pinned for the request.
  std::optional<std::span<std::byte>> Slice(const proto::Location& loc, uint64_t len,
                                            std::vector<std::shared_ptr<Region>>& pins) {
    auto it = regions_.find(loc.region);
    if (it == regions_.end()) return std::nullopt;
    auto s = it->second->Slice(loc.address, len);
    if (s) pins.push_back(it->second);
    return s;
  }

  Awaitable<void> Handle(proto::FrameHeader h, std::shared_ptr<RawBuffer> payload,
                         std::shared_ptr<proto::BatchWriteRequest> write = nullptr) {
    const proto::Bytes control(payload->data.get(), h.control_len);
    const proto::Bytes data(payload->data.get() + h.control_len, h.data_len);
    if (recorded_requests_ == 0 || requests_ - recorded_requests_ >= 64) RecordSession();
    switch (h.opcode) {
      case proto::Opcode::kPing: {
        proto::Ping p;
        if (auto st = proto::Decode(control, p); !st) {
          co_await Reply(ErrorFrame(h, StatusCode::kProtocolError, st.error().message()));
          co_return;
        }
        proto::Buffer out;
        proto::Encode(p, out);
        co_await Reply(Frame(h, std::move(out)));
        co_return;
      }
      case proto::Opcode::kDetach:
        if (session_id_) impl_.server.sessions().Remove(*session_id_);
        session_id_.reset();
        co_await Reply(ErrorFrame(h, StatusCode::kOk, ""));
        co_return;
      case proto::Opcode::kBatchWrite: co_await HandleWrite(h, control, data, write); co_return;
      case proto::Opcode::kBatchRead: co_await HandleRead(h, control); co_return;
      case proto::Opcode::kExists: co_await HandleExists(h, control); co_return;
      case proto::Opcode::kDelete: co_await HandleDelete(h, control); co_return;
      case proto::Opcode::kCapacity: co_await Reply(CapacityFrame(h, control)); co_return;
      case proto::Opcode::kList: co_await Reply(ListFrame(h, control)); co_return;
      case proto::Opcode::kRename: co_await HandleRename(h, control); co_return;
      default:
        co_await Reply(ErrorFrame(h, StatusCode::kInvalidArgument,
                                  std::string(proto::OpcodeName(h.opcode)) + " is not a request"));
    }
  }

  proto::DecodeLimits DecodeLimits() const { return {opt_.limits.max_batch_entries}; }

  // The store's size and use, as `statvfs` wants them.
  OutFrame CapacityFrame(const proto::FrameHeader& h, proto::Bytes control) {
    if (!control.empty())
      return ErrorFrame(h, StatusCode::kProtocolError, "Capacity carries no payload");
    const store::StoreStats st = store_.stats();
    proto::CapacityReply rep;
    for (const store::DriveStats& d : st.drives) {
      if (!d.online) continue;
      rep.total_bytes += d.usable_bytes;
      rep.used_bytes += d.used_bytes;
    }
    if (store_.mode() == store::Mode::kMemory) {
      rep.total_bytes = st.memory_capacity;
      rep.used_bytes = st.memory_used;
    }
    rep.keys = st.keys;
    rep.max_value_size = opt_.limits.max_value_size;
    proto::Buffer out;
    proto::Encode(rep, out);
    return Frame(h, std::move(out));
  }

  // Keys by prefix, in key order, from the store's ordered index: at most
  // kMaxListKeys in a reply, and never more than a frame holds. The cursor
  // is the last key sent when more keys may follow, empty when none remain.
  static constexpr size_t kMaxListKeys = 10000;
  OutFrame ListFrame(const proto::FrameHeader& h, proto::Bytes control) {
    proto::ListRequest req;
    if (auto st = proto::Decode(control, req); !st)
      return ErrorFrame(h, StatusCode::kProtocolError, st.error().message());
    store::Store::Listing found =
        store_.List(req.prefix, req.cursor, std::min<size_t>(req.limit, kMaxListKeys));
    proto::ListReply rep;
    rep.entries.reserve(found.keys.size());
    // Head, count and cursor, then each key (length, bytes) with its size and version.
    size_t bytes = 16 + 4 + 2 + proto::kMaxKeySize;
    for (const store::Store::KeyInfo& k : found.keys) {
      const size_t need = 4 + k.key.size() + 16;
      if (bytes + need > proto::kMaxPayload) {
        found.more = true;
        break;
      }
      bytes += need;
      rep.entries.push_back({k.key, k.size, k.version});
    }
    if (found.more && !rep.entries.empty()) rep.cursor = rep.entries.back().key;
    proto::Buffer out;
    proto::Encode(rep, out);
    return Frame(h, std::move(out));
  }

  // Renames, one status per entry, applied in entry order (a chain a->b,
  // b->c means what it says): the value moves to `to` (replacing it)
  // without its bytes being copied; NotFound when `from` has none.
  Awaitable<void> HandleRename(const proto::FrameHeader& h, proto::Bytes control) {
    proto::RenameRequest req;
    if (auto st = proto::Decode(control, req, DecodeLimits()); !st) {
      co_await Reply(DecodeError(h, st.error()));
      co_return;
    }
    proto::StatusReply rep;
    rep.batch = {req.batch.count, 0, req.batch.count};
    rep.statuses.assign(req.entries.size(), StatusCode::kOk);
    for (size_t i = 0; i < req.entries.size(); ++i) {
      auto st = co_await store_.Rename(req.entries[i].from, req.entries[i].to);
      if (!st) rep.statuses[i] = ToStatus(st.error());
    }
    proto::Buffer out;
    proto::Encode(rep, out);
    co_await Reply(Frame(h, std::move(out)));
  }

  // A batch decode error as a reply: the limit's own status, or a protocol error.
  OutFrame DecodeError(const proto::FrameHeader& h, const error_code& ec) {
    if (ec == proto::errc::too_many_entries)
      return ErrorFrame(h, StatusCode::kTooManyEntries,
                        "more entries than limits.max_batch_entries");
    return ErrorFrame(h, StatusCode::kProtocolError, ec.message());
  }

  Awaitable<void> HandleWrite(const proto::FrameHeader& h, proto::Bytes control, proto::Bytes data,
                              std::shared_ptr<proto::BatchWriteRequest> decoded) {
    if (!decoded) {  // OpenStreams could not decode it
      proto::BatchWriteRequest bad;
      if (auto st = proto::Decode(control, data, bad, DecodeLimits()); !st) {
        co_await Reply(DecodeError(h, st.error()));
        co_return;
      }
      co_await Reply(ErrorFrame(h, StatusCode::kInvalidArgument,
                                "request id in use by a value still streaming"));
      co_return;
    }
    const proto::BatchWriteRequest& req = *decoded;
    const size_t n = req.entries.size();
    proto::StatusReply rep;
    rep.batch = {req.batch.count, 0, req.batch.count};
    rep.statuses.assign(n, StatusCode::kOk);
    std::vector<std::shared_ptr<Region>> pins;
    std::vector<store::Store::PutItem> items;
    std::vector<size_t> item_of;
    // Within a batch the last entry for a key wins: earlier ones are not written.
    std::unordered_map<std::string_view, size_t> last;
    for (size_t i = 0; i < n; ++i) last[req.entries[i].key] = i;
    std::vector<std::vector<uint64_t>> sums_of(n);
    uint64_t inline_at = 0;
    RdmaSources rdma_src = co_await ReadFromClient(req);
    for (size_t i = 0; i < n; ++i) {
      const proto::WriteEntry& e = req.entries[i];
      proto::Bytes src;
      if (e.src.kind == proto::LocationKind::kInline) {
        src = req.data.subspan(inline_at, e.value_len);
        inline_at += e.value_len;
      } else if (e.src.kind == proto::LocationKind::kShm) {
        auto s = Slice(e.src, e.value_len, pins);
        if (!s) {
          rep.statuses[i] = StatusCode::kBadRegion;
          continue;
        }
        src = *s;
      } else if (e.src.kind == proto::LocationKind::kStream ||
                 e.src.kind == proto::LocationKind::kOpenStream) {
        continue;  // below, once its chunks are in
      } else if (e.src.kind == proto::LocationKind::kRdma) {
        if (rdma_src.status[i] != StatusCode::kOk) {
          rep.statuses[i] = rdma_src.status[i];
          continue;
        }
        if (rdma_src.large[i]) continue;  // below, a stretch at a time
        src = proto::Bytes(rdma_src.at[i].data, e.value_len);
      } else {
        rep.statuses[i] = StatusCode::kInvalidArgument;
        continue;
      }
      if (e.value_len > opt_.limits.max_value_size) {
        rep.statuses[i] = StatusCode::kTooLarge;
        continue;
      }
      if (last[e.key] != i) continue;  // superseded within the batch
      std::span<const uint64_t> sums;
      if (!e.piece_sums.empty()) {
        // Checked by the store piece by piece as it copies the value in.
        sums_of[i] = proto::PieceSumsOf(e.piece_sums);
        sums = sums_of[i];
      } else if (Xxh3(src.data(), src.size()) != e.checksum) {
        rep.statuses[i] = StatusCode::kChecksumMismatch;
        continue;
      }
      items.push_back({e.key, src, sums});
      item_of.push_back(i);
    }
    const auto results = co_await store_.PutBatch(items);
    for (size_t k = 0; k < results.size(); ++k)
      if (!results[k]) rep.statuses[item_of[k]] = ToStatus(results[k].error());
    rdma_src.stage.reset();  // stored: a large entry takes its own place in the stage
    uint64_t put_bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!rdma_src.large[i] || rdma_src.status[i] != StatusCode::kOk ||
          last[req.entries[i].key] != i)
        continue;
      rep.statuses[i] = co_await ReadLargeFromClient(req.entries[i]);
      if (rep.statuses[i] == StatusCode::kOk) put_bytes += req.entries[i].value_len;
    }
    co_await FinishStreams(h.request_id, rep.statuses, [&](size_t i) {
      return last[req.entries[i].key] == i;
    });
    // An earlier entry for a key was not written: it shares the fate of the
    // entry that superseded it, so a failed put never reports Ok.
    for (size_t i = 0; i < n; ++i) {
      const size_t winner = last[req.entries[i].key];
      if (winner != i && rep.statuses[i] == StatusCode::kOk) rep.statuses[i] = rep.statuses[winner];
    }
    for (size_t k = 0; k < results.size(); ++k) put_bytes += results[k] ? items[k].value.size() : 0;
    impl_.metrics.Entries(Op::kPut, rep.statuses, put_bytes);
    CountRails(req.entries, rep.statuses);
    proto::Buffer out;
    proto::Encode(rep, out);
    co_await Reply(Frame(h, std::move(out)));
  }

  // The rail an entry's bytes move on: where its location says, inline
  // ones on this connection's.
  Rail RailOf(proto::LocationKind kind) const {
    if (kind == proto::LocationKind::kShm) return Rail::kShm;
    if (kind == proto::LocationKind::kRdma) return Rail::kRdma;
    return is_unix_ ? Rail::kShm : Rail::kTcp;
  }
  void CountRails(const std::vector<proto::WriteEntry>& entries,
                  const std::vector<StatusCode>& statuses) {
    for (size_t i = 0; i < entries.size(); ++i)
      if (statuses[i] == StatusCode::kOk)
        impl_.metrics.RailBytes(RailOf(entries[i].src.kind), false, entries[i].value_len);
  }

  // ---- writes received straight into the store ----

  enum class DirectOutcome { kDone, kFallback, kClosed };

  // A BatchWrite of inline values with piece sums, on a memory-mode store:
  // each value's storage is reserved from the control part, its bytes are
  // received into it (no buffer, no copy) and checked 4 KiB at a time as
  // they land, and it is published only if every piece matched. Anything
  // else (no piece sums, shm or streamed entries, a bad control part) is
  // left to the ordinary path: kFallback, with nothing of the data read.
  Awaitable<DirectOutcome> DirectWrite(const proto::FrameHeader& h, proto::Bytes control) {
    proto::BatchWriteRequest req;
    if (!proto::Decode(control, uint64_t{h.data_len}, req, DecodeLimits())) co_return DirectOutcome::kFallback;
    if (streams_.count(h.request_id)) co_return DirectOutcome::kFallback;
    for (const proto::WriteEntry& e : req.entries)
      if (e.src.kind != proto::LocationKind::kInline || e.piece_sums.empty() ||
          e.value_len > opt_.limits.max_value_size)
        co_return DirectOutcome::kFallback;
    const auto t0 = std::chrono::steady_clock::now();
    ++inflight_;
    const size_t n = req.entries.size();
    proto::StatusReply rep;
    rep.batch = {req.batch.count, 0, req.batch.count};
    rep.statuses.assign(n, StatusCode::kOk);
    std::unordered_map<std::string_view, size_t> last;
    for (size_t i = 0; i < n; ++i) last[req.entries[i].key] = i;
    // Where each value goes: its reserved storage, or nowhere (superseded
    // within the batch, or refused by the store: the bytes are dropped).
    std::vector<std::unique_ptr<store::Store::PendingPut>> puts(n);
    std::vector<std::optional<proto::PieceCheck>> checks(n);
    std::vector<std::span<std::byte>> dest(n);
    for (size_t i = 0; i < n; ++i) {
      const proto::WriteEntry& e = req.entries[i];
      if (last[e.key] != i) continue;
      auto put = co_await store_.BeginPut(e.key, e.value_len);
      if (!put) {
        rep.statuses[i] = ToStatus(put.error());
        continue;
      }
      dest[i] = (*put)->Place();
      if (dest[i].size() != e.value_len) {
        rep.statuses[i] = StatusCode::kInternal;
        continue;
      }
      checks[i].emplace(dest[i].data(), dest[i].size(), e.piece_sums);
      puts[i] = std::move(*put);
    }
    // Received a stretch at a time (up to 256 KiB, 64 pieces), each stretch
    // checked while it is still in cache.
    constexpr size_t kStretch = 256 << 10;
    if (scratch_.size() < kStretch) scratch_.resize(kStretch);
    std::vector<iovec> iov;
    size_t k = 0, off = 0;  // entry and offset in it of the next byte
    auto advance = [&](size_t got) {
      while (got > 0) {
        const size_t take = std::min(got, req.entries[k].value_len - off);
        off += take;
        got -= take;
        if (checks[k]) checks[k]->Landed(off);
        if (off == req.entries[k].value_len) {
          ++k;
          off = 0;
        }
      }
    };
    // The loop is woken once a stretch has come (common/low_water.h); the
    // mark is back at 1 byte when this returns, before the next header.
    uint64_t left = 0;
    for (size_t i = 0; i < n; ++i) left += req.entries[i].value_len;
    ReceiveLowWater lowat(socket_.native_handle(), !is_unix_);
    bool lost = false;
    while (k < n) {
      lowat.Want(std::min<uint64_t>(left, kStretch));
      iov.clear();
      size_t want = 0;
      for (size_t j = k, o = off; j < n && iov.size() < 64 && want < kStretch;) {
        const size_t take = std::min<size_t>(req.entries[j].value_len - o, kStretch - want);
        std::byte* p = puts[j] ? dest[j].data() + o : scratch_.data();
        iov.push_back({p, take});
        want += take;
        o += take;
        if (o == req.entries[j].value_len) {
          ++j;
          o = 0;
        }
      }
      auto got = co_await ReadSome(iov.data(), iov.size());
      if (!got) {
        lost = true;
        break;
      }
      left -= *got;
      advance(*got);
    }
    uint64_t put_bytes = 0;
    if (!lost) {
      for (size_t i = 0; i < n; ++i) {
        if (!puts[i]) continue;
        if (!checks[i]->ok()) {
          rep.statuses[i] = StatusCode::kChecksumMismatch;  // dropped: its space goes back
          puts[i].reset();
          continue;
        }
        const std::vector<uint64_t> kept = proto::PieceSumsOf(req.entries[i].piece_sums);
        auto st = co_await puts[i]->CommitPlaced(kept);
        if (!st) rep.statuses[i] = ToStatus(st.error());
        else put_bytes += req.entries[i].value_len;
      }
      for (size_t i = 0; i < n; ++i) {
        const size_t winner = last[req.entries[i].key];
        if (winner != i) rep.statuses[i] = rep.statuses[winner];
      }
    }
    puts.clear();
    --inflight_;
    Wake();
    if (lost) co_return DirectOutcome::kClosed;  // nothing published
    impl_.metrics.Entries(Op::kPut, rep.statuses, put_bytes);
    CountRails(req.entries, rep.statuses);
    impl_.metrics.Request(Op::kPut, h.payload_len(), std::chrono::steady_clock::now() - t0);
    proto::Buffer out;
    proto::Encode(rep, out);
    co_await Reply(Frame(h, std::move(out)));
    co_return DirectOutcome::kDone;
  }

  Awaitable<void> HandleRead(const proto::FrameHeader& h, proto::Bytes control) {
    proto::BatchReadRequest req;
    if (auto st = proto::Decode(control, {}, req, DecodeLimits()); !st) {
      co_await Reply(DecodeError(h, st.error()));
      co_return;
    }
    static_assert(std::endian::native == std::endian::little, "piece sums are sent as stored");
    const size_t n = req.entries.size();
    std::vector<proto::ReadResult> results(n);
    std::vector<std::shared_ptr<Region>> pins;
    std::vector<store::Store::GetItem> items;
    std::vector<size_t> item_of;
    std::vector<uint64_t> inline_at(n, 0);
    // Each inline entry's bytes: a slice of the stored value itself (memory
    // mode: sent untouched with the piece sums the store keeps), or of
    // `copied` (read out of the store, summed here).
    std::vector<proto::Bytes> inline_src(n);
    std::vector<bool> copied(n, false);
    std::vector<PlacedCopy> placed(n);  // shm entries copied from the store's memory
    auto hold = std::make_shared<ReadHold>();
    std::unordered_map<size_t, store::Store::Pinned> pins_for_stream;
    // Inline bytes are bounded by what a connection may hold.
    const uint64_t inline_budget = opt_.limits.max_buffered_bytes_per_connection;
    uint64_t inline_total = 0;  // bytes sent inline
    uint64_t copy_total = 0;    // of which copied out of the store
    uint64_t got_bytes = 0;
    // rdma: each entry's bytes staged in registered memory (the stage
    // pool's), then WRITTEN into the client's memory before the reply.
    std::vector<size_t> rdma_idx;
    std::vector<proto::Bytes> rdma_from(n);  // from the store's memory, when whole pieces
    uint64_t rdma_total = 0;
    std::vector<std::pair<size_t, store::Store::Pinned>> large_rdma;
    for (size_t i = 0; i < n; ++i) {
      const proto::ReadEntry& e = req.entries[i];
      proto::ReadResult& r = results[i];
      // Pinned: a streamed value's pieces all come from one version, and a
      // value sent from the store stays put until it is on the wire.
      auto pin = store_.Pin(e.key);
      if (!pin) {
        r.status = ToStatus(pin.error());
        continue;
      }
      if (e.version != 0 && e.version != pin->version) {
        // A read pinned to a version the key no longer holds (replaced or
        // deleted since): never bytes of another version.
        r.status = StatusCode::kVersionChanged;
        continue;
      }
      r.value_size = pin->size;
      r.version = pin->version;
      if (e.offset > pin->size) {
        r.status = StatusCode::kRangeOutOfBounds;
        continue;
      }
      const uint64_t len = e.length ? e.length : pin->size - e.offset;
      if (len > pin->size - e.offset) {
        r.status = StatusCode::kRangeOutOfBounds;
        continue;
      }
      r.length = len;
      const bool is_inline = e.dest.kind == proto::LocationKind::kInline;
      if (e.dest.kind == proto::LocationKind::kRdma) {
        if (!rdma_peer_) {
          r.status = StatusCode::kInvalidArgument;  // this session is not over rdma
          continue;
        }
        if (e.dest.capacity < len) {
          r.status = StatusCode::kBufferTooSmall;
          continue;
        }
        if (len > LargeRdmaStretch()) {
          // More than a request may stage: moved a stretch at a time, after
          // the others (WriteLargeToClient).
          r.delivery = proto::Delivery::kPlaced;
          large_rdma.emplace_back(i, std::move(*pin));
          continue;
        }
        if (rdma_total + len > inline_budget) {
          r.status = StatusCode::kBufferLimit;
          continue;
        }
        r.delivery = proto::Delivery::kPlaced;
        rdma_total += len;
        rdma_idx.push_back(i);
        const auto view = store_.Peek(*pin);
        if (view && e.offset % kSumPiece == 0 &&
            (len % kSumPiece == 0 || e.offset + len == pin->size)) {
          rdma_from[i] = view->bytes.subspan(e.offset, len);
          const auto sums = view->piece_sums.subspan(e.offset / kSumPiece, PiecesOf(len));
          r.page_sums =
              proto::Bytes(reinterpret_cast<const std::byte*>(sums.data()), sums.size_bytes());
          if (len == 0) r.checksum = Xxh3(rdma_from[i].data(), 0);
          hold->pins.push_back(std::move(*pin));  // its sums are sent from the entry
          got_bytes += len;
        }
        continue;
      }
      if (!is_inline && e.dest.kind != proto::LocationKind::kShm) {
        r.status = StatusCode::kInvalidArgument;
        continue;
      }
      if (is_inline && len > proto::kMaxPayload - 4096) {
        // Larger than a frame: sent after the reply, piece by piece.
        r.delivery = proto::Delivery::kStreamed;
        pins_for_stream[i] = std::move(*pin);
        continue;
      }
      std::span<std::byte> shm_dest;
      if (!is_inline) {
        if (e.dest.capacity < len) {
          r.status = StatusCode::kBufferTooSmall;
          continue;
        }
        auto slice = Slice(e.dest, len, pins);
        if (!slice) {
          r.status = StatusCode::kBadRegion;
          continue;
        }
        shm_dest = *slice;
      } else if (inline_total + len > inline_budget) {
        r.status = StatusCode::kBufferLimit;
        continue;
      }
      r.delivery = is_inline ? proto::Delivery::kInline : proto::Delivery::kPlaced;
      // A range whose pieces are the stored value's carries its stored
      // piece sums: the reader checks every 4 KiB against the sums taken
      // when the value came in, so nothing between is trusted.
      const auto view = store_.Peek(*pin);
      const bool whole_pieces = e.offset % kSumPiece == 0 &&
                                (len % kSumPiece == 0 || e.offset + len == pin->size);
      if (view && whole_pieces) {
        const proto::Bytes bytes = view->bytes.subspan(e.offset, len);
        const auto sums = view->piece_sums.subspan(e.offset / kSumPiece, PiecesOf(len));
        r.page_sums = proto::Bytes(reinterpret_cast<const std::byte*>(sums.data()), sums.size_bytes());
        if (len == 0) r.checksum = Xxh3(bytes.data(), 0);
        if (is_inline) {
          inline_src[i] = bytes;
          inline_total += len;
          hold->pins.push_back(std::move(*pin));
        } else {
          // The one pass over the bytes, made as its slice of the reply goes
          // (SendReadReply): the client checks one slice while the next is
          // copied.
          placed[i] = {bytes, shm_dest};
          hold->pins.push_back(std::move(*pin));  // its sums are sent from the entry
        }
        got_bytes += len;
        continue;
      }
      if (is_inline) {
        copied[i] = true;
        inline_at[i] = copy_total;
        copy_total += len;
        inline_total += len;
      } else {
        items.push_back({e.key, e.offset, shm_dest});
        item_of.push_back(i);
      }
    }
    // The connection's replies stay within its buffer limit too: while
    // earlier ones are being written, a read whose bytes would pass it waits
    // for them to drain (as a stream's pieces do).
    const uint64_t limit = opt_.limits.max_buffered_bytes_per_connection;
    while (!closed_ && writing_ && inline_total > 0 && buffered_ + inline_total > limit)
      co_await WaitFlow();
    hold->copied = std::make_shared<RawBuffer>(copy_total);
    buffered_ += inline_total;
    for (size_t i = 0; i < n; ++i) {
      if (!copied[i]) continue;
      items.push_back({req.entries[i].key, req.entries[i].offset,
                       std::span<std::byte>(hold->copied->data.get() + inline_at[i],
                                            results[i].length)});
      item_of.push_back(i);
    }
    std::unique_ptr<rdma::BufferPool::Lease> stage;
    std::vector<rdma::BufferPool::Lease::Place> rdma_place(n);
    if (!rdma_idx.empty()) {
      stage = impl_.stage_pool->NewLease();
      std::vector<size_t> staged;
      for (size_t i : rdma_idx) {
        proto::ReadResult& r = results[i];
        auto place = stage->Take(r.length);
        if (!place) {
          spdlog::warn("{}: registering memory to send {} bytes over rdma: {}", peer_, r.length,
                       place.error().message());
          r.status = StatusCode::kInternal;
          r.delivery = proto::Delivery::kNone;
          r.length = 0;
          r.page_sums = {};
          continue;
        }
        rdma_place[i] = *place;
        staged.push_back(i);
        const std::span<std::byte> to(place->data, r.length);
        if (rdma_from[i].data()) {
          if (!to.empty()) std::memcpy(to.data(), rdma_from[i].data(), to.size());
        } else {
          items.push_back({req.entries[i].key, req.entries[i].offset, to});
          item_of.push_back(i);
        }
      }
      rdma_idx = std::move(staged);
    }
    const auto got = co_await store_.GetBatch(items);
    for (size_t k = 0; k < got.size(); ++k) {
      const size_t i = item_of[k];
      proto::ReadResult& r = results[i];
      if (!got[k]) {
        r.status = ToStatus(got[k].error());
        r.delivery = proto::Delivery::kNone;
        r.length = 0;
        continue;
      }
      // Read (and checked) by the store: summed here for the client.
      r.checksum = Xxh3(items[k].out.data(), items[k].out.size());
      if (r.delivery == proto::Delivery::kInline) inline_src[i] = items[k].out;
      got_bytes += *got[k];
    }
    if (!rdma_idx.empty()) co_await WriteToClient(results, req, rdma_idx, rdma_place);
    stage.reset();  // its bytes are in the client's memory; a large entry takes its own
    for (auto& [i, pin] : large_rdma) {
      co_await WriteLargeToClient(results[i], req.entries[i], pin, *hold);
      if (results[i].status == StatusCode::kOk) got_bytes += results[i].length;
    }
    buffered_ -= inline_total;
    impl_.metrics.Entries(Op::kGet, results, got_bytes);
    for (size_t i = 0; i < n; ++i)
      if (results[i].status == StatusCode::kOk)
        impl_.metrics.RailBytes(RailOf(req.entries[i].dest.kind), true, results[i].length);
    bool streams = false;
    for (const proto::ReadResult& r : results) streams |= r.delivery == proto::Delivery::kStreamed;
    co_await SendReadReply(h, results, std::move(hold), inline_src, placed, streams,
                          (h.flags & proto::kFlagSteps) != 0);
    if (streams) co_await SendStreams(h, results, req, pins_for_stream);
  }

  // ---- the rdma rail ----

  struct Transfer {
    const rdma::MemoryRegion* mr;  // holding local
    std::byte* local;
    size_t len;
    rdma::RemoteBuffer remote;
  };

  // Transfers this session hands the fabric at once, over all its requests:
  // the fabric's own bound per peer (rdma.max_inflight_per_peer), and as
  // many again (at most 1,024) waiting behind it so that the peer's queue
  // never runs dry, well within the fabric's limit of waiting operations
  // per peer (beyond which it refuses them: a 7,500-entry batch is 7,500
  // transfers, and a session has many batches in flight).
  uint32_t RdmaWindow() const {
    const uint32_t posted = opt_.rdma ? opt_.rdma->max_inflight_per_peer : 1;
    return posted + std::min<uint32_t>(posted, 1024);
  }

  // Runs the transfers concurrently on this connection's loop, at most
  // RdmaWindow() of the session's at once, and waits for all.
  Awaitable<std::vector<bool>> Transfers(const std::vector<Transfer>& ts, bool write) {
    std::vector<bool> ok(ts.size(), false);
    if (ts.empty()) co_return ok;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer done(ex);
    done.expires_at(asio::steady_timer::time_point::max());
    size_t left = ts.size();
    for (size_t k = 0; k < ts.size(); ++k) {
      while (rdma_transfers_ >= RdmaWindow()) co_await rdma_room_.async_wait(kTuple);
      if (rdma_transfers_++ == 0) rdma_progress_ = std::chrono::steady_clock::now();
      asio::co_spawn(
          ex,
          [&, k]() -> Awaitable<void> {
            const Transfer& t = ts[k];
            const Status st =
                write ? co_await impl_.fabric->Write(*t.mr, t.local, t.len, *rdma_peer_, t.remote)
                      : co_await impl_.fabric->Read(*t.mr, t.local, t.len, *rdma_peer_, t.remote);
            ok[k] = static_cast<bool>(st);
            if (!st) spdlog::debug("{}: rdma transfer: {}", peer_, st.error().message());
            --rdma_transfers_;
            rdma_progress_ = std::chrono::steady_clock::now();
            rdma_room_.cancel();  // wakes the requests waiting for room
            if (--left == 0) done.cancel();
          },
          asio::detached);
    }
    // The last transfer was spawned without a suspension since, so it has
    // not started yet: `done` is awaited before it can be cancelled. While
    // they run, a session none of whose transfers completes within
    // rdma.transfer_timeout is closed: the client's fabric makes no
    // progress (its process stopped, its progress thread wedged), and
    // closing removes its peer, which fails what is still posted.
    const auto timeout = opt_.rdma_transfer_timeout;
    while (left > 0) {
      done.expires_at(closed_ ? asio::steady_timer::time_point::max() : rdma_progress_ + timeout);
      boost::system::error_code ec;
      co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (left > 0 && !closed_ && std::chrono::steady_clock::now() >= rdma_progress_ + timeout) {
        spdlog::warn("{}: closing the connection: none of its {} rdma transfers completed in "
                     "rdma.transfer_timeout ({} ms); its fabric makes no progress",
                     peer_, rdma_transfers_, timeout.count());
        CloseNow();
      }
    }
    co_return ok;
  }

  // The transfers of `len` bytes at `local` (in the stage) to or from the
  // client's (address, key), in rdma_chunk pieces.
  void Chunks(const rdma::BufferPool::Lease::Place& local, uint64_t len, const proto::Location& at,
              std::vector<Transfer>& out) const {
    const auto* mr = static_cast<const rdma::MemoryRegion*>(local.handle);
    for (uint64_t done = 0; done < len; done += opt_.rdma_chunk) {
      const uint64_t piece = std::min<uint64_t>(opt_.rdma_chunk, len - done);
      out.push_back({mr, local.data + done, piece, {at.address + done, at.region}});
    }
  }

  // Reads: the staged bytes WRITTEN into each entry's destination; an entry
  // whose transfer failed (its registration withdrawn, the client gone) is
  // BadRegion, with nothing delivered.
  Awaitable<void> WriteToClient(std::vector<proto::ReadResult>& results,
                                const proto::BatchReadRequest& req,
                                const std::vector<size_t>& idx,
                                const std::vector<rdma::BufferPool::Lease::Place>& at) {
    std::vector<Transfer> ts;
    std::vector<size_t> entry_of;
    for (size_t i : idx) {
      if (results[i].status != StatusCode::kOk || results[i].length == 0) continue;
      const size_t before = ts.size();
      Chunks(at[i], results[i].length, req.entries[i].dest, ts);
      entry_of.insert(entry_of.end(), ts.size() - before, i);
    }
    const std::vector<bool> ok = co_await Transfers(ts, true);
    for (size_t k = 0; k < ts.size(); ++k) {
      if (ok[k]) continue;
      proto::ReadResult& r = results[entry_of[k]];
      r.status = StatusCode::kBadRegion;
      r.delivery = proto::Delivery::kNone;
      r.length = 0;
      r.page_sums = {};
    }
  }

  // An rdma value larger than this is not staged whole: it moves a stretch
  // at a time through one place in the stage, so that no request stages
  // more than limits.max_buffered_bytes_per_connection (nor a frame's worth).
  uint64_t LargeRdmaStretch() const {
    const uint64_t cap = std::min<uint64_t>(opt_.limits.max_buffered_bytes_per_connection,
                                            proto::kMaxPayload);
    return std::max<uint64_t>(kSumPiece, cap / kSumPiece * kSumPiece);
  }

  // The one place in the stage a large entry moves through (with the lease
  // holding it), or nothing, logged, when it cannot be registered.
  struct Stretch {
    std::unique_ptr<rdma::BufferPool::Lease> lease;
    rdma::BufferPool::Lease::Place place;
  };
  std::optional<Stretch> TakeStretch(const char* direction) {
    Stretch s{impl_.stage_pool->NewLease(), {}};
    auto place = s.lease->Take(LargeRdmaStretch());
    if (!place) {
      spdlog::warn("{}: registering memory to {} {} bytes over rdma: {}", peer_, direction,
                   LargeRdmaStretch(), place.error().message());
      return std::nullopt;
    }
    s.place = *place;
    return s;
  }

  // Fails an rdma entry of a read: nothing of it counts as delivered.
  static void FailPlaced(proto::ReadResult& r, StatusCode status) {
    r.status = status;
    r.delivery = proto::Delivery::kNone;
    r.length = 0;
    r.page_sums = {};
  }

  // A read entry larger than LargeRdmaStretch(): each stretch read from the
  // pinned value into the stage (the store checks what it reads from a
  // drive), then WRITTEN at its offset in the client's destination. The
  // piece sums the client checks are the stored ones where the range is
  // whole pieces of a value in memory, else taken here as the bytes are
  // staged; `hold` keeps them (and the pin) until the reply is sent.
  Awaitable<void> WriteLargeToClient(proto::ReadResult& r, const proto::ReadEntry& e,
                                     store::Store::Pinned& pin, ReadHold& hold) {
    const uint64_t stretch = LargeRdmaStretch();
    auto stage = TakeStretch("send");
    if (!stage) co_return FailPlaced(r, StatusCode::kInternal);
    const auto* place = &stage->place;
    const auto view = store_.Peek(pin);
    const bool stored_sums = view && e.offset % kSumPiece == 0 &&
                             (r.length % kSumPiece == 0 || e.offset + r.length == pin.size);
    std::vector<uint64_t> sums(stored_sums ? 0 : PiecesOf(r.length));
    for (uint64_t done = 0; done < r.length; done += stretch) {
      const uint64_t len = std::min(stretch, r.length - done);
      const std::span<std::byte> to(place->data, len);
      if (view) {
        std::memcpy(to.data(), view->bytes.data() + e.offset + done, len);
      } else if (auto got = co_await store_.Get(pin, e.offset + done, to); !got) {
        co_return FailPlaced(r, ToStatus(got.error()));
      }
      if (!stored_sums) PieceSums(to.data(), len, sums.data() + done / kSumPiece);
      std::vector<Transfer> ts;
      Chunks(*place, len, {e.dest.kind, e.dest.region, e.dest.address + done, len}, ts);
      const std::vector<bool> ok = co_await Transfers(ts, true);
      if (std::find(ok.begin(), ok.end(), false) != ok.end())
        co_return FailPlaced(r, StatusCode::kBadRegion);
    }
    std::span<const uint64_t> sent;
    if (stored_sums) {
      sent = view->piece_sums.subspan(e.offset / kSumPiece, PiecesOf(r.length));
    } else {
      sent = hold.sums.emplace_back(std::move(sums));
    }
    r.page_sums = proto::Bytes(reinterpret_cast<const std::byte*>(sent.data()), sent.size_bytes());
    hold.pins.push_back(std::move(pin));
  }

  // A write entry larger than LargeRdmaStretch(): each stretch READ from the
  // client into one place in the stage, checked against the entry's piece
  // sums, and appended to the value's allocation; published once whole.
  Awaitable<StatusCode> ReadLargeFromClient(const proto::WriteEntry& e) {
    // Piece sums, or (a client that sent none) the value's checksum, taken
    // over the stretches as they come and compared before Commit.
    const std::vector<uint64_t> sums = proto::PieceSumsOf(e.piece_sums);
    if (!sums.empty() && sums.size() != PiecesOf(e.value_len))
      co_return StatusCode::kInvalidArgument;
    std::optional<Xxh3Stream> whole;
    if (sums.empty()) whole.emplace();
    const uint64_t stretch = LargeRdmaStretch();
    auto stage = TakeStretch("receive");
    if (!stage) co_return StatusCode::kInternal;
    const auto* place = &stage->place;
    auto put = co_await store_.BeginPut(e.key, e.value_len);
    if (!put) co_return ToStatus(put.error());
    for (uint64_t done = 0; done < e.value_len; done += stretch) {
      const uint64_t len = std::min(stretch, e.value_len - done);
      std::vector<Transfer> ts;
      Chunks(*place, len, {e.src.kind, e.src.region, e.src.address + done, len}, ts);
      const std::vector<bool> ok = co_await Transfers(ts, false);
      if (std::find(ok.begin(), ok.end(), false) != ok.end()) co_return StatusCode::kBadRegion;
      if (whole) {
        whole->Update(place->data, len);
      } else {
        for (uint64_t at = 0; at < len; at += kSumPiece)
          if (Xxh3(place->data + at, std::min<uint64_t>(kSumPiece, len - at)) !=
              sums[(done + at) / kSumPiece])
            co_return StatusCode::kChecksumMismatch;  // dropping `put` frees its space
      }
      if (auto st = co_await (*put)->Append(proto::Bytes(place->data, len)); !st)
        co_return ToStatus(st.error());
    }
    if (whole && whole->Digest() != e.checksum) co_return StatusCode::kChecksumMismatch;
    auto st = co_await (*put)->Commit();
    co_return st ? StatusCode::kOk : ToStatus(st.error());
  }

  // Writes: the values of kRdma entries READ from the client's memory into
  // the stage; per entry its place there, or the status that stopped it.
  struct RdmaSources {
    std::unique_ptr<rdma::BufferPool::Lease> stage;
    std::vector<rdma::BufferPool::Lease::Place> at;
    std::vector<StatusCode> status;
    std::vector<bool> large;  // not staged: ReadLargeFromClient moves it
  };
  Awaitable<RdmaSources> ReadFromClient(const proto::BatchWriteRequest& req) {
    const size_t n = req.entries.size();
    RdmaSources out{nullptr, std::vector<rdma::BufferPool::Lease::Place>(n),
                    std::vector<StatusCode>(n, StatusCode::kOk), std::vector<bool>(n, false)};
    uint64_t total = 0;
    std::vector<size_t> idx;
    for (size_t i = 0; i < n; ++i) {
      const proto::WriteEntry& e = req.entries[i];
      if (e.src.kind != proto::LocationKind::kRdma) continue;
      if (!rdma_peer_) {
        out.status[i] = StatusCode::kInvalidArgument;  // this session is not over rdma
      } else if (e.value_len > opt_.limits.max_value_size) {
        out.status[i] = StatusCode::kTooLarge;
      } else if (e.src.capacity < e.value_len) {
        out.status[i] = StatusCode::kBadRegion;
      } else if (e.value_len > LargeRdmaStretch()) {
        out.large[i] = true;
      } else if (total + e.value_len > opt_.limits.max_buffered_bytes_per_connection) {
        out.status[i] = StatusCode::kBufferLimit;
      } else {
        total += e.value_len;
        idx.push_back(i);
      }
    }
    if (idx.empty()) co_return out;
    out.stage = impl_.stage_pool->NewLease();
    std::vector<Transfer> ts;
    std::vector<size_t> entry_of;
    for (size_t i : idx) {
      auto place = out.stage->Take(req.entries[i].value_len);
      if (!place) {
        spdlog::warn("{}: registering memory to receive {} bytes over rdma: {}", peer_,
                     req.entries[i].value_len, place.error().message());
        out.status[i] = StatusCode::kInternal;
        continue;
      }
      out.at[i] = *place;
      const size_t before = ts.size();
      Chunks(*place, req.entries[i].value_len, req.entries[i].src, ts);
      entry_of.insert(entry_of.end(), ts.size() - before, i);
    }
    const std::vector<bool> ok = co_await Transfers(ts, false);
    for (size_t k = 0; k < ts.size(); ++k)
      if (!ok[k]) out.status[entry_of[k]] = StatusCode::kBadRegion;
    co_return out;
  }

  // Packs the results into as many frames as they need; each frame's data
  // is the list of its inline entries' slices, gathered by the write.
  // A shm entry's bytes, copied from the store's memory into the client's
  // region just before the slice of the reply that names it.
  struct PlacedCopy {
    proto::Bytes from;
    std::span<std::byte> to;
  };
  // Placed bytes per reply slice, when a request places more than twice as
  // much: the client checks a slice (its own core) while this loop copies
  // the next, instead of both passes one after the other. Also the step of
  // an entry placed in steps.
  static constexpr uint64_t kPlacedSlice = 1 << 20;

  // The reply in slices of at most a frame each (and of about kPlacedSlice
  // placed bytes each when there are many), every placed entry copied
  // before its slice goes. With `steps` (the request's kFlagSteps), an
  // entry larger than a slice ends its slice, announced kPlacedInSteps,
  // and is then copied a slice at a time, each followed by a ReadPlaced
  // frame: the client checks one step while the next is copied.
  Awaitable<void> SendReadReply(const proto::FrameHeader& h, std::vector<proto::ReadResult>& results,
                                std::shared_ptr<const ReadHold> hold,
                                const std::vector<proto::Bytes>& inline_src,
                                const std::vector<PlacedCopy>& placed, bool streams_follow,
                                bool steps) {
    const size_t n = results.size();
    uint64_t placed_total = 0;
    for (const PlacedCopy& c : placed) placed_total += c.to.size();
    const uint64_t placed_cap =
        placed_total > 2 * kPlacedSlice ? kPlacedSlice : std::numeric_limits<uint64_t>::max();
    auto stepped = [&](size_t i) {
      return steps && placed[i].to.size() > kPlacedSlice && !results[i].page_sums.empty();
    };
    size_t first = 0;
    do {
      uint64_t bytes = 64 + 32, placed_bytes = 0;
      size_t count = 0;
      while (first + count < n) {
        const size_t i = first + count;
        const proto::ReadResult& r = results[i];
        const uint64_t need = proto::EncodedSize(r) + (r.delivery == proto::Delivery::kInline ? r.length : 0);
        const uint64_t place = stepped(i) ? 0 : placed[i].to.size();
        if (count > 0 && (bytes + need > proto::kMaxPayload || placed_bytes + place > placed_cap)) break;
        bytes += need;
        placed_bytes += place;
        ++count;
        if (stepped(i)) break;  // its steps follow this slice
      }
      proto::BatchReadReply rep;
      rep.batch = {static_cast<uint32_t>(n), static_cast<uint32_t>(first),
                   static_cast<uint32_t>(count)};
      std::vector<proto::Bytes> data;
      for (size_t i = first; i < first + count; ++i) {
        if (stepped(i)) results[i].delivery = proto::Delivery::kPlacedInSteps;
        else if (const PlacedCopy& c = placed[i]; !c.to.empty())
          StreamCopy(c.to.data(), c.from.data(), c.to.size());
        rep.results.push_back(results[i]);
        if (results[i].delivery == proto::Delivery::kInline && results[i].length > 0)
          data.push_back(inline_src[i]);
      }
      proto::Buffer control;
      proto::Encode(rep, control);
      first += count;
      const size_t last = first - 1;
      const bool steps_follow = stepped(last);
      co_await Reply(Frame(h, std::move(control), hold, std::move(data),
                           steps_follow || first < n || streams_follow));
      if (steps_follow) co_await SendSteps(h, last, placed[last], first < n || streams_follow);
    } while (first < n);
  }

  // The steps of entry `i` (SendReadReply): a slice copied, then a
  // ReadPlaced frame saying it is in place.
  Awaitable<void> SendSteps(const proto::FrameHeader& h, size_t i, const PlacedCopy& c,
                            bool more_after) {
    proto::FrameHeader sh = h;
    sh.opcode = proto::Opcode::kReadPlaced;
    uint32_t seq = 0;
    for (uint64_t off = 0; off < c.to.size() && !closed_;) {
      const uint64_t len = std::min<uint64_t>(kPlacedSlice, c.to.size() - off);
      StreamCopy(c.to.data() + off, c.from.data() + off, len);
      off += len;
      const bool last = off == c.to.size();
      proto::Buffer control;
      proto::Encode(proto::PlacedStep{static_cast<uint32_t>(i), seq++, off - len, len, last}, control);
      co_await Reply(Frame(sh, std::move(control), nullptr, {}, !last || more_after));
    }
  }

  // ---- values streamed in chunks ----

  // A value streamed in by WriteChunk frames into its allocation.
  // An open stream (kOpenStream) has no size nor checksum up front: it
  // grows until its last chunk, which carries the checksum.
  struct PutStream {
    PutStream(uint32_t e, uint64_t size, uint64_t sum) : entry(e), checksum(sum), seq(size) {}
    explicit PutStream(uint32_t e)
        : entry(e), checksum(0), seq(proto::ChunkSequencer::Open()), open(true) {}
    uint32_t entry;     // in its request
    uint64_t checksum;  // the entry's: XXH3 of the whole value
    proto::ChunkSequencer seq;
    bool open = false;
    bool counted = false;  // in open_streams_ until decided
    Xxh3Stream hash;
    std::unique_ptr<store::Store::PendingPut> put;  // null once refused or failed
    StatusCode status = StatusCode::kOk;
    bool finished = false;  // decided: complete, refused or failed
    bool drained = false;   // its last chunk came: no more frames for it
  };
  // The streamed entries of one BatchWrite.
  struct StreamedWrite {
    explicit StreamedWrite(const Socket::executor_type& ex) : wake(ex) {}
    std::vector<std::unique_ptr<PutStream>> streams;
    asio::steady_timer wake;  // cancelled when a stream is decided
    std::chrono::steady_clock::time_point last_chunk = std::chrono::steady_clock::now();
    bool handled = false;     // the request has been answered
  };
  // Decodes a BatchWrite as it is read and, for each entry whose value
  // follows in WriteChunk frames, reserves its allocation before the chunks
  // come. Null when the frame does not decode (HandleWrite answers that).
  Awaitable<std::shared_ptr<proto::BatchWriteRequest>> OpenStreams(const proto::FrameHeader& h,
                                                                   proto::Bytes control,
                                                                   proto::Bytes data) {
    auto req = std::make_shared<proto::BatchWriteRequest>();
    if (!proto::Decode(control, data, *req, DecodeLimits())) co_return nullptr;
    std::shared_ptr<StreamedWrite> sw;
    for (size_t i = 0; i < req->entries.size(); ++i) {
      const proto::WriteEntry& e = req->entries[i];
      if (e.src.kind != proto::LocationKind::kStream &&
          e.src.kind != proto::LocationKind::kOpenStream)
        continue;
      if (!sw) {
        sw = std::make_shared<StreamedWrite>(socket_.get_executor());
        // A request id still streaming: its chunks could not be told apart.
        if (!streams_.emplace(h.request_id, sw).second) co_return nullptr;
      }
      if (e.src.kind == proto::LocationKind::kOpenStream) {
        auto& ps = sw->streams.emplace_back(std::make_unique<PutStream>(static_cast<uint32_t>(i)));
        // Each may grow to max_value_size: a session has a bounded number.
        if (open_streams_ >= opt_.limits.max_open_streams_per_session) {
          EndStream(*sw, *ps, StatusCode::kBusy);
          continue;
        }
        auto put = store_.BeginOpenPut(e.key);
        if (!put) {
          EndStream(*sw, *ps, ToStatus(put.error()));
          continue;
        }
        ps->put = std::move(*put);
        ps->counted = true;
        ++open_streams_;
        continue;
      }
      auto& ps = sw->streams.emplace_back(std::make_unique<PutStream>(static_cast<uint32_t>(i),
                                                                       e.value_len, e.checksum));
      if (e.value_len > opt_.limits.max_value_size) {
        EndStream(*sw, *ps, StatusCode::kTooLarge);
        continue;
      }
      auto put = co_await store_.BeginPut(e.key, e.value_len);
      if (!put) {
        EndStream(*sw, *ps, ToStatus(put.error()));
        continue;
      }
      ps->put = std::move(*put);
    }
    co_return req;
  }

  // One WriteChunk: checked against its stream's sequence and written into
  // the value's allocation; the last one checks the value's checksum.
  Awaitable<void> TakeChunk(const proto::FrameHeader& h, proto::Bytes control, proto::Bytes data) {
    proto::ChunkHeader c;
    if (auto st = proto::Decode(control, data, c); !st) {
      const std::string why = st.error().message();
      co_await Reply(ErrorFrame(h, StatusCode::kProtocolError, why));
      co_return;
    }
    auto it = streams_.find(h.request_id);
    PutStream* ps = nullptr;
    if (it != streams_.end())
      for (auto& p : it->second->streams)
        if (p->entry == c.entry) ps = p.get();
    if (!ps || ps->drained) {
      co_await Reply(ErrorFrame(h, StatusCode::kChunkOutOfOrder,
                                "a chunk for no value being streamed on this request"));
      co_return;
    }
    const std::shared_ptr<StreamedWrite> hold = it->second;
    StreamedWrite& sw = *hold;
    sw.last_chunk = std::chrono::steady_clock::now();
    if (c.last) ps->drained = true;
    if (!ps->finished) {
      if (!ps->seq.Accept(c, data.size())) {
        EndStream(sw, *ps, StatusCode::kChunkOutOfOrder);
      } else {
        ps->hash.Update(data.data(), data.size());
        if (auto st = co_await ps->put->Append(data); !st) {
          EndStream(sw, *ps, ToStatus(st.error()));
        } else if (ps->seq.complete()) {
          // An open stream's checksum comes with its last chunk, and must.
          const bool ok = ps->open ? c.checksum && *c.checksum == ps->hash.Digest()
                                   : ps->hash.Digest() == ps->checksum &&
                                         (!c.checksum || *c.checksum == ps->checksum);
          EndStream(sw, *ps, ok ? StatusCode::kOk : StatusCode::kChecksumMismatch);
        }
      }
    }
    ForgetIfDone(h.request_id);
  }

  // A stream is decided: Ok (complete, checksum right; committed by its
  // request) or failed (its allocation released now).
  void EndStream(StreamedWrite& sw, PutStream& ps, StatusCode status) {
    ps.status = status;
    ps.finished = true;
    if (ps.counted) {
      ps.counted = false;
      --open_streams_;
    }
    if (status != StatusCode::kOk) ps.put.reset();
    sw.wake.cancel();
  }

  // After the reply, a request's streams are forgotten once their last
  // chunks are in (a failed stream's remaining chunks are read and dropped).
  void ForgetIfDone(uint64_t request_id) {
    auto it = streams_.find(request_id);
    if (it == streams_.end() || !it->second->handled) return;
    for (auto& p : it->second->streams)
      if (!p->drained) return;
    streams_.erase(it);
  }

  // The connection is gone: every value still streaming is cut off.
  void AbortStreams() {
    for (auto& [id, sw] : streams_)
      for (auto& p : sw->streams) {
        p->drained = true;
        if (!p->finished) EndStream(*sw, *p, StatusCode::kBusy);
      }
  }

  // Waits for the request's streamed entries to be decided and commits
  // those complete (and not superseded: `wins(i)`), into statuses[i].
  template <class Wins>
  Awaitable<void> FinishStreams(uint64_t request_id, std::vector<StatusCode>& statuses, Wins wins) {
    auto it = streams_.find(request_id);
    if (it == streams_.end()) {
      co_return;
    }
    std::shared_ptr<StreamedWrite> sw = it->second;
    for (auto& p : sw->streams) {
      while (!p->finished) {
        // A client that stops sending chunks must not hold the values'
        // space until it disconnects: after limits.stream_idle with no
        // chunk, the request's undecided streams fail and their space is
        // released; chunks that still come are answered ChunkOutOfOrder.
        const auto deadline = sw->last_chunk + opt_.limits.stream_idle;
        sw->wake.expires_at(deadline);
        auto [ec] = co_await sw->wake.async_wait(kTuple);
        if (!ec && !p->finished && std::chrono::steady_clock::now() >= sw->last_chunk + opt_.limits.stream_idle)
          for (auto& q : sw->streams)
            if (!q->finished) {
              q->drained = true;
              EndStream(*sw, *q, StatusCode::kStreamTimeout);
            }
      }
      statuses[p->entry] = p->status;
      if (p->status != StatusCode::kOk || !wins(p->entry)) {
        p->put.reset();
        continue;
      }
      auto st = co_await p->put->Commit();
      p->put.reset();
      if (!st) statuses[p->entry] = ToStatus(st.error());
    }
    sw->handled = true;
    ForgetIfDone(request_id);
  }

  // Sends the streamed entries of a read after its reply: ReadChunk frames
  // read from the pinned value a piece at a time, never more than the
  // connection may hold queued; the last one carries the checksum.
  Awaitable<void> SendStreams(const proto::FrameHeader& h, const std::vector<proto::ReadResult>& results,
                              const proto::BatchReadRequest& req,
                              std::unordered_map<size_t, store::Store::Pinned>& pins) {
    proto::FrameHeader ch = h;
    ch.opcode = proto::Opcode::kReadChunk;
    size_t last_stream = 0;
    for (size_t i = 0; i < results.size(); ++i)
      if (results[i].delivery == proto::Delivery::kStreamed) last_stream = i;
    const uint64_t limit = opt_.limits.max_buffered_bytes_per_connection;
    for (size_t i = 0; i < results.size(); ++i) {
      const proto::ReadResult& r = results[i];
      if (r.delivery != proto::Delivery::kStreamed) continue;
      Xxh3Stream hash;
      uint32_t seq = 0;
      for (uint64_t off = 0; off < r.length;) {
        const uint64_t n = std::min<uint64_t>(proto::kStreamChunkSize, r.length - off);
        while (!closed_ && writing_ && buffered_ + n > limit) co_await WaitFlow();
        if (closed_) co_return;
        auto piece = std::make_shared<RawBuffer>(n);
        buffered_ += n;
        auto got = co_await store_.Get(pins[i], req.entries[i].offset + off,
                                       std::span<std::byte>(piece->data.get(), n));
        buffered_ -= n;
        const bool end = off + n == r.length;
        const bool more = !(end && i == last_stream);
        if (!got) {
          // The stream cannot be finished: a ReadChunk with a status and no
          // bytes fails the request.
          proto::Buffer control;
          proto::Encode(proto::ReplyHead{ToStatus(got.error()), got.error().message()}, control);
          co_await Reply(Frame(ch, std::move(control), nullptr, {}, false));
          co_return;
        }
        hash.Update(piece->data.get(), n);
        proto::ChunkHeader c{static_cast<uint32_t>(i), seq++, off, end, std::nullopt};
        if (end) c.checksum = hash.Digest();
        proto::Buffer control;
        proto::Encode(c, control);
        std::vector<proto::Bytes> bytes{proto::Bytes(piece->data.get(), n)};
        co_await Reply(Frame(ch, std::move(control), std::move(piece), std::move(bytes), more));
        off += n;
      }
    }
  }

  Awaitable<void> HandleExists(const proto::FrameHeader& h, proto::Bytes control) {
    proto::KeysRequest req;
    if (auto st = proto::Decode(control, req, DecodeLimits()); !st) {
      co_await Reply(DecodeError(h, st.error()));
      co_return;
    }
    proto::ExistsReply rep;
    rep.batch = {req.batch.count, 0, req.batch.count};
    for (std::string_view k : req.keys) {
      auto info = store_.Stat(k);
      rep.results.push_back(info ? proto::ExistsResult{StatusCode::kOk, info->size, info->version}
                                 : proto::ExistsResult{ToStatus(info.error()), 0, 0});
    }
    impl_.metrics.Entries(Op::kExists, rep.results);
    proto::Buffer out;
    proto::Encode(rep, out);
    co_await Reply(Frame(h, std::move(out)));
  }

  Awaitable<void> HandleDelete(const proto::FrameHeader& h, proto::Bytes control) {
    proto::KeysRequest req;
    if (auto st = proto::Decode(control, req, DecodeLimits()); !st) {
      co_await Reply(DecodeError(h, st.error()));
      co_return;
    }
    const auto results = co_await store_.DeleteBatch(req.keys);
    proto::StatusReply rep;
    rep.batch = {req.batch.count, 0, req.batch.count};
    for (const Status& st : results)
      rep.statuses.push_back(st ? StatusCode::kOk : ToStatus(st.error()));
    impl_.metrics.Entries(Op::kDelete, rep.statuses, 0);
    proto::Buffer out;
    proto::Encode(rep, out);
    co_await Reply(Frame(h, std::move(out)));
  }

  Server::Impl& impl_;
  const ServerOptions& opt_;
  store::Store& store_;
  Socket socket_;
  const bool is_unix_;
  const std::string peer_;

  // Loop-confined state.
  asio::steady_timer flow_;  // cancelled to wake the reader (flow control, drain)
  std::vector<OutFrame> out_;  // waiting for the writer
  std::vector<iovec> bufs_;  // the writer's gather list, reused
  std::vector<std::byte> scratch_;        // where dropped bytes of a direct write go
  bool writing_ = false;
  bool closed_ = false;
  size_t read_unyielded_ = 0;  // bytes read since the reader last went through the loop
  uint32_t inflight_ = 0;
  uint64_t buffered_ = 0;
  uint64_t requests_ = 0;
  std::optional<uint64_t> session_id_;
  std::optional<rdma::PeerId> rdma_peer_;  // the client's fabric endpoint, when over rdma
  uint32_t rdma_transfers_ = 0;            // handed to the fabric, not completed (<= RdmaWindow())
  std::chrono::steady_clock::time_point rdma_progress_;  // the last transfer completed (or the first began)
  asio::steady_timer rdma_room_;           // cancelled when one of them completes
  asio::steady_timer attach_timer_;  // limits.attach_timeout
  std::atomic<bool> unattached_{true};  // read by Adopt on loop 0 as well
  bool hello_done_ = false;
  std::optional<proto::AuthKey> session_key_;  // after Hello, with an auth key
  proto::SequenceCheck in_seq_;                // the client's frames
  uint64_t out_seq_ = 0;                       // the next reply's number
  uint64_t recorded_requests_ = 0;  // requests_ as last given to the registry
  std::vector<int> pending_fds_;  // at most 4
  std::unordered_map<uint32_t, std::shared_ptr<Region>> regions_;

  std::unordered_map<uint64_t, std::shared_ptr<StreamedWrite>> streams_;  // by request id
  uint32_t open_streams_ = 0;  // open streams not yet decided (limits.max_open_streams_per_session)
};

// ---- accepting ----

void Server::Impl::Adopt(int fd, bool is_unix, std::string peer) {
  Loops& loops = server.loops_;
  asio::io_context& loop = loops.loop(next_loop.fetch_add(1) % loops.size());
  const int family = is_unix ? AF_UNIX : AF_INET;
  boost::system::error_code ec;
  Socket socket(loop);
  socket.assign(asio::generic::stream_protocol(family, SOCK_STREAM), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  auto conn = std::make_shared<Connection>(*this, std::move(socket), is_unix, std::move(peer));
  std::shared_ptr<Connection> evict;
  {
    MutexLock lock(mu);
    // An accept that completed as the listener closed: Shutdown has
    // collected (or is about to collect, under this lock) the connections to
    // close, and would never close this one.
    if (stopping.load()) return;
    std::erase_if(connections, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
    connections.push_back(conn);
    // A flood of connections that never attach must not lock clients out:
    // past the budget, the oldest unattached one makes room.
    std::erase_if(unattached, [](const std::weak_ptr<Connection>& w) {
      auto c = w.lock();
      return !c || !c->unattached();
    });
    if (unattached.size() >= server.options().limits.max_unattached_connections) {
      evict = unattached.front().lock();
      unattached.pop_front();
    }
    unattached.push_back(conn);
  }
  if (evict) {
    spdlog::warn("{} connections not attached (limits.max_unattached_connections): closing the oldest",
                 server.options().limits.max_unattached_connections);
    evict->Close();
  }
  total.fetch_add(1);
  asio::co_spawn(loop, conn->Run(conn), [](std::exception_ptr e) { LogTaskFailure("connection", e); });
}

Awaitable<bool> Server::Impl::AcceptFailed(const boost::system::error_code& ec, const char* where) {
  if (stopping.load() || ec == asio::error::operation_aborted) co_return false;
  if (ec == asio::error::no_descriptors || ec.value() == ENFILE || ec.value() == ENOBUFS ||
      ec.value() == ENOMEM) {
    // The connection stays in the backlog and accept would fail again at
    // once: pause, so that closing connections can free descriptors.
    spdlog::warn("{}: {}; pausing accepts for 100 ms", where, ec.message());
    asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
    co_await pause.async_wait(kTuple);
    co_return !stopping.load();
  }
  spdlog::warn("{}: {}", where, ec.message());
  co_return true;
}

Awaitable<void> Server::Impl::AcceptTcp() {
  for (;;) {
    auto [ec, sock] = co_await tcp->async_accept(kTuple);
    if (ec) {
      if (!co_await AcceptFailed(ec, "accept")) co_return;
      continue;
    }
    boost::system::error_code ignored;
    sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    const auto ep = sock.remote_endpoint(ignored);
    Adopt(sock.release(), false, ep.address().to_string() + ":" + std::to_string(ep.port()));
  }
}

Awaitable<void> Server::Impl::AcceptUnix() {
  for (;;) {
    auto [ec, sock] = co_await unix_sock->async_accept(kTuple);
    if (ec) {
      if (!co_await AcceptFailed(ec, "accept on the Unix socket")) co_return;
      continue;
    }
    Adopt(sock.release(), true, "unix");
  }
}

// ---- Server ----

std::string LiveServerOn(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  std::string live;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    ucred cred{};
    socklen_t len = sizeof cred;
    const std::string who = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                                ? "process " + std::to_string(cred.pid)
                                : "another process";
    live = "network.unix_socket " + path + ": a server (" + who +
           ") is running there; stop it, or give this server its own network.unix_socket, "
           "network.address and drives";
  }
  ::close(fd);
  return live;
}

ServerOptions ToServerOptions(const Config& cfg) {
  ServerOptions opt;
  const HostPort data = DataAddress(cfg);
  opt.host = data.host;
  opt.port = data.port;
  opt.unix_socket = cfg.network.unix_socket;
  if (!cfg.network.auth_key.empty()) {
    auto key = proto::AuthKey::FromHex(cfg.network.auth_key);
    if (key) opt.auth_key = *key;  // Validate has checked it
  }
  opt.limits.max_value_size = cfg.limits.max_value_size;
  opt.limits.max_batch_entries = cfg.limits.max_batch_entries;
  opt.limits.max_inflight_per_connection = cfg.limits.max_inflight_per_connection;
  opt.limits.max_buffered_bytes_per_connection = cfg.limits.max_buffered_bytes_per_connection;
  opt.limits.max_sessions = cfg.limits.max_sessions;
  opt.limits.max_regions_per_session = cfg.limits.max_regions_per_session;
  opt.limits.stream_idle = std::chrono::seconds(cfg.limits.stream_idle_seconds);
  opt.limits.max_open_streams_per_session = cfg.limits.max_open_streams_per_session;
  opt.limits.attach_timeout = std::chrono::milliseconds(cfg.limits.attach_timeout_ms);
  opt.limits.max_unattached_connections = cfg.limits.max_unattached_connections;
  if (cfg.rdma.provider == "ofi" || cfg.rdma.provider == "verbs") {
    rdma::FabricOptions f;
    // verbs: rdma.device names the HCA (domain); ofi: the libfabric domain.
    f.provider = cfg.rdma.provider == "verbs" ? rdma::ProviderKind::kVerbs : rdma::ProviderKind::kOfi;
    f.ofi_provider = cfg.rdma.ofi_provider;
    f.domain = cfg.rdma.device;
    f.node = cfg.rdma.address.empty() ? (data.host == "localhost" ? "127.0.0.1" : data.host)
                                      : cfg.rdma.address;
    f.max_inflight_per_peer = cfg.rdma.max_inflight_per_peer;
    f.max_peers = std::max<uint32_t>(1, std::min<uint32_t>(cfg.limits.max_sessions, 1u << 16));
    opt.rdma = f;
    opt.rdma_chunk = cfg.memory.block_size;
    opt.rdma_transfer_timeout = std::chrono::milliseconds(cfg.rdma.transfer_timeout_ms);
  }
  return opt;
}

Server::Server(Loops& loops, store::Store& store, ServerOptions options)
    : loops_(loops),
      store_(store),
      options_(std::move(options)),
      sessions_(options_.limits.max_sessions),
      impl_(std::make_unique<Impl>(*this)) {}

Server::~Server() = default;

Status Server::Start() {
  asio::io_context& loop0 = loops_.loop(0);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options_.host == "localhost" ? "127.0.0.1" : options_.host, ec);
  if (ec) return ec;
  impl_->tcp = std::make_unique<asio::ip::tcp::acceptor>(loop0);
  const asio::ip::tcp::endpoint ep(addr, options_.port);
  impl_->tcp->open(ep.protocol(), ec);
  if (!ec) impl_->tcp->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->tcp->bind(ep, ec);
  if (!ec) impl_->tcp->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  port_ = impl_->tcp->local_endpoint().port();
  if (!options_.unix_socket.empty()) {
    std::error_code fec;
    const auto path = std::filesystem::path(options_.unix_socket);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), fec);
    // A socket a live server still answers on is never taken over.
    if (const std::string live = LiveServerOn(options_.unix_socket); !live.empty()) {
      spdlog::error("{}", live);
      return make_error_code(boost::system::errc::address_in_use);
    }
    ::unlink(options_.unix_socket.c_str());  // a stale socket of a process gone
    impl_->unix_sock = std::make_unique<asio::local::stream_protocol::acceptor>(loop0);
    const asio::local::stream_protocol::endpoint uep(options_.unix_socket);
    impl_->unix_sock->open(uep.protocol(), ec);
    if (!ec) impl_->unix_sock->bind(uep, ec);
    if (!ec) impl_->unix_sock->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec;
  }
  if (options_.rdma) {
    std::string why;
    auto fabric = rdma::Fabric::Open(*options_.rdma, loop0.get_executor(), &why);
    if (!fabric) {
      spdlog::error("the rdma rail: {}", why.empty() ? fabric.error().message() : why);
      return fabric.error();
    }
    impl_->fabric = std::move(*fabric);
    // Slabs of 16 MiB; at most 8 (128 MiB pinned) kept between requests.
    impl_->stage_pool = rdma::BufferPool::Create(
        std::make_shared<rdma::FabricRegistrar>(
            *impl_->fabric, rdma::access::kWriteFrom | rdma::access::kReadInto),
        {.slab_size = size_t{16} << 20, .max_idle_slabs = 8});
    impl_->rdma_endpoint = impl_->fabric->provider_name() + "|" + impl_->fabric->address();
    if (impl_->rdma_endpoint.size() > proto::kMaxNameSize) {
      spdlog::error("the rdma rail: the fabric address of {} is longer than an Attach carries",
                    impl_->fabric->provider_name());
      return make_error_code(boost::system::errc::address_not_available);
    }
    spdlog::info("the rdma rail: {} on {}", impl_->fabric->provider_name(),
                 options_.rdma->node.empty() ? "the provider's address" : options_.rdma->node);
  }
  asio::co_spawn(loop0, impl_->AcceptTcp(), [](std::exception_ptr e) { LogTaskFailure("accept", e); });
  if (impl_->unix_sock)
    asio::co_spawn(loop0, impl_->AcceptUnix(),
                   [](std::exception_ptr e) { LogTaskFailure("accept on the Unix socket", e); });
  return {};
}

void Server::Shutdown() {
  impl_->stopping.store(true);
  std::promise<void> closed;
  asio::post(loops_.loop(0), [this, &closed] {
    boost::system::error_code ignored;
    if (impl_->tcp) impl_->tcp->close(ignored);
    if (impl_->unix_sock) impl_->unix_sock->close(ignored);
    closed.set_value();
  });
  closed.get_future().wait();
  if (!options_.unix_socket.empty()) ::unlink(options_.unix_socket.c_str());
  std::vector<std::shared_ptr<Connection>> live;
  {
    MutexLock lock(impl_->mu);
    for (auto& w : impl_->connections)
      if (auto c = w.lock()) live.push_back(std::move(c));
    impl_->connections.clear();
  }
  for (auto& c : live) c->Close();
  const std::vector<std::weak_ptr<Connection>> closing(live.begin(), live.end());
  live.clear();
  const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_deadline;
  while (impl_->open.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (impl_->open.load() == 0) return StopFabric();
  // Past the deadline the rest are forced: closed again (a connection
  // accepted meanwhile too), and waited for whatever it takes, since their
  // suspended requests hold entries and buffers of the store that the
  // caller frees once this returns.
  spdlog::warn("{} connections still open after the shutdown deadline: forcing them closed",
               impl_->open.load());
  for (const auto& w : closing)
    if (auto c = w.lock()) c->Close();
  auto next_note = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (impl_->open.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (std::chrono::steady_clock::now() >= next_note) {
      spdlog::warn("waiting for {} connections to finish their requests", impl_->open.load());
      next_note += std::chrono::seconds(5);
    }
  }
  StopFabric();
}

// After the last connection: the fabric's operations drained and its
// endpoint closed, on its loop.
void Server::StopFabric() {
  if (!impl_->fabric || impl_->rdma_stopped.exchange(true)) return;
  std::promise<void> stopped;
  asio::co_spawn(loops_.loop(0),
                 [this, &stopped]() -> Awaitable<void> {
                   co_await impl_->fabric->Stop();  // destroyed with the server
                   stopped.set_value();
                 },
                 [](std::exception_ptr e) { LogTaskFailure("stopping the rdma rail", e); });
  stopped.get_future().wait();
}

const Metrics& Server::metrics() const { return impl_->metrics; }

ServerStats Server::stats() const {
  ServerStats s;
  s.connections_open = impl_->open.load();
  s.connections_total = impl_->total.load();
  s.requests = impl_->requests.load();
  s.protocol_errors = impl_->protocol_errors.load();
  s.sessions = sessions_.size();
  if (const rdma::Fabric* f = impl_->fabric.get()) {
    const rdma::FabricStats fs = f->stats();
    s.rdma_active = !impl_->rdma_stopped.load();
    s.rdma_provider = f->provider_name();
    s.rdma_peers = impl_->rdma_peers.load();
    s.rdma_bytes_written = fs.bytes_written;
    s.rdma_bytes_read = fs.bytes_read;
  }
  return s;
}

}  // namespace memkv::server
