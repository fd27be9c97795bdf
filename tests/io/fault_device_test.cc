// The fault-injecting test devices do what the store's crash tests rely on.

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include "io/error.h"
#include "io/faulty_device.h"
#include "io/file_device.h"
#include "io/memory_device.h"
#include "io/power_cut_device.h"
#include "io/ring.h"
#include "test_util.h"

namespace memkv::io {
namespace {

using testing::AlignedBuf;
using testing::RunSync;
using testing::Spawn;
using testing::TempDir;
namespace asio = boost::asio;

constexpr uint64_t kSize = 4 << 20;

bool Equal(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}
bool AllZero(std::span<const std::byte> a) {
  for (std::byte b : a)
    if (b != std::byte{0}) return false;
  return true;
}

class FaultyDeviceTest : public ::testing::Test {
 protected:
  FaultyDeviceTest() : medium_(MemoryDevice::Create("mem", kSize).value()), faulty_(medium_) {}
  std::span<const std::byte> On(uint64_t offset, size_t len) {
    return medium_->contents().subspan(offset, len);
  }

  asio::io_context ctx_;
  std::shared_ptr<MemoryDevice> medium_;
  FaultyDevice faulty_;
};

TEST_F(FaultyDeviceTest, FailsTheNthWriteAndWritesNothing) {
  AlignedBuf a(8192), b(8192), c(8192);
  a.Fill(1);
  b.Fill(2);
  c.Fill(3);
  faulty_.FailNthWrite(2);
  EXPECT_TRUE(RunSync(ctx_, faulty_.Write(0, a.span())));
  EXPECT_EQ(RunSync(ctx_, faulty_.Write(8192, b.span())).error(), errc::injected_fault);
  EXPECT_TRUE(RunSync(ctx_, faulty_.Write(16384, c.span())));
  EXPECT_TRUE(Equal(On(0, 8192), a.span()));
  EXPECT_TRUE(AllZero(On(8192, 8192)));
  EXPECT_TRUE(Equal(On(16384, 8192), c.span()));
  EXPECT_EQ(faulty_.writes(), 3u);
  EXPECT_EQ(faulty_.faults_injected(), 1u);
}

TEST_F(FaultyDeviceTest, TearsAWriteToAPrefix) {
  AlignedBuf old_data(16384), new_data(16384);
  old_data.Fill(4);
  new_data.Fill(5);
  ASSERT_TRUE(RunSync(ctx_, faulty_.Write(0, old_data.span())));
  faulty_.TearNthWrite(1, 5000);  // rounds down to one block
  EXPECT_EQ(RunSync(ctx_, faulty_.Write(0, new_data.span())).error(), errc::injected_fault);
  EXPECT_TRUE(Equal(On(0, 4096), new_data.span().first(4096)));
  EXPECT_TRUE(Equal(On(4096, 12288), old_data.span().subspan(4096)));

  // A drive that lies: the tear reports success.
  faulty_.TearNthWrite(1, 8192, /*report_success=*/true);
  EXPECT_TRUE(RunSync(ctx_, faulty_.Write(0, new_data.span())));
  EXPECT_TRUE(Equal(On(0, 8192), new_data.span().first(8192)));
  EXPECT_TRUE(Equal(On(8192, 8192), old_data.span().subspan(8192)));
  EXPECT_EQ(faulty_.faults_injected(), 2u);
}

TEST_F(FaultyDeviceTest, ReturnsAShortReadAndReadFullNoticesIt) {
  AlignedBuf data(16384), back(16384);
  data.Fill(6);
  ASSERT_TRUE(RunSync(ctx_, faulty_.Write(0, data.span())));
  std::memset(back.data(), 0xee, back.size());
  faulty_.ShortNthRead(1, 8192);
  EXPECT_EQ(RunSync(ctx_, faulty_.Read(0, back.span())).value(), 8192u);
  EXPECT_TRUE(Equal(back.span().first(8192), data.span().first(8192)));
  EXPECT_EQ(back.data()[8192], std::byte{0xee});  // the rest untouched
  faulty_.ShortNthRead(1, 4096);
  EXPECT_EQ(RunSync(ctx_, ReadFull(faulty_, 0, back.span())).error(), errc::short_read);
  EXPECT_TRUE(RunSync(ctx_, ReadFull(faulty_, 0, back.span())));
}

TEST_F(FaultyDeviceTest, FailsTheNthReadAndFlushAndClearDisarms) {
  AlignedBuf buf(4096);
  faulty_.FailNthRead(1);
  faulty_.FailNthFlush(2);
  EXPECT_EQ(RunSync(ctx_, faulty_.Read(0, buf.span())).error(), errc::injected_fault);
  EXPECT_TRUE(RunSync(ctx_, faulty_.Flush()));
  EXPECT_EQ(RunSync(ctx_, faulty_.Flush()).error(), errc::injected_fault);
  faulty_.FailNthWrite(1);
  faulty_.Clear();
  EXPECT_TRUE(RunSync(ctx_, faulty_.Write(0, buf.span())));
  EXPECT_EQ(faulty_.faults_injected(), 2u);
}

class PowerCutDeviceTest : public ::testing::Test {
 protected:
  PowerCutDeviceTest() : medium_(MemoryDevice::Create("mem", kSize).value()), device_(medium_) {}
  AlignedBuf ReadBack(uint64_t offset, size_t len) {
    AlignedBuf back(len);
    EXPECT_TRUE(RunSync(ctx_, ReadFull(device_, offset, back.span())));
    return back;
  }

