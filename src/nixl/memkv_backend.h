#pragma once
// MemkvBackend: the NIXL backend "MEMKV" (libplugin_MEMKV.so). A thin
// adapter: NIXL's descriptors become a memkv::BatchPlan, the plan's chunks
// become batches of the client library (libmemkv.so, the process's one copy),
// and the scatter fans merged bytes out to their destinations.
//
// Memory: object segments (OBJ_SEG) and host memory (DRAM_SEG); device
// memory (VRAM_SEG) only when the process's CUDA loader has set the
// DeviceCopy hook (memkv/batch_plan.h), and then staged through host memory.
// An OBJ_SEG registration names one value: its key is the descriptor's
// metaInfo, or its devId in decimal when metaInfo is empty; a transfer
// descriptor's address is the offset in that value. DRAM_SEG registrations
// go to the client's registration cache (Engine::RegisterMemory).
//
// Local only (the agent transfers between its own memory and the store):
// supportsLocal, not supportsRemote, no notifications.
//
// Threads: NIXL may call any method from any thread. engine_ and
// optimize_ are constant after construction; registration counts are
// guarded by mu_; a request's state is shared with its completions
// (client I/O threads) and synchronized by its atomics and mutex.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "backend/backend_engine.h"
#include "memkv/batch_plan.h"
#include "memkv/engine.h"

namespace memkv::nixl {

// Totals over every request of the process (the plugin's query, for tests
// and the benchmark): wire operations sent and the bytes they moved.
struct WireCounters {
  std::atomic<uint64_t> ops{0};
  std::atomic<uint64_t> bytes{0};
};
WireCounters& Counters();

class MemkvBackend : public nixlBackendEngine {
 public:
  explicit MemkvBackend(const nixlBackendInitParams* init);
  ~MemkvBackend() override;

  bool supportsRemote() const override { return false; }
  bool supportsLocal() const override { return true; }
  bool supportsNotif() const override { return false; }
  nixl_mem_list_t getSupportedMems() const override;

  nixl_status_t registerMem(const nixlBlobDesc& mem, const nixl_mem_t& nixl_mem,
                            nixlBackendMD*& out) override;
  nixl_status_t deregisterMem(nixlBackendMD* meta) override;
  nixl_status_t connect(const std::string&) override { return NIXL_SUCCESS; }
  nixl_status_t disconnect(const std::string&) override { return NIXL_SUCCESS; }
  nixl_status_t loadLocalMD(nixlBackendMD* input, nixlBackendMD*& output) override;
  nixl_status_t unloadMD(nixlBackendMD*) override { return NIXL_SUCCESS; }

  nixl_status_t prepXfer(const nixl_xfer_op_t& op, const nixl_meta_dlist_t& local,
                         const nixl_meta_dlist_t& remote, const std::string& remote_agent,
                         nixlBackendReqH*& handle,
                         const nixl_opt_b_args_t* opt_args = nullptr) const override;
  nixl_status_t postXfer(const nixl_xfer_op_t& op, const nixl_meta_dlist_t& local,
                         const nixl_meta_dlist_t& remote, const std::string& remote_agent,
                         nixlBackendReqH*& handle,
                         const nixl_opt_b_args_t* opt_args = nullptr) const override;
  nixl_status_t checkXfer(nixlBackendReqH* handle) const override;
  nixl_status_t releaseReqH(nixlBackendReqH* handle) const override;

  // The option names get_backend_options lists (all default to the client
  // library's environment: MEMKV_CONFIG, MEMKV_SERVERS, ...).
  static nixl_b_params_t DefaultOptions();
  static nixl_mem_list_t SupportedMems();

 private:
  // Empty when initErr. Mutable: NIXL's transfer calls are const, and an
  // Engine is a thread-safe handle.
  mutable std::optional<Engine> engine_;
  bool optimize_ = true;

  std::mutex mu_;
  // Guarded by mu_: DRAM registrations by id, counted (the client returns one
  // registration for ranges inside another, and ends it on its first Unregister).
  std::map<uint64_t, int> registered_;
};

}  // namespace memkv::nixl
