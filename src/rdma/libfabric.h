#pragma once
// libfabric's five exported functions (everything else in its API is inline
// over the objects' operation tables), loaded with dlopen at first use, so
// that nothing linking memkv_rdma (the server, libmemkv.so, the wheel,
// memkv-bench) needs libfabric installed unless it opens a fabric
// (docs/rdma.md). Used by the `ofi` provider (ofi.cc) and by memkv-bench's
// raw fi_writemsg baseline (bench/raw_fabric.cc).
//
// Including this header needs libfabric's headers (Debian: libfabric-dev).

#include <rdma/fabric.h>

#include <string>

namespace memkv::rdma {

struct LibfabricApi {
  decltype(&::fi_getinfo) getinfo = nullptr;
  decltype(&::fi_freeinfo) freeinfo = nullptr;
  decltype(&::fi_dupinfo) dupinfo = nullptr;
  decltype(&::fi_fabric) fabric = nullptr;
  decltype(&::fi_strerror) strerror = nullptr;
  std::string error;  // why it is not there ("libfabric.so.1 cannot be loaded ...")
  bool ok() const { return error.empty(); }
};

// The process's one copy, loaded on the first call (thread-safe).
const LibfabricApi& Libfabric();

// fi_strerror, or a placeholder where libfabric is not there.
const char* FiStrerror(int err);

}  // namespace memkv::rdma