  asio::io_context ctx_;
  std::shared_ptr<MemoryDevice> medium_;
  PowerCutDevice device_;
};

TEST_F(PowerCutDeviceTest, AWriteWithoutAFlushIsLostInACut) {
  AlignedBuf data(65536);
  data.Fill(7);
  ASSERT_TRUE(RunSync(ctx_, device_.Write(0, data.span())));
  EXPECT_TRUE(Equal(ReadBack(0, 65536).span(), data.span()));  // visible before the cut
  EXPECT_TRUE(AllZero(medium_->contents().first(65536)));      // but not on the medium
  EXPECT_EQ(device_.unflushed_bytes(), 65536u);
  device_.CutPower();
  EXPECT_TRUE(ReadBack(0, 65536).AllZero());
  EXPECT_EQ(device_.unflushed_bytes(), 0u);
}

TEST_F(PowerCutDeviceTest, AFlushedWriteSurvivesAndLaterOnesDoNot) {
  AlignedBuf first(16384), second(8192);
  first.Fill(8);
  second.Fill(9);
  ASSERT_TRUE(RunSync(ctx_, device_.Write(0, first.span())));
  ASSERT_TRUE(RunSync(ctx_, device_.Flush()));
  ASSERT_TRUE(RunSync(ctx_, device_.Write(4096, second.span())));
  auto before = ReadBack(0, 16384);
  EXPECT_TRUE(Equal(before.span().subspan(4096, 8192), second.span()));
  device_.CutPower();
  EXPECT_TRUE(Equal(ReadBack(0, 16384).span(), first.span()));
  EXPECT_EQ(device_.cuts(), 1u);
}

TEST_F(PowerCutDeviceTest, DiscardKeepsTheOldDataSoOnlyZeroFillErases) {
  AlignedBuf data(32768);
  data.Fill(10);
  ASSERT_TRUE(RunSync(ctx_, device_.Write(0, data.span())));
  ASSERT_TRUE(RunSync(ctx_, device_.Flush()));
  ASSERT_TRUE(RunSync(ctx_, device_.Discard(0, 32768)));
  ASSERT_TRUE(RunSync(ctx_, device_.Flush()));
  device_.CutPower();
  EXPECT_TRUE(Equal(ReadBack(0, 32768).span(), data.span()));

  // Zeros not flushed are lost like any write; flushed, they stay.
  ASSERT_TRUE(RunSync(ctx_, device_.ZeroFill(0, 16384)));
  EXPECT_TRUE(ReadBack(0, 16384).AllZero());
  device_.CutPower();
  EXPECT_TRUE(Equal(ReadBack(0, 32768).span(), data.span()));
  ASSERT_TRUE(RunSync(ctx_, device_.ZeroFill(0, 16384)));
  ASSERT_TRUE(RunSync(ctx_, device_.Flush()));
  device_.CutPower();
  auto back = ReadBack(0, 32768);
  EXPECT_TRUE(AllZero(back.span().first(16384)));
  EXPECT_TRUE(Equal(back.span().subspan(16384), data.span().subspan(16384)));
}

// Over a medium whose writes really suspend (a file through the ring), two
// flushes in flight at once take turns, and the newer data ends on the medium.
// A cache that writes back on its own: some unflushed blocks reach the
// medium, others do not, so one write can land in part.
TEST_F(PowerCutDeviceTest, KeepAtCutLandsSomeUnflushedBlocksAndTearsWrites) {
  constexpr size_t kBlocks = 64;
  AlignedBuf data(kBlocks * 4096);
  data.Fill(11);
  device_.KeepAtCut(0.5, 42);
  ASSERT_TRUE(RunSync(ctx_, device_.Write(0, data.span())));
  device_.CutPower();
  EXPECT_TRUE(AllZero(medium_->contents().first(data.size())));  // not yet landed
  ASSERT_TRUE(RunSync(ctx_, device_.LandSurvivors()));
  auto back = ReadBack(0, data.size());
  size_t kept = 0;
  for (size_t b = 0; b < kBlocks; ++b) {
    auto block = back.span().subspan(b * 4096, 4096);
    if (Equal(block, data.span().subspan(b * 4096, 4096))) {
      ++kept;
    } else {
      EXPECT_TRUE(AllZero(block)) << "block " << b << " is neither old nor new";
    }
  }
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, kBlocks);

