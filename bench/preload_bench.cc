// preload_bench: GiB/s of writing and reading files of one size.
//   preload_bench --dir DIR [--files N] [--size BYTES] [--seconds S]
//   preload_bench --library [--shared] [--files N] [--size BYTES]   (MEMKV_SERVERS, ...)
// With --dir it uses open/write/close and open/read/close, so it measures
// a local directory, or the preload shim when run with LD_PRELOAD and DIR
// in MEMKV_PRELOAD_PREFIX. With --library it puts and gets the same values
// through memkv::Engine (one value per call, as a file is one per open),
// from and into ordinary memory (the tcp rail) or, with --shared, memory
// from Engine::AllocateShared (the shm rail to a server on this host).
// Prints: "write GiB/s READ GiB/s" averaged over rounds until --seconds.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "memkv/engine.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a) {
  return std::chrono::duration<double>(Clock::now() - a).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "preload_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool library = false;
  bool shared = false;
  size_t files = 16;
  size_t size = 16u << 20;
  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--dir") dir = next();
    else if (a == "--library") library = true;
    else if (a == "--shared") shared = true;
    else if (a == "--files") files = std::stoul(next());
    else if (a == "--size") size = std::stoul(next());
    else if (a == "--seconds") seconds = std::stod(next());
    else Die("unknown argument " + a + " (see the comment at the top of bench/preload_bench.cc)");
  }
  if (library == !dir.empty()) Die("give one of --dir DIR and --library");
  std::optional<memkv::Engine> engine;
  if (library) {
    auto e = memkv::Engine::FromEnvironment();
    if (!e) Die(e.error().message);
    engine.emplace(std::move(*e));
  }
  std::vector<char> plain_data, plain_back;
  memkv::SharedBuffer shared_data, shared_back;
  char* data = nullptr;
  char* back = nullptr;
  if (shared) {
    if (!library) Die("--shared goes with --library");
    auto a = engine->AllocateShared(size);
    auto b = engine->AllocateShared(size);
    if (!a || !b) Die("AllocateShared failed");
    shared_data = *a;
    shared_back = *b;
    data = static_cast<char*>(shared_data.data());
    back = static_cast<char*>(shared_back.data());
  } else {
    plain_data.resize(size);
    plain_back.resize(size);
    data = plain_data.data();
    back = plain_back.data();
  }
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 131 + 7);
  auto name = [&](size_t i) { return (library ? std::string("bench/") : dir + "/") + "f" + std::to_string(i); };
  double write_s = 0, read_s = 0;
  size_t rounds = 0;
  const auto start = Clock::now();
  do {
    auto t = Clock::now();
    for (size_t i = 0; i < files; ++i) {
      const std::string n = name(i);
      if (library) {
        const memkv::PutEntry p{n, data, size};
        if (!engine->BatchPut({&p, 1}).ok()) Die("put " + n);
        continue;
      }
      const int fd = ::open(n.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size) || ::close(fd) != 0)
        Die("write " + n + ": " + std::strerror(errno));
    }
    write_s += Seconds(t);
    t = Clock::now();
    for (size_t i = 0; i < files; ++i) {
      const std::string n = name(i);
      if (library) {
        memkv::GetEntry g{};
        g.key = n;
        g.buffer = back;
        g.capacity = size;
        if (!engine->BatchGet({&g, 1}).ok()) Die("get " + n);
        continue;
      }
      const int fd = ::open(n.c_str(), O_RDONLY);
      size_t got = 0;
      while (fd >= 0 && got < size) {
        const ssize_t r = ::read(fd, back + got, size - got);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      if (fd < 0 || got != size || ::close(fd) != 0) Die("read " + n);
    }
    read_s += Seconds(t);
    if (std::memcmp(back, data, size) != 0) Die("read back other bytes");
    ++rounds;
  } while (Seconds(start) < seconds);
  const double gib = static_cast<double>(rounds * files * size) / (1u << 30);
  std::printf("%.3f %.3f\n", gib / write_s, gib / read_s);
  return 0;
}
