// libplugin_MEMKV.so through a real nixlAgent (NIXL_PLUGIN_DIR = the build's
// nixl-plugins folder) against two real `memkv server` processes (memory
// mode): Dynamo's onboard and offload shapes (118 objects x 64 fragments =
// 7,552 descriptors, every byte checked, 118 wire ops), partial overlaps, a
// server down, deregistration, and the refusal of another NIXL version.
// Label `nixl`: built only where NIXL is found.

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../server/server_process.h"
#include "memkv/engine.h"
#include "nixl.h"

namespace memkv::testing {
namespace {

constexpr size_t kObjects = 118, kFrags = 64, kFrag = 4096, kObject = kFrags * kFrag;

uint64_t PluginCounter(const char* name) {
  static void* h = ::dlopen(MEMKV_NIXL_PLUGIN_DIR "/libplugin_MEMKV.so", RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return UINT64_MAX;
  auto fn = reinterpret_cast<uint64_t (*)()>(::dlsym(h, name));
  return fn ? fn() : UINT64_MAX;
}
uint64_t WireOps() { return PluginCounter("memkv_nixl_wire_ops"); }

std::byte Pattern(size_t object, uint64_t off, int salt = 0) {
  return std::byte((object * 7 + off * 13 + (off >> 9) + salt) & 0xff);
}

class NixlPlugin : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ::setenv("NIXL_PLUGIN_DIR", MEMKV_NIXL_PLUGIN_DIR, 1); }

  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      char tmpl[] = "/tmp/memkv-nixl-XXXXXX";
      dirs_.push_back(::mkdtemp(tmpl));
      servers_.push_back(std::make_unique<ServerProcess>(
          dirs_.back(),
          std::vector<std::string>{"--mode", "memory", "--memory", "1GiB", "--threads", "1"}));
      ASSERT_TRUE(servers_.back()->ready());
    }
    servers_list_ = "127.0.0.1:" + std::to_string(servers_[0]->port()) +
                    ",127.0.0.1:" + std::to_string(servers_[1]->port());
    agent_ = std::make_unique<nixlAgent>("memkv-test", nixlAgentConfig(false));
    nixl_b_params_t params = {{"servers", servers_list_},
                              {"transport", "tcp"},
                              {"timeout", "10s"},
                              {"connect_timeout", "2s"}};
    ASSERT_EQ(agent_->createBackend("MEMKV", params, backend_), NIXL_SUCCESS);
    args_.backends.push_back(backend_);
    args_.skipDescMerge = true;  // count the plugin's merging, not NIXL's
  }
  void TearDown() override {
    agent_.reset();
    servers_.clear();
    for (auto& d : dirs_) std::filesystem::remove_all(d);
  }

  // OBJ_SEG registrations: object i is key "obj-<i>" (metaInfo), or "<devId>"
  // when `by_dev_id`.
  nixl_reg_dlist_t Objects(size_t n, size_t size, bool by_dev_id = false) {
    nixl_reg_dlist_t objs(OBJ_SEG);
    for (size_t i = 0; i < n; ++i)
      objs.addDesc(nixlBlobDesc(0, size, 1000 + i, by_dev_id ? "" : "obj-" + std::to_string(i)));
    return objs;
  }
  nixl_reg_dlist_t Dram(std::vector<std::byte>& buf) {
    nixl_reg_dlist_t d(DRAM_SEG);
    d.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(buf.data()), buf.size(), 0, ""));
    return d;
  }

  // One transfer to completion: the post's status, then the final one.
  nixl_status_t Xfer(nixl_xfer_op_t op, const nixl_xfer_dlist_t& local,
                     const nixl_xfer_dlist_t& remote, nixl_status_t* posted = nullptr) {
    nixlXferReqH* req = nullptr;
    nixl_status_t s = agent_->createXferReq(op, local, remote, "memkv-test", req, &args_);
    if (s != NIXL_SUCCESS) return s;
    s = agent_->postXferReq(req);
    if (posted) *posted = s;
    while (s == NIXL_IN_PROG) s = agent_->getXferStatus(req);
    EXPECT_EQ(agent_->releaseXferReq(req), NIXL_SUCCESS);
    return s;
  }

  // Writes object i = Pattern(i, ...) from one contiguous source per object.
  void WriteObjects(size_t n, int salt = 0) {
    std::vector<std::byte> src(n * kObject);
    for (size_t i = 0; i < n; ++i)
      for (size_t o = 0; o < kObject; ++o) src[i * kObject + o] = Pattern(i, o, salt);
    ASSERT_EQ(agent_->registerMem(Dram(src), &args_), NIXL_SUCCESS);
    nixl_xfer_dlist_t local(DRAM_SEG), remote(OBJ_SEG);
    for (size_t i = 0; i < n; ++i) {
      local.addDesc(
          nixlBasicDesc(reinterpret_cast<uintptr_t>(src.data() + i * kObject), kObject, 0));
      remote.addDesc(nixlBasicDesc(0, kObject, 1000 + i));
    }
    const uint64_t before = WireOps();
    ASSERT_EQ(Xfer(NIXL_WRITE, local, remote), NIXL_SUCCESS);
    EXPECT_EQ(WireOps() - before, n);
    ASSERT_EQ(agent_->deregisterMem(Dram(src), &args_), NIXL_SUCCESS);
  }

  std::vector<std::string> dirs_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  std::string servers_list_;
  std::unique_ptr<nixlAgent> agent_;
  nixlBackendH* backend_ = nullptr;
  nixl_opt_args_t args_;
};

