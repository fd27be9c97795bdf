// The storage engine over in-memory, fault-injecting and power-cut devices.

#include "store/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "../io/test_util.h"
#include "common/checksum.h"
#include "io/error.h"
#include "io/faulty_device.h"
#include "io/file_device.h"
#include "io/ring.h"
#include "io/memory_device.h"
#include "io/power_cut_device.h"
#include "store/error.h"

namespace memkv::store {
namespace {

namespace asio = boost::asio;
using io::testing::RunSync;

// Lets a test keep a device the store also uses (to cut power, to look at
// the medium, to reopen on it).
class SharedDevice final : public io::BlockDevice {
 public:
  explicit SharedDevice(std::shared_ptr<io::BlockDevice> d) : d_(std::move(d)) {}
  const std::string& name() const override { return d_->name(); }
  uint64_t size() const override { return d_->size(); }
  uint32_t block_size() const override { return d_->block_size(); }
  io::Awaitable<Result<size_t>> Read(uint64_t o, std::span<std::byte> b) override {
    return d_->Read(o, b);
  }
  io::Awaitable<Status> Write(uint64_t o, std::span<const std::byte> b) override {
    return d_->Write(o, b);
  }
  io::Awaitable<Status> Flush() override { return d_->Flush(); }
  io::Awaitable<Status> Discard(uint64_t o, uint64_t n) override { return d_->Discard(o, n); }
  io::Awaitable<Status> ZeroFill(uint64_t o, uint64_t n) override { return d_->ZeroFill(o, n); }

 private:
  std::shared_ptr<io::BlockDevice> d_;
};

// Resumes the caller in a later handler of its loop, as a device's
// completion does.
io::Awaitable<void> Yield() {
  auto ex = co_await asio::this_coro::executor;
  co_await asio::post(ex, asio::use_awaitable);
}

// The power of a drive set, for tests of concurrent work: CutAt(n) cuts the
// power of every drive at the nth write or flush from now (PowerCutDevice),
// and that operation and every later one fail, as they do for a process
// that dies with its machine.
class PowerSwitch {
 public:
  void Add(std::shared_ptr<io::PowerCutDevice> d) { drives_.push_back(std::move(d)); }
  void CutAt(uint64_t n) { cut_at_ = ops_ + n; }
  bool on() const { return on_; }
  // Counts a write or a flush; false once the power is out.
  bool Next() {
    if (on_ && ++ops_ == cut_at_) {
      on_ = false;
      for (auto& d : drives_) d->CutPower();
    }
    return on_;
  }

 private:
  std::vector<std::shared_ptr<io::PowerCutDevice>> drives_;
  uint64_t ops_ = 0, cut_at_ = 0;
  bool on_ = true;
};

// A drive behind a PowerSwitch. Every operation first yields to the loop, so
// that concurrent puts interleave over in-memory devices as they do over
// io_uring: a write yields once per 64 KiB begun, a flush (slow on a real
// drive) four times.
class SwitchedDevice final : public io::BlockDevice {
 public:
  SwitchedDevice(std::shared_ptr<io::BlockDevice> d, PowerSwitch& power)
      : d_(std::move(d)), power_(power) {}
  const std::string& name() const override { return d_->name(); }
  uint64_t size() const override { return d_->size(); }
  uint32_t block_size() const override { return d_->block_size(); }
  io::Awaitable<Result<size_t>> Read(uint64_t o, std::span<std::byte> b) override {
    co_await Yield();
    if (!power_.on()) co_return io::errc::power_cut;
    co_return co_await d_->Read(o, b);
  }
  io::Awaitable<Status> Write(uint64_t o, std::span<const std::byte> b) override {
    for (size_t done = 0; done < std::max<size_t>(b.size(), 1); done += 64 << 10) co_await Yield();
    if (!power_.Next()) co_return io::errc::power_cut;
    co_return co_await d_->Write(o, b);
  }
  io::Awaitable<Status> Flush() override {
    for (int i = 0; i < 4; ++i) co_await Yield();
    if (!power_.Next()) co_return io::errc::power_cut;
    co_return co_await d_->Flush();
  }
  io::Awaitable<Status> Discard(uint64_t o, uint64_t n) override {
    co_await Yield();
    if (!power_.on()) co_return io::errc::power_cut;
    co_return co_await d_->Discard(o, n);
  }
  io::Awaitable<Status> ZeroFill(uint64_t o, uint64_t n) override {
    co_await Yield();
    if (!power_.Next()) co_return io::errc::power_cut;
    co_return co_await d_->ZeroFill(o, n);
  }

 private:
  std::shared_ptr<io::BlockDevice> d_;
  PowerSwitch& power_;
};

std::string Value(size_t size, uint64_t seed) {
  std::string v(size, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t r = rng();
    std::memcpy(v.data() + i, &r, std::min<size_t>(8, size - i));
  }
  return v;
}

Bytes B(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

class StoreTest : public ::testing::Test {
 protected:
  std::shared_ptr<io::BlockDevice> NewMedium(uint64_t size, const std::string& name) {
    return std::shared_ptr<io::BlockDevice>(io::MemoryDevice::Create(name, size).value());
  }

  void Format(const std::vector<std::shared_ptr<io::BlockDevice>>& devs, uint64_t stripe) {
    std::vector<io::BlockDevice*> raw;
    for (auto& d : devs) raw.push_back(d.get());
    ASSERT_TRUE(RunSync(ctx_, FormatSet(raw, FormatOptions{stripe})));
  }

  Result<std::unique_ptr<Store>> Open(const std::vector<std::shared_ptr<io::BlockDevice>>& devs,
                                      StoreOptions opt = {}) {
    std::vector<std::unique_ptr<io::BlockDevice>> owned;
    for (auto& d : devs) owned.push_back(std::make_unique<SharedDevice>(d));
    if (devs.empty()) opt.mode = Mode::kMemory;
    return RunSync(ctx_, Store::Open(std::move(owned), opt));
  }

  Status Put(Store& s, const std::string& k, const std::string& v) {
    return RunSync(ctx_, s.Put(k, B(v)));
  }

  // After a reopen: every acknowledged put reads back exactly (`acked`: the
  // last acknowledged seed, nullopt once deleted) and no key holds bytes it
  // was never given (`given`: every seed each key was given).
  void CheckAfterReopen(Store& st, int round,
                        const std::map<std::string, std::optional<uint64_t>>& acked,
                        const std::map<std::string, std::set<uint64_t>>& given) {
    for (auto& [k, seed] : acked) {
      auto got = Get(st, k);
      if (!seed) {
        EXPECT_FALSE(got) << "round " << round << ": " << k << " came back after its delete";
        continue;
      }
      if (!got) {
        ADD_FAILURE() << "round " << round << ": acked " << k << " lost: " << got.error().message();
        continue;
      }
      EXPECT_TRUE(got.value() == Value(got->size(), *seed)) << k << " wrong bytes";
    }
    for (auto& [k, seeds] : given) {
      auto got = Get(st, k);
      if (!got) {
        // A miss, never an entry whose bytes did not make it: a record is
        // written only once its data is durable.
        EXPECT_EQ(got.error(), make_error_code(errc::not_found))
            << "round " << round << ": " << k << ": " << got.error().message();
        continue;
      }
      bool matches = false;
      for (uint64_t seed : seeds) matches |= got.value() == Value(got->size(), seed);
      EXPECT_TRUE(matches) << "round " << round << ": " << k << " holds bytes it was never given";
    }
  }

  // The whole value, or the error.
  Result<std::string> Get(Store& s, const std::string& k) {
    auto info = s.Stat(k);
    if (!info) return info.error();
    std::string out(info->size, '\0');
    auto r = RunSync(ctx_, s.Get(k, 0, std::span(reinterpret_cast<std::byte*>(out.data()),
                                                   out.size())));
    if (!r) return r.error();
    return out;
  }

  Result<std::string> GetRange(Store& s, const std::string& k, uint64_t off, size_t len) {
    std::string out(len, '\0');
    auto r = RunSync(ctx_, s.Get(k, off, std::span(reinterpret_cast<std::byte*>(out.data()),
                                                     out.size())));
    if (!r) return r.error();
    return out;
  }

  asio::io_context ctx_;
};

// ---- memory mode ----

TEST_F(StoreTest, MemoryModePutGetDelete) {
  auto s = Open({});
  ASSERT_TRUE(s);
  Store& st = **s;
  ASSERT_TRUE(Put(st, "k", "hello"));
  EXPECT_EQ(Get(st, "k").value(), "hello");
  EXPECT_EQ(st.Stat("k")->size, 5u);
  ASSERT_TRUE(Put(st, "k", "bye"));
  EXPECT_EQ(Get(st, "k").value(), "bye");
  EXPECT_EQ(GetRange(st, "k", 1, 2).value(), "ye");
  EXPECT_EQ(GetRange(st, "k", 2, 2).error(), errc::range_out_of_bounds);
  ASSERT_TRUE(RunSync(ctx_, st.Delete("k")));
  EXPECT_EQ(Get(st, "k").error(), errc::not_found);
  EXPECT_EQ(RunSync(ctx_, st.Delete("k")).error(), errc::not_found);
}

TEST_F(StoreTest, BadKeysAndValuesAreRefused) {
  auto s = Open({});
  Store& st = **s;
  EXPECT_EQ(Put(st, "", "v").error(), errc::bad_key);
  EXPECT_EQ(Put(st, std::string(1025, 'k'), "v").error(), errc::bad_key);
  EXPECT_EQ(Put(st, "k", "").error(), errc::empty_value);
  StoreOptions small;
  small.max_value_size = 10;
  auto s2 = Open({}, small);
  EXPECT_EQ(Put(**s2, "k", std::string(11, 'x')).error(), errc::too_large);
}

TEST_F(StoreTest, MemoryModeEvictsLeastRecentlyUsedWhenFull) {
  StoreOptions o;
  o.memory_max_size = 1 << 20;  // 1 MiB: 64 values of 16 KiB
  auto s = Open({}, o);
  Store& st = **s;
  const std::string hot = Value(16 << 10, 1);
  ASSERT_TRUE(Put(st, "hot", hot));
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(Put(st, "k" + std::to_string(i), Value(16 << 10, i + 2)));
    ASSERT_TRUE(Get(st, "hot"));  // keep it recent
  }
  EXPECT_GT(st.stats().evictions, 100u);
  EXPECT_LE(st.stats().memory_used, o.memory_max_size);
  EXPECT_EQ(Get(st, "hot").value(), hot);
  EXPECT_EQ(Get(st, "k199").value(), Value(16 << 10, 201));
  EXPECT_EQ(Put(st, "huge", std::string(2 << 20, 'x')).error(), errc::no_space);
}

// ---- drive modes ----

TEST_F(StoreTest, ValuesOfEverySizeRoundTripThroughDrives) {
  auto a = NewMedium(64 << 20, "a"), b = NewMedium(64 << 20, "b");
  Format({a, b}, 1 << 20);
  auto s = Open({a, b});
  ASSERT_TRUE(s) << s.error().message();
  Store& st = **s;
  std::map<std::string, std::string> model;
  for (size_t size : {1ul, 100ul, 4096ul, 4097ul, 65536ul, 65537ul, 1ul << 20, (1ul << 20) + 1,
                      (3ul << 20) + 12345}) {
    const std::string k = "size-" + std::to_string(size);
    model[k] = Value(size, size);
    ASSERT_TRUE(Put(st, k, model[k])) << size;
  }
  for (auto& [k, v] : model) {
    auto got = Get(st, k);
    ASSERT_TRUE(got) << k << ": " << got.error().message();
    EXPECT_TRUE(got.value() == v) << k;
  }
  // Ranges across pages and stripes.
  const std::string& big = model["size-" + std::to_string((3ul << 20) + 12345)];
  for (auto [off, len] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 1}, {4095, 2}, {(1 << 20) - 10, 20}, {(2 << 20) + 7, 1 << 20}, {big.size() - 1, 1}}) {
    EXPECT_EQ(GetRange(st, "size-" + std::to_string(big.size()), off, len).value(),
              big.substr(off, len))
        << off;
  }
  const auto stats = st.stats();
  EXPECT_EQ(stats.drives.size(), 2u);
  EXPECT_GT(stats.drives[0].used_bytes + stats.drives[1].used_bytes, 3u << 20);
}

