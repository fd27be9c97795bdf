#pragma once
// Errors of the client library. A request that the server refused as a whole
// carries the server's proto::StatusCode in status_category() instead, so a
// caller can tell which limit it hit (TooManyEntries, Busy, ...).

#include "common/error.h"
#include "proto/status.h"

namespace memkv::client {

enum class errc {
  ok = 0,
  bad_address,                // not "host:port" nor a Unix socket path
  connect_failed,             // no address of the server accepted the connection
  connect_timeout,            // connect + attach did not finish within connect_timeout
  attach_refused,             // the server refused Attach (auth key, version, sessions)
  not_attached,               // the server says this session is not attached
  connection_lost,            // the connection broke; the request may or may not have run
  closed,                     // the connection was closed by this process
  timeout,                    // the request's deadline passed before its reply
  bad_reply,                  // a reply that does not match its request
  bad_argument,               // an empty or over-long key, a value of 0 bytes, ...
  value_too_large_for_frame,  // needs the shm rail (streaming is not implemented yet)
  shm_needs_unix_socket,      // shm regions travel only over a Unix-socket connection
  region_not_registered,      // an shm entry names a region not registered on this connection
  region_out_of_bounds,       // an shm entry's range runs past its region
  queue_full,                 // max_queued_bytes of requests already wait to be sent
  rdma_not_accepted,          // transport rdma: the server took no rdma endpoint from this client
};

const char* Describe(errc e);
const boost::system::error_category& category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

// A whole request refused by the server with `status` (never kOk).
const boost::system::error_category& status_category();
inline error_code make_status_error(proto::StatusCode status) {
  return {static_cast<int>(status), status_category()};
}

}  // namespace memkv::client

template <>
struct boost::system::is_error_code_enum<memkv::client::errc> : std::true_type {};