// Dynamo's onboard: each of 118 objects read as 64 fragments (32 layers x
// K/V) at increasing offsets into a DRAM buffer laid out by layer.
TEST_F(NixlPlugin, DynamoOnboardIs118WireOpsEveryByteChecked) {
  auto objs = Objects(kObjects, kObject);
  ASSERT_EQ(agent_->registerMem(objs, &args_), NIXL_SUCCESS);
  WriteObjects(kObjects);
  std::vector<std::byte> dram(kObjects * kObject, std::byte{0});
  ASSERT_EQ(agent_->registerMem(Dram(dram), &args_), NIXL_SUCCESS);
  nixl_xfer_dlist_t local(DRAM_SEG), remote(OBJ_SEG);
  auto at = [&](size_t b, size_t f) { return (f * kObjects + b) * kFrag; };  // layer-major
  for (size_t b = 0; b < kObjects; ++b)
    for (size_t f = 0; f < kFrags; ++f) {
      local.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(dram.data() + at(b, f)), kFrag, 0));
      remote.addDesc(nixlBasicDesc(f * kFrag, kFrag, 1000 + b));
    }
  ASSERT_EQ(local.descCount(), 7552);
  const uint64_t before = WireOps();
  nixl_status_t posted;
  ASSERT_EQ(Xfer(NIXL_READ, local, remote, &posted), NIXL_SUCCESS);
  EXPECT_EQ(posted, NIXL_IN_PROG);
  EXPECT_EQ(WireOps() - before, 118u);
  size_t bad = 0;
  for (size_t b = 0; b < kObjects; ++b)
    for (size_t f = 0; f < kFrags; ++f)
      for (size_t i = 0; i < kFrag; ++i) bad += dram[at(b, f) + i] != Pattern(b, f * kFrag + i);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(agent_->deregisterMem(Dram(dram), &args_), NIXL_SUCCESS);
  EXPECT_EQ(agent_->deregisterMem(objs, &args_), NIXL_SUCCESS);
}

// The same shape as WRITE (Dynamo's offload): 7,552 fragments gathered into
// 118 whole values, then read back whole.
TEST_F(NixlPlugin, DynamoOffloadIs118WireOpsEveryByteChecked) {
  auto objs = Objects(kObjects, kObject, /*by_dev_id=*/true);  // keys "1000", "1001", ...
  ASSERT_EQ(agent_->registerMem(objs, &args_), NIXL_SUCCESS);
  std::vector<std::byte> dram(kObjects * kObject);
  auto at = [&](size_t b, size_t f) { return (f * kObjects + b) * kFrag; };
  for (size_t b = 0; b < kObjects; ++b)
    for (size_t f = 0; f < kFrags; ++f)
      for (size_t i = 0; i < kFrag; ++i) dram[at(b, f) + i] = Pattern(b, f * kFrag + i, 5);
  ASSERT_EQ(agent_->registerMem(Dram(dram), &args_), NIXL_SUCCESS);
  nixl_xfer_dlist_t local(DRAM_SEG), remote(OBJ_SEG);
  for (size_t b = 0; b < kObjects; ++b)
    for (size_t f = 0; f < kFrags; ++f) {
      local.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(dram.data() + at(b, f)), kFrag, 0));
      remote.addDesc(nixlBasicDesc(f * kFrag, kFrag, 1000 + b));
    }
  const uint64_t before = WireOps();
  nixl_status_t posted;
  ASSERT_EQ(Xfer(NIXL_WRITE, local, remote, &posted), NIXL_SUCCESS);
  EXPECT_EQ(posted, NIXL_IN_PROG);
  EXPECT_EQ(WireOps() - before, 118u);

  // Read back whole, through the client library, under the devId keys.
  auto engine = Engine::Create({.servers = {"127.0.0.1:" + std::to_string(servers_[0]->port()),
                                            "127.0.0.1:" + std::to_string(servers_[1]->port())}});
  ASSERT_TRUE(engine);
  std::vector<std::byte> back(kObject);
  size_t bad = 0;
  for (size_t b = 0; b < kObjects; ++b) {
    const std::string key = std::to_string(1000 + b);
    GetEntry g{key, back.data(), back.size()};
    auto r = engine->BatchGet({&g, 1});
    ASSERT_TRUE(r.ok()) << key;
    ASSERT_EQ(r.entries[0].length, kObject);
    for (size_t o = 0; o < kObject; ++o) bad += back[o] != Pattern(b, o, 5);
  }
  EXPECT_EQ(bad, 0u);
}

