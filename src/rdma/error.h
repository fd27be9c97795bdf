#pragma once
// Errors of the rdma module. Failures that libfabric reports keep its error
// number in ofi_category() (messages from fi_strerror); these are the ones
// rdma itself decides, or the meaning it gives to a provider's error.

#include "common/error.h"

namespace memkv::rdma {

enum class errc {
  ok = 0,
  unsupported_provider,  // the provider is not built in this binary (verbs, for now)
  provider_not_found,    // libfabric has no such provider, or none with the needed capabilities
  bad_option,            // an option out of its range (zero depth, empty provider name, ...)
  bad_address,           // a peer address the provider cannot parse
  address_too_long,      // the local endpoint address does not fit an Attach (255 bytes)
  unknown_peer,          // no such peer (never inserted, or removed)
  peer_removed,          // the peer was removed while the operation waited
  overloaded,            // too many operations already waiting for this peer
  stopped,               // the fabric is stopping; the operation did not run
  not_registered,        // the local range is not inside the registration given
  remote_access,         // the peer refused the access (wrong key, range or permission)
  transfer_failed,       // the provider completed the operation with an error
  bad_argument,          // a null address or zero length
  exchange_required,     // the provider connects per peer: use AcceptPeer / OfferPeer (verbs RC)
  not_connected,         // the peer was offered and its answer not yet given (CompletePeer)
  device_memory_unsupported,  // the provider cannot register CUDA device memory (no FI_HMEM)
};

const char* Describe(errc e);
const boost::system::error_category& category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

// libfabric's error numbers (FI_E*, positive), printed with fi_strerror.
const boost::system::error_category& ofi_category();
inline error_code OfiError(int fi_errno) {
  return {fi_errno < 0 ? -fi_errno : fi_errno, ofi_category()};
}

}  // namespace memkv::rdma

template <>
struct boost::system::is_error_code_enum<memkv::rdma::errc> : std::true_type {};
