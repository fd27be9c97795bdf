#include "baselines.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>

#include <simdjson.h>

#include "resp.h"

namespace memkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string FirstLine(const std::string& s) {
  std::string l = s.substr(0, s.find('\n'));
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
  return l;
}

}  // namespace

// ---- memcpy ----

BaselineRun RunMemcpy(uint64_t block_size, uint32_t batch, double seconds) {
  BaselineRun r;
  const size_t bytes = static_cast<size_t>(block_size) * batch;
  // Touched before the clock starts: page faults are not the copy's cost.
  std::unique_ptr<std::byte[]> src(new std::byte[bytes]);
  std::unique_ptr<std::byte[]> dst(new std::byte[bytes]);
  std::memset(src.get(), 0x5a, bytes);
  std::memset(dst.get(), 0, bytes);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(seconds));
  do {
    for (uint32_t i = 0; i < batch; ++i)
      std::memcpy(dst.get() + i * block_size, src.get() + i * block_size, block_size);
    // Keeps the copies: the compiler may not drop stores it cannot see read.
    asm volatile("" : : "r"(dst.get()) : "memory");
    r.bytes += bytes;
    r.entries += batch;
    ++r.requests;
  } while (Clock::now() < end);
  r.seconds = SecondsSince(start);
  if (std::memcmp(src.get(), dst.get(), bytes) != 0) ++r.verify_failures;
  return r;
}

// ---- iperf3 ----

std::optional<std::string> Iperf3Version() {
  ChildOutput r = RunChild({"iperf3", "--version"});
  if (!r.spawn_error.empty() || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    return std::nullopt;
  return FirstLine(r.out);
}

bool ParseIperf3Json(const std::string& json, BaselineRun& out, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(json).get(doc)) {
    error = std::string("iperf3's report is not JSON: ") + simdjson::error_message(e);
    return false;
  }
  std::string_view message;
  if (doc["error"].get(message) == simdjson::SUCCESS) {
    error = "iperf3: " + std::string(message);
    return false;
  }
  simdjson::dom::element sum;
  if (doc["end"]["sum_received"].get(sum) != simdjson::SUCCESS) {
    error = "iperf3's report has no end.sum_received";
    return false;
  }
  double bytes = 0, secs = 0;
  uint64_t ubytes = 0;
  if (sum["bytes"].get(ubytes) == simdjson::SUCCESS) {
    bytes = static_cast<double>(ubytes);
  } else if (sum["bytes"].get(bytes) != simdjson::SUCCESS) {
    error = "iperf3's end.sum_received has no bytes";
    return false;
  }
  if (sum["seconds"].get(secs) != simdjson::SUCCESS || !(secs > 0)) {
    error = "iperf3's end.sum_received has no seconds";
    return false;
  }
  out.bytes = static_cast<uint64_t>(bytes);
  out.seconds = secs;
  return true;
}

BaselineRun RunIperf3(double seconds, uint64_t block_size) {
  BaselineRun r;
  const uint16_t port = FreePort();
  const std::string p = std::to_string(port);
  std::string error;
  auto server = ChildProcess::Spawn({"iperf3", "-s", "-1", "-p", p}, "", error);
  if (!server) {
    r.error = error;
    return r;
  }
  // Whole seconds: iperf3 3.12 reads -t as an integer.
  const std::string t = std::to_string(std::max<long>(1, std::lround(seconds)));
  // The server needs a moment to listen; a probe connection would use up
  // its one test (-1), so the client is retried instead.
  for (int attempt = 0; attempt < 50; ++attempt) {
    ChildOutput c = RunChild({"iperf3", "-c", "127.0.0.1", "-p", p, "-l",
                              std::to_string(Iperf3Block(block_size)), "-O", "1", "-t", t, "-J"});
    if (!c.spawn_error.empty()) {
      r.error = "iperf3: " + c.spawn_error;
      break;
    }
    if (c.out.find("unable to connect") != std::string::npos ||
        c.out.find("Connection refused") != std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!ParseIperf3Json(c.out, r, r.error)) break;
    r.requests = 1;
    r.entries = 0;
    break;
  }
  if (r.error.empty() && r.seconds == 0) r.error = "iperf3's server did not start listening";
  server->Wait(std::chrono::milliseconds(2000));
  return r;  // the server, if still running, is stopped here
}

