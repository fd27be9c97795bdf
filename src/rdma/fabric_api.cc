#include "rdma/fabric_api.h"

#include <boost/asio/any_io_executor.hpp>

#include "common/error.h"
#include "rdma/error.h"
#include "rdma/ofi.h"

namespace memkv::rdma {

Result<ProviderKind> ParseProviderKind(std::string_view name) {
  if (name == "ofi") return ProviderKind::kOfi;
  if (name == "verbs") return ProviderKind::kVerbs;
  return common::errc::bad_name;
}

std::string_view ProviderKindName(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kOfi:
      return "ofi";
    case ProviderKind::kVerbs:
      return "verbs";
  }
  return "unknown";
}

Result<std::unique_ptr<Fabric>> Fabric::Open(const FabricOptions& options,
                                             const boost::asio::any_io_executor& loop,
                                             std::string* why) {
  if (options.max_inflight_per_peer == 0 || options.max_peers == 0) {
    if (why) *why = "rdma: max_inflight_per_peer and max_peers must be at least 1";
    return errc::bad_option;
  }
  switch (options.provider) {
    case ProviderKind::kOfi:
      return detail::OpenOfi(options, loop, why);
    case ProviderKind::kVerbs:
      // The verbs provider (rdma-core RC/DC queue pairs) plugs in here.
      if (why) *why = "rdma.provider: verbs is not built into this memkv; use ofi";
      return errc::unsupported_provider;
  }
  if (why) *why = "rdma.provider: unknown provider kind";
  return errc::bad_option;
}

}  // namespace memkv::rdma
