#pragma once
// A fake memkv server for the client's unit tests (the real one is a
// separate module): a listening socket on loopback TCP or a Unix socket in
// a temp dir, one blocking thread per connection, the protocol spoken with
// the proto codec. Values live in a std::map shared by all connections.
//
// It answers queued frames in reverse order (up to `reorder` at a time), so
// concurrent requests see their replies out of order, and splits every batch
// reply into frames of at most `reply_split` results. Exists takes commands
// as keys: "__hold__" is answered only after the next frame's reply,
// "__noreply__" never, "__close__" closes the connection, "__replay__" is
// answered twice with the same bytes (a replayed reply). Values larger
// than a frame are streamed in chunks both ways (frames with chunks in them
// are answered in order); reads stream in chunks of `stream_chunk` bytes.
//
// It also offers what `features` says: List (a page of at most
// min(limit, list_page) keys after the cursor; the cursor is the last key
// when more remain), Capacity, Rename (entries answered Unsupported with
// `rename_unsupported`, so the client copies), open streams (kOpenStream
// writes: chunks checked in order, logged in chunk_log, the last one's
// checksum against the bytes; the reply comes after it, or at once with
// NoSpace past `open_stream_fail_after` bytes) and pinned reads (every put
// gets a new version; a read pinned to another one is VersionChanged).
// `stalled` stops it reading its connections (a server that fell behind).

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "proto/chunk.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace memkv::client::testing {

struct FakeServerOptions {
  std::optional<proto::AuthKey> key;
  bool unix_socket = false;
  uint32_t reply_split = 3;  // results per reply frame
  uint32_t reorder = 8;      // frames answered together, last first
  uint64_t stream_chunk = 3u << 20;  // bytes per ReadChunk
  bool page_sums = false;  // reads carry per-4 KiB sums instead of one XXH3
  // With kFeaturePlacedSteps in `features`: a shm entry larger than this,
  // read by a request flagged kFlagSteps, is announced kPlacedInSteps and
  // followed by ReadPlaced frames of this many bytes each.
  uint64_t placed_step = 1 << 20;
  bool drop_last_step = false;  // ends the reply without an entry's last ReadPlaced
  // Flips this byte of every value a read delivers inline or into a region,
  // after its checksums were taken (a byte damaged on the wire or in shm).
  std::optional<uint64_t> flip_byte;
  uint32_t features = proto::kFeatureList | proto::kFeatureCapacity | proto::kFeatureRename |
                      proto::kFeatureOpenStream | proto::kFeaturePinnedReads;
  uint32_t list_page = 1000;        // keys per ListReply at most
  bool rename_unsupported = false;  // Rename entries answered Unsupported
  uint64_t capacity_total = 1ull << 30;
  uint64_t max_value_size = 1ull << 30;
  std::optional<uint64_t> open_stream_fail_after;  // NoSpace once more bytes came
  // An Attach offering an rdma endpoint gets rails rdma and this endpoint
  // back ("<provider>|<address>"); unset: the offer is ignored.
  std::optional<std::string> rdma_answer;
};

// One WriteChunk of an open stream, as received.
struct ChunkLog {
  uint64_t request_id = 0;
  uint32_t seq = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  bool last = false;
  std::optional<uint64_t> checksum;
};

class FakeServer {
 public:
  explicit FakeServer(FakeServerOptions opts) : opts_(std::move(opts)) {
    if (opts_.unix_socket) {
      char tmpl[] = "/tmp/memkv_client_test_XXXXXX";
      if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
      dir_ = tmpl;
      address_ = dir_ + "/memkv.sock";
      listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::strncpy(sa.sun_path, address_.c_str(), sizeof sa.sun_path - 1);
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("bind unix");
    } else {
      listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("bind tcp");
      socklen_t len = sizeof sa;
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
      address_ = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    }
    ::listen(listen_fd_, 64);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    CloseAll();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads = std::move(threads_);
    }
    for (auto& t : threads) t.join();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  const std::string& address() const { return address_; }

