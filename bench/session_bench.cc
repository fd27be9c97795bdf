// session_bench: the server's memory per idle session. Starts a `memkv
// server` (memory mode) on loopback, attaches N idle sessions over TCP, and
// reports the server's resident memory per session beside the kernel's TCP
// socket memory for the same sockets (/proc/net/sockstat, both ends: the
// clients live on this machine too).
//
// Usage: session_bench [--sessions N] [--memkv PATH]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/frame.h"
#include "proto/messages.h"

namespace {

long VmRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Pages of memory the kernel's TCP sockets hold ("TCP: ... mem N").
long TcpMemPages() {
  std::ifstream in("/proc/net/sockstat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("TCP:", 0) != 0) continue;
    std::istringstream l(line);
    std::string word;
    while (l >> word)
      if (word == "mem") {
        long pages = 0;
        l >> pages;
        return pages;
      }
  }
  return -1;
}

int Connect(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// Sends one frame (numbered `seq`) and reads the one reply's control bytes.
bool RoundTrip(int s, memkv::proto::Opcode op, const memkv::proto::Buffer& control, uint64_t seq,
               memkv::proto::Buffer& reply) {
  using namespace memkv::proto;
  Buffer frame;
  FrameHeader h;
  h.opcode = op;
  h.request_id = seq + 1;
  h.seq = seq;
  AppendFrame(frame, h, control, {}, nullptr);
  if (::send(s, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
    return false;
  HeaderBytes raw;
  size_t got = 0;
  while (got < raw.size()) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    const ssize_t n = ::recv(s, raw.data() + got, raw.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  auto header = DecodeHeader(raw);
  if (!header) return false;
  reply.resize(header->payload_len());
  got = 0;
  while (got < reply.size()) {
    const ssize_t n = ::recv(s, reply.data() + got, reply.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  reply.resize(header->control_len);
  return true;
}

// Hello, then Attach (no auth key: the server under test has none).
bool Attach(int s) {
  using namespace memkv::proto;
  Buffer control, reply;
  Encode(Hello{}, control);
  HelloReply hello;
  if (!RoundTrip(s, Opcode::kHello, control, 0, reply) || !Decode(reply, hello) ||
      hello.head.status != StatusCode::kOk)
    return false;
  AttachRequest req;
  req.host_id = "session-bench";
  control.clear();
  Encode(req, control);
  AttachReply rep;
  return RoundTrip(s, Opcode::kAttach, control, 1, reply) && Decode(reply, rep) &&
         rep.head.status == StatusCode::kOk;
}

}  // namespace

int main(int argc, char** argv) {
  int sessions = 1000;
  std::string memkv = MEMKV_BINARY;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--sessions") == 0) sessions = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--memkv") == 0) memkv = argv[i + 1];
  }
  // A free port, then the server on it.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  ::close(probe);
  char dir[] = "/tmp/memkv-session-bench-XXXXXX";
  if (!::mkdtemp(dir)) return 1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string address = "127.0.0.1:" + std::to_string(port);
    const std::string sock = std::string(dir) + "/memkv.sock";
    const std::string limit = "limits.max_sessions=" + std::to_string(sessions + 10);
    ::execl(memkv.c_str(), memkv.c_str(), "--log-level", "warn", "server", "--mode", "memory",
            "--threads", "2", "--address", address.c_str(), "--unix-socket", sock.c_str(), "--set",
            limit.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int ready = -1;
  for (int i = 0; i < 200 && ready < 0; ++i) {
    ready = Connect(port);
    if (ready < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (ready < 0) {
    std::fprintf(stderr, "session_bench: the server did not start (%s)\n", memkv.c_str());
    return 1;
  }
  ::close(ready);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long rss_before = VmRssKib(pid);
  const long tcp_before = TcpMemPages();
  std::vector<int> socks;
  for (int i = 0; i < sessions; ++i) {
    const int s = Connect(port);
    if (s < 0 || !Attach(s)) {
      std::fprintf(stderr, "session_bench: session %d failed to attach\n", i);
      break;
    }
    socks.push_back(s);
    if (isatty(STDERR_FILENO) && i % 100 == 99) std::fprintf(stderr, "\r%d sessions", i + 1);
  }
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long rss_after = VmRssKib(pid);
  const long tcp_after = TcpMemPages();
  const double n = static_cast<double>(socks.size());
  std::printf("idle sessions attached          %zu (TCP, memory mode, 2 loops)\n", socks.size());
  std::printf("server resident memory          %ld KiB before, %ld KiB after\n", rss_before, rss_after);
  std::printf("server memory per idle session  %.2f KiB (goal: at most 4 KiB)\n",
              (rss_after - rss_before) / n);
  std::printf("kernel TCP socket memory        %ld pages before, %ld after: %.2f KiB per session "
              "(both ends of each loopback connection; since Linux 6.0 the kernel adds "
              "socket memory to this count in per-CPU batches of up to 1 MiB, so a change of "
              "less than 1 MiB per CPU may not show)\n",
              tcp_before, tcp_after, (tcp_after - tcp_before) * 4.0 / n);
  for (int s : socks) ::close(s);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::error_code ec;
  std::string cleanup = std::string("rm -rf ") + dir;
  (void)!std::system(cleanup.c_str());
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
