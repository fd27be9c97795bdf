#pragma once
// Internal to src/rdma: the `ofi` provider (libfabric). Reached through
// Fabric::Open; declared here for it alone.

#include "rdma/fabric_api.h"

namespace memkv::rdma::detail {

Result<std::unique_ptr<Fabric>> OpenOfi(const FabricOptions& options,
                                        const boost::asio::any_io_executor& loop,
                                        std::string* why);

}  // namespace memkv::rdma::detail