TEST_F(StoreTest, SmallValuesWasteAtMostTheirRoundingTo4KiB) {
  auto a = NewMedium(64 << 20, "a");
  Format({a}, 1 << 20);
  auto s = Open({a});
  Store& st = **s;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Put(st, "k" + std::to_string(i), Value(1000, i)));
  EXPECT_EQ(st.stats().drives[0].used_bytes, 100u * 4096);
  ASSERT_TRUE(Put(st, "two-pages", Value(4097, 1)));
  EXPECT_EQ(st.stats().drives[0].used_bytes, 102u * 4096);
}

TEST_F(StoreTest, ReopenReplaysTheJournal) {
  auto a = NewMedium(64 << 20, "a"), b = NewMedium(64 << 20, "b");
  Format({a, b}, 1 << 20);
  std::map<std::string, std::string> model;
  {
    auto s = Open({a, b});
    for (int i = 0; i < 300; ++i) {
      const std::string k = "key" + std::to_string(i);
      model[k] = Value(100 + i * 37, i);
      ASSERT_TRUE(Put(**s, k, model[k]));
    }
    for (int i = 0; i < 300; i += 3) {
      ASSERT_TRUE(RunSync(ctx_, (*s)->Delete("key" + std::to_string(i))));
      model.erase("key" + std::to_string(i));
    }
    model["key1"] = "overwritten";
    ASSERT_TRUE(Put(**s, "key1", "overwritten"));
    // Dropped without Close: no checkpoint, only the journal.
  }
  auto s = Open({a, b});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ((*s)->stats().keys, model.size());
  for (auto& [k, v] : model) EXPECT_EQ(Get(**s, k).value(), v) << k;
  EXPECT_EQ(Get(**s, "key0").error(), errc::not_found);
  // Allocation was rebuilt: new puts do not land on live pages.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put(**s, "new" + std::to_string(i), Value(9000, i)));
  for (auto& [k, v] : model) EXPECT_EQ(Get(**s, k).value(), v) << k;
}

TEST_F(StoreTest, CheckpointsKeepTheJournalBoundedAndReopenFromThem) {
  auto a = NewMedium(32 << 20, "a");  // a 1 MiB journal
  Format({a}, 1 << 20);
  std::map<std::string, std::string> model;
  {
    auto s = Open({a});
    for (int i = 0; i < 3000; ++i) {
      const std::string k = "k" + std::to_string(i % 700);
      model[k] = Value(50 + i % 300, i);
      ASSERT_TRUE(Put(**s, k, model[k])) << i;
    }
    EXPECT_GT((*s)->stats().checkpoints, 0u);
  }
  auto s = Open({a});
  ASSERT_TRUE(s) << s.error().message();
  for (auto& [k, v] : model) EXPECT_EQ(Get(**s, k).value(), v) << k;
  ASSERT_TRUE(RunSync(ctx_, (*s)->Close()));
  EXPECT_EQ(Put(**s, "late", "x").error(), errc::closed);
  s->reset();
  auto again = Open({a});
  for (auto& [k, v] : model) EXPECT_EQ(Get(**again, k).value(), v) << k;
}

// A journal whose records come round exactly to its head after a reopen
// was taken for empty, and the next record overwrote the oldest unreplayed
// one: every value recorded since the checkpoint was lost on the next open.
TEST_F(StoreTest, AJournalThatComesRoundToItsHeadIsNotTakenForEmpty) {
  auto a = NewMedium(32 << 20, "a");  // a 1 MiB journal: 256 one-page records
  Format({a}, 1 << 20);
  std::map<std::string, std::string> model;
  {
    auto s = Open({a});
    for (int i = 0; i < 10; ++i) {
      model["early" + std::to_string(i)] = Value(100, i);
      ASSERT_TRUE(Put(**s, "early" + std::to_string(i), model["early" + std::to_string(i)]));
    }
    ASSERT_TRUE(RunSync(ctx_, (*s)->Checkpoint()));  // the head moves off offset 0
    for (int i = 0; i < 256; ++i) {  // one page each: as much as the whole ring
      model["k" + std::to_string(i)] = Value(200, i);
      ASSERT_TRUE(Put(**s, "k" + std::to_string(i), model["k" + std::to_string(i)])) << i;
    }
    // Dropped without Close: no checkpoint at the end.
  }
  {
    auto s = Open({a});
    ASSERT_TRUE(s) << s.error().message();
    model["after"] = Value(300, 1);
    ASSERT_TRUE(Put(**s, "after", model["after"]));
  }
  auto s = Open({a});
  ASSERT_TRUE(s) << s.error().message();
  for (auto& [k, v] : model) {
    auto got = Get(**s, k);
    ASSERT_TRUE(got) << k << ": " << got.error().message();
    EXPECT_EQ(got.value(), v) << k;
  }
}

