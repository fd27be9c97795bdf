#include "rdma/error.h"

namespace memkv::rdma {

const char* Describe(errc e) {
  switch (e) {
    case errc::ok:
      return "success";
    case errc::unsupported_provider:
      return "rdma.provider: this provider is not built into memkv (use ofi)";
    case errc::provider_not_found:
      return "rdma.provider: libfabric has no such provider with one-sided RMA on a reliable "
             "datagram endpoint (check `fi_info -p NAME`)";
    case errc::bad_option:
      return "rdma: option out of range";
    case errc::bad_address:
      return "rdma: the peer's fabric address cannot be used by this provider";
    case errc::address_too_long:
      return "rdma: the local fabric address is longer than an Attach carries (255 bytes)";
    case errc::unknown_peer:
      return "rdma: unknown peer (never inserted, or removed)";
    case errc::peer_removed:
      return "rdma: the peer was removed before the operation ran";
    case errc::overloaded:
      return "rdma: overloaded: too many operations already waiting for this peer";
    case errc::stopped:
      return "rdma: the fabric is stopping";
    case errc::not_registered:
      return "rdma: the local range is not inside the registration given";
    case errc::remote_access:
      return "rdma: the peer refused the access (wrong key, or a range outside its registration)";
    case errc::transfer_failed:
      return "rdma: the transfer completed with an error";
    case errc::bad_argument:
      return "rdma: null address or zero length (or a device range leaving its allocation)";
    case errc::device_memory_unsupported:
      return "rdma: the provider cannot register CUDA device memory (a libfabric provider "
             "without FI_HMEM, or no CUDA driver in this process)";
    case errc::exchange_required:
      return "rdma: this provider connects per peer (both ends' addresses): use AcceptPeer or "
             "OfferPeer/CompletePeer";
    case errc::not_connected:
      return "rdma: the peer is offered but not connected yet (CompletePeer)";
  }
  return "unknown rdma error";
}

const boost::system::error_category& category() {
  static const EnumCategory cat("memkv.rdma",
                                [](int ev) { return Describe(static_cast<errc>(ev)); });
  return cat;
}

}  // namespace memkv::rdma