// Random reads with partial overlaps, containment, duplicates and gaps,
// every destination its own slot: each slot holds its object bytes.
TEST_F(NixlPlugin, PartialOverlapsLandExactBytes) {
  const size_t n = 8;
  auto objs = Objects(n, kObject);
  ASSERT_EQ(agent_->registerMem(objs, &args_), NIXL_SUCCESS);
  WriteObjects(n, 3);
  std::mt19937_64 rng(42);
  struct D {
    size_t obj;
    uint64_t off, len, at;
  };
  std::vector<D> ds;
  uint64_t total = 0;
  for (int i = 0; i < 2000; ++i) {
    const size_t obj = rng() % n;
    uint64_t off, len;
    if (!ds.empty() && rng() % 3 == 0) {  // overlapping an earlier one
      const D& o = ds[rng() % ds.size()];
      off = o.off + rng() % o.len;
      len = 1 + rng() % 6000;
      if (off + len > kObject) len = kObject - off;
      ds.push_back({o.obj, off, len, total});
    } else {
      off = rng() % kObject;
      len = 1 + rng() % std::min<uint64_t>(9000, kObject - off);
      ds.push_back({obj, off, len, total});
    }
    total += ds.back().len;
  }
  std::vector<std::byte> dram(total, std::byte{0});
  ASSERT_EQ(agent_->registerMem(Dram(dram), &args_), NIXL_SUCCESS);
  nixl_xfer_dlist_t local(DRAM_SEG), remote(OBJ_SEG);
  for (const D& d : ds) {
    local.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(dram.data() + d.at), d.len, 0));
    remote.addDesc(nixlBasicDesc(d.off, d.len, 1000 + d.obj));
  }
  const uint64_t before = WireOps();
  ASSERT_EQ(Xfer(NIXL_READ, local, remote), NIXL_SUCCESS);
  EXPECT_LE(WireOps() - before, ds.size());
  size_t bad = 0;
  for (const D& d : ds)
    for (uint64_t i = 0; i < d.len; ++i) bad += dram[d.at + i] != Pattern(d.obj, d.off + i, 3);
  EXPECT_EQ(bad, 0u);
}

// A server down: the request fails, the agent and the backend survive, and
// the objects of the server still up read back.
TEST_F(NixlPlugin, ServerDownFailsTheRequestNotTheAgent) {
  const size_t n = 16;
  auto objs = Objects(n, kObject);
  ASSERT_EQ(agent_->registerMem(objs, &args_), NIXL_SUCCESS);
  WriteObjects(n);
  auto engine = Engine::Create({.servers = {"127.0.0.1:" + std::to_string(servers_[0]->port()),
                                            "127.0.0.1:" + std::to_string(servers_[1]->port())}});
  ASSERT_TRUE(engine);
  servers_[1]->Stop();
  std::vector<std::byte> dram(n * kObject);
  ASSERT_EQ(agent_->registerMem(Dram(dram), &args_), NIXL_SUCCESS);
  nixl_xfer_dlist_t all(DRAM_SEG), all_remote(OBJ_SEG), up(DRAM_SEG), up_remote(OBJ_SEG);
  size_t on_dead = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto addr = reinterpret_cast<uintptr_t>(dram.data() + i * kObject);
    all.addDesc(nixlBasicDesc(addr, kObject, 0));
    all_remote.addDesc(nixlBasicDesc(0, kObject, 1000 + i));
    if (engine->RouteKey("obj-" + std::to_string(i)) == 0) {
      up.addDesc(nixlBasicDesc(addr, kObject, 0));
      up_remote.addDesc(nixlBasicDesc(0, kObject, 1000 + i));
    } else {
      ++on_dead;
    }
  }
  ASSERT_GT(on_dead, 0u);
  ASSERT_GT(up.descCount(), 0);
  const nixl_status_t s = Xfer(NIXL_READ, all, all_remote);
  EXPECT_LT(s, 0) << nixlEnumStrings::statusStr(s);
  ASSERT_EQ(Xfer(NIXL_READ, up, up_remote), NIXL_SUCCESS);
  for (int i = 0; i < up.descCount(); ++i) {
    const size_t obj = up_remote[i].devId - 1000;
    const auto* p = reinterpret_cast<const std::byte*>(up[i].addr);
    for (size_t o = 0; o < kObject; o += 997) ASSERT_EQ(p[o], Pattern(obj, o));
  }
}

