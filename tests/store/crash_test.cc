// SIGKILL crash test: a child process runs a random put/overwrite/delete
// workload on file-backed drives and is killed at a random moment, many
// rounds (16, more until 200 puts were acknowledged) over the same drives.
// After each kill the store is reopened and every key holds what its last
// acknowledged operation left, or what the operation in flight at the kill
// would have left; never any other bytes.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "../io/test_util.h"
#include "server/loops.h"
#include "store/drives.h"
#include "store/error.h"
#include "store/store.h"
#include "workload.h"

namespace memkv::store {
namespace {

struct State {  // what a key holds: nothing, or the value of (seed, size)
  uint64_t seed = 0;
  size_t size = 0;
  bool present() const { return seed != 0; }
  bool operator==(const State&) const = default;
};

struct KeyModel {
  State acked;                  // after the last acknowledged operation
  std::optional<State> flight;  // the operation begun and not acknowledged
};

// Runs the child for `ms` milliseconds, kills it, returns its stdout.
std::string RunAndKill(const std::vector<std::string>& args, int ms) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string log;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char buf[65536];
  // Read while it runs, so a full pipe never stalls it.
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      log.append(buf, static_cast<size_t>(n));
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) log.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the child exited by itself (status " << status << ")";
  return log;
}

TEST(CrashTest, SigkillAtRandomMomentsLosesNoAcknowledgedPut) {
  io::testing::TempDir dir;
  const std::vector<std::string> files = {dir.File("d0"), dir.File("d1")};
  for (const auto& f : files) ASSERT_TRUE(CreateDriveFile(f, 48ull << 20));
  {
    auto loops = server::Loops::Create(1).value();
    std::vector<std::unique_ptr<io::BlockDevice>> devs;
    std::vector<io::BlockDevice*> raw;
    for (const auto& f : files) {
      devs.push_back(OpenDrive(f, Mode::kFile, loops->helpers()).value());
      raw.push_back(devs.back().get());
    }
    ASSERT_TRUE(loops->RunBlocking([&]() -> io::Awaitable<Status> {
      co_return co_await FormatSet(raw, FormatOptions{1 << 20});
    }));
  }

  std::map<std::string, KeyModel> model;
  std::mt19937_64 rng(2026);
  uint64_t acked_total = 0, checked_present = 0;
  // At least 16 rounds, and more (up to 64) until 200 puts were
  // acknowledged: a machine slowed down (a sanitizer, other work) acknowledges
  // fewer per round, and the checks below need enough of them to mean much.
  const int min_rounds = 16, max_rounds = 64;
  for (int round = 0; round < max_rounds && (round < min_rounds || acked_total <= 200); ++round) {
    std::vector<std::string> args = {MEMKV_CRASH_CHILD, std::to_string(round + 1)};
    args.insert(args.end(), files.begin(), files.end());
    const std::string log = RunAndKill(args, 150 + static_cast<int>(rng() % 500));

    // Fold the log into the model. Each key is one worker's, in order.
    std::istringstream in(log);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a line cut by the kill
      std::istringstream l(line);
      std::string tag, key;
      l >> tag >> key;
      KeyModel& k = model[key];
      if (tag == "B") {
        State s;
        l >> s.seed >> s.size;
        k.flight = s;
      } else if (tag == "A") {
        ASSERT_TRUE(k.flight) << "ack without a begin: " << line;
        k.acked = *k.flight;
        k.flight.reset();
        ++acked_total;
      }
    }

    // Reopen and check every key.
    auto loops = server::Loops::Create(1).value();
    std::vector<std::unique_ptr<io::BlockDevice>> devs;
    for (const auto& f : files) {
      // A killed process's io_uring requests are torn down by the kernel
      // shortly after it dies; until then its files (and their locks) live.
      auto d = OpenDrive(f, Mode::kFile, loops->helpers());
      for (int i = 0; i < 100 && !d; ++i) {
        ::usleep(50'000);
        d = OpenDrive(f, Mode::kFile, loops->helpers());
      }
      ASSERT_TRUE(d) << f << ": " << d.error().message();
      devs.push_back(std::move(*d));
    }
    std::unique_ptr<Store> store;
    ASSERT_TRUE(loops->RunBlocking([&]() -> io::Awaitable<Status> {
      auto s = co_await Store::Open(std::move(devs), StoreOptions{});
      if (!s) co_return s.error();
      store = std::move(*s);
      for (auto& [key, k] : model) {
        State seen;
        auto info = store->Stat(key);
        if (info) {
          std::string got(info->size, '\0');
          auto r = co_await store->Get(key, 0, {reinterpret_cast<std::byte*>(got.data()), got.size()});
          EXPECT_TRUE(r) << key << ": " << r.error().message();
          // Which of the allowed states is it?
          for (const State& cand : {k.acked, k.flight.value_or(State{})}) {
            if (cand.present() && cand.size == got.size() &&
                got == testing::WorkloadValue(cand.size, cand.seed))
              seen = cand;
          }
          EXPECT_TRUE(seen.present()) << "round " << round << ": " << key
                                      << " holds bytes it was never given at that point";
          ++checked_present;
        }
        const bool allowed = seen == k.acked || (k.flight && seen == *k.flight);
        EXPECT_TRUE(allowed) << "round " << round << ": " << key << " lost its acknowledged "
                             << (k.acked.present() ? "value" : "delete");
        k.acked = seen;  // the in-flight operation's outcome is now known
        k.flight.reset();
      }
      // Some rounds end cleanly with a checkpoint, most with the journal only.
      if (round % 4 == 3) co_return co_await store->Close();
      co_return Status{};
    })) << "round " << round;
  }
  EXPECT_GT(acked_total, 200u);
  EXPECT_GT(checked_present, 100u);
}

}  // namespace
}  // namespace memkv::store
