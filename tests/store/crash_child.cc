// The child of the SIGKILL crash test: runs a random put/overwrite/delete
// workload on a store over the given drive files until it is killed, and
// logs on stdout, unbuffered, a line before each operation starts
//   B <key> <seed> <size>     (a put begins; seed 0 and size 0: a delete)
// and one after it is acknowledged
//   A <key>
// Usage: store_crash_child SEED FILE...

#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "common/log.h"
#include "server/loops.h"
#include "store/drives.h"
#include "store/error.h"
#include "store/store.h"
#include "workload.h"

using namespace memkv;

namespace {

void Log(const std::string& line) {
  const std::string l = line + "\n";
  if (::write(STDOUT_FILENO, l.data(), l.size()) != static_cast<ssize_t>(l.size())) _exit(3);
}

boost::asio::awaitable<void> Worker(store::Store& s, int worker, int workers, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + worker);
  for (uint64_t n = 0;; ++n) {
    // Keys are split among workers, so each key's operations are in order.
    const std::string key = "key" + std::to_string((rng() % 16) * workers + worker);
    if (rng() % 5 == 0) {
      Log("B " + key + " 0 0");
      auto st = co_await s.Delete(key);
      if (st || st.error() == store::errc::not_found) Log("A " + key);
    } else {
      const uint64_t value_seed = (seed << 32) + (uint64_t(worker) << 24) + n + 1;
      const size_t size = 1 + rng() % (300 << 10);
      Log("B " + key + " " + std::to_string(value_seed) + " " + std::to_string(size));
      const std::string v = store::testing::WorkloadValue(size, value_seed);
      auto st = co_await s.Put(key, {reinterpret_cast<const std::byte*>(v.data()), v.size()});
      if (st) Log("A " + key);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SEED FILE...\n", argv[0]);
    return 2;
  }
  (void)InitLogging("warn");
  const uint64_t seed = std::stoull(argv[1]);
  auto loops = server::Loops::Create(1).value();
  std::vector<std::unique_ptr<io::BlockDevice>> drives;
  for (int i = 2; i < argc; ++i) {
    auto d = store::OpenDrive(argv[i], store::Mode::kFile, loops->helpers());
    if (!d) {
      std::fprintf(stderr, "%s: %s\n", argv[i], d.error().message().c_str());
      return 1;
    }
    drives.push_back(std::move(*d));
  }
  std::unique_ptr<store::Store> s;
  auto st = loops->RunBlocking([&]() -> io::Awaitable<Status> {
    auto opened = co_await store::Store::Open(std::move(drives), store::StoreOptions{});
    if (!opened) co_return opened.error();
    s = std::move(*opened);
    constexpr int kWorkers = 4;
    auto ex = co_await boost::asio::this_coro::executor;
    for (int w = 1; w < kWorkers; ++w)
      boost::asio::co_spawn(ex, Worker(*s, w, kWorkers, seed), boost::asio::detached);
    co_await Worker(*s, 0, kWorkers, seed);
    co_return Status{};
  });
  std::fprintf(stderr, "store: %s\n", st ? "stopped" : st.error().message().c_str());
  return 1;
}
