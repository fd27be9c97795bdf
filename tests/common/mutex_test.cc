#include "common/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace memkv {
namespace {

// Counts under a MutexLock from several threads: every increment lands.
TEST(Mutex, MutexLockSerializesWriters) {
  struct Counter {
    Mutex mu;
    int n GUARDED_BY(mu) = 0;
  } c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 1000; ++i) {
        MutexLock lock(c.mu);
        ++c.n;
      }
    });
  }
  for (auto& t : threads) t.join();
  MutexLock lock(c.mu);
  EXPECT_EQ(c.n, 4000);
}

// Unlock() lets go early, and the destructor does not unlock again.
TEST(Mutex, UnlockLetsGoBeforeTheScopeEnds) {
  Mutex mu;
  auto is_free = [&mu] {
    if (!mu.TryLock()) return false;
    mu.Unlock();
    return true;
  };
  {
    MutexLock lock(mu);
    EXPECT_FALSE(is_free());
    lock.Unlock();
    EXPECT_TRUE(is_free());
  }
  EXPECT_TRUE(is_free());  // the destructor did not unlock it a second time
}

// A waiter sees what the signaller wrote under the lock.
TEST(CondVar, WaitReturnsOnceThePredicateHolds) {
  struct State {
    Mutex mu;
    CondVar cv;
    bool ready GUARDED_BY(mu) = false;
  } s;
  std::thread t([&s] {
    MutexLock lock(s.mu);
    s.ready = true;
    s.cv.SignalAll();
  });
  {
    MutexLock lock(s.mu);
    s.cv.Wait(s.mu, [&s]() REQUIRES(s.mu) { return s.ready; });
    EXPECT_TRUE(s.ready);
  }
  t.join();
}

TEST(CondVar, WaitUntilReturnsFalseAtTheDeadline) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(mu);
  EXPECT_FALSE(cv.WaitUntil(mu, std::chrono::steady_clock::now() + std::chrono::milliseconds(1),
                            [] { return false; }));
}

// Readers share a SharedMutex; a writer has it alone.
TEST(SharedMutex, ReadersShareAndWritersExclude) {
  struct Table {
    SharedMutex mu;
    std::vector<int> rows GUARDED_BY(mu);
  } t;
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&t] {
      for (int i = 0; i < 200; ++i) {
        WriterLock lock(t.mu);
        t.rows.push_back(i);
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&t] {
      for (int i = 0; i < 200; ++i) {
        ReaderLock lock(t.mu);
        EXPECT_LE(t.rows.size(), 400u);
      }
    });
  }
  for (auto& th : threads) th.join();
  ReaderLock lock(t.mu);
  EXPECT_EQ(t.rows.size(), 400u);
}

}  // namespace
}  // namespace memkv
