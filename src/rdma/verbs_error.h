#pragma once
// Errors of the verbs provider's setup (device, queue pairs, registrations)
// and of its endpoint blob. Each comes with a text (the functions' `why`
// argument) that names the device, port, field or call and the errno, so a
// log line or a start-up failure says what to fix.

#include "common/error.h"

namespace memkv::rdma {

enum class verbs_errc {
  ok = 0,
  no_device,                // rdma.device names no device of this host (or there is none)
  device_open_failed,       // ibv_open_device failed
  port_query_failed,        // ibv_query_port failed
  port_not_active,          // the port is not ACTIVE (cable, subnet manager, link)
  gid_query_failed,         // ibv_query_gid failed, or RoCE has no GID at the index
  resource_failed,          // ibv_alloc_pd / create_comp_channel / create_cq / req_notify_cq failed
  qp_create_failed,         // ibv_create_qp (or mlx5dv_create_qp, ibv_create_srq) failed
  qp_modify_failed,         // a state transition (INIT, RTR, RTS) was refused
  qp_closed,                // the queue pair was released after a failed transition
  reg_mr_failed,            // every registration path for a buffer failed
  dc_unavailable,           // DC asked for where mlx5dv is not compiled in or the NIC refuses it
  ah_create_failed,         // ibv_create_ah for a DC peer failed
  peer_mismatch,            // the peer's endpoint cannot reach this one (link layer, transport)
  endpoint_truncated,       // the endpoint blob ends inside a field
  endpoint_bad_version,     // an endpoint blob version this build does not know
  endpoint_bad_field,       // a field holds a value out of its range
  endpoint_trailing_bytes,  // bytes after the last field
  endpoint_too_large,       // more than kMaxEndpointBlob (255) bytes
};

const char* Describe(verbs_errc e);
const boost::system::error_category& verbs_category();
inline error_code make_error_code(verbs_errc e) { return {static_cast<int>(e), verbs_category()}; }

}  // namespace memkv::rdma

template <>
struct boost::system::is_error_code_enum<memkv::rdma::verbs_errc> : std::true_type {};
