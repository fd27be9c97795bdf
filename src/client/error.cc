#include "client/error.h"

namespace memkv::client {

const char* Describe(errc e) {
  switch (e) {
    case errc::ok: return "success";
    case errc::bad_address: return "bad server address: expected host:port or a Unix socket path";
    case errc::connect_failed: return "could not connect to the server";
    case errc::connect_timeout: return "connecting to the server timed out (connect_timeout)";
    case errc::attach_refused: return "the server refused to attach this client (check auth_key)";
    case errc::not_attached: return "the session is not attached";
    case errc::connection_lost: return "connection to the server lost";
    case errc::closed: return "connection closed by the client";
    case errc::timeout: return "request timed out (timeout)";
    case errc::bad_reply: return "malformed or mismatched reply from the server";
    case errc::bad_argument: return "bad argument: keys are 1 to 1024 bytes, values 1 byte and up";
    case errc::value_too_large_for_frame:
      return "value larger than a frame needs the shm rail (tcp streaming is not implemented)";
    case errc::shm_needs_unix_socket: return "shm regions need a Unix-socket connection";
    case errc::region_not_registered: return "shm region is not registered on this connection";
    case errc::region_out_of_bounds: return "shm entry's range runs past the end of its region";
    case errc::rdma_not_accepted:
      return "transport rdma: the server did not accept this client's fabric endpoint (it has no "
             "rdma rail, or another rdma provider: see its log)";
    case errc::queue_full:
      return "too many requests wait to be sent to this server (max_queued_bytes); the server is "
             "slow or unreachable";
  }
  return "unknown client error";
}

const boost::system::error_category& category() {
  static const EnumCategory cat("memkv.client",
                                [](int ev) { return Describe(static_cast<errc>(ev)); });
  return cat;
}

const boost::system::error_category& status_category() {
  static const EnumCategory cat("memkv.status", [](int ev) {
    return proto::StatusName(static_cast<proto::StatusCode>(ev));
  });
  return cat;
}

}  // namespace memkv::client
