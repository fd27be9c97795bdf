#pragma once
// The raw libfabric baseline of the rdma rail: a bare loop of fi_writemsg
// (or fi_readmsg) between two endpoints of this process over a pinned
// provider, as the rail's server posts them (FI_DELIVERY_COMPLETE writes),
// `depth` operations in flight, both completion queues busy-polled. Nothing
// of memkv runs in it: it is what the provider and this machine move.
// memkv-bench --tier rail --baseline runs it beside the rdma rows
// (rail_tier.cc); rdma_bench runs it beside rdma::Fabric.
//
// libfabric is loaded with dlopen (rdma/libfabric.h), as the rail does, so
// memkv-bench runs without it and says why this baseline is missing.

#include <cstdint>
#include <string>

namespace memkv::bench {

struct RawFabricOptions {
  // Pinned: fi_getinfo is asked for this provider and no other ("tcp" also
  // matches "tcp;ofi_rxm", the reliable-datagram layer over it).
  std::string provider = "tcp;ofi_rxm";
  std::string node = "127.0.0.1";  // where both endpoints listen
  uint64_t block = 2ull << 20;     // bytes per operation
  uint32_t depth = 64;             // operations in flight
  bool read = false;               // fi_readmsg instead of fi_writemsg
  bool mixed = false;              // alternate writes and reads (overrides `read`)
  // Runs for `seconds`, or until `total` bytes moved when seconds is 0.
  double seconds = 2;
  uint64_t total = 0;
};

struct RawFabricRun {
  double seconds = 0;
  uint64_t bytes = 0;
  uint64_t ops = 0;
  std::string provider;  // what fi_getinfo returned ("tcp;ofi_rxm")
  std::string error;     // set when the run failed (nothing measured)
};

RawFabricRun RunRawFabric(const RawFabricOptions& options);

}  // namespace memkv::bench
