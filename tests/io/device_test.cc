// The block devices, each through the same checks (round trips, alignment
// and range errors, zero-fill, discard, concurrency), then what is particular
// to each: the exclusive lock, sparse files, O_DIRECT fallback, loop devices.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/blocking_pool.h"
#include "io/error.h"
#include "io/file_device.h"
#include "io/memory_device.h"
#include "io/raw_device.h"
#include "io/ring.h"
#include "test_util.h"

namespace memkv::io {
namespace {

using testing::AlignedBuf;
using testing::RunSync;
using testing::Spawn;
using testing::TempDir;
namespace asio = boost::asio;

constexpr uint64_t kDeviceSize = 16 << 20;

// Runs a shell command; its stdout (trimmed) on success.
std::optional<std::string> Shell(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  if (::pclose(p) != 0) return std::nullopt;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// A loop device over a sparse file, detached on destruction.
class LoopDevice {
 public:
  // The reason it cannot be had here, or empty on success.
  std::string Attach(const std::string& backing, uint64_t size) {
    if (::geteuid() != 0) return "needs root to set up a loop device";
    if (!Shell("command -v losetup >/dev/null 2>&1")) return "losetup is not installed";
    if (!FileDevice::CreateSparse(backing, size)) return "cannot create " + backing;
    auto dev = Shell("losetup --find --show '" + backing + "' 2>/dev/null");
    if (!dev || dev->empty()) return "losetup could not attach a loop device (none free?)";
    path_ = *dev;
    return "";
  }
  ~LoopDevice() {
    if (!path_.empty()) Shell("losetup -d '" + path_ + "'");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class Kind { kMemory, kFileDirect, kFileBuffered, kFileTmpfs, kRaw };

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::kMemory:
      return "Memory";
    case Kind::kFileDirect:
      return "FileDirect";
    case Kind::kFileBuffered:
      return "FileBuffered";
    case Kind::kFileTmpfs:
      return "FileOnTmpfs";
    case Kind::kRaw:
      return "RawLoopDevice";
  }
  return "Unknown";
}

class DeviceTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    ring_ = Ring::Create(ctx_).value();
    switch (GetParam()) {
      case Kind::kMemory:
        device_ = MemoryDevice::Create("mem0", kDeviceSize).value();
        break;
      case Kind::kFileDirect:
      case Kind::kFileBuffered: {
        const std::string path = dir_.File("drive");
        ASSERT_TRUE(FileDevice::CreateSparse(path, kDeviceSize));
        auto dev = FileDevice::Open(path, {.direct = GetParam() == Kind::kFileDirect});
        ASSERT_TRUE(dev) << dev.error().message();
        EXPECT_EQ((*dev)->direct(), GetParam() == Kind::kFileDirect);
        device_ = std::move(*dev);
        break;
      }
      case Kind::kFileTmpfs: {
        if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm (tmpfs) here";
        shm_dir_.emplace("/dev/shm");
        const std::string path = shm_dir_->File("drive");
        ASSERT_TRUE(FileDevice::CreateSparse(path, kDeviceSize));
        auto dev = FileDevice::Open(path);
        ASSERT_TRUE(dev) << dev.error().message();
        device_ = std::move(*dev);
        break;
      }
      case Kind::kRaw: {
        loop_.emplace();
        if (auto why = loop_->Attach(dir_.File("loop.img"), kDeviceSize); !why.empty())
          GTEST_SKIP() << "RawDevice on a loop device: " << why;
        pool_.emplace();
        auto dev = RawDevice::Open(loop_->path(), *pool_);
        ASSERT_TRUE(dev) << loop_->path() << ": " << dev.error().message();
        device_ = std::move(*dev);
        break;
      }
    }
  }
  void TearDown() override {
    device_.reset();
    pool_.reset();
    loop_.reset();
  }

  Result<size_t> Read(uint64_t offset, std::span<std::byte> out) {
    return RunSync(ctx_, device_->Read(offset, out));
  }
  Status Write(uint64_t offset, std::span<const std::byte> data) {
    return RunSync(ctx_, device_->Write(offset, data));
  }

  asio::io_context ctx_;
  std::unique_ptr<Ring> ring_;
  TempDir dir_;
  std::optional<TempDir> shm_dir_;
  std::optional<LoopDevice> loop_;
  std::optional<BlockingPool> pool_;
  std::unique_ptr<BlockDevice> device_;
};

TEST_P(DeviceTest, DescribesItself) {
  EXPECT_EQ(device_->size(), kDeviceSize);
  EXPECT_EQ(device_->block_size(), 4096u);
  EXPECT_FALSE(device_->name().empty());
}

TEST_P(DeviceTest, WritesReadBackExactly) {
  AlignedBuf out(256 * 1024), in(256 * 1024);
  out.Fill(11);
  for (uint64_t offset : {uint64_t{0}, uint64_t{1} << 20, kDeviceSize - out.size()}) {
    ASSERT_TRUE(Write(offset, out.span()));
    auto n = Read(offset, in.span());
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, in.size());
    EXPECT_EQ(std::memcmp(out.data(), in.data(), in.size()), 0) << offset;
  }
  EXPECT_TRUE(RunSync(ctx_, device_->Flush()));
  EXPECT_TRUE(RunSync(ctx_, ReadFull(*device_, 0, in.span())));
}

