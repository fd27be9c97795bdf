#include "rdma/verbs_error.h"

namespace memkv::rdma {

const char* Describe(verbs_errc e) {
  switch (e) {
    case verbs_errc::ok:
      return "success";
    case verbs_errc::no_device:
      return "no such RDMA device (check rdma.device against ibv_devices)";
    case verbs_errc::device_open_failed:
      return "cannot open the RDMA device";
    case verbs_errc::port_query_failed:
      return "cannot query the RDMA port";
    case verbs_errc::port_not_active:
      return "the RDMA port is not active (check ibv_devinfo)";
    case verbs_errc::gid_query_failed:
      return "no usable GID at the configured index";
    case verbs_errc::resource_failed:
      return "cannot create an RDMA resource (PD, channel, CQ)";
    case verbs_errc::qp_create_failed:
      return "cannot create the queue pair";
    case verbs_errc::qp_modify_failed:
      return "queue pair state transition refused";
    case verbs_errc::qp_closed:
      return "the queue pair was released after a failed transition";
    case verbs_errc::reg_mr_failed:
      return "memory registration failed";
    case verbs_errc::dc_unavailable:
      return "DC transport unavailable (needs mlx5dv and a NIC with DC)";
    case verbs_errc::ah_create_failed:
      return "cannot create the address handle for a DC peer";
    case verbs_errc::peer_mismatch:
      return "the peer's endpoint does not match this one";
    case verbs_errc::endpoint_truncated:
      return "verbs endpoint blob truncated";
    case verbs_errc::endpoint_bad_version:
      return "unknown verbs endpoint blob version";
    case verbs_errc::endpoint_bad_field:
      return "verbs endpoint blob field out of range";
    case verbs_errc::endpoint_trailing_bytes:
      return "bytes after the verbs endpoint blob";
    case verbs_errc::endpoint_too_large:
      return "verbs endpoint blob over 255 bytes";
  }
  return "unknown verbs error";
}

const boost::system::error_category& verbs_category() {
  static const EnumCategory cat("memkv.rdma.verbs",
                                [](int ev) { return Describe(static_cast<verbs_errc>(ev)); });
  return cat;
}

}  // namespace memkv::rdma
