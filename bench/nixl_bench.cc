// nixl_bench: the NIXL plugin (libplugin_MEMKV.so) through a real
// nixlAgent against one `memkv server` it starts (memory mode, loopback).
//
//   1. Per-descriptor latency and throughput: requests of B descriptors
//      (B = 1, 16), each descriptor a block of 16, 64 or 256 KiB; a
//      request's blocks are consecutive ranges of one value read into
//      scattered DRAM slots; optimizer on and off (backend parameter
//      `optimize`).
//   2. One Dynamo onboard: 118 objects x 64 fragments = 7,552 descriptors
//      into a layer-major DRAM buffer; p50/p99 over repeated onboards.
//
// Throughput counts the bytes on the wire (the plugin's own counter,
// memkv_nixl_wire_bytes), not the descriptors' logical bytes; wire ops per
// descriptor from memkv_nixl_wire_ops. Speed is measured, never asserted.
//
// usage: nixl_bench [--seconds S] [--onboards N] [--fragment BYTES] [--transport tcp|shm|auto]

#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nixl.h"

namespace {

using Clock = std::chrono::steady_clock;

uint64_t Counter(const char* name) {
  static void* h = ::dlopen(MEMKV_NIXL_PLUGIN_DIR "/libplugin_MEMKV.so", RTLD_NOW | RTLD_NOLOAD);
  auto fn = h ? reinterpret_cast<uint64_t (*)()>(::dlsym(h, name)) : nullptr;
  return fn ? fn() : 0;
}

struct Server {
  pid_t pid = -1;
  std::string address;
  std::string dir;
  ~Server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) std::system(("rm -rf '" + dir + "'").c_str());
  }
};