TEST_P(DeviceTest, RefusesMisalignedAndOutOfRangeAccess) {
  AlignedBuf buf(8192);
  EXPECT_EQ(Read(100, buf.span()).error(), errc::misaligned);
  EXPECT_EQ(Read(0, buf.span().first(100)).error(), errc::misaligned);
  EXPECT_EQ(Read(0, buf.span().subspan(512, 4096)).error(), errc::misaligned);
  EXPECT_EQ(Write(4096 + 1, buf.span()).error(), errc::misaligned);
  EXPECT_EQ(Read(kDeviceSize - 4096, buf.span()).error(), errc::out_of_range);
  EXPECT_EQ(Write(kDeviceSize, buf.span().first(4096)).error(), errc::out_of_range);
  EXPECT_EQ(RunSync(ctx_, device_->ZeroFill(kDeviceSize - 4096, 8192)).error(), errc::out_of_range);
  EXPECT_EQ(RunSync(ctx_, device_->Discard(1, 4096)).error(), errc::misaligned);
}

TEST_P(DeviceTest, ZeroFillZeroesTheRangeAndNothingElse) {
  AlignedBuf data(1 << 20), back(1 << 20);
  data.Fill(21);
  ASSERT_TRUE(Write(0, data.span()));
  ASSERT_TRUE(RunSync(ctx_, device_->ZeroFill(64 * 1024, 128 * 1024)));
  ASSERT_EQ(Read(0, back.span()).value(), back.size());
  for (size_t i = 0; i < back.size(); i += 4096) {
    const bool zeroed = i >= 64 * 1024 && i < 192 * 1024;
    AlignedBuf zeros(4096);
    std::memset(zeros.data(), 0, 4096);
    EXPECT_EQ(std::memcmp(back.data() + i, zeroed ? zeros.data() : data.data() + i, 4096), 0)
        << "block at " << i;
  }
}

TEST_P(DeviceTest, DiscardLeavesTheRestIntact) {
  AlignedBuf data(1 << 20), back(1 << 20);
  data.Fill(31);
  ASSERT_TRUE(Write(0, data.span()));
  ASSERT_TRUE(RunSync(ctx_, device_->Discard(256 * 1024, 256 * 1024)));
  ASSERT_EQ(Read(0, back.span()).value(), back.size());
  // The discarded range may read as anything; the rest may not change.
  EXPECT_EQ(std::memcmp(back.data(), data.data(), 256 * 1024), 0);
  EXPECT_EQ(std::memcmp(back.data() + 512 * 1024, data.data() + 512 * 1024, 512 * 1024), 0);
}

