#pragma once
// A real `memkv server` process on loopback for integration tests, and a
// raw protocol client that speaks frames with the proto codec (so tests can
// send what no well-behaved client would).

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proto/frame.h"
#include "proto/messages.h"

namespace memkv::testing {

inline uint16_t FreePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// A free port whose next port is free too (the server's admin HTTP listens
// on port + 1).
inline uint16_t FreePortPair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint16_t port = FreePort();
    if (port == 0 || port == 65535) continue;
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port + 1));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    if (free) return port;
  }
  return FreePort();
}

inline int ConnectTcp(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

inline int ConnectUnix(const std::string& path) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// The server, started in the constructor with `args` after `memkv server`,
// stopped with SIGTERM in Stop() (or the destructor).
class ServerProcess {
 public:
  // With `log`, the server's stderr goes to that file.
  ServerProcess(const std::string& dir, std::vector<std::string> extra, std::string log = {})
      : dir_(dir) {
    port_ = FreePortPair();
    socket_ = dir + "/memkv.sock";
    std::vector<std::string> args = {MEMKV_BINARY, "--log-level", "warn", "server",
                                     "--address", "127.0.0.1:" + std::to_string(port_),
                                     "--unix-socket", socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::chdir(dir.c_str()) != 0) _exit(126);
      if (!log.empty()) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    // Ready when it accepts.
    for (int i = 0; i < 300; ++i) {
      int s = ConnectTcp(port_);
      if (s >= 0) {
        ::close(s);
        ready_ = true;
        break;
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServerProcess() { Stop(); }

  // SIGTERM and wait; the exit status (-1 if it was gone already).
  int Stop() {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_status_;
  }

  bool ready() const { return ready_; }
  int exit_status() const { return exit_status_; }
  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return static_cast<uint16_t>(port_ + 1); }
  const std::string& socket_path() const { return socket_; }
  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  std::string socket_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
  int exit_status_ = -1;
};

// Frames over a socket, blocking, with a deadline on every read.
class RawClient {
 public:
  explicit RawClient(int fd, const proto::AuthKey* key = nullptr) : fd_(fd), key_(key) {}
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool SendBytes(const void* p, size_t n, int pass_fd = -1) {
    const char* c = static_cast<const char*>(p);
    bool first = true;
    while (n > 0) {
      iovec iov{const_cast<char*>(c), n};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
      if (first && pass_fd >= 0) {
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
      }
      const ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (w <= 0) return false;
      c += w;
      n -= static_cast<size_t>(w);
      first = false;
    }
    return true;
  }

  // Sends a frame numbered in sequence and, after Hello with a key, tagged
  // with the session key. With record(), its bytes are kept (to replay).
  bool Send(proto::Opcode op, const proto::Buffer& control, proto::Bytes data = {},
            uint64_t id = 1, int pass_fd = -1, uint16_t version = proto::kProtocolVersion,
            uint8_t flags = 0) {
    proto::FrameHeader h;
    h.opcode = op;
    h.flags = flags;
    h.request_id = id;
    h.version = version;
    h.seq = version == 1 ? 0 : out_seq_++;
    h.control_len = static_cast<uint32_t>(control.size());
    h.data_len = static_cast<uint32_t>(data.size());
    const proto::AuthKey* key = version == 1 ? key_ : session();
    const auto raw = proto::EncodeHeader(h, control, key);
    proto::Buffer all(raw.begin(), raw.end());
    all.insert(all.end(), control.begin(), control.end());
    all.insert(all.end(), data.begin(), data.end());
    if (record_) recorded_.push_back(all);
    return SendBytes(all.data(), all.size(), pass_fd);
  }

  // Sends only the first `keep` bytes of such a frame (a peer cut off
  // mid-frame); the frame still takes its sequence number.
  bool SendCut(proto::Opcode op, const proto::Buffer& control, proto::Bytes data, uint64_t id,
               size_t keep) {
    const proto::Buffer all = Encoded(op, control, data, id);
    return SendBytes(all.data(), std::min(keep, all.size()));
  }

  // The bytes of the next frame, for the caller to send; it takes its
  // sequence number now.
  proto::Buffer Encoded(proto::Opcode op, const proto::Buffer& control, proto::Bytes data,
                        uint64_t id) {
    proto::FrameHeader h;
    h.opcode = op;
    h.request_id = id;
    h.seq = out_seq_++;
    h.control_len = static_cast<uint32_t>(control.size());
    h.data_len = static_cast<uint32_t>(data.size());
    const auto raw = proto::EncodeHeader(h, control, session());
    proto::Buffer all(raw.begin(), raw.end());
    all.insert(all.end(), control.begin(), control.end());
    all.insert(all.end(), data.begin(), data.end());
    return all;
  }

  // Keeps the bytes of every frame sent from now on.
  void record() { record_ = true; }
  const std::vector<proto::Buffer>& recorded() const { return recorded_; }

  struct Frame {
    proto::FrameHeader header;
    proto::Buffer control, data;
  };

  // The next frame, or nullopt on EOF, error or after `ms` without one.
  std::optional<Frame> Recv(int ms = 10000) {
    proto::HeaderBytes raw;
    if (!ReadExactly(raw.data(), raw.size(), ms)) return std::nullopt;
    auto h = proto::DecodeHeader(raw);
    if (!h) return std::nullopt;
    Frame f{*h, proto::Buffer(h->control_len), proto::Buffer(h->data_len)};
    if (!ReadExactly(f.control.data(), f.control.size(), ms)) return std::nullopt;
    if (!ReadExactly(f.data.data(), f.data.size(), ms)) return std::nullopt;
    // A client without the key still reads replies (a server with a key tags
    // them all): it checks tags and order only when it has the key.
    if (key_ && h->version >= 2 && !proto::VerifyTag(raw, *h, f.control, session())) return std::nullopt;
    if (key_ && h->version >= 2 && !in_seq_.Accept(*h)) return std::nullopt;
    return f;
  }

  // Hello: nonces both ways; with a key, the session key from then on.
  std::optional<proto::HelloReply> Hello() {
    proto::Hello hello;
    hello.nonce = proto::RandomNonce();
    proto::Buffer b;
    proto::Encode(hello, b);
    if (!Send(proto::Opcode::kHello, b)) return std::nullopt;
    auto f = Recv();
    if (!f) return std::nullopt;
    hello_storage_ = f->control;
    proto::HelloReply r;
    if (!proto::Decode(hello_storage_, r)) return std::nullopt;
    client_nonce_ = hello.nonce;
    server_nonce_ = r.nonce;
    if (key_) session_ = key_->Session(hello.nonce, r.nonce);
    said_hello_ = true;
    return r;
  }

  // Whether the peer has closed the connection (EOF within `ms`).
  bool Closed(int ms = 5000) {
    char c;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
    return ::recv(fd_, &c, 1, MSG_PEEK) <= 0;  // EOF, or a reset (unread data at close)
  }

  // Attach with this client's key; the reply.
  std::optional<proto::AttachReply> Attach(std::string host = "test-host",
                                           const proto::AuthKey* proof_key = nullptr) {
    if (!said_hello_ && !Hello()) return std::nullopt;
    proto::AttachRequest a;
    a.host_id = host;
    if (proof_key) {
      a.proof = proto::AttachProof(proof_key->Session(client_nonce_, server_nonce_), a.client_id);
    } else if (session_) {
      a.proof = proto::AttachProof(*session_, a.client_id);
    }
    proto::Buffer b;
    proto::Encode(a, b);
    if (!Send(proto::Opcode::kAttach, b)) return std::nullopt;
    auto f = Recv();
    if (!f) return std::nullopt;
    reply_storage_ = f->control;
    proto::AttachReply r;
    if (!proto::Decode(reply_storage_, r)) return std::nullopt;
    return r;
  }

 private:
  bool ReadExactly(std::byte* p, size_t n, int ms) {
    size_t got = 0;
    while (got < n) {
      pollfd pf{fd_, POLLIN, 0};
      if (::poll(&pf, 1, ms) <= 0) return false;
      const ssize_t r = ::recv(fd_, p + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }

  const proto::AuthKey* session() const { return session_ ? &*session_ : nullptr; }

  int fd_;
  const proto::AuthKey* key_;
  std::optional<proto::AuthKey> session_;
  proto::Nonce client_nonce_{}, server_nonce_{};
  bool said_hello_ = false;
  uint64_t out_seq_ = 0;
  proto::SequenceCheck in_seq_;
  bool record_ = false;
  std::vector<proto::Buffer> recorded_;
  proto::Buffer reply_storage_, hello_storage_;
};

}  // namespace memkv::testing
