// storage.mode direct on real block devices: loop devices over sparse files
// (root and losetup needed; skipped with the reason otherwise), so the raw
// device path, O_DIRECT and BLKDISCARD/BLKZEROOUT run for real.

#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
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

std::string Shell(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    *rc = -1;
    return out;
  }
  std::array<char, 256> buf;
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  *rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// A loop device over a sparse file, detached at the end.
class LoopDevice {
 public:
  LoopDevice(const std::string& file, uint64_t size) {
    if (!CreateDriveFile(file, size)) return;
    int rc = 0;
    path_ = Shell("losetup --find --show " + file + " 2>/dev/null", &rc);
    if (rc != 0 || path_.rfind("/dev/loop", 0) != 0) path_.clear();
  }
  ~LoopDevice() {
    int rc = 0;
    if (!path_.empty()) Shell("losetup -d " + path_, &rc);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class DirectModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "direct mode needs root for loop devices";
    int rc = 0;
    Shell("command -v losetup", &rc);
    if (rc != 0) GTEST_SKIP() << "losetup (util-linux) is not installed";
    for (int i = 0; i < 2; ++i) {
      loops_dev_.push_back(std::make_unique<LoopDevice>(dir_.File("d" + std::to_string(i)), 64 << 20));
      if (loops_dev_.back()->path().empty())
        GTEST_SKIP() << "no loop device could be attached (no /dev/loop-control in this sandbox?)";
    }
    loops_ = server::Loops::Create(1).value();
  }

  std::vector<std::unique_ptr<io::BlockDevice>> OpenAll() {
    std::vector<std::unique_ptr<io::BlockDevice>> devs;
    for (auto& l : loops_dev_) {
      auto d = OpenDrive(l->path(), Mode::kDirect, loops_->helpers());
      EXPECT_TRUE(d) << l->path() << ": " << d.error().message();
      if (d) devs.push_back(std::move(*d));
    }
    return devs;
  }

  io::testing::TempDir dir_;
  std::vector<std::unique_ptr<LoopDevice>> loops_dev_;
  std::unique_ptr<server::Loops> loops_;
};

TEST_F(DirectModeTest, ValuesSurviveReopenOnLoopDevices) {
  EXPECT_EQ(ModeOfPath(loops_dev_[0]->path()), Mode::kDirect);
  {
    auto devs = OpenAll();
    ASSERT_EQ(devs.size(), 2u);
    std::vector<io::BlockDevice*> raw = {devs[0].get(), devs[1].get()};
    ASSERT_TRUE(loops_->RunBlocking([&]() -> io::Awaitable<Status> {
      co_return co_await FormatSet(raw, FormatOptions{1 << 20});
    }));
  }
  StoreOptions opt;
  opt.mode = Mode::kDirect;
  opt.memory_max_size = 4 << 20;  // keep reads on the drives
  for (int pass = 0; pass < 2; ++pass) {
    auto devs = OpenAll();
    ASSERT_TRUE(loops_->RunBlocking([&]() -> io::Awaitable<Status> {
      auto s = co_await Store::Open(std::move(devs), opt);
      if (!s) co_return s.error();
      Store& st = **s;
      for (int i = 0; i < 40; ++i) {
        const std::string key = "k" + std::to_string(i);
        const size_t size = 1 + (i * 40503) % (3 << 20);
        if (pass == 0) {
          const std::string v = testing::WorkloadValue(size, i + 1);
          auto put = co_await st.Put(key, {reinterpret_cast<const std::byte*>(v.data()), v.size()});
          EXPECT_TRUE(put) << key << ": " << put.error().message();
        }
        std::string got(size, '\0');
        auto r = co_await st.Get(key, 0, {reinterpret_cast<std::byte*>(got.data()), got.size()});
        EXPECT_TRUE(r) << "pass " << pass << " " << key;
        EXPECT_TRUE(got == testing::WorkloadValue(size, i + 1)) << "pass " << pass << " " << key;
      }
      // The online reset path on a real device: discard through the helpers.
      if (pass == 1) {
        auto reset = co_await st.ResetDriveOnline(1, /*secure=*/true);
        EXPECT_TRUE(reset) << reset.error().message();
        EXPECT_EQ(st.stats().drives[1].used_bytes, 0u);
      }
      co_return co_await st.Close();
    }));
  }
}

TEST_F(DirectModeTest, ADriveHeldByAStoreIsRefused) {
  auto devs = OpenAll();
  ASSERT_EQ(devs.size(), 2u);
  auto again = OpenDrive(loops_dev_[0]->path(), Mode::kDirect, loops_->helpers());
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("in use"), std::string::npos) << again.error().message();
}

}  // namespace
}  // namespace memkv::store