TEST_F(StoreTest, ACorruptPageIsAnErrorForThatKeyOnly) {
  auto medium = std::shared_ptr<io::MemoryDevice>(io::MemoryDevice::Create("a", 64 << 20).value());
  Format({medium}, 1 << 20);
  StoreOptions o;
  o.memory_max_size = 1 << 20;  // a cache too small to hold the values
  auto s = Open({medium}, o);
  Store& st = **s;
  const std::string v1 = Value(300 << 10, 1), v2 = Value(300 << 10, 2);
  ASSERT_TRUE(Put(st, "one", v1));
  ASSERT_TRUE(Put(st, "two", v2));
  // Find "one"'s bytes on the medium and flip one.
  auto contents = medium->contents();
  const std::string needle = v1.substr(5000, 64);
  auto it = std::search(contents.begin(), contents.end(),
                        reinterpret_cast<const std::byte*>(needle.data()),
                        reinterpret_cast<const std::byte*>(needle.data()) + needle.size());
  ASSERT_NE(it, contents.end());
  const_cast<std::byte&>(*it) ^= std::byte{1};
  EXPECT_EQ(Get(st, "one").error(), errc::checksum_mismatch);
  EXPECT_EQ(st.stats().checksum_errors, 1u);
  EXPECT_EQ(Get(st, "one").error(), errc::not_found);  // dropped
  EXPECT_EQ(Get(st, "two").value(), v2);
}

TEST_F(StoreTest, OpensFromTheMirrorWhenThePrimaryIsDamaged) {
  auto medium = std::shared_ptr<io::MemoryDevice>(io::MemoryDevice::Create("a", 32 << 20).value());
  Format({medium}, 1 << 20);
  {
    auto s = Open({medium});
    ASSERT_TRUE(Put(**s, "k", "v"));
  }
  const_cast<std::byte&>(medium->contents()[100]) ^= std::byte{0xff};
  auto sb = RunSync(ctx_, ReadSuperblock(*medium));
  ASSERT_TRUE(sb);
  EXPECT_TRUE(sb->from_mirror);
  auto s = Open({medium});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(Get(**s, "k").value(), "v");
}

TEST_F(StoreTest, DrivesOfAnotherSetAreRefused) {
  auto a = NewMedium(32 << 20, "a"), b = NewMedium(32 << 20, "b"), c = NewMedium(32 << 20, "c");
  Format({a, b}, 1 << 20);
  Format({c}, 1 << 20);
  EXPECT_EQ(Open({a, c}).error(), errc::set_mismatch);
  EXPECT_EQ(Open({a}).error(), errc::set_mismatch);  // a drive missing
  auto blank = NewMedium(32 << 20, "blank");
  EXPECT_EQ(Open({blank}).error(), errc::bad_magic);
}

TEST_F(StoreTest, FullDrivesEvictOldValues) {
  auto a = NewMedium(32 << 20, "a");
  Format({a}, 1 << 20);
  auto s = Open({a});
  Store& st = **s;
  const uint64_t usable = st.stats().drives[0].usable_bytes;
  const int n = static_cast<int>(usable / (64 << 10)) * 3;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(Put(st, "k" + std::to_string(i), Value(60 << 10, i))) << i;
  EXPECT_GT(st.stats().evictions, 0u);
  EXPECT_LE(st.stats().drives[0].used_bytes, usable);
  EXPECT_EQ(Get(st, "k" + std::to_string(n - 1)).value(), Value(60 << 10, n - 1));
  EXPECT_EQ(Put(st, "too-big", std::string(usable + 4096, 'x')).error(), errc::no_space);
}

// Many puts in flight on a full drive: the first to find it above the high
// watermark evicts down to the low one, and the others count that space as
// coming back instead of evicting it again. Keys are fresh, so every put is
// either still held or was evicted, once.
TEST_F(StoreTest, ConcurrentPutsOnAFullDriveEvictEachValueOnceAndKeepTheDriveFull) {
  auto a = NewMedium(32 << 20, "a");
  Format({a}, 1 << 20);
  auto s = Open({a});
  Store& st = **s;
  const uint64_t usable = st.stats().drives[0].usable_bytes;
  const size_t value_size = 60 << 10;  // 15 pages, checksums inline
  const size_t n = usable / value_size * 4;
  std::vector<std::string> keys, values;
  for (size_t i = 0; i < n; ++i) {
    keys.push_back("c" + std::to_string(i));
    values.push_back(Value(value_size, i));
  }
  std::vector<Store::PutItem> puts;
  for (size_t i = 0; i < n; ++i) puts.push_back({keys[i], B(values[i])});
  const size_t concurrency = 32;
  const auto put_status = RunSync(ctx_, st.PutBatch(puts, concurrency));
  for (size_t i = 0; i < n; ++i) ASSERT_TRUE(put_status[i]) << keys[i];
  size_t held = 0;
  for (const auto& k : keys) held += st.Stat(k) ? 1 : 0;
  const auto stats = st.stats();
  EXPECT_EQ(held + stats.evictions, n);
  // Evicted down to the low watermark (0.8), less the puts then in flight.
  const double low = 0.8 * static_cast<double>(usable) - concurrency * 15.0 * 4096;
  EXPECT_GE(static_cast<double>(stats.drives[0].used_bytes), low)
      << "held " << held << " of " << n << ", " << stats.evictions << " evictions";
  EXPECT_EQ(Get(st, keys.back()).value(), values.back());
}

TEST_F(StoreTest, OnlineResetEmptiesOneDriveWhileTheOtherServes) {
  auto a = NewMedium(64 << 20, "a"), b = NewMedium(64 << 20, "b");
  Format({a, b}, 1 << 20);
  auto s = Open({a, b});
  Store& st = **s;
  std::map<std::string, std::string> model;
  for (int i = 0; i < 100; ++i) {
    model["k" + std::to_string(i)] = Value(5000, i);
    ASSERT_TRUE(Put(st, "k" + std::to_string(i), model["k" + std::to_string(i)]));
  }
  const auto before = st.stats();
  ASSERT_GT(before.drives[0].used_bytes, 0u);
  ASSERT_GT(before.drives[1].used_bytes, 0u);
  ASSERT_TRUE(RunSync(ctx_, st.ResetDriveOnline(0, /*secure=*/false)));
  const auto after = st.stats();
  EXPECT_EQ(after.drives[0].used_bytes, 0u);
  EXPECT_EQ(after.drives[0].generation, before.drives[0].generation + 1);
  EXPECT_TRUE(after.drives[0].online);
  int kept = 0;
  for (auto& [k, v] : model) {
    auto got = Get(st, k);
    if (got) {
      EXPECT_EQ(got.value(), v);
      ++kept;
    } else {
      EXPECT_EQ(got.error(), errc::not_found);
    }
  }
  EXPECT_GT(kept, 20);
  EXPECT_LT(kept, 80);
  // Both drives take new values, and all of it survives a reopen.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put(st, "n" + std::to_string(i), Value(5000, i)));
  s->reset();
  auto re = Open({a, b});
  ASSERT_TRUE(re) << re.error().message();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(Get(**re, "n" + std::to_string(i)).value(), Value(5000, i));
  EXPECT_EQ((*re)->stats().keys, static_cast<uint64_t>(kept + 50));
}

TEST_F(StoreTest, SecureResetReadsBackZerosOnADriveWhoseDiscardKeepsData) {
  auto medium = std::shared_ptr<io::MemoryDevice>(io::MemoryDevice::Create("a", 32 << 20).value());
  Format({medium}, 1 << 20);
  {
    auto s = Open({medium});
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(Put(**s, "k" + std::to_string(i), Value(8000, i)));
  }
  auto sb_before = RunSync(ctx_, ReadSuperblock(*medium)).value().sb;
  io::PowerCutDevice pc(medium);  // its Discard keeps every byte
  ASSERT_TRUE(RunSync(ctx_, ResetDrive(pc, /*secure=*/false)));
  ASSERT_TRUE(RunSync(ctx_, pc.Flush()));
  auto contents = medium->contents();
  const auto& l = sb_before.layout;
  bool any = false;
  for (uint64_t i = l.data_offset; i < l.data_offset + l.data_size; ++i) any |= contents[i] != std::byte{0};
  EXPECT_TRUE(any) << "a plain reset on this device leaves the data";
  ASSERT_TRUE(RunSync(ctx_, ResetDrive(pc, /*secure=*/true)));
  ASSERT_TRUE(RunSync(ctx_, pc.Flush()));
  for (uint64_t i = l.data_offset; i < l.data_offset + l.data_size; ++i)
    ASSERT_EQ(contents[i], std::byte{0}) << "offset " << i;
  auto sb = RunSync(ctx_, ReadSuperblock(*medium)).value().sb;
  EXPECT_EQ(sb.device_id, sb_before.device_id);
  EXPECT_EQ(sb.set_size, sb_before.set_size);
  EXPECT_EQ(sb.drive_generation, sb_before.drive_generation + 2);
  auto s = Open({medium});
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->stats().keys, 0u);
}