// ---- Redis ----

std::optional<std::string> RedisVersion() {
  ChildOutput r = RunChild({"redis-server", "--version"});
  if (!r.spawn_error.empty() || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    return std::nullopt;
  // "Redis server v=7.0.15 sha=... malloc=jemalloc-5.3.0 bits=64 build=..."
  const size_t v = r.out.find("v=");
  if (v == std::string::npos) return FirstLine(r.out);
  const size_t end = r.out.find(' ', v);
  return r.out.substr(v + 2, end == std::string::npos ? std::string::npos : end - v - 2);
}

std::optional<RedisServer> RedisServer::Start(const std::string& log, std::string& error) {
  RedisServer s;
  s.port_ = FreePort();
  auto child = ChildProcess::Spawn({"redis-server", "--port", std::to_string(s.port_), "--save",
                                    "", "--appendonly", "no", "--bind", "127.0.0.1"},
                                   log, error);
  if (!child) return std::nullopt;
  s.child_ = std::move(*child);
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (s.child_.Exited(&status)) {
      error = "redis-server exited at start-up (status " + std::to_string(status) +
              (log.empty() ? std::string(")") : "; see " + log + ")");
      return std::nullopt;
    }
    std::string ignored;
    if (auto c = RedisConnection::Connect(s.port_, ignored)) {
      std::string reply;
      if (c->Command({"PING"}, reply, ignored) && reply == "PONG") return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  error = "redis-server did not answer PING within 5 s";
  return std::nullopt;
}

std::optional<RedisConnection> RedisConnection::Connect(uint16_t port, std::string& error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    error = "connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return RedisConnection(fd);
}

RedisConnection::~RedisConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RedisConnection::Pipeline(std::string_view out, size_t replies,
                               const std::function<bool(size_t, char, std::string_view)>& on_reply,
                               std::string& error) {
  size_t written = 0, done = 0, parsed = 0, filled = in_.size();
  bool ok = true;
  while (done < replies) {
    pollfd p{fd_, static_cast<short>(POLLIN | (written < out.size() ? POLLOUT : 0)), 0};
    const int n = ::poll(&p, 1, 30000);
    if (n == 0) {
      error = "Redis did not answer within 30 s";
      return false;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      error = std::strerror(errno);
      return false;
    }
    if ((p.revents & POLLOUT) && written < out.size()) {
      const ssize_t w = ::send(fd_, out.data() + written, out.size() - written, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        error = std::string("send to Redis: ") + std::strerror(errno);
        return false;
      }
      if (w > 0) written += static_cast<size_t>(w);
    }
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (in_.size() - filled < (256 << 10)) in_.resize(std::max<size_t>(in_.size() * 2, 1 << 20));
    const ssize_t got = ::recv(fd_, in_.data() + filled, in_.size() - filled, 0);
    if (got == 0) {
      error = "Redis closed the connection";
      return false;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      error = std::string("recv from Redis: ") + std::strerror(errno);
      return false;
    }
    filled += static_cast<size_t>(got);
    while (done < replies) {
      resp::Value v;
      size_t used = 0;
      const auto st = resp::Parse(std::string_view(in_.data() + parsed, filled - parsed), v, used);
      if (st == resp::ParseStatus::kIncomplete) break;
      if (st == resp::ParseStatus::kError) {
        error = "Redis sent something that is not RESP";
        return false;
      }
      char kind = 'n';
      switch (v.type) {
        case resp::Type::kSimple: kind = '+'; break;
        case resp::Type::kError: kind = '-'; break;
        case resp::Type::kInteger: kind = ':'; break;
        case resp::Type::kBulk: kind = '$'; break;
        case resp::Type::kNull: kind = 'n'; break;
        case resp::Type::kArray: kind = '*'; break;
      }
      // After a failed reply the rest are still read, so that the
      // connection stays usable; the first error is kept.
      if (ok && !on_reply(done, kind, v.text)) ok = false;
      parsed += used;
      ++done;
    }
    // Keeps the buffer small: drop what was parsed.
    if (parsed == filled) {
      parsed = filled = 0;
    } else if (parsed > (4u << 20)) {
      std::memmove(in_.data(), in_.data() + parsed, filled - parsed);
      filled -= parsed;
      parsed = 0;
    }
  }
  // Replies never come before their commands were sent in full.
  in_.resize(filled);
  in_.erase(0, parsed);
  return ok;
}

std::string RedisConnection::SetCommands(const std::vector<std::string>& keys,
                                         const std::vector<std::string_view>& values) {
  std::string out;
  size_t total = 0;
  for (size_t i = 0; i < keys.size(); ++i) total += keys[i].size() + values[i].size() + 48;
  out.reserve(total);
  for (size_t i = 0; i < keys.size(); ++i) resp::AppendCommand(out, {"SET", keys[i], values[i]});
  return out;
}

std::string RedisConnection::GetCommands(const std::vector<std::string>& keys) {
  std::string out;
  out.reserve(keys.size() * 40);
  for (const std::string& k : keys) resp::AppendCommand(out, {"GET", k});
  return out;
}

bool RedisConnection::Set(const std::vector<std::string>& keys,
                          const std::vector<std::string_view>& values, std::string& error) {
  return Set(SetCommands(keys, values), keys, error);
}

bool RedisConnection::Set(std::string_view commands, const std::vector<std::string>& keys,
                          std::string& error) {
  return Pipeline(commands, keys.size(),
                  [&](size_t i, char kind, std::string_view text) {
                    if (kind == '+' && text == "OK") return true;
                    error = "SET " + keys[i] + ": " + std::string(text);
                    return false;
                  },
                  error);
}

bool RedisConnection::Get(const std::vector<std::string>& keys,
                          const std::function<void(size_t, std::string_view)>& check,
                          std::string& error) {
  return Get(GetCommands(keys), keys, check, error);
}

bool RedisConnection::Get(std::string_view commands, const std::vector<std::string>& keys,
                          const std::function<void(size_t, std::string_view)>& check,
                          std::string& error) {
  return Pipeline(commands, keys.size(),
                  [&](size_t i, char kind, std::string_view text) {
                    if (kind != '$') {
                      error = "GET " + keys[i] + ": " +
                              (kind == 'n' ? std::string("no such key") : std::string(text));
                      return false;
                    }
                    check(i, text);
                    return true;
                  },
                  error);
}

bool RedisConnection::Command(std::initializer_list<std::string_view> args, std::string& reply,
                              std::string& error) {
  std::string out;
  resp::AppendCommand(out, args);
  return Pipeline(out, 1,
                  [&](size_t, char kind, std::string_view text) {
                    reply = std::string(text);
                    if (kind == '-') {
                      error = reply;
                      return false;
                    }
                    return true;
                  },
                  error);
}

// ---- redis-benchmark ----

bool RedisBenchmarkInstalled() {
  ChildOutput r = RunChild({"redis-benchmark", "--version"});
  return r.spawn_error.empty() && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
}

BaselineRun RunRedisBenchmark(uint16_t port, const std::string& op, uint64_t size,
                              uint32_t pipeline, uint32_t connections, double seconds) {
  BaselineRun r;
  // About `seconds` at 2 GiB/s, a whole number of pipelines per connection.
  const uint64_t unit = uint64_t{pipeline} * connections;
  uint64_t n = static_cast<uint64_t>(seconds * 2.0 * (1u << 30) / static_cast<double>(size));
  n = std::clamp<uint64_t>(n, 4 * unit, 20'000'000);
  n = (n + unit - 1) / unit * unit;
  ChildOutput c = RunChild({"redis-benchmark", "-p", std::to_string(port), "-t", "set,get", "-d",
                            std::to_string(size), "-P", std::to_string(pipeline), "-c",
                            std::to_string(connections), "-n", std::to_string(n), "--csv"});
  if (!c.spawn_error.empty()) {
    r.error = "redis-benchmark: " + c.spawn_error;
    return r;
  }
  auto rps = ParseRedisBenchmarkCsv(c.out, op);
  if (!rps) {
    r.error = "redis-benchmark printed no " + op + " figure: " + FirstLine(c.out);
    return r;
  }
  r.entries = n;
  r.requests = n / pipeline;
  r.seconds = static_cast<double>(n) / *rps;
  r.bytes = n * size;
  return r;
}

}  // namespace memkv::bench
