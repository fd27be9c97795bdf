#include "rdma/fabric_api.h"

#include <boost/asio/any_io_executor.hpp>

#include "common/error.h"
#include "rdma/error.h"
#include "rdma/ofi.h"
#include "rdma/verbs_calls.h"
#include "rdma/verbs_fabric.h"

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
    case ProviderKind::kVerbs: {
      VerbsCalls& calls = RealVerbs();
      int n = 0;
      if (ibv_device** list = calls.GetDeviceList(&n)) {
        calls.FreeDeviceList(list);
      } else if (!RealVerbsLoadError().empty()) {
        if (why) *why = "rdma.provider: verbs: " + RealVerbsLoadError();
        return errc::bad_option;
      }
      auto verbs = VerbsOptionsFrom(options, why);
      if (!verbs) return verbs.error();
      return OpenVerbsFabric(calls, *verbs, options, loop, why);
    }
  }
  if (why) *why = "rdma.provider: unknown provider kind";
  return errc::bad_option;
}

Result<Fabric::PeerOffer> Fabric::AcceptPeer(std::string_view peer_address) {
  auto peer = InsertPeer(peer_address);
  if (!peer) return peer.error();
  return PeerOffer{*peer, address()};
}

Result<Fabric::PeerOffer> Fabric::OfferPeer() { return PeerOffer{0, address()}; }

Status Fabric::CompletePeer(PeerId, std::string_view) { return {}; }

}  // namespace memkv::rdma