TEST_F(StoreTest, BatchesGiveAStatusPerEntryAndShareJournalRecords) {
  // Files through io_uring, so that I/O suspends and puts overlap.
  io::testing::TempDir dir;
  auto ring = io::Ring::Create(ctx_).value();
  std::vector<std::shared_ptr<io::BlockDevice>> files;
  for (const char* name : {"a", "b"}) {
    ASSERT_TRUE(io::FileDevice::CreateSparse(dir.File(name), 64 << 20));
    files.push_back(std::shared_ptr<io::BlockDevice>(io::FileDevice::Open(dir.File(name)).value()));
  }
  Format(files, 1 << 20);
  auto s = Open(files);
  Store& st = **s;
  std::vector<std::string> keys, values;
  for (int i = 0; i < 500; ++i) {
    keys.push_back("b" + std::to_string(i));
    values.push_back(Value(100 + (i * 7919) % 20000, i));
  }
  keys.push_back("");  // a bad entry fails alone
  values.push_back("x");
  std::vector<Store::PutItem> puts;
  for (size_t i = 0; i < keys.size(); ++i) puts.push_back({keys[i], B(values[i])});
  const auto put_status = RunSync(ctx_, st.PutBatch(puts));
  ASSERT_EQ(put_status.size(), keys.size());
  for (size_t i = 0; i + 1 < keys.size(); ++i) EXPECT_TRUE(put_status[i]) << i;
  EXPECT_EQ(put_status.back().error(), errc::bad_key);
  // Concurrent puts committed together: far fewer records than puts.
  EXPECT_LT(st.stats().journal_records, 250u);

  std::vector<std::string> outs(500);
  std::vector<Store::GetItem> gets;
  for (size_t i = 0; i < 500; ++i) {
    outs[i].resize(values[i].size());
    gets.push_back({keys[i], 0, {reinterpret_cast<std::byte*>(outs[i].data()), outs[i].size()}});
  }
  std::string missing(10, '\0');
  gets.push_back({"nope", 0, {reinterpret_cast<std::byte*>(missing.data()), missing.size()}});
  const auto got = RunSync(ctx_, st.GetBatch(gets));
  for (size_t i = 0; i < 500; ++i) {
    ASSERT_TRUE(got[i]) << i;
    EXPECT_TRUE(outs[i] == values[i]) << i;
  }
  EXPECT_EQ(got.back().error(), errc::not_found);

  std::vector<std::string_view> dels(keys.begin(), keys.begin() + 100);
  const auto del_status = RunSync(ctx_, st.DeleteBatch(dels));
  for (const auto& d : del_status) EXPECT_TRUE(d);
  EXPECT_EQ(st.stats().keys, 400u);
}

TEST_F(StoreTest, AFailedWriteFailsItsPutAndTheOtherDriveServes) {
  auto ma = NewMedium(64 << 20, "a"), mb = NewMedium(64 << 20, "b");
  Format({ma, mb}, 1 << 20);
  auto fa = std::make_shared<io::FaultyDevice>(ma);
  auto s = Open({fa, mb});
  Store& st = **s;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(st, "k" + std::to_string(i), Value(5000, i)));
  fa->FailNthWrite(1);
  int failed = 0;
  for (int i = 20; i < 60; ++i) failed += Put(st, "k" + std::to_string(i), Value(5000, i)) ? 0 : 1;
  EXPECT_EQ(failed, 1);  // drive a leaves service; later puts go to b
  EXPECT_FALSE(st.stats().drives[0].online);
  int served = 0;
  for (int i = 0; i < 60; ++i) {
    auto got = Get(st, "k" + std::to_string(i));
    if (got) {
      EXPECT_EQ(got.value(), Value(5000, i));
      ++served;
    } else {
      EXPECT_TRUE(got.error() == errc::unavailable || got.error() == errc::not_found)
          << got.error().message();
    }
  }
  EXPECT_GE(served, 39);
}

TEST_F(StoreTest, AShortReadIsAnErrorNotWrongBytes) {
  auto ma = NewMedium(64 << 20, "a");
  Format({ma}, 1 << 20);
  auto fa = std::make_shared<io::FaultyDevice>(ma);
  StoreOptions o;
  o.memory_max_size = 1 << 20;  // values bigger than the cache takes
  auto s = Open({fa}, o);
  Store& st = **s;
  const std::string v = Value(900 << 10, 3);
  ASSERT_TRUE(Put(st, "k", v));
  fa->ShortNthRead(1, 4096);  // the value and its checksum table come in one read
  auto got = Get(st, "k");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), io::errc::short_read);
  EXPECT_EQ(Get(st, "k").value(), v);  // the entry stays: the drive was not wrong
  fa->FailNthRead(1);
  EXPECT_FALSE(Get(st, "k"));
  EXPECT_EQ(Get(st, "k").value(), v);
}

// A random workload over drives that tear a write at a random moment and
// then lose power (every write not followed by a completed flush dropped).
// After each reopen every acknowledged put reads back exactly unless deleted
// or overwritten later, and no key returns bytes it was never given.
TEST_F(StoreTest, PowerCutsNeverLoseAcknowledgedPutsOrReturnWrongBytes) {
  auto medium_a = NewMedium(32 << 20, "a"), medium_b = NewMedium(32 << 20, "b");
  Format({medium_a, medium_b}, 256 << 10);
  std::mt19937_64 rng(7);
  std::map<std::string, std::set<uint64_t>> given;       // every seed a key was given
  std::map<std::string, std::optional<uint64_t>> acked;  // last acked seed; nullopt: deleted
  uint64_t next_seed = 1;
  int torn_rounds = 0;
  for (int round = 0; round < 25; ++round) {
    auto pa = std::make_shared<io::PowerCutDevice>(medium_a);
    auto pb = std::make_shared<io::PowerCutDevice>(medium_b);
    auto fa = std::make_shared<io::FaultyDevice>(pa);
    auto fb = std::make_shared<io::FaultyDevice>(pb);
    auto s = Open({fa, fb});
    ASSERT_TRUE(s) << "round " << round << ": " << s.error().message();
    Store& st = **s;
    CheckAfterReopen(st, round, acked, given);
    // A burst of work; one drive tears a write somewhere in it.
    io::FaultyDevice& victim = rng() % 2 ? *fa : *fb;
    victim.TearNthWrite(1 + rng() % 120, (rng() % 64) * 4096);
    const int ops = 20 + static_cast<int>(rng() % 80);
    for (int i = 0; i < ops; ++i) {
      const std::string k = "key" + std::to_string(rng() % 40);
      if (rng() % 5 == 0) {
        if (!RunSync(ctx_, st.Delete(k)).has_value()) {
          acked.erase(k);  // may or may not have happened
          ++torn_rounds;
          break;
        }
        acked[k] = std::nullopt;
      } else {
        const uint64_t seed = next_seed++;
        given[k].insert(seed);
        if (!Put(st, k, Value(1 + rng() % (600 << 10), seed))) {
          acked.erase(k);  // the old value or the new one: either is fine
          ++torn_rounds;
          break;
        }
        acked[k] = seed;
      }
    }
    // The power goes out; the process dies with it.
    pa->CutPower();
    pb->CutPower();
    s->reset();
  }
  EXPECT_GT(torn_rounds, 5);  // the faults really hit work in flight
}

// A flush that fails takes its drive out of service; the puts whose data or
// record it was to make durable fail with it (none was acknowledged before
// its record was flushed), and every put acknowledged survives the power cut
// that follows.
// A put whose record was written but whose journal flush failed may still
// come back on a restart (the record reached the drive): its pages stay
// taken until then. Were they reused on the drive still in service, the
// replayed put and an acknowledged later one would claim the same pages.
TEST_F(StoreTest, APutWhoseRecordMayHaveLandedKeepsItsPagesUntilARestart) {
  auto ma = NewMedium(32 << 20, "a"), mb = NewMedium(32 << 20, "b");
  Format({ma, mb}, 64 << 10);  // 256 KiB values: stripes on both drives
  std::map<std::string, std::string> given, failed;
  std::vector<std::string> held;
  {
    auto fa = std::make_shared<io::FaultyDevice>(ma);
    auto s = Open({fa, mb});
    ASSERT_TRUE(s);
    Store& st = **s;
    fa->FailNthFlush(2);  // drive a's first group: its data flush passes, its journal flush fails
    std::vector<std::string> keys, values;
    for (int i = 0; i < 24; ++i) {
      keys.push_back("first" + std::to_string(i));
      values.push_back(Value(256 << 10, i));
    }
    std::vector<Store::PutItem> puts;
    for (size_t i = 0; i < keys.size(); ++i) puts.push_back({keys[i], B(values[i])});
    const auto put_status = RunSync(ctx_, st.PutBatch(puts, 16));
    for (size_t i = 0; i < keys.size(); ++i)
      (put_status[i] ? given : failed)[keys[i]] = values[i];
    ASSERT_GT(failed.size(), 0u);
    ASSERT_FALSE(st.stats().drives[0].online);
    // Drive b alone now: fill it, so freed pages would be taken again.
    for (int i = 0; i < 90; ++i) {
      const std::string k = "then" + std::to_string(i);
      const std::string v = Value(256 << 10, 1000 + i);
      if (Put(st, k, v)) given[k] = v;
    }
    for (const auto& [k, v] : given)
      if (st.Stat(k)) held.push_back(k);  // acknowledged and not evicted
    ASSERT_GT(held.size(), 60u);
  }
  auto s = Open({ma, mb});  // drive a reads again, its record with it
  ASSERT_TRUE(s);
  for (const auto& k : held) {
    auto got = Get(**s, k);
    ASSERT_TRUE(got) << k << ": " << got.error().message();
    EXPECT_TRUE(*got == given[k]) << k << " wrong bytes";
  }
  for (const auto& [k, v] : failed) {
    auto got = Get(**s, k);
    if (got) {
      EXPECT_TRUE(*got == v) << k << " wrong bytes";
    } else {
      EXPECT_EQ(got.error(), make_error_code(errc::not_found)) << k << ": " << got.error().message();
    }
  }
}