// Deregistration: memory deregistered can no longer be named, registering
// it again works, and many cycles leave the backend working.
TEST_F(NixlPlugin, DeregistrationEndsTheRegistration) {
  auto objs = Objects(1, kObject);
  ASSERT_EQ(agent_->registerMem(objs, &args_), NIXL_SUCCESS);
  WriteObjects(1);
  std::vector<std::byte> dram(kObject);
  nixl_xfer_dlist_t local(DRAM_SEG), remote(OBJ_SEG);
  local.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(dram.data()), kObject, 0));
  remote.addDesc(nixlBasicDesc(0, kObject, 1000));
  for (int cycle = 0; cycle < 200; ++cycle) {
    ASSERT_EQ(agent_->registerMem(Dram(dram), &args_), NIXL_SUCCESS);
    if (cycle % 50 == 0) {
      std::fill(dram.begin(), dram.end(), std::byte{0});
      ASSERT_EQ(Xfer(NIXL_READ, local, remote), NIXL_SUCCESS);
      ASSERT_EQ(dram[kObject - 1], Pattern(0, kObject - 1));
    }
    ASSERT_EQ(agent_->deregisterMem(Dram(dram), &args_), NIXL_SUCCESS);
  }
  EXPECT_NE(Xfer(NIXL_READ, local, remote), NIXL_SUCCESS);  // no longer registered
  ASSERT_EQ(agent_->deregisterMem(objs, &args_), NIXL_SUCCESS);
  ASSERT_EQ(agent_->registerMem(Dram(dram), &args_), NIXL_SUCCESS);
  EXPECT_NE(Xfer(NIXL_READ, local, remote), NIXL_SUCCESS);  // the object is gone
  ASSERT_EQ(agent_->registerMem(objs, &args_), NIXL_SUCCESS);
  EXPECT_EQ(Xfer(NIXL_READ, local, remote), NIXL_SUCCESS);
}

// The plugin refuses a NIXL of another version, naming both. Run in a
// fresh process (the plugin manager keeps what it loaded): this binary
// again, running only the child below, with MEMKV_NIXL_RUNTIME_VERSION
// standing for another NIXL.
TEST(NixlPluginVersion, DISABLED_Child) {
  if (::getenv("MEMKV_NIXL_RUNTIME_VERSION") == nullptr) GTEST_SKIP();
  ::setenv("NIXL_PLUGIN_DIR", MEMKV_NIXL_PLUGIN_DIR, 1);
  nixlAgent agent("memkv-version", nixlAgentConfig(false));
  nixlBackendH* backend = nullptr;
  EXPECT_NE(agent.createBackend("MEMKV", {{"servers", "127.0.0.1:1"}}, backend), NIXL_SUCCESS);
}

TEST(NixlPluginVersion, RefusesAnotherNixlNamingBothVersions) {
  const std::string log = "/tmp/memkv-nixl-version-" + std::to_string(::getpid()) + ".log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("MEMKV_NIXL_RUNTIME_VERSION", "0.9.9", 1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/proc/self/exe", "nixl_plugin_test", "--gtest_filter=NixlPluginVersion.DISABLED_Child",
            "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text.str();
  EXPECT_NE(text.str().find("built for NIXL " MEMKV_NIXL_VERSION), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("runs NIXL 0.9.9"), std::string::npos) << text.str();
  ::unlink(log.c_str());
}

}  // namespace
}  // namespace memkv::testing
