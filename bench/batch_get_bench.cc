// batch_get_bench: GiB/s of one batch get of N values into a preallocated
// buffer through memkv::Engine (MEMKV_SERVERS, ...): the C++ side of
// bench/python_bench.py, which runs the same batch through Python.
//   batch_get_bench [--count N] [--size BYTES] [--rounds R] [--shared] [--prefix P]
// --shared: the buffer comes from Engine::AllocateShared (the shm rail to a
// server on this host); otherwise ordinary memory (tcp). Puts the N values
// first, then prints "batch_get N x SIZE: GiB/s best, median".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "memkv/engine.h"

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "batch_get_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  size_t count = 7500, size = 64 << 10, rounds = 10;
  bool shared = false;
  std::string prefix = "batch_get_bench/";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--count")
      count = std::stoull(next());
    else if (a == "--size")
      size = std::stoull(next());
    else if (a == "--rounds")
      rounds = std::stoull(next());
    else if (a == "--prefix")
      prefix = next();
    else if (a == "--shared")
      shared = true;
    else
      Die("unknown argument " + a + " (--count N --size BYTES --rounds R --shared)");
  }
  auto engine = memkv::Engine::FromEnvironment();
  if (!engine) Die(engine.error().message);
  std::vector<std::byte> plain;
  memkv::SharedBuffer shm;
  std::byte* buf;
  if (shared) {
    auto b = engine->AllocateShared(count * size);
    if (!b) Die(b.error().message);
    shm = *b;
    buf = static_cast<std::byte*>(shm.data());
  } else {
    plain.resize(count * size);
    buf = plain.data();
  }
  std::vector<std::string> keys;
  for (size_t i = 0; i < count; ++i) keys.push_back(prefix + std::to_string(i));
  std::vector<memkv::PutEntry> puts;
  for (size_t i = 0; i < count; ++i) {
    std::memset(buf + i * size, static_cast<int>(i), size);
    puts.push_back({keys[i], buf + i * size, size});
  }
  if (auto r = engine->BatchPut(puts); !r.ok())
    Die("put: " + std::to_string(r.failed()) + " failed");
  std::vector<memkv::GetEntry> gets;
  for (size_t i = 0; i < count; ++i) gets.push_back({keys[i], buf + i * size, size});
  std::vector<double> rates;
  for (size_t r = 0; r < rounds + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto res = engine->BatchGet(gets);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!res.ok()) Die("get: " + std::to_string(res.failed()) + " failed");
    if (r > 0) rates.push_back(double(count * size) / s / double(1 << 30));  // round 0 warms up
  }
  std::sort(rates.begin(), rates.end());
  std::printf("batch_get %zu x %zu (%s): %.2f GiB/s best, %.2f median\n", count, size,
              shared ? "shared" : "plain", rates.back(), rates[rates.size() / 2]);
  return 0;
}
