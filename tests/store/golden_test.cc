// A drive set written by an older build must keep opening with every value
// exact. tests/store/golden/ holds small images of drive sets as older
// formats wrote them (see its README for how each was made); this test loads
// each into memory devices (the checked-in files are only read) and opens it
// with today's code.
//
// Image file format: u64 device size, then for each 4 KiB page that is not
// all zeros, u64 offset and the page's 4096 bytes (a sparse dump).

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "../io/test_util.h"
#include "io/memory_device.h"
#include "store/store.h"
#include "store/superblock.h"
#include "workload.h"

namespace memkv::store {
namespace {

namespace asio = boost::asio;
using io::testing::RunSync;
using testing::WorkloadValue;

const std::string kGoldenDir = MEMKV_SOURCE_DIR "/tests/store/golden";

// What the v1 image holds: each key's (size, seed), or nullopt for a miss.
struct Expected {
  std::string key;
  std::optional<std::pair<size_t, uint64_t>> value;
};
const std::vector<Expected>& V1Keys() {
  static const std::vector<Expected> keys = {
      {"g0", {{100, 0}}},    {"g1", {{6000, 101}}},  {"g2", std::nullopt},
      {"g3", {{4096, 3}}},   {"g4", {{9000, 104}}},  {"g5", {{1, 5}}},
      {"g6", {{20000, 6}}},  {"g7", {{300, 7}}},     {"g8", {{12000, 8}}},
      {"never-put", std::nullopt},
  };
  return keys;
}

Bytes B(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

std::unique_ptr<io::MemoryDevice> LoadImage(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  uint64_t size = 0;
  in.read(reinterpret_cast<char*>(&size), sizeof size);
  auto dev = io::MemoryDevice::Create(name, size).value();
  asio::io_context ctx;
  // Device I/O takes page-aligned buffers.
  std::unique_ptr<std::byte, decltype(&std::free)> buf(
      static_cast<std::byte*>(std::aligned_alloc(kPageSize, kPageSize)), &std::free);
  const std::span<std::byte> page(buf.get(), kPageSize);
  uint64_t offset = 0;
  while (in.read(reinterpret_cast<char*>(&offset), sizeof offset)) {
    in.read(reinterpret_cast<char*>(page.data()), kPageSize);
    if (!in || offset + kPageSize > size) return nullptr;
    if (!RunSync(ctx, dev->Write(offset, std::span<const std::byte>(page)))) return nullptr;
  }
  return dev;
}

void SaveImage(const io::MemoryDevice& dev, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t size = dev.size();
  out.write(reinterpret_cast<const char*>(&size), sizeof size);
  const auto bytes = dev.contents();
  for (uint64_t off = 0; off < size; off += kPageSize) {
    const auto page = bytes.subspan(off, kPageSize);
    bool zero = true;
    for (std::byte b : page) zero = zero && b == std::byte{0};
    if (zero) continue;
    out.write(reinterpret_cast<const char*>(&off), sizeof off);
    out.write(reinterpret_cast<const char*>(page.data()), kPageSize);
  }
}

// Hands the store a device the test keeps, to dump it afterwards.
class Borrowed final : public io::BlockDevice {
 public:
  explicit Borrowed(io::BlockDevice& d) : d_(d) {}
  const std::string& name() const override { return d_.name(); }
  uint64_t size() const override { return d_.size(); }
  uint32_t block_size() const override { return d_.block_size(); }
  io::Awaitable<Result<size_t>> Read(uint64_t o, std::span<std::byte> b) override {
    return d_.Read(o, b);
  }
  io::Awaitable<Status> Write(uint64_t o, std::span<const std::byte> b) override {
    return d_.Write(o, b);
  }
  io::Awaitable<Status> Flush() override { return d_.Flush(); }
  io::Awaitable<Status> Discard(uint64_t o, uint64_t n) override { return d_.Discard(o, n); }
  io::Awaitable<Status> ZeroFill(uint64_t o, uint64_t n) override { return d_.ZeroFill(o, n); }

 private:
  io::BlockDevice& d_;
};

// How tests/store/golden/v1 was made, with the build that wrote format v1
// (checkpoint version 1, journal version 1, superblock version 1):
//   MEMKV_GOLDEN_OUT=tests/store/golden/v1 build/dev/tests/store/store_test
//     --gtest_also_run_disabled_tests --gtest_filter='GoldenImage.DISABLED_*'
// (one command line).
// Two 16 MiB drives (the minimum), stripe unit 1 MiB: g0..g7 put and
// checkpointed, then g1 and g4 overwritten, g2 deleted, g8 put, and the
// store dropped without a checkpoint, so both a checkpoint and journal
// records replay.
TEST(GoldenImage, DISABLED_WriteV1Image) {
  const char* out = std::getenv("MEMKV_GOLDEN_OUT");
  ASSERT_NE(out, nullptr) << "set MEMKV_GOLDEN_OUT to the folder to write";
  asio::io_context ctx;
  std::vector<std::unique_ptr<io::MemoryDevice>> media;
  for (int i = 0; i < 2; ++i)
    media.push_back(io::MemoryDevice::Create("golden" + std::to_string(i), kMinDriveSize).value());
  std::vector<io::BlockDevice*> raw = {media[0].get(), media[1].get()};
  ASSERT_TRUE(RunSync(ctx, FormatSet(raw, FormatOptions{1 << 20})));
  {
    std::vector<std::unique_ptr<io::BlockDevice>> devs;
    for (auto& m : media) devs.push_back(std::make_unique<Borrowed>(*m));
    auto s = RunSync(ctx, Store::Open(std::move(devs), {}));
    ASSERT_TRUE(s);
    Store& st = **s;
    const size_t sizes[] = {100, 5000, 7000, 4096, 3000, 1, 20000, 300};
    for (int i = 0; i < 8; ++i)
      ASSERT_TRUE(RunSync(ctx, st.Put("g" + std::to_string(i), B(WorkloadValue(sizes[i], i)))));
    ASSERT_TRUE(RunSync(ctx, st.Checkpoint()));
    ASSERT_TRUE(RunSync(ctx, st.Put("g1", B(WorkloadValue(6000, 101)))));
    ASSERT_TRUE(RunSync(ctx, st.Put("g4", B(WorkloadValue(9000, 104)))));
    ASSERT_TRUE(RunSync(ctx, st.Delete("g2")));
    ASSERT_TRUE(RunSync(ctx, st.Put("g8", B(WorkloadValue(12000, 8)))));
  }
  for (size_t i = 0; i < media.size(); ++i)
    SaveImage(*media[i], std::string(out) + "/drive" + std::to_string(i) + ".img");
}

TEST(GoldenImage, AFormatV1DriveSetOpensWithEveryValueExact) {
  asio::io_context ctx;
  std::vector<std::unique_ptr<io::BlockDevice>> devs;
  for (int i = 0; i < 2; ++i) {
    auto dev = LoadImage(kGoldenDir + "/v1/drive" + std::to_string(i) + ".img",
                         "golden" + std::to_string(i));
    ASSERT_NE(dev, nullptr) << "image " << i << " missing or malformed";
    devs.push_back(std::move(dev));
  }
  auto s = RunSync(ctx, Store::Open(std::move(devs), {}));
  ASSERT_TRUE(s) << s.error().message();
  Store& st = **s;
  for (const Expected& e : V1Keys()) {
    auto info = st.Stat(e.key);
    if (!e.value) {
      EXPECT_FALSE(info) << e.key << " is back";
      continue;
    }
    ASSERT_TRUE(info) << e.key << " lost";
    const auto [size, seed] = *e.value;
    ASSERT_EQ(info->size, size) << e.key;
    std::string got(size, '\0');
    auto r = RunSync(ctx, st.Get(e.key, 0, std::span(reinterpret_cast<std::byte*>(got.data()),
                                                      got.size())));
    ASSERT_TRUE(r) << e.key << ": " << r.error().message();
    EXPECT_TRUE(got == WorkloadValue(size, seed)) << e.key << " wrong bytes";
  }
  EXPECT_EQ(st.stats().keys, 8u);
  // And today's code goes on writing over it.
  ASSERT_TRUE(RunSync(ctx, st.Put("g9", B(WorkloadValue(500, 9)))));
  ASSERT_TRUE(RunSync(ctx, st.Checkpoint()));
}

}  // namespace
}  // namespace memkv::store