bool StartServer(Server& s, int port) {
  char tmpl[] = "/tmp/memkv-nixl-bench-XXXXXX";
  s.dir = ::mkdtemp(tmpl);
  s.address = "127.0.0.1:" + std::to_string(port);
  const std::string sock = s.dir + "/memkv.sock";
  s.pid = ::fork();
  if (s.pid == 0) {
    ::execl(MEMKV_BINARY, MEMKV_BINARY, "--log-level", "error", "server", "--address",
            s.address.c_str(), "--unix-socket", sock.c_str(), "--mode", "memory", "--memory",
            "2GiB", static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (::access(sock.c_str(), F_OK) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

struct Agent {
  std::unique_ptr<nixlAgent> agent;
  nixlBackendH* backend = nullptr;
  nixl_opt_args_t args;
  std::string name;

  bool Create(const std::string& n, const std::string& servers, const std::string& transport,
              bool optimize) {
    name = n;
    agent = std::make_unique<nixlAgent>(name, nixlAgentConfig(false));
    nixl_b_params_t p = {
        {"servers", servers}, {"transport", transport}, {"optimize", optimize ? "1" : "0"}};
    if (agent->createBackend("MEMKV", p, backend) != NIXL_SUCCESS) return false;
    args.backends.push_back(backend);
    args.skipDescMerge = true;  // the plugin's merging alone
    return true;
  }
  // Prepared once, posted many times (as an engine does with its handles).
  nixlXferReqH* Prepare(nixl_xfer_op_t op, const nixl_xfer_dlist_t& l, const nixl_xfer_dlist_t& r) {
    nixlXferReqH* req = nullptr;
    if (agent->createXferReq(op, l, r, name, req, &args) != NIXL_SUCCESS) return nullptr;
    return req;
  }
  bool Run(nixlXferReqH* req) {
    nixl_status_t s = agent->postXferReq(req);
    while (s == NIXL_IN_PROG) s = agent->getXferStatus(req);
    return s == NIXL_SUCCESS;
  }
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  int onboards = 30;
  size_t fragment = 16 << 10;
  std::string transport = "tcp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (a == "--onboards")
      onboards = std::atoi(argv[i + 1]);
    else if (a == "--fragment")
      fragment = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--transport")
      transport = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: nixl_bench [--seconds S] [--onboards N] [--fragment BYTES] "
                   "[--transport tcp|shm|auto]\n");
      return 2;
    }
  }
  ::setenv("NIXL_PLUGIN_DIR", MEMKV_NIXL_PLUGIN_DIR, 1);
  Server server;
  if (!StartServer(server, 20000 + ::getpid() % 20000)) {
    std::fprintf(stderr, "nixl_bench: the server did not start\n");
    return 1;
  }
  Agent on, off;
  if (!on.Create("bench-on", server.address, transport, true) ||
      !off.Create("bench-off", server.address, transport, false)) {
    std::fprintf(stderr, "nixl_bench: cannot create the MEMKV backend\n");
    return 1;
  }
  std::printf(
      "nixl_bench: NIXL agent, libplugin_MEMKV.so, one memkv server (memory mode, %s), "
      "%u CPUs\n\n",
      transport.c_str(), std::thread::hardware_concurrency());

  // ---- 1. per-descriptor latency and throughput ----
  std::printf("%-8s %-6s %-9s %12s %14s %14s %12s\n", "block", "batch", "optimizer", "requests",
              "us/descriptor", "wire MiB/s", "ops/desc");
  const size_t kValueBlocks = 16;
  for (size_t block : {size_t{16} << 10, size_t{64} << 10, size_t{256} << 10}) {
    // Values of 16 blocks; the DRAM slots of a request are interleaved
    // with gaps so that no two are contiguous.
    const size_t values = 8;
    std::vector<std::byte> src(values * kValueBlocks * block, std::byte{1});
    std::vector<std::byte> dst(2 * kValueBlocks * block);
    for (Agent* a : {&on, &off}) {
      nixl_reg_dlist_t objs(OBJ_SEG), dram(DRAM_SEG);
      for (size_t v = 0; v < values; ++v)
        objs.addDesc(nixlBlobDesc(0, kValueBlocks * block, (block << 8) + v,
                                  "bench-" + std::to_string(block) + "-" + std::to_string(v)));
      dram.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(src.data()), src.size(), 0, ""));
      dram.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(dst.data()), dst.size(), 0, ""));
      a->agent->registerMem(objs, &a->args);
      a->agent->registerMem(dram, &a->args);
    }
    {  // write the values once
      nixl_xfer_dlist_t l(DRAM_SEG), r(OBJ_SEG);
      for (size_t v = 0; v < values; ++v) {
        l.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(src.data() + v * kValueBlocks * block),
                                kValueBlocks * block, 0));
        r.addDesc(nixlBasicDesc(0, kValueBlocks * block, (block << 8) + v));
      }
      auto* req = on.Prepare(NIXL_WRITE, l, r);
      if (!req || !on.Run(req)) {
        std::fprintf(stderr, "nixl_bench: the write failed\n");
        return 1;
      }
      on.agent->releaseXferReq(req);
    }
    for (size_t batch : {size_t{1}, size_t{16}}) {
      for (Agent* a : {&on, &off}) {
        // One request per value: `batch` consecutive blocks of it.
        std::vector<nixlXferReqH*> reqs;
        for (size_t v = 0; v < values; ++v) {
          nixl_xfer_dlist_t l(DRAM_SEG), r(OBJ_SEG);
          for (size_t b = 0; b < batch; ++b) {
            l.addDesc(
                nixlBasicDesc(reinterpret_cast<uintptr_t>(dst.data() + 2 * b * block), block, 0));
            r.addDesc(nixlBasicDesc(b * block, block, (block << 8) + v));
          }
          reqs.push_back(a->Prepare(NIXL_READ, l, r));
          if (!reqs.back()) return 1;
        }
        const uint64_t ops0 = Counter("memkv_nixl_wire_ops"),
                       bytes0 = Counter("memkv_nixl_wire_bytes");
        size_t n = 0;
        const auto t0 = Clock::now();
        auto until = t0 + std::chrono::duration<double>(seconds);
        while (Clock::now() < until || n < 8) {
          if (!a->Run(reqs[n % values])) {
            std::fprintf(stderr, "nixl_bench: a read failed\n");
            return 1;
          }
          ++n;
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        const double ops = static_cast<double>(Counter("memkv_nixl_wire_ops") - ops0);
        const double bytes = static_cast<double>(Counter("memkv_nixl_wire_bytes") - bytes0);
        const double descs = static_cast<double>(n * batch);
        std::printf("%-8s %-6zu %-9s %12zu %14.1f %14.1f %12.3f\n",
                    (std::to_string(block >> 10) + "KiB").c_str(), batch, a == &on ? "on" : "off",
                    n, s * 1e6 / descs, bytes / s / (1 << 20), ops / descs);
        for (auto* r : reqs) a->agent->releaseXferReq(r);
      }
    }
  }

  // ---- 2. Dynamo onboard: 118 x 64 fragments ----
  const size_t kObjects = 118, kFrags = 64, object = kFrags * fragment;
  std::vector<std::byte> src(kObjects * object, std::byte{2}), dram(kObjects * object);
  std::printf(
      "\nDynamo onboard: %zu objects x %zu fragments of %zu KiB = %zu descriptors, "
      "%.1f MiB, %d onboards\n",
      kObjects, kFrags, fragment >> 10, kObjects * kFrags,
      static_cast<double>(kObjects * object) / (1 << 20), onboards);
  std::printf("%-9s %10s %10s %10s %14s %10s\n", "optimizer", "p50 ms", "p99 ms", "wire ops",
              "wire MiB/s", "us/desc");
  for (Agent* a : {&on, &off}) {
    nixl_reg_dlist_t objs(OBJ_SEG), mem(DRAM_SEG);
    for (size_t b = 0; b < kObjects; ++b)
      objs.addDesc(nixlBlobDesc(0, object, 100000 + b, "onboard-" + std::to_string(b)));
    mem.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(src.data()), src.size(), 0, ""));
    mem.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(dram.data()), dram.size(), 0, ""));
    a->agent->registerMem(objs, &a->args);
    a->agent->registerMem(mem, &a->args);
  }
  {
    nixl_xfer_dlist_t l(DRAM_SEG), r(OBJ_SEG);
    for (size_t b = 0; b < kObjects; ++b) {
      l.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(src.data() + b * object), object, 0));
      r.addDesc(nixlBasicDesc(0, object, 100000 + b));
    }
    auto* req = on.Prepare(NIXL_WRITE, l, r);
    if (!req || !on.Run(req)) return 1;
    on.agent->releaseXferReq(req);
  }
  for (Agent* a : {&on, &off}) {
    nixl_xfer_dlist_t l(DRAM_SEG), r(OBJ_SEG);
    for (size_t b = 0; b < kObjects; ++b)
      for (size_t f = 0; f < kFrags; ++f) {
        l.addDesc(nixlBasicDesc(
            reinterpret_cast<uintptr_t>(dram.data() + (f * kObjects + b) * fragment), fragment, 0));
        r.addDesc(nixlBasicDesc(f * fragment, fragment, 100000 + b));
      }
    auto* req = a->Prepare(NIXL_READ, l, r);
    if (!req) return 1;
    std::vector<double> ms;
    const uint64_t ops0 = Counter("memkv_nixl_wire_ops"), bytes0 = Counter("memkv_nixl_wire_bytes");
    double total = 0;
    for (int i = 0; i < onboards; ++i) {
      const auto t0 = Clock::now();
      if (!a->Run(req)) {
        std::fprintf(stderr, "nixl_bench: an onboard failed\n");
        return 1;
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      total += s;
      ms.push_back(s * 1e3);
    }
    const double ops = static_cast<double>(Counter("memkv_nixl_wire_ops") - ops0) / onboards;
    const double bytes = static_cast<double>(Counter("memkv_nixl_wire_bytes") - bytes0);
    std::printf("%-9s %10.2f %10.2f %10.0f %14.1f %10.2f\n", a == &on ? "on" : "off",
                Percentile(ms, 0.5), Percentile(ms, 0.99), ops, bytes / total / (1 << 20),
                total * 1e6 / (onboards * kObjects * kFrags));
    a->agent->releaseXferReq(req);
  }
  return 0;
}