TEST_F(StoreTest, AFailedJournalFlushFailsThePutsItWasToMakeDurable) {
  // Whichever flush fails: a group's data flush or its record's.
  size_t acked_before_a_failure = 0;
  for (uint64_t n = 2; n <= 7; ++n) {
    SCOPED_TRACE("flush " + std::to_string(n) + " fails");
    auto medium = NewMedium(64 << 20, "a");
    Format({medium}, 1 << 20);
    std::map<std::string, std::string> acked;
    {
      PowerSwitch power;
      auto pc = std::make_shared<io::PowerCutDevice>(medium);
      auto faulty = std::make_shared<io::FaultyDevice>(pc);
      auto s = Open({std::make_shared<SwitchedDevice>(faulty, power)});
      ASSERT_TRUE(s);
      Store& st = **s;
      faulty->FailNthFlush(n);
      std::vector<std::string> keys, values;
      for (int i = 0; i < 100; ++i) {
        keys.push_back("k" + std::to_string(i));
        values.push_back(Value(8000 + i, i));
      }
      std::vector<Store::PutItem> puts;
      for (size_t i = 0; i < keys.size(); ++i) puts.push_back({keys[i], B(values[i])});
      const auto put_status = RunSync(ctx_, st.PutBatch(puts, 16));
      size_t failed = 0;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (put_status[i]) {
          acked[keys[i]] = values[i];
        } else {
          ++failed;
        }
      }
      EXPECT_GT(failed, 0u);
      EXPECT_FALSE(st.stats().drives[0].online);
      acked_before_a_failure += acked.size();
      pc->CutPower();
    }
    auto s = Open({medium});
    ASSERT_TRUE(s);
    for (const auto& [k, v] : acked) {
      auto got = Get(**s, k);
      ASSERT_TRUE(got) << k << ": " << got.error().message();
      EXPECT_TRUE(got.value() == v) << k;
    }
  }
  EXPECT_GT(acked_before_a_failure, 0u);
}

// Yields `yields` times, then checkpoints every drive.
io::Awaitable<Status> CheckpointLater(Store& st, int yields) {
  for (int i = 0; i < yields; ++i) co_await Yield();
  co_return co_await st.Checkpoint();
}

// Deletes `key`; true when it succeeded with the power still on. (A delete
// whose home drive is out of service is refused Unavailable, and after a
// cut every drive leaves service.)
io::Awaitable<bool> DeleteBeforeTheCut(Store& st, std::string key, const PowerSwitch& power) {
  const Status deleted = co_await st.Delete(key);
  co_return deleted.has_value() && power.on();
}

// Concurrent puts and deletes sharing records (and a checkpoint now and
// then) over two drives, with values striped over both; the power goes out
// at a random write or flush. After each reopen every acknowledged put reads
// back exactly unless deleted or overwritten later, every acknowledged delete
// holds, and no key returns bytes it was never given.
TEST_F(StoreTest, PowerCutsDuringConcurrentPutsNeverLoseAcknowledgedOnes) {
  auto medium_a = NewMedium(64 << 20, "a"), medium_b = NewMedium(64 << 20, "b");
  Format({medium_a, medium_b}, 256 << 10);
  std::mt19937_64 rng(11);
  std::map<std::string, std::set<uint64_t>> given;       // every seed a key was given
  std::map<std::string, std::optional<uint64_t>> acked;  // last acked seed; nullopt: deleted
  uint64_t next_seed = 1;
  int cut_rounds = 0;
  for (int round = 0; round < 24; ++round) {
    PowerSwitch power;
    auto pa = std::make_shared<io::PowerCutDevice>(medium_a);
    auto pb = std::make_shared<io::PowerCutDevice>(medium_b);
    // The drives' caches write back half of what they hold, in any order,
    // before the cut: records may land without data written before them,
    // and writes land torn, unless a flush ordered them.
    pa->KeepAtCut(0.5, rng());
    pb->KeepAtCut(0.5, rng());
    power.Add(pa);
    power.Add(pb);
    auto s = Open({std::make_shared<SwitchedDevice>(pa, power),
                   std::make_shared<SwitchedDevice>(pb, power)});
    ASSERT_TRUE(s) << "round " << round << ": " << s.error().message();
    Store& st = **s;
    CheckAfterReopen(st, round, acked, given);
    // A burst of work: puts of distinct keys, deletes of others, all at once.
    std::vector<std::string> put_keys, values, del_keys;
    std::vector<uint64_t> seeds;
    for (int i = 0; i < 40; ++i) {
      const std::string k = "key" + std::to_string(i);
      const uint64_t dice = rng() % 4;
      if (dice == 0) continue;
      if (auto it = acked.find(k); dice == 1 && it != acked.end() && it->second) {
        del_keys.push_back(k);
        continue;
      }
      put_keys.push_back(k);
      seeds.push_back(next_seed++);
      given[k].insert(seeds.back());
      values.push_back(Value(1 + rng() % (600 << 10), seeds.back()));
    }
    std::vector<Store::PutItem> puts;
    for (size_t i = 0; i < put_keys.size(); ++i) puts.push_back({put_keys[i], B(values[i])});
    power.CutAt(1 + rng() % 100);
    std::optional<Status> checkpointed;
    if (rng() % 3 == 0) io::testing::Spawn(ctx_, CheckpointLater(st, rng() % 40), checkpointed);
    std::vector<std::optional<bool>> deleted(del_keys.size());
    for (size_t i = 0; i < del_keys.size(); ++i)
      io::testing::Spawn(ctx_, DeleteBeforeTheCut(st, del_keys[i], power), deleted[i]);
    const auto put_status = RunSync(ctx_, st.PutBatch(puts, 16));
    for (size_t i = 0; i < put_keys.size(); ++i) {
      if (put_status[i]) {
        acked[put_keys[i]] = seeds[i];
      } else {
        acked.erase(put_keys[i]);  // the old value or the new one: either is fine
      }
    }
    for (size_t i = 0; i < del_keys.size(); ++i) {
      ASSERT_TRUE(deleted[i].has_value());
      if (*deleted[i]) {
        acked[del_keys[i]] = std::nullopt;
      } else {
        acked.erase(del_keys[i]);  // deleted or not: either is fine
      }
    }
    if (!power.on()) ++cut_rounds;
    // The power goes out (if it has not yet); the process dies with it.
    pa->CutPower();
    pb->CutPower();
    s->reset();
    ASSERT_TRUE(RunSync(ctx_, pa->LandSurvivors()));
    ASSERT_TRUE(RunSync(ctx_, pb->LandSurvivors()));
  }
  EXPECT_GT(cut_rounds, 15);  // the cuts really hit work in flight
}

// ---- a drive taken out of service, and what it holds when it comes back ----

class DriveFailureTest : public StoreTest {
 protected:
  static constexpr int kKeys = 60;
  std::string K(int i) { return "k" + std::to_string(i); }

  // kKeys keys put (seed i), then drive `drive` (`faulty`) made to fail a
  // write: puts of fresh keys until one homed there fails and takes it out
  // of service, so later records of its keys go to the other drive.
  void PutThenFailDrive(Store& st, io::FaultyDevice& faulty, size_t drive = 0) {
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(Put(st, K(i), Value(5000, i)));
    faulty.FailNthWrite(1);
    for (int i = 0; st.stats().drives[drive].online; ++i) {
      ASSERT_LT(i, 100) << "no put reached drive " << drive;
      (void)Put(st, "trigger" + std::to_string(i), Value(5000, 9000 + i));
    }
  }