  // Closes every connection (the client sees them break).
  void CloseAll() {
    std::lock_guard lock(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
  }

  // Values put directly (setup for List, Rename).
  void Put(const std::string& key, std::string_view value) {
    std::lock_guard lock(mu_);
    const auto* p = reinterpret_cast<const std::byte*>(value.data());
    store_[key] = Buffer(p, p + value.size());
    versions_[key] = ++next_version_;
  }
  std::vector<ChunkLog> Chunks() {
    std::lock_guard lock(mu_);
    return chunk_log_;
  }
  size_t Keys() {
    std::lock_guard lock(mu_);
    return store_.size();
  }

  std::optional<Buffer> Value(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = store_.find(key);
    if (it == store_.end()) return std::nullopt;
    return it->second;
  }

  std::atomic<int> attaches{0};
  // The rdma endpoint of the last Attach (its bytes).
  std::string rdma_offered() {
    std::lock_guard lock(offered_mu_);
    return rdma_offered_;
  }
  std::atomic<int> write_frames{0};       // BatchWrite requests received
  std::atomic<int> read_reply_frames{0};  // BatchRead reply frames sent
  std::atomic<int> regions_mapped{0};
  std::atomic<int> chunks_received{0};    // WriteChunk frames
  std::atomic<int> chunks_sent{0};        // ReadChunk frames
  std::atomic<int> steps_sent{0};         // ReadPlaced frames
  std::atomic<int> stepped_reads{0};      // BatchRead frames flagged kFlagSteps
  std::atomic<int> open_streams{0};       // open streams begun and not yet ended by a last chunk
  std::atomic<int> streams_discarded{0};  // open streams whose last chunk did not check out
  std::atomic<int> renames{0};            // entries renamed in place
  std::atomic<int> lists{0};              // List requests
  std::atomic<bool> stalled{false};

 private:
  struct Frame {
    proto::HeaderBytes raw{};
    proto::FrameHeader h;
    Buffer payload;
    std::vector<int> fds;
    Bytes control() const { return Bytes(payload.data(), h.control_len); }
    Bytes data() const { return Bytes(payload.data() + h.control_len, h.data_len); }
  };
  struct Region {
    std::byte* p = nullptr;
    uint64_t size = 0;
  };
  struct Session {
    int fd = -1;
    bool attached = false;
    std::map<uint32_t, Region> regions;
    std::optional<std::vector<Buffer>> held;
    bool answered = false;  // a reply other than the held one went out in this round
    // Protocol version 2: the session key Hello made (with a key), and the
    // sequence numbers each way.
    std::optional<proto::AuthKey> session_key;
    bool hello = false;
    uint64_t out_seq = 0;
    proto::SequenceCheck in_seq;
    bool replay_next = false;  // "__replay__": the next frame sent goes twice
    // BatchWrites waiting for their streamed entries' chunks, by request id.
    struct Stream {
      std::string key;
      uint64_t size = 0, checksum = 0;
      Buffer bytes;
      bool open = false;  // kOpenStream: size unknown, checksum on the last chunk
      uint32_t next_seq = 0;
      bool failed = false;  // answered early; its chunks are dropped
    };
    struct PendingWrite {
      proto::FrameHeader h;
      std::vector<proto::StatusCode> statuses;
      std::map<uint32_t, Stream> streams;  // by entry
    };
    std::map<uint64_t, PendingWrite> writes;
  };

  void AcceptLoop() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;
      }
      std::lock_guard lock(mu_);
      conns_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static bool RecvAll(int fd, std::byte* p, size_t n, std::vector<int>& fds) {
    while (n > 0) {
      iovec iov{p, n};
      alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = cbuf;
      msg.msg_controllen = sizeof cbuf;
      const ssize_t got = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; ++i) {
          int v;
          std::memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof v);
          fds.push_back(v);
        }
      }
      p += got;
      n -= static_cast<size_t>(got);
    }
    return true;
  }

  bool ReadFrame(int fd, Frame& f) {
    if (!RecvAll(fd, f.raw.data(), f.raw.size(), f.fds)) return false;
    auto h = proto::DecodeHeader(f.raw);
    if (!h) return false;
    f.h = *h;
    f.payload.resize(f.h.payload_len());
    return RecvAll(fd, f.payload.data(), f.payload.size(), f.fds);
  }

  static bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
  }

  static bool SendAll(int fd, const Buffer& b) {
    size_t at = 0;
    while (at < b.size()) {
      const ssize_t n = ::send(fd, b.data() + at, b.size() - at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }

  const proto::AuthKey* key() const { return opts_.key ? &*opts_.key : nullptr; }

  // Frames are built untagged and sealed (numbered, tagged with the session
  // key) as they are sent, in the order they go out.
  void AddReply(std::vector<Buffer>& out, const proto::FrameHeader& req, const Buffer& control,
                Bytes data = {}, bool more = false) {
    proto::FrameHeader h;
    h.opcode = req.opcode;
    h.request_id = req.request_id;
    h.flags = proto::kFlagResponse | (more ? proto::kFlagMore : 0);
    Buffer& b = out.emplace_back();
    proto::AppendFrame(b, h, control, data, nullptr);
  }
  bool SendFrame(Session& s, Buffer& frame) {
    proto::HeaderBytes raw;
    std::memcpy(raw.data(), frame.data(), raw.size());
    uint32_t control_len;
    std::memcpy(&control_len, frame.data() + 16, sizeof control_len);
    proto::SealHeader(raw, s.out_seq++, Bytes(frame.data() + raw.size(), control_len),
                      s.session_key ? &*s.session_key : nullptr);
    std::memcpy(frame.data(), raw.data(), raw.size());
    if (!SendAll(s.fd, frame)) return false;
    if (s.replay_next) {
      s.replay_next = false;
      return SendAll(s.fd, frame);
    }
    return true;
  }
  bool SendFrames(Session& s, std::vector<Buffer>& frames) {
    for (Buffer& b : frames)
      if (!SendFrame(s, b)) return false;
    return true;
  }
  void AddHead(std::vector<Buffer>& out, const proto::FrameHeader& req, proto::StatusCode s) {
    Buffer control;
    proto::Encode(proto::ReplyHead{s, proto::StatusName(s)}, control);
    AddReply(out, req, control);
  }
  // Splits `n` results into reply frames of at most reply_split.
  template <class Fill>
  void AddSplit(std::vector<Buffer>& out, const proto::FrameHeader& req, uint32_t n, Fill fill,
                bool more_after = false) {
    const uint32_t step = std::max<uint32_t>(1, opts_.reply_split);
    for (uint32_t first = 0; first < n || (n == 0 && first == 0); first += step) {
      const uint32_t count = std::min(step, n - first);
      Buffer control, data;
      fill(proto::BatchHead{n, first, count}, control, data);
      AddReply(out, req, control, data, first + count < n || more_after);
      if (n == 0) break;
    }
  }

  void Serve(int fd) {
    Session s;
    s.fd = fd;
    std::vector<Frame> batch;
    bool open = true;
    while (open) {
      while (stalled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      Frame f;
      // Numbered in the order they come (they are answered out of order).
      if (!ReadFrame(fd, f) || !s.in_seq.Accept(f.h)) break;
      batch.push_back(std::move(f));
      while (batch.size() < opts_.reorder && Readable(fd)) {
        Frame g;
        if (!ReadFrame(fd, g) || !s.in_seq.Accept(g.h)) {
          open = false;
          break;
        }
        batch.push_back(std::move(g));
      }
      s.answered = false;
      const bool in_order = std::any_of(batch.begin(), batch.end(), [](const Frame& x) {
        return x.h.opcode == proto::Opcode::kWriteChunk;
      });
      if (in_order) {
        for (auto it = batch.begin(); it != batch.end() && open; ++it) open = Handle(s, *it);
      } else {
        for (auto it = batch.rbegin(); it != batch.rend() && open; ++it) open = Handle(s, *it);
      }
      // A held reply goes out once some other frame has been answered after it arrived.
      if (open && s.held && s.answered) {
        open = SendFrames(s, *s.held);
        s.held.reset();
      }
      for (Frame& b : batch)
        for (int d : b.fds) ::close(d);
      batch.clear();
    }
    for (auto& [id, r] : s.regions) {
      ::munmap(r.p, r.size);
      --regions_mapped;
    }
    std::lock_guard lock(mu_);
    std::erase(conns_, fd);
    ::close(fd);
  }

  // Answers one frame; false closes the connection.
  bool Handle(Session& s, Frame& f) {
    std::vector<Buffer> out;
    bool hold = false;
    bool keep_open = Answer(s, f, out, hold);
    if (hold) {
      s.held = std::move(out);
      return keep_open;
    }
    if (!SendFrames(s, out)) return false;
    if (!out.empty()) s.answered = true;
    return keep_open;
  }

  bool Answer(Session& s, Frame& f, std::vector<Buffer>& out, bool& hold) {
    using proto::StatusCode;
    const proto::FrameHeader& h = f.h;
    if (!s.hello) {
      proto::Hello hello;
      if (h.opcode != proto::Opcode::kHello || !proto::Decode(f.control(), hello)) return false;
      proto::HelloReply r;
      r.nonce = proto::RandomNonce();
      Buffer control;
      proto::Encode(r, control);
      std::vector<Buffer> now;
      AddReply(now, h, control);
      if (!SendFrames(s, now)) return false;  // untagged: the session key comes after it
      if (key()) s.session_key = key()->Session(hello.nonce, r.nonce);
      s.hello = true;
      return true;
    }
    const proto::AuthKey* session_key = s.session_key ? &*s.session_key : nullptr;
    if (auto t = proto::VerifyTag(f.raw, h, f.control(), session_key); !t) {
      if (h.opcode == proto::Opcode::kAttach) {
        proto::AttachReply r;
        r.head = {StatusCode::kUnauthorized, "bad tag"};
        Buffer control;
        proto::Encode(r, control);
        AddReply(out, h, control);
      } else {
        AddHead(out, h, StatusCode::kProtocolError);
      }
      SendFrames(s, out);
      out.clear();
      return false;
    }
    if (h.opcode == proto::Opcode::kAttach) {
      proto::AttachRequest req;
      proto::AttachReply r;
      if (!proto::Decode(f.control(), req)) {
        r.head = {StatusCode::kProtocolError, "bad attach"};
      } else if (session_key &&
                 !proto::TagsEqual(proto::AttachProof(*session_key, req.client_id), req.proof)) {
        r.head = {StatusCode::kUnauthorized, "bad proof"};
      } else {
        r.session_id = 42;
        r.rails = proto::kRailTcp | (opts_.unix_socket ? proto::kRailShm : 0);
        r.host_id = "fake-host";
        r.unix_socket = opts_.unix_socket ? std::string_view(address_) : std::string_view();
        r.max_value_size = 1ull << 30;
        r.max_batch_entries = 0;
        r.max_inflight = 0;
        r.features = opts_.features;
        {
          std::lock_guard lock(offered_mu_);
          rdma_offered_ = std::string(req.rdma_endpoint);
        }
        if (opts_.rdma_answer && !req.rdma_endpoint.empty()) {
          r.rails |= proto::kRailRdma;
          r.rdma_endpoint = *opts_.rdma_answer;
        }
      }
      Buffer control;
      proto::Encode(r, control);
      AddReply(out, h, control);
      if (r.head.status != StatusCode::kOk) {
        SendFrames(s, out);
        out.clear();
        return false;
      }
      s.attached = true;
      ++attaches;
      return true;
    }
    if (!s.attached) {
      AddHead(out, h, StatusCode::kNotAttached);
      return true;
    }
    switch (h.opcode) {
      case proto::Opcode::kPing: {
        proto::Ping p;
        if (!proto::Decode(f.control(), p)) return false;
        Buffer control;
        proto::Encode(p, control);
        AddReply(out, h, control);
        return true;
      }
      case proto::Opcode::kExists:
      case proto::Opcode::kDelete: {
        proto::KeysRequest req;
        if (!proto::Decode(f.control(), req)) return false;
        std::vector<proto::ExistsResult> results;
        for (std::string_view k : req.keys) {
          if (k == "__hold__") hold = true;
          if (k == "__noreply__") return true;
          if (k == "__close__") return false;
          if (k == "__replay__") s.replay_next = true;
          std::lock_guard lock(mu_);
          auto it = store_.find(std::string(k));
          if (it == store_.end()) {
            results.push_back({StatusCode::kNotFound, 0});
            continue;
          }
          results.push_back({StatusCode::kOk, it->second.size(), versions_[it->first]});
          if (h.opcode == proto::Opcode::kDelete) {
            store_.erase(it);
            versions_.erase(std::string(k));
          }
        }
        const bool exists = h.opcode == proto::Opcode::kExists;
        AddSplit(out, h, static_cast<uint32_t>(results.size()),
                 [&](proto::BatchHead b, Buffer& control, Buffer&) {
                   if (exists) {
                     proto::ExistsReply r;
                     r.batch = b;
                     r.results.assign(results.begin() + b.first, results.begin() + b.first + b.count);
                     proto::Encode(r, control);
                   } else {
                     proto::StatusReply r;
                     r.batch = b;
                     for (uint32_t i = b.first; i < b.first + b.count; ++i)
                       r.statuses.push_back(results[i].status);
                     proto::Encode(r, control);
                   }
                 });
        return true;
      }
      case proto::Opcode::kBatchWrite: {
        ++write_frames;
        proto::BatchWriteRequest req;
        if (!proto::Decode(f.control(), f.data(), req)) return false;
        std::vector<StatusCode> statuses;
        size_t at = 0;
        for (const proto::WriteEntry& e : req.entries) {
          Bytes bytes;
          if (e.src.kind == proto::LocationKind::kInline) {
            bytes = req.data.subspan(at, e.value_len);
            at += e.value_len;
          } else if (e.src.kind == proto::LocationKind::kShm) {
            auto it = s.regions.find(e.src.region);
            if (it == s.regions.end() || e.src.address + e.value_len > it->second.size ||
                e.value_len > e.src.capacity) {
              statuses.push_back(StatusCode::kBadRegion);
              continue;
            }
            bytes = Bytes(it->second.p + e.src.address, e.value_len);
          } else if (e.src.kind == proto::LocationKind::kStream) {
            auto& st = s.writes[h.request_id];
            st.h = h;
            st.streams[static_cast<uint32_t>(statuses.size())] = {std::string(e.key), e.value_len,
                                                                 e.checksum, {}};
            statuses.push_back(StatusCode::kOk);  // decided by its chunks
            continue;
          } else if (e.src.kind == proto::LocationKind::kOpenStream) {
            if (!(opts_.features & proto::kFeatureOpenStream)) {
              statuses.push_back(StatusCode::kUnsupported);
              continue;
            }
            auto& st = s.writes[h.request_id];
            st.h = h;
            auto& os = st.streams[static_cast<uint32_t>(statuses.size())];
            os = {std::string(e.key), 0, 0, {}};
            os.open = true;
            ++open_streams;
            statuses.push_back(StatusCode::kOk);
            continue;
          } else {
            statuses.push_back(StatusCode::kInvalidArgument);
            continue;
          }
          if (!proto::ChecksumsMatch(e, bytes)) {
            statuses.push_back(StatusCode::kChecksumMismatch);
            continue;
          }
          std::lock_guard lock(mu_);
          store_[std::string(e.key)] = Buffer(bytes.begin(), bytes.end());
          versions_[std::string(e.key)] = ++next_version_;
          statuses.push_back(StatusCode::kOk);
        }
        if (auto w = s.writes.find(h.request_id); w != s.writes.end()) {
          w->second.statuses = statuses;  // answered once the chunks are in
          return true;
        }
        AddSplit(out, h, static_cast<uint32_t>(statuses.size()),
                 [&](proto::BatchHead b, Buffer& control, Buffer&) {
                   proto::StatusReply r;
                   r.batch = b;
                   r.statuses.assign(statuses.begin() + b.first, statuses.begin() + b.first + b.count);
                   proto::Encode(r, control);
                 });
        return true;
      }
      case proto::Opcode::kBatchRead: {
        proto::BatchReadRequest req;
        if (!proto::Decode(f.control(), f.data(), req)) return false;
        std::vector<proto::ReadResult> results;
        std::vector<Buffer> bytes;
        std::deque<std::vector<uint64_t>> sums_kept;  // the replies' page sums point here
        bool streamed = false;
        const bool steps = (opts_.features & proto::kFeaturePlacedSteps) && (h.flags & proto::kFlagSteps);
        if (h.flags & proto::kFlagSteps) ++stepped_reads;
        std::vector<size_t> stepped;  // entries placed in steps
        for (const proto::ReadEntry& e : req.entries) {
          proto::ReadResult& r = results.emplace_back();
          Buffer& b = bytes.emplace_back();
          std::lock_guard lock(mu_);
          auto it = store_.find(std::string(e.key));
          if (it == store_.end()) {
            r.status = StatusCode::kNotFound;
            continue;
          }
          const Buffer& v = it->second;
          r.value_size = v.size();
          r.version = versions_[it->first];
          if ((opts_.features & proto::kFeaturePinnedReads) && e.version && e.version != r.version) {
            r.status = StatusCode::kVersionChanged;
            continue;
          }
          if (e.offset > v.size() || (e.length && e.offset + e.length > v.size())) {
            r.status = StatusCode::kRangeOutOfBounds;
            continue;
          }
          const uint64_t len = e.length ? e.length : v.size() - e.offset;
          Bytes piece(v.data() + e.offset, len);
          r.length = len;
          r.checksum = Xxh3(piece);
          const bool streams = e.dest.kind == proto::LocationKind::kInline && len > proto::kMaxPayload - 4096;
          if (opts_.page_sums && !streams) {
            auto& sums = sums_kept.emplace_back(PiecesOf(len));
            PieceSums(piece.data(), len, sums.data());
            r.page_sums = Bytes(reinterpret_cast<const std::byte*>(sums.data()), 8 * sums.size());
            r.checksum = 0;
          }
          Buffer damaged;
          if (opts_.flip_byte && *opts_.flip_byte < len && !streams) {
            damaged.assign(piece.begin(), piece.end());
            damaged[*opts_.flip_byte] ^= std::byte{0x40};
            piece = Bytes(damaged.data(), len);
          }
          if (streams) {
            r.delivery = proto::Delivery::kStreamed;
            r.checksum = 0;
            b.assign(piece.begin(), piece.end());
            streamed = true;
          } else if (e.dest.kind == proto::LocationKind::kShm) {
            auto rg = s.regions.find(e.dest.region);
            if (rg == s.regions.end() || e.dest.address + e.dest.capacity > rg->second.size) {
              r = {StatusCode::kBadRegion, proto::Delivery::kNone, v.size(), 0, 0};
              continue;
            }
            if (len > e.dest.capacity) {
              r = {StatusCode::kBufferTooSmall, proto::Delivery::kNone, v.size(), 0, 0};
              continue;
            }
            std::memcpy(rg->second.p + e.dest.address, piece.data(), len);
            r.delivery = proto::Delivery::kPlaced;
            if (steps && !r.page_sums.empty() && len > opts_.placed_step) {
              r.delivery = proto::Delivery::kPlacedInSteps;
              stepped.push_back(results.size() - 1);
            }
          } else {
            r.delivery = proto::Delivery::kInline;
            b.assign(piece.begin(), piece.end());
          }
        }
        AddSplit(out, h, static_cast<uint32_t>(results.size()),
                 [&](proto::BatchHead b, Buffer& control, Buffer& data) {
                   ++read_reply_frames;
                   proto::BatchReadReply r;
                   r.batch = b;
                   r.results.assign(results.begin() + b.first, results.begin() + b.first + b.count);
                   for (uint32_t i = b.first; i < b.first + b.count; ++i)
                     if (results[i].delivery == proto::Delivery::kInline)
                       data.insert(data.end(), bytes[i].begin(), bytes[i].end());
                   proto::Encode(r, control);
                 },
                 streamed || !stepped.empty());
        std::vector<proto::PlacedStep> placed_steps;
        for (size_t i : stepped) {
          uint32_t seq = 0;
          for (uint64_t off = 0; off < results[i].length; off += opts_.placed_step) {
            const uint64_t n = std::min(opts_.placed_step, results[i].length - off);
            placed_steps.push_back({static_cast<uint32_t>(i), seq++, off, n, off + n == results[i].length});
          }
        }
        if (opts_.drop_last_step && !placed_steps.empty()) placed_steps.pop_back();
        proto::FrameHeader sh = h;
        sh.opcode = proto::Opcode::kReadPlaced;
        for (size_t k = 0; k < placed_steps.size(); ++k) {
          Buffer control;
          proto::Encode(placed_steps[k], control);
          AddReply(out, sh, control, {}, k + 1 < placed_steps.size() || streamed);
          ++steps_sent;
        }
        if (!streamed) return true;
        size_t last = 0;
        for (size_t i = 0; i < results.size(); ++i)
          if (results[i].delivery == proto::Delivery::kStreamed) last = i;
        proto::FrameHeader ch = h;
        ch.opcode = proto::Opcode::kReadChunk;
        for (size_t i = 0; i < results.size(); ++i) {
          if (results[i].delivery != proto::Delivery::kStreamed) continue;
          const Buffer& v = bytes[i];
          for (proto::ChunkHeader c : proto::PlanChunks(static_cast<uint32_t>(i), v.size(),
                                                        opts_.stream_chunk)) {
            if (c.last) c.checksum = Xxh3(v);
            Buffer control;
            proto::Encode(c, control);
            const uint64_t n = std::min<uint64_t>(opts_.stream_chunk, v.size() - c.offset);
            AddReply(out, ch, control, Bytes(v.data() + c.offset, n), !(c.last && i == last));
            ++chunks_sent;
          }
        }
        return true;
      }
      case proto::Opcode::kWriteChunk: {
        ++chunks_received;
        proto::ChunkHeader c;
        if (!proto::Decode(f.control(), f.data(), c)) return false;
        auto w = s.writes.find(h.request_id);
        if (w == s.writes.end() || !w->second.streams.count(c.entry)) {
          AddHead(out, h, StatusCode::kChunkOutOfOrder);
          return true;
        }
        auto& st = w->second.streams[c.entry];
        if (st.open) return OpenChunk(s, out, h, c, f.data(), w);
        if (c.offset != st.bytes.size() || c.offset + f.data().size() > st.size) {
          w->second.statuses[c.entry] = StatusCode::kChunkOutOfOrder;
        } else {
          st.bytes.insert(st.bytes.end(), f.data().begin(), f.data().end());
        }
        if (!c.last) return true;
        StatusCode& status = w->second.statuses[c.entry];
        if (status == StatusCode::kOk && (st.bytes.size() != st.size || Xxh3(st.bytes) != st.checksum))
          status = StatusCode::kChecksumMismatch;
        if (status == StatusCode::kOk) {
          std::lock_guard lock(mu_);
          versions_[st.key] = ++next_version_;
          store_[st.key] = std::move(st.bytes);
        }
        w->second.streams.erase(c.entry);
        if (!w->second.streams.empty()) return true;
        ReplyWrite(out, w->second.h, w->second.statuses);
        s.writes.erase(w);
        return true;
      }
      case proto::Opcode::kList: {
        if (!(opts_.features & proto::kFeatureList)) {
          AddHead(out, h, StatusCode::kUnsupported);
          return true;
        }
        proto::ListRequest req;
        if (!proto::Decode(f.control(), req)) return false;
        ++lists;
        std::vector<std::string> keys;
        std::vector<proto::ListEntry> entries;
        proto::ListReply r;
        {
          std::lock_guard lock(mu_);
          auto it = req.cursor.empty() ? store_.begin() : store_.upper_bound(std::string(req.cursor));
          const uint32_t max = std::min(req.limit, opts_.list_page);
          for (; it != store_.end(); ++it) {
            if (!it->first.starts_with(req.prefix)) continue;
            if (keys.size() == max) break;
            keys.push_back(it->first);
            entries.push_back({{}, it->second.size(), versions_[it->first]});
          }
          bool more = false;
          for (; it != store_.end() && !more; ++it) more = it->first.starts_with(req.prefix);
          for (size_t i = 0; i < keys.size(); ++i) entries[i].key = keys[i];
          r.entries = entries;
          r.cursor = more && !keys.empty() ? std::string_view(keys.back()) : std::string_view();
          Buffer control;
          proto::Encode(r, control);
          AddReply(out, h, control);
        }
        return true;
      }
      case proto::Opcode::kCapacity: {
        if (!(opts_.features & proto::kFeatureCapacity)) {
          AddHead(out, h, StatusCode::kUnsupported);
          return true;
        }
        proto::CapacityReply r;
        {
          std::lock_guard lock(mu_);
          r.total_bytes = opts_.capacity_total;
          for (const auto& [k, v] : store_) r.used_bytes += v.size();
          r.keys = store_.size();
        }
        r.max_value_size = opts_.max_value_size;
        Buffer control;
        proto::Encode(r, control);
        AddReply(out, h, control);
        return true;
      }
      case proto::Opcode::kRename: {
        if (!(opts_.features & proto::kFeatureRename)) {
          AddHead(out, h, StatusCode::kUnsupported);
          return true;
        }
        proto::RenameRequest req;
        if (!proto::Decode(f.control(), req)) return false;
        std::vector<StatusCode> statuses;
        for (const proto::RenameEntry& e : req.entries) {
          if (opts_.rename_unsupported) {
            statuses.push_back(StatusCode::kUnsupported);
            continue;
          }
          std::lock_guard lock(mu_);
          auto it = store_.find(std::string(e.from));
          if (it == store_.end()) {
            statuses.push_back(StatusCode::kNotFound);
            continue;
          }
          Buffer v = std::move(it->second);
          store_.erase(it);
          versions_.erase(std::string(e.from));
          store_[std::string(e.to)] = std::move(v);
          versions_[std::string(e.to)] = ++next_version_;
          ++renames;
          statuses.push_back(StatusCode::kOk);
        }
        ReplyWrite(out, h, statuses);
        return true;
      }
      case proto::Opcode::kRegisterRegion: {
        proto::RegisterRegion req;
        if (!proto::Decode(f.control(), req)) return false;
        StatusCode st = StatusCode::kOk;
        if (f.fds.empty() || s.regions.count(req.region_id)) {
          st = StatusCode::kBadRegion;
        } else {
          const int rfd = f.fds.front();
          struct stat sb {};
          const int seals = ::fcntl(rfd, F_GET_SEALS);
          if (seals < 0 || !(seals & F_SEAL_SHRINK) || ::fstat(rfd, &sb) != 0 ||
              static_cast<uint64_t>(sb.st_size) < req.size) {
            st = StatusCode::kBadRegion;
          } else {
            void* p = ::mmap(nullptr, req.size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
            if (p == MAP_FAILED) {
              st = StatusCode::kBadRegion;
            } else {
              s.regions[req.region_id] = {static_cast<std::byte*>(p), req.size};
              ++regions_mapped;
            }
          }
        }
        AddHead(out, h, st);
        return true;
      }
      case proto::Opcode::kReleaseRegion: {
        proto::ReleaseRegion req;
        if (!proto::Decode(f.control(), req)) return false;
        auto it = s.regions.find(req.region_id);
        if (it == s.regions.end()) {
          AddHead(out, h, StatusCode::kBadRegion);
          return true;
        }
        ::munmap(it->second.p, it->second.size);
        --regions_mapped;
        s.regions.erase(it);
        AddHead(out, h, StatusCode::kOk);
        return true;
      }
      default:
        AddHead(out, h, StatusCode::kProtocolError);
        return false;
    }
  }

  void ReplyWrite(std::vector<Buffer>& out, const proto::FrameHeader& h,
                  const std::vector<proto::StatusCode>& statuses) {
    AddSplit(out, h, static_cast<uint32_t>(statuses.size()),
             [&](proto::BatchHead b, Buffer& control, Buffer&) {
               proto::StatusReply r;
               r.batch = b;
               r.statuses.assign(statuses.begin() + b.first, statuses.begin() + b.first + b.count);
               proto::Encode(r, control);
             });
  }

  // A chunk of an open stream: in order, from offset 0; the last one's
  // checksum decides. A stream answered early drops its chunks.
  template <class It>
  bool OpenChunk(Session& s, std::vector<Buffer>& out, const proto::FrameHeader& h,
                 const proto::ChunkHeader& c, Bytes data, It w) {
    using proto::StatusCode;
    auto& st = w->second.streams[c.entry];
    {
      std::lock_guard lock(mu_);
      chunk_log_.push_back({h.request_id, c.seq, c.offset, data.size(), c.last, c.checksum});
    }
    StatusCode& status = w->second.statuses[c.entry];
    if (!st.failed) {
      if (c.seq != st.next_seq || c.offset != st.bytes.size()) status = StatusCode::kChunkOutOfOrder;
      st.bytes.insert(st.bytes.end(), data.begin(), data.end());
      ++st.next_seq;
      if (status == StatusCode::kOk && opts_.open_stream_fail_after &&
          st.bytes.size() > *opts_.open_stream_fail_after) {
        status = StatusCode::kNoSpace;
        st.failed = true;
        ++streams_discarded;
        ReplyWrite(out, w->second.h, w->second.statuses);  // at once, before the last chunk
      }
    }
    if (!c.last) return true;
    --open_streams;
    if (!st.failed) {
      if (status == StatusCode::kOk && (!c.checksum || *c.checksum != Xxh3(st.bytes)))
        status = StatusCode::kChecksumMismatch;
      if (status == StatusCode::kOk) {
        std::lock_guard lock(mu_);
        versions_[st.key] = ++next_version_;
        store_[st.key] = std::move(st.bytes);
      } else {
        ++streams_discarded;
      }
    }
    const bool answered = st.failed;
    w->second.streams.erase(c.entry);
    if (!w->second.streams.empty()) return true;
    if (!answered) ReplyWrite(out, w->second.h, w->second.statuses);
    s.writes.erase(w);
    return true;
  }

  FakeServerOptions opts_;
  std::string dir_;
  std::string address_;
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::mutex offered_mu_;
  std::string rdma_offered_;
  std::vector<int> conns_;                // guarded by mu_
  std::vector<std::thread> threads_;      // guarded by mu_
  std::map<std::string, Buffer> store_;   // guarded by mu_
  std::map<std::string, uint64_t> versions_;  // guarded by mu_
  uint64_t next_version_ = 0;                 // guarded by mu_
  std::vector<ChunkLog> chunk_log_;           // guarded by mu_
};

}  // namespace memkv::client::testing