TEST_P(DeviceTest, ManyConcurrentWritersAndReaders) {
  constexpr int kWriters = 64;
  constexpr size_t kChunk = 64 * 1024;
  AlignedBuf data(kWriters * kChunk), back(kWriters * kChunk);
  data.Fill(41);
  std::vector<std::optional<Status>> wrote(kWriters);
  for (int i = 0; i < kWriters; ++i)
    Spawn(ctx_, device_->Write(i * kChunk, data.span().subspan(i * kChunk, kChunk)), wrote[i]);
  ctx_.run();
  for (auto& w : wrote) ASSERT_TRUE(w.value());
  std::vector<std::optional<Result<size_t>>> read(kWriters);
  for (int i = 0; i < kWriters; ++i)
    Spawn(ctx_, device_->Read(i * kChunk, back.span().subspan(i * kChunk, kChunk)), read[i]);
  ctx_.restart();
  ctx_.run();
  for (auto& r : read) ASSERT_EQ(r.value().value(), kChunk);
  EXPECT_EQ(std::memcmp(data.data(), back.data(), back.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, DeviceTest,
                         ::testing::Values(Kind::kMemory, Kind::kFileDirect, Kind::kFileBuffered,
                                           Kind::kFileTmpfs, Kind::kRaw),
                         KindName);

TEST(MemoryDeviceTest, RefusesBadGeometry) {
  EXPECT_EQ(MemoryDevice::Create("m", 0).error(), errc::bad_option);
  EXPECT_EQ(MemoryDevice::Create("m", 4096 + 512).error(), errc::bad_option);
  EXPECT_EQ(MemoryDevice::Create("m", 4096, 1000).error(), errc::bad_option);
  EXPECT_TRUE(MemoryDevice::Create("m", 4096 + 512, 512));
}

TEST(MemoryDeviceTest, DiscardReturnsZerosAndFreesPages) {
  asio::io_context ctx;
  auto dev = MemoryDevice::Create("m", 1 << 20).value();
  AlignedBuf data(1 << 20), back(1 << 20);
  data.Fill(1);
  ASSERT_TRUE(RunSync(ctx, dev->Write(0, data.span())));
  ASSERT_TRUE(RunSync(ctx, dev->Discard(4096, 512 * 1024)));
  ASSERT_TRUE(RunSync(ctx, ReadFull(*dev, 0, back.span())));
  EXPECT_EQ(std::memcmp(back.data(), data.data(), 4096), 0);
  EXPECT_TRUE(std::all_of(back.data() + 4096, back.data() + 4096 + 512 * 1024,
                          [](std::byte b) { return b == std::byte{0}; }));
}

class FileDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override { ring_ = Ring::Create(ctx_).value(); }
  asio::io_context ctx_;
  std::unique_ptr<Ring> ring_;
  TempDir dir_;
};

TEST_F(FileDeviceTest, CreateSparseMakesAHoleyFileAndRefusesToOverwrite) {
  const std::string path = dir_.File("sparse");
  ASSERT_TRUE(FileDevice::CreateSparse(path, 64 << 20));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_LT(st.st_blocks * 512, 64 << 20);
  EXPECT_EQ(FileDevice::CreateSparse(path, 4096).error(),
            boost::system::error_code(EEXIST, boost::system::system_category()));
  EXPECT_EQ(FileDevice::CreateSparse(dir_.File("odd"), 1000).error(), errc::misaligned);
}

TEST_F(FileDeviceTest, ASecondOpenOfAHeldDriveIsRefused) {
  const std::string path = dir_.File("held");
  ASSERT_TRUE(FileDevice::CreateSparse(path, 1 << 20));
  auto first = FileDevice::Open(path);
  ASSERT_TRUE(first);
  auto second = FileDevice::Open(path);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), errc::device_in_use);
  EXPECT_NE(second.error().message().find("in use"), std::string::npos);
  first->reset();  // closing releases the lock
  EXPECT_TRUE(FileDevice::Open(path));
}

TEST_F(FileDeviceTest, ALockHeldByAnotherProcessIsRefused) {
  if (!Shell("command -v flock >/dev/null 2>&1")) GTEST_SKIP() << "flock(1) is not installed";
  const std::string path = dir_.File("other");
  ASSERT_TRUE(FileDevice::CreateSparse(path, 1 << 20));
  const std::string ready = dir_.File("ready"), release = dir_.File("release");
  // flock(1) holds the lock until `release` appears, which this guard makes
  // sure of however the test ends.
  struct Release {
    explicit Release(std::string p) : path(std::move(p)) {}
    Release(const Release&) = delete;
    Release& operator=(const Release&) = delete;
    std::string path;
    ~Release() {
      if (std::FILE* f = std::fopen(path.c_str(), "w")) std::fclose(f);
    }
  };
  std::optional<Release> release_guard;
  const std::string cmd = "flock -x '" + path + "' -c 'touch " + ready + "; while [ ! -e " +
                          release + " ]; do sleep 0.01; done' &";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  release_guard.emplace(release);
  while (!std::filesystem::exists(ready)) ::usleep(1000);
  EXPECT_EQ(FileDevice::Open(path).error(), errc::device_in_use);
  release_guard.reset();
  // Once the other process lets go, the drive opens.
  Result<std::unique_ptr<FileDevice>> dev = errc::device_in_use;
  while (!dev && dev.error() == errc::device_in_use) {
    ::usleep(1000);
    dev = FileDevice::Open(path);
  }
  EXPECT_TRUE(dev) << dev.error().message();
}

TEST_F(FileDeviceTest, RefusesWhatIsNotARegularFile) {
  EXPECT_EQ(FileDevice::Open("/dev/null").error(), errc::not_regular_file);
  EXPECT_EQ(FileDevice::Open(dir_.File("missing")).error(),
            boost::system::error_code(ENOENT, boost::system::system_category()));
}

TEST_F(FileDeviceTest, DiscardPunchesAHole) {
  const std::string path = dir_.File("punch");
  ASSERT_TRUE(FileDevice::CreateSparse(path, 4 << 20));
  auto dev = FileDevice::Open(path).value();
  AlignedBuf data(4 << 20);
  data.Fill(2);
  ASSERT_TRUE(RunSync(ctx_, dev->Write(0, data.span())));
  ASSERT_TRUE(RunSync(ctx_, dev->Flush()));
  struct stat before {
  }, after{};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  ASSERT_TRUE(RunSync(ctx_, dev->Discard(0, 2 << 20)));
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_LT(after.st_blocks, before.st_blocks);
  EXPECT_EQ(after.st_size, before.st_size);
}