  // Each key reads back its newest acknowledged value (`seed`), or is a
  // miss where `seed` is nullopt (deleted) or where `may_miss` (evicted):
  // never the bytes of an older value.
  void ExpectNewest(Store& st, const std::map<std::string, std::optional<uint64_t>>& newest,
                    bool may_miss) {
    for (const auto& [k, seed] : newest) {
      auto got = Get(st, k);
      if (!seed) {
        EXPECT_FALSE(got) << k << " came back after its acknowledged delete";
        continue;
      }
      if (!got) {
        EXPECT_TRUE(may_miss) << k << " lost: " << got.error().message();
        continue;
      }
      EXPECT_TRUE(*got == Value(got->size(), *seed)) << k << " holds an older value";
    }
  }
};

// Reported: two file drives, the second on a small tmpfs that filled; after
// it left service every key was overwritten and deleted, all acknowledged;
// on a restart with the drive healthy again half of them came back with
// their old values (the failed drive's journal, replayed after the other's
// deletes, had nothing newer to lose to).
TEST_F(DriveFailureTest, ADeleteAfterADriveFailureIsNotUndoneByReplayOfTheFailedDrive) {
  auto ma = NewMedium(64 << 20, "a"), mb = NewMedium(64 << 20, "b");
  Format({ma, mb}, 1 << 20);
  std::map<std::string, std::optional<uint64_t>> newest;
  {
    auto fb = std::make_shared<io::FaultyDevice>(mb);  // the second drive, as reported
    auto s = Open({ma, fb});
    ASSERT_TRUE(s);
    Store& st = **s;
    PutThenFailDrive(st, *fb, 1);
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(Put(st, K(i), Value(6000, 100 + i))) << K(i);
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(RunSync(ctx_, st.Delete(K(i)))) << K(i);
      newest[K(i)] = std::nullopt;
    }
  }
  auto s = Open({ma, mb});  // drive a healthy again
  ASSERT_TRUE(s) << s.error().message();
  ExpectNewest(**s, newest, false);
  // The same after a checkpoint of every drive and another restart.
  ASSERT_TRUE(RunSync(ctx_, (*s)->Checkpoint()));
  s->reset();
  s = Open({ma, mb});
  ASSERT_TRUE(s) << s.error().message();
  ExpectNewest(**s, newest, false);
}

// The deletes' records dropped by a checkpoint of the drive that held them
// must not let the failed drive's older puts back either.
TEST_F(DriveFailureTest, ADeleteAfterADriveFailureSurvivesACheckpointOfTheDriveThatRecordedIt) {
  auto ma = NewMedium(64 << 20, "a"), mb = NewMedium(64 << 20, "b");
  Format({ma, mb}, 1 << 20);
  std::map<std::string, std::optional<uint64_t>> newest;
  {
    auto fa = std::make_shared<io::FaultyDevice>(ma);
    auto s = Open({fa, mb});
    ASSERT_TRUE(s);
    Store& st = **s;
    PutThenFailDrive(st, *fa);
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(Put(st, K(i), Value(6000, 100 + i)));
    for (int i = 0; i < kKeys; i += 2) {
      ASSERT_TRUE(RunSync(ctx_, st.Delete(K(i))));
      newest[K(i)] = std::nullopt;
    }
    for (int i = 1; i < kKeys; i += 2) newest[K(i)] = 100 + i;
    ASSERT_TRUE(RunSync(ctx_, st.Checkpoint()));  // drive b only: a is out
  }
  auto s = Open({ma, mb});
  ASSERT_TRUE(s) << s.error().message();
  ExpectNewest(**s, newest, false);
}

TEST_F(DriveFailureTest, AnOverwriteAfterADriveFailureWinsOverTheFailedDrivesOldValue) {
  auto ma = NewMedium(64 << 20, "a"), mb = NewMedium(64 << 20, "b");
  Format({ma, mb}, 1 << 20);
  std::map<std::string, std::optional<uint64_t>> newest;
  {
    auto fa = std::make_shared<io::FaultyDevice>(ma);
    auto s = Open({fa, mb});
    ASSERT_TRUE(s);
    Store& st = **s;
    PutThenFailDrive(st, *fa);
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(Put(st, K(i), Value(6000, 100 + i)));
      newest[K(i)] = 100 + i;
    }
  }
  for (int round = 0; round < 2; ++round) {
    auto s = Open({ma, mb});
    ASSERT_TRUE(s) << s.error().message();
    ExpectNewest(**s, newest, false);
    ASSERT_TRUE(RunSync(ctx_, (*s)->Checkpoint()));
  }
}

// Evictions are deletes too: a value evicted from the drive in service
// leaves a miss, not the failed drive's older value of the key.
TEST_F(DriveFailureTest, AnEvictionAfterADriveFailureIsNotUndoneByReplayOfTheFailedDrive) {
  auto ma = NewMedium(32 << 20, "a"), mb = NewMedium(32 << 20, "b");
  Format({ma, mb}, 1 << 20);
  std::map<std::string, std::optional<uint64_t>> newest;
  uint64_t evictions = 0;
  {
    auto fa = std::make_shared<io::FaultyDevice>(ma);
    auto s = Open({fa, mb});
    ASSERT_TRUE(s);
    Store& st = **s;
    PutThenFailDrive(st, *fa);
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(Put(st, K(i), Value(6000, 100 + i)));
      newest[K(i)] = 100 + i;
    }
    // Fill drive b with other values until the overwrites are evicted.
    for (int i = 0; i < 800; ++i)
      ASSERT_TRUE(Put(st, "fill" + std::to_string(i), Value(60 << 10, 5000 + i)));
    evictions = st.stats().evictions;
    ASSERT_TRUE(RunSync(ctx_, st.Checkpoint()));
  }
  ASSERT_GT(evictions, 0u);
  auto s = Open({ma, mb});
  ASSERT_TRUE(s) << s.error().message();
  ExpectNewest(**s, newest, /*may_miss=*/true);
}

// A key whose records moved to drive b while a was out, then back to a once
// a was reset and in service again: its delete on a must not let b's older
// put back, whichever journal replays first and after checkpoints.
TEST_F(DriveFailureTest, AKeyThatMovedBackToAResetDriveStaysDeleted) {
  auto ma = NewMedium(64 << 20, "a"), mb = NewMedium(64 << 20, "b");
  Format({ma, mb}, 1 << 20);
  std::map<std::string, std::optional<uint64_t>> newest;
  {
    auto fa = std::make_shared<io::FaultyDevice>(ma);
    auto s = Open({fa, mb});
    ASSERT_TRUE(s);
    Store& st = **s;
    PutThenFailDrive(st, *fa);
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(Put(st, K(i), Value(6000, 100 + i)));
    ASSERT_TRUE(RunSync(ctx_, st.ResetDriveOnline(0, /*secure=*/false)));
    ASSERT_TRUE(st.stats().drives[0].online);
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(Put(st, K(i), Value(7000, 200 + i)));
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(RunSync(ctx_, st.Delete(K(i))));
      newest[K(i)] = std::nullopt;
    }
  }
  for (int round = 0; round < 2; ++round) {
    auto s = Open({ma, mb});
    ASSERT_TRUE(s) << s.error().message();
    ExpectNewest(**s, newest, false);
    ASSERT_TRUE(RunSync(ctx_, (*s)->Checkpoint()));
  }
}

// ---- List, Rename, open puts ----

std::vector<std::string> KeysOf(const Store::Listing& l) {
  std::vector<std::string> out;
  for (const auto& k : l.keys) out.push_back(k.key);
  return out;
}

TEST_F(StoreTest, ListGivesKeysByPrefixInOrderWithSizesVersionsAndACursor) {
  auto s = Open({});
  ASSERT_TRUE(s);
  Store& st = **s;
  for (const char* k : {"run/2/b", "run/1/a", "run/1/c", "other", "run/1/b", "run/10/a"})
    ASSERT_TRUE(Put(st, k, std::string(std::strlen(k), 'x')));
  auto l = st.List("run/1/", "", 2);
  EXPECT_EQ(KeysOf(l), (std::vector<std::string>{"run/1/a", "run/1/b"}));
  EXPECT_TRUE(l.more);
  EXPECT_EQ(l.keys[0].size, 7u);
  EXPECT_EQ(l.keys[0].version, st.Stat("run/1/a")->version);
  l = st.List("run/1/", "run/1/b", 2);
  EXPECT_EQ(KeysOf(l), std::vector<std::string>{"run/1/c"});
  EXPECT_FALSE(l.more);
  // Replace and delete show at once.
  ASSERT_TRUE(Put(st, "run/1/a", "longer value"));
  ASSERT_TRUE(RunSync(ctx_, st.Delete("run/1/b")));
  l = st.List("run/1", "", 10);
  EXPECT_EQ(KeysOf(l), (std::vector<std::string>{"run/1/a", "run/1/c", "run/10/a"}));
  EXPECT_EQ(l.keys[0].size, 12u);
  EXPECT_EQ(l.keys[0].version, st.Stat("run/1/a")->version);
}

