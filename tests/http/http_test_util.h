#pragma once
// A raw HTTP/1.1 client over a blocking loopback socket, for tests that
// must send what no well-behaved client would (slow headers, huge bodies,
// bad requests).

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>
#include <cstdlib>
#include <optional>
#include <string>

namespace memkv::http::testing {

class RawHttp {
 public:
  explicit RawHttp(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawHttp() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawHttp(const RawHttp&) = delete;
  RawHttp& operator=(const RawHttp&) = delete;
  bool ok() const { return fd_ >= 0; }

  bool Send(std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  struct Reply {
    int status = 0;
    std::string head;  // status line and fields
    std::string body;
    std::string Field(std::string_view name) const {
      size_t at = 0;
      while ((at = head.find("\r\n", at)) != std::string::npos) {
        at += 2;
        if (head.size() >= at + name.size() + 1 &&
            ::strncasecmp(head.data() + at, name.data(), name.size()) == 0 &&
            head[at + name.size()] == ':') {
          size_t from = at + name.size() + 1;
          while (from < head.size() && head[from] == ' ') ++from;
          return head.substr(from, head.find("\r\n", from) - from);
        }
      }
      return {};
    }
  };

  // The next response (Content-Length bodies only), or nullopt on EOF,
  // error or `ms` without progress.
  std::optional<Reply> Read(int ms = 10000) {
    for (;;) {
      const size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        Reply r;
        r.head = buf_.substr(0, end);
        if (r.head.size() < 12) return std::nullopt;
        r.status = std::atoi(r.head.c_str() + 9);
        const std::string len = r.Field("Content-Length");
        const size_t n = len.empty() ? 0 : std::strtoull(len.c_str(), nullptr, 10);
        const bool head_only = r.status == 100 || skip_body_;
        while (!head_only && buf_.size() < end + 4 + n)
          if (!Fill(ms)) return std::nullopt;
        const size_t body = head_only ? 0 : n;
        r.body = buf_.substr(end + 4, body);
        buf_.erase(0, end + 4 + body);
        return r;
      }
      if (!Fill(ms)) return std::nullopt;
    }
  }
  void SkipBodies(bool skip) { skip_body_ = skip; }

  // Whether the server closed the connection within `ms` (unread replies
  // are drained first).
  bool ClosedWithin(int ms) {
    char c[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, ms) <= 0) return false;
      const ssize_t n = ::recv(fd_, c, sizeof c, 0);
      if (n <= 0) return true;
      buf_.append(c, static_cast<size_t>(n));
    }
  }
  const std::string& buffered() const { return buf_; }

 private:
  bool Fill(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
    char c[65536];
    const ssize_t n = ::recv(fd_, c, sizeof c, 0);
    if (n <= 0) return false;
    buf_.append(c, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
  bool skip_body_ = false;
};

}  // namespace memkv::http::testing