  // Nothing kept at 0; a second landing has nothing left to write.
  AlignedBuf other(4096);
  other.Fill(12);
  device_.KeepAtCut(0, 0);
  ASSERT_TRUE(RunSync(ctx_, device_.Write(kBlocks * 4096, other.span())));
  device_.CutPower();
  ASSERT_TRUE(RunSync(ctx_, device_.LandSurvivors()));
  EXPECT_TRUE(ReadBack(kBlocks * 4096, 4096).AllZero());
  EXPECT_TRUE(Equal(ReadBack(0, data.size()).span(), back.span()));
}

class PowerCutOverFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ring_ = Ring::Create(ctx_).value();
    const std::string path = dir_.File("medium");
    ASSERT_TRUE(FileDevice::CreateSparse(path, kSize));
    medium_ = FileDevice::Open(path).value();
    device_.emplace(medium_);
  }
  asio::io_context ctx_;
  std::unique_ptr<Ring> ring_;
  TempDir dir_;
  std::shared_ptr<BlockDevice> medium_;
  std::optional<PowerCutDevice> device_;
};

TEST_F(PowerCutOverFileTest, ConcurrentFlushesTakeTurnsAndTheNewestWins) {
  AlignedBuf v1(1 << 20), v2(1 << 20);
  v1.Fill(11);
  v2.Fill(12);
  ASSERT_TRUE(RunSync(ctx_, device_->Write(0, v1.span())));
  std::optional<Status> f1, w2, f2;
  Spawn(ctx_, device_->Flush(), f1);  // starts writing v1 to the medium
  Spawn(ctx_, device_->Write(0, v2.span()), w2);
  Spawn(ctx_, device_->Flush(), f2);  // waits for f1's turn, then writes v2
  ctx_.restart();
  ctx_.run();
  ASSERT_TRUE(f1.value());
  ASSERT_TRUE(w2.value());
  ASSERT_TRUE(f2.value());
  device_->CutPower();
  AlignedBuf back(1 << 20);
  ASSERT_TRUE(RunSync(ctx_, ReadFull(*device_, 0, back.span())));
  EXPECT_TRUE(Equal(back.span(), v2.span()));
}

TEST_F(PowerCutOverFileTest, AFlushCutShortReportsThePowerCut) {
  AlignedBuf data(1 << 20);
  data.Fill(13);
  ASSERT_TRUE(RunSync(ctx_, device_->Write(0, data.span())));
  std::optional<Status> flushed;
  Spawn(ctx_, device_->Flush(), flushed);
  // Runs while the flush waits for the medium.
  asio::post(ctx_, [this] { device_->CutPower(); });
  ctx_.restart();
  ctx_.run();
  EXPECT_EQ(flushed.value().error(), errc::power_cut);
  // The device works on after the cut.
  ASSERT_TRUE(RunSync(ctx_, device_->Write(0, data.span())));
  EXPECT_TRUE(RunSync(ctx_, device_->Flush()));
  device_->CutPower();
  AlignedBuf back(1 << 20);
  ASSERT_TRUE(RunSync(ctx_, ReadFull(*device_, 0, back.span())));
  EXPECT_TRUE(Equal(back.span(), data.span()));
}

}  // namespace
}  // namespace memkv::io