TEST_F(FileDeviceTest, WithoutARingOnTheLoopIOFailsClearly) {
  asio::io_context bare;
  const std::string path = dir_.File("noring");
  ASSERT_TRUE(FileDevice::CreateSparse(path, 1 << 20));
  auto dev = FileDevice::Open(path).value();
  AlignedBuf buf(4096);
  EXPECT_EQ(RunSync(bare, dev->Read(0, buf.span())).error(), errc::no_ring);
  EXPECT_EQ(RunSync(bare, dev->Flush()).error(), errc::no_ring);
}

// ramfs has no O_DIRECT, no holes and no FALLOC_FL_ZERO_RANGE: every
// fallback of FileDevice at once.
TEST_F(FileDeviceTest, FallsBackWhereTheFileSystemLacksODirectHolesAndZeroRange) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a ramfs";
  const std::string mnt = dir_.File("ramfs");
  std::filesystem::create_directory(mnt);
  if (!Shell("mount -t ramfs memkv-test '" + mnt + "' 2>/dev/null"))
    GTEST_SKIP() << "cannot mount a ramfs here";
  struct Unmount {
    std::string path;
    ~Unmount() { Shell("umount '" + path + "'"); }
  } unmount{mnt};
  const std::string path = mnt + "/drive";
  ASSERT_TRUE(FileDevice::CreateSparse(path, 1 << 20));
  auto opened = FileDevice::Open(path);
  ASSERT_TRUE(opened) << opened.error().message();
  auto& dev = *opened;
  EXPECT_FALSE(dev->direct());

  AlignedBuf data(1 << 20), back(1 << 20);
  data.Fill(17);
  ASSERT_TRUE(RunSync(ctx_, dev->Write(0, data.span())));
  ASSERT_TRUE(RunSync(ctx_, dev->Flush()));
  EXPECT_TRUE(RunSync(ctx_, dev->Discard(0, 64 * 1024)));  // a hint: no error
  ASSERT_TRUE(RunSync(ctx_, dev->ZeroFill(64 * 1024, 128 * 1024)));
  ASSERT_TRUE(RunSync(ctx_, ReadFull(*dev, 0, back.span())));
  EXPECT_TRUE(std::all_of(back.data() + 64 * 1024, back.data() + 192 * 1024,
                          [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(std::memcmp(back.data() + 192 * 1024, data.data() + 192 * 1024, 832 * 1024), 0);
  dev.reset();
}

class RawDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ring_ = Ring::Create(ctx_).value();
    if (auto why = loop_.Attach(dir_.File("loop.img"), 8 << 20); !why.empty())
      GTEST_SKIP() << "RawDevice on a loop device: " << why;
  }
  asio::io_context ctx_;
  std::unique_ptr<Ring> ring_;
  TempDir dir_;
  LoopDevice loop_;  // after dir_: detached before the backing file goes
  BlockingPool pool_;
};

TEST_F(RawDeviceTest, SizesTheDeviceAndZeroesThroughTheHelperPool) {
  auto dev = RawDevice::Open(loop_.path(), pool_);
  ASSERT_TRUE(dev) << loop_.path() << ": " << dev.error().message();
  EXPECT_EQ((*dev)->size(), 8u << 20);
  EXPECT_TRUE((*dev)->direct());
  AlignedBuf data(1 << 20), back(1 << 20);
  data.Fill(8);
  ASSERT_TRUE(RunSync(ctx_, (*dev)->Write(0, data.span())));
  ASSERT_TRUE(RunSync(ctx_, (*dev)->Flush()));
  ASSERT_TRUE(RunSync(ctx_, (*dev)->ZeroFill(0, 1 << 20)));
  ASSERT_TRUE(RunSync(ctx_, ReadFull(**dev, 0, back.span())));
  EXPECT_TRUE(back.AllZero());
}

TEST_F(RawDeviceTest, ASecondOpenIsRefused) {
  auto first = RawDevice::Open(loop_.path(), pool_);
  ASSERT_TRUE(first);
  auto second = RawDevice::Open(loop_.path(), pool_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), errc::device_in_use);
}

TEST_F(RawDeviceTest, RefusesTheWrongKindOfPath) {
  EXPECT_EQ(RawDevice::Open(dir_.File("loop.img"), pool_).error(), errc::not_block_device);
  EXPECT_EQ(FileDevice::Open(loop_.path()).error(), errc::not_regular_file);
}

}  // namespace
}  // namespace memkv::io
