#pragma once
// ProcessFabric: the client's rdma rail endpoint, one per process and
// (libfabric provider, local address): every Engine and every thread of the
// process that opens the same rail shares it, with its address offered to
// every server at Attach and its one bounce pool. Nothing is per thread or
// per Engine (an endpoint and its pinned buffers per thread cost tens of
// MiB each at engine scale).
//
// The fabric's completions are awaited on I/O thread 0 of the process's
// pool; it is destroyed there, after the last Engine lets go.
//
// Thread-safe: Acquire from any thread; the accessors are constant after
// construction (the Fabric and the BufferPool are thread-safe themselves).

#include <memory>
#include <string>

#include "rdma/buffer_pool.h"
#include "client/io_threads.h"
#include "common/result.h"
#include "rdma/fabric_api.h"

namespace memkv::client {

class ProcessFabric : public std::enable_shared_from_this<ProcessFabric> {
 public:
  // The process's fabric for (provider, node, device), opened on first use:
  // `provider` "verbs" is the verbs provider on the HCA `device` ("mlx5_0");
  // anything else a libfabric provider ("tcp;ofi_rxm", "verbs;ofi_rxm",
  // "efa"), `device` its domain or empty. On failure `why` says what
  // failed (the provider, the device, the library's words).
  static Result<std::shared_ptr<ProcessFabric>> Acquire(const std::string& provider,
                                                        const std::string& node,
                                                        const std::string& device,
                                                        const std::shared_ptr<IoThreads>& threads,
                                                        std::string* why);
  // Fabrics of this process now open (tests).
  static size_t Open();

  ~ProcessFabric();
  ProcessFabric(const ProcessFabric&) = delete;
  ProcessFabric& operator=(const ProcessFabric&) = delete;

  rdma::Fabric& fabric() const { return *fabric_; }
  // The fabric, keeping this alive (what a connection holds).
  std::shared_ptr<rdma::Fabric> shared_fabric() {
    return std::shared_ptr<rdma::Fabric>(shared_from_this(), fabric_.get());
  }
  // "<provider>|<address>": what Attach offers a server.
  const std::string& endpoint() const { return endpoint_; }
  const std::shared_ptr<rdma::Registrar>& registrar() const { return registrar_; }
  rdma::BufferPool& bounce() const { return *bounce_; }

 private:
  ProcessFabric(std::unique_ptr<rdma::Fabric> fabric, std::shared_ptr<IoThreads> threads);

  std::unique_ptr<rdma::Fabric> fabric_;
  const std::shared_ptr<IoThreads> threads_;
  const std::string endpoint_;
  const std::shared_ptr<rdma::Registrar> registrar_;
  const std::shared_ptr<rdma::BufferPool> bounce_;
};

}  // namespace memkv::client