TEST_F(StoreTest, ListSeesDriveEntriesAfterAReopen) {
  auto a = NewMedium(64 << 20, "a"), b = NewMedium(64 << 20, "b");
  Format({a, b}, 1 << 20);
  std::vector<std::string> want;
  {
    auto s = Open({a, b});
    ASSERT_TRUE(s);
    for (int i = 0; i < 50; ++i) {
      const std::string k = "k" + std::to_string(100 + i);
      ASSERT_TRUE(Put(**s, k, Value(100 + i, i)));
      if (i % 5 != 0) want.push_back(k);
    }
    for (int i = 0; i < 50; i += 5)
      ASSERT_TRUE(RunSync(ctx_, (*s)->Delete("k" + std::to_string(100 + i))));
  }
  auto s = Open({a, b});
  ASSERT_TRUE(s);
  std::vector<std::string> got;
  std::string cursor;
  for (;;) {
    auto l = (*s)->List("k", cursor, 7);
    for (const auto& k : l.keys) {
      got.push_back(k.key);
      EXPECT_EQ(k.size, (*s)->Stat(k.key)->size);
    }
    if (!l.more) break;
    cursor = l.keys.back().key;
  }
  EXPECT_EQ(got, want);
}

TEST_F(StoreTest, RenameMovesTheValueWithoutCopyingAndAPinnedReaderKeepsItsVersion) {
  auto s = Open({});
  ASSERT_TRUE(s);
  Store& st = **s;
  const std::string v = Value(1 << 20, 7);
  ASSERT_TRUE(Put(st, "from", v));
  ASSERT_TRUE(Put(st, "to", "old value of to"));
  const uint64_t used = st.stats().memory_used;
  auto pinned = st.Pin("from");
  ASSERT_TRUE(pinned);
  ASSERT_TRUE(RunSync(ctx_, st.Rename("from", "to")));
  EXPECT_EQ(Get(st, "to").value(), v);
  EXPECT_EQ(Get(st, "from").error(), errc::not_found);
  EXPECT_GT(st.Stat("to")->version, pinned->version);
  // The bytes are shared, and counted once: "to"'s old value went.
  EXPECT_EQ(st.stats().memory_used, used - 15);
  // The reader that pinned "from" reads its version still, whole.
  std::string out(v.size(), '\0');
  auto r = RunSync(
      ctx_, st.Get(*pinned, 0, std::span(reinterpret_cast<std::byte*>(out.data()), out.size())));
  ASSERT_TRUE(r);
  EXPECT_EQ(out, v);
  // Overwriting the new key frees the bytes only once the pin goes.
  ASSERT_TRUE(Put(st, "to", "x"));
  EXPECT_EQ(st.stats().memory_used, v.size() + 1);
  *pinned = {};
  EXPECT_EQ(st.stats().memory_used, 1u);
  EXPECT_EQ(RunSync(ctx_, st.Rename("missing", "y")).error(), errc::not_found);
  EXPECT_EQ(Get(st, "y").error(), errc::not_found);
  ASSERT_TRUE(RunSync(ctx_, st.Rename("to", "to")));
  EXPECT_EQ(Get(st, "to").value(), "x");
  EXPECT_EQ(KeysOf(st.List("", "", 10)), std::vector<std::string>{"to"});
}

TEST_F(StoreTest, RenameUnderConcurrentReadersOfTheOldKey) {
  auto s = Open({});
  ASSERT_TRUE(s);
  Store& st = **s;
  const std::string v = Value(256 << 10, 3);
  ASSERT_TRUE(Put(st, "k0", v));
  // Readers on other threads read whatever key holds the value; the value
  // moves k0 -> k1 -> ... while they read: each read is the whole value or
  // a miss, never other bytes.
  std::atomic<bool> stop{false};
  std::atomic<int> hits{0}, bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      asio::io_context ctx;
      std::string out(v.size(), '\0');
      for (int i = t; !stop.load(); ++i) {
        auto p = st.Pin("k" + std::to_string(i % 50));
        if (!p) continue;
        auto r = RunSync(
            ctx, st.Get(*p, 0, std::span(reinterpret_cast<std::byte*>(out.data()), out.size())));
        if (!r || out != v)
          ++bad;
        else
          ++hits;
      }
    });
  }
  for (int i = 0; i < 2000; ++i)
    ASSERT_TRUE(
        RunSync(ctx_, st.Rename("k" + std::to_string(i % 50), "k" + std::to_string((i + 1) % 50))));
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(Get(st, "k0").value(), v);  // 2000 moves of 50 keys: back where it began
  EXPECT_EQ(st.stats().keys, 1u);
  EXPECT_EQ(st.stats().memory_used, v.size());
}

TEST_F(StoreTest, RenameOnDrivesMovesTheValueDurablyWithoutCopyingIt) {
  auto a = NewMedium(64 << 20, "a"), b = NewMedium(64 << 20, "b");
  Format({a, b}, 1 << 20);
  const std::string v = Value((3 << 20) + 999, 11), small = Value(100, 12);
  uint64_t used = 0;
  {
    auto s = Open({a, b});
    ASSERT_TRUE(s);
    Store& st = **s;
    ASSERT_TRUE(Put(st, "from", v));
    ASSERT_TRUE(Put(st, "to", small));
    ASSERT_TRUE(Put(st, "s1", small));
    auto pinned = st.Pin("from");
    ASSERT_TRUE(pinned);
    const auto before = st.stats();
    ASSERT_TRUE(RunSync(ctx_, st.Rename("from", "to")));
    ASSERT_TRUE(RunSync(ctx_, st.Rename("s1", "s2")));
    EXPECT_EQ(Get(st, "to").value(), v);
    EXPECT_EQ(Get(st, "s2").value(), small);
    EXPECT_EQ(Get(st, "from").error(), errc::not_found);
    EXPECT_EQ(Get(st, "s1").error(), errc::not_found);
    // Not a copy: "to"'s old page went back, nothing new was taken.
    const auto after = st.stats();
    EXPECT_EQ(after.drives[0].used_bytes + after.drives[1].used_bytes,
              before.drives[0].used_bytes + before.drives[1].used_bytes - 4096);
    // The reader of "from" reads its version; a rename of the renamed
    // value and an overwrite keep its pages until the reader is done.
    ASSERT_TRUE(RunSync(ctx_, st.Rename("to", "to2")));
    ASSERT_TRUE(Put(st, "to2", "x"));
    std::string out(v.size(), '\0');
    ASSERT_TRUE(RunSync(
        ctx_, st.Get(*pinned, 0, std::span(reinterpret_cast<std::byte*>(out.data()), out.size()))));
    EXPECT_EQ(out, v);
    *pinned = {};
    ASSERT_TRUE(RunSync(ctx_, st.Rename("to2", "to")));
    ASSERT_TRUE(Put(st, "from", v));
    ASSERT_TRUE(RunSync(ctx_, st.Rename("from", "to")));
    EXPECT_EQ(RunSync(ctx_, st.Rename("missing", "to")).error(), errc::not_found);
    const auto end = st.stats();
    used = end.drives[0].used_bytes + end.drives[1].used_bytes;
    // Dropped without Close: the journal alone says where the values are.
  }
  auto s = Open({a, b});
  ASSERT_TRUE(s) << s.error().message();
  Store& st = **s;
  EXPECT_EQ(Get(st, "to").value(), v);
  EXPECT_EQ(Get(st, "s2").value(), small);
  for (const char* gone : {"from", "s1", "to2"})
    EXPECT_EQ(Get(st, gone).error(), errc::not_found) << gone;
  EXPECT_EQ(KeysOf(st.List("", "", 10)), (std::vector<std::string>{"s2", "to"}));
  const auto stats = st.stats();
  EXPECT_EQ(stats.drives[0].used_bytes + stats.drives[1].used_bytes, used);
  // Allocation rebuilt once per page: new values do not land on them.
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(Put(st, "new" + std::to_string(i), Value(1 << 20, i)));
  EXPECT_EQ(Get(st, "to").value(), v);
  EXPECT_EQ(Get(st, "s2").value(), small);
}

// Two renames of one key at once.
io::Awaitable<std::pair<Status, Status>> RenameTwice(Store& st) {
  std::optional<Status> first;
  asio::co_spawn(co_await asio::this_coro::executor, st.Rename("from", "a"),
                 [&first](std::exception_ptr, Status r) { first = r; });
  auto second = co_await st.Rename("from", "b");
  while (!first) co_await Yield();
  co_return std::make_pair(*first, second);
}

TEST_F(StoreTest, TwoRenamesOfOneKeyAtOnceLeaveItUnderOneKeyOnly) {
  auto a = NewMedium(64 << 20, "a");
  Format({a}, 1 << 20);
  const std::string v = Value(50000, 31);
  {
    auto s = Open({a});
    ASSERT_TRUE(s);
    ASSERT_TRUE(Put(**s, "from", v));
    const auto [first, second] = RunSync(ctx_, RenameTwice(**s));
    EXPECT_NE(static_cast<bool>(first), static_cast<bool>(second));
    const Status& lost = first ? second : first;
    EXPECT_EQ(lost.error(), errc::not_found);
    EXPECT_EQ(KeysOf((*s)->List("", "", 10)).size(), 1u);
  }
  auto s = Open({a});
  ASSERT_TRUE(s);
  const auto keys = KeysOf((*s)->List("", "", 10));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_NE(keys[0], "from");
  EXPECT_EQ(Get(**s, keys[0]).value(), v);
}

TEST_F(StoreTest, ARenameCutByAPowerFailureLeavesTheValueUnderOneKey) {
  const std::string v = Value((2 << 20) + 5, 21), old = Value(5000, 22);
  int acked = 0, kept = 0;  // renames acknowledged; cut ones that left "from"
  for (uint64_t n = 1; n <= 6; ++n) {
    SCOPED_TRACE("power cut at write or flush " + std::to_string(n));
    auto medium = NewMedium(64 << 20, "a");
    Format({medium}, 1 << 20);
    bool done = false;
    {
      PowerSwitch power;
      auto pc = std::make_shared<io::PowerCutDevice>(medium);
      power.Add(pc);
      auto s = Open({std::make_shared<SwitchedDevice>(pc, power)});
      ASSERT_TRUE(s);
      ASSERT_TRUE(Put(**s, "from", v));
      ASSERT_TRUE(Put(**s, "to", old));
      power.CutAt(n);
      done = static_cast<bool>(RunSync(ctx_, (*s)->Rename("from", "to"))) && power.on();
      pc->CutPower();
    }
    acked += done;
    auto s = Open({medium});
    ASSERT_TRUE(s) << s.error().message();
    auto from = Get(**s, "from"), to = Get(**s, "to");
    ASSERT_TRUE(to) << to.error().message();
    if (done || !from) {
      EXPECT_EQ(to.value(), v);
      EXPECT_EQ(from.error(), errc::not_found);
    } else {
      ++kept;
      EXPECT_EQ(from.value(), v);
      EXPECT_EQ(to.value(), old);
    }
    // Whichever key holds it, its pages are taken once: filling the drive
    // with new values leaves it whole.
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(Put(**s, "fill" + std::to_string(i), Value(1 << 20, i)));
    EXPECT_EQ(Get(**s, from ? "from" : "to").value(), v);
  }
  EXPECT_GT(acked, 0);
  EXPECT_GT(kept, 0);
}

// Appends `v` to an open put in pieces of varied sizes.
Status AppendAll(asio::io_context& ctx, Store::PendingPut& put, const std::string& v) {
  const size_t steps[] = {1, 4095, 70000, 1 << 20, 12345, 3 << 20};
  for (size_t at = 0, i = 0; at < v.size(); ++i) {
    const size_t n = std::min(steps[i % std::size(steps)], v.size() - at);
    auto st = RunSync(ctx, put.Append(B(v).subspan(at, n)));
    if (!st) return st;
    at += n;
  }
  return {};
}

TEST_F(StoreTest, OpenPutGrowsInMemoryAndCountsOnlyItsBytes) {
  StoreOptions o;
  o.memory_max_size = 64 << 20;
  auto s = Open({}, o);
  ASSERT_TRUE(s);
  Store& st = **s;
  const std::string v = Value((9 << 20) + 777, 5);
  {
    auto put = st.BeginOpenPut("open");
    ASSERT_TRUE(put);
    ASSERT_TRUE(AppendAll(ctx_, **put, v));
    EXPECT_EQ(Get(st, "open").error(), errc::not_found);  // not before Commit
    ASSERT_TRUE(RunSync(ctx_, (*put)->Commit()));
  }
  EXPECT_EQ(Get(st, "open").value(), v);
  EXPECT_EQ(GetRange(st, "open", (4 << 20) - 3, 10).value(), v.substr((4 << 20) - 3, 10));
  EXPECT_EQ(st.stats().memory_used, v.size());
  // Dropped before Commit: nothing visible, nothing held.
  {
    auto put = st.BeginOpenPut("dropped");
    ASSERT_TRUE(put);
    ASSERT_TRUE(AppendAll(ctx_, **put, Value(5 << 20, 1)));
    EXPECT_GE(st.stats().memory_used, v.size() + (5 << 20));
  }
  EXPECT_EQ(Get(st, "dropped").error(), errc::not_found);
  EXPECT_EQ(st.stats().memory_used, v.size());
  // Nothing written: empty_value.
  auto empty = st.BeginOpenPut("empty");
  ASSERT_TRUE(empty);
  EXPECT_EQ(RunSync(ctx_, (*empty)->Commit()).error(), errc::empty_value);
}

TEST_F(StoreTest, OpenPutPastMaxValueSizeIsTooLargeAndHoldsNothing) {
  StoreOptions o;
  o.max_value_size = 3 << 20;
  auto s = Open({}, o);
  ASSERT_TRUE(s);
  Store& st = **s;
  {
    auto put = st.BeginOpenPut("big");
    ASSERT_TRUE(put);
    ASSERT_TRUE(RunSync(ctx_, (*put)->Append(B(Value(3 << 20, 1)))));  // exactly the limit
    EXPECT_EQ(RunSync(ctx_, (*put)->Append(B("x"))).error(), errc::too_large);
  }
  EXPECT_EQ(st.stats().memory_used, 0u);
  EXPECT_EQ(Get(st, "big").error(), errc::not_found);

  auto a = NewMedium(64 << 20, "a");
  Format({a}, 1 << 20);
  auto d = Open({a}, o);
  ASSERT_TRUE(d);
  {
    auto put = (*d)->BeginOpenPut("big");
    ASSERT_TRUE(put);
    EXPECT_EQ(RunSync(ctx_, (*put)->Append(B(Value((3 << 20) + 1, 1)))).error(), errc::too_large);
  }
  EXPECT_EQ((*d)->stats().drives[0].used_bytes, 0u);
}

TEST_F(StoreTest, OpenPutOnDrivesGrowsByExtentsTrimsTheLastAndSurvivesAReopen) {
  auto a = NewMedium(64 << 20, "a"), b = NewMedium(64 << 20, "b");
  Format({a, b}, 1 << 20);
  std::map<std::string, std::string> model;
  {
    auto s = Open({a, b});
    ASSERT_TRUE(s);
    Store& st = **s;
    for (size_t size : {1ul, 5000ul, 1ul << 20, (3ul << 20) + 12345}) {
      const std::string k = "open-" + std::to_string(size);
      model[k] = Value(size, size);
      auto put = st.BeginOpenPut(k);
      ASSERT_TRUE(put);
      ASSERT_TRUE(AppendAll(ctx_, **put, model[k]));
      ASSERT_TRUE(RunSync(ctx_, (*put)->Commit())) << size;
    }
    for (auto& [k, v] : model) EXPECT_EQ(Get(st, k).value(), v) << k;
    const std::string& big = model["open-" + std::to_string((3ul << 20) + 12345)];
    EXPECT_EQ(GetRange(st, "open-" + std::to_string(big.size()), (1 << 20) - 5, 10).value(),
              big.substr((1 << 20) - 5, 10));
    // Trimmed: data pages plus one table page per extent (1 MiB stripes:
    // the 3 MiB value has four extents, the others one each), no more.
    const uint64_t pages = (1 + 1) + (2 + 1) + (256 + 1) + (3 * 257 + 4 + 1);
    const auto stats = st.stats();
    EXPECT_EQ(stats.drives[0].used_bytes + stats.drives[1].used_bytes, pages * 4096);
    // Dropped before Commit: its extents go back.
    {
      auto put = st.BeginOpenPut("dropped");
      ASSERT_TRUE(put);
      ASSERT_TRUE(AppendAll(ctx_, **put, Value(2 << 20, 9)));
    }
    const auto after = st.stats();
    EXPECT_EQ(after.drives[0].used_bytes + after.drives[1].used_bytes, pages * 4096);
    EXPECT_EQ(Get(st, "dropped").error(), errc::not_found);
  }
  auto s = Open({a, b});
  ASSERT_TRUE(s) << s.error().message();
  for (auto& [k, v] : model) EXPECT_EQ(Get(**s, k).value(), v) << k;
  EXPECT_EQ(Get(**s, "dropped").error(), errc::not_found);
}

}  // namespace
}  // namespace memkv::store
