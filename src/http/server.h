#pragma once
// http::Server: an HTTP/1.1 server (Boost.Beast) for the admin API and the
// docs site. Each connection is a coroutine on one of the loops it is given;
// it owns no threads. Requests go to a Router.
//
// Bounds: header bytes, body bytes (larger: 413 before the body is read),
// time to receive a request's headers (also the keep-alive idle time: a
// client that sends its headers too slowly, or nothing, is disconnected),
// time to receive the body and to send the response, and connections at
// once. When a new connection finds them all taken, the one that has waited
// longest for a whole request (handshake, headers or body) is closed to make
// room, so idle or slow connections cannot lock out a liveness probe; only
// when every connection is being answered is the new one answered 503 and
// closed. Accept errors (out of descriptors) back off, 10 ms doubling up to
// 1 s, instead of spinning.
//
// HTTPS when Options names a certificate and key (PEM files): every
// connection on the port is TLS.
//
// Owner: whoever owns the loops' users (the admin server). Start and Stop
// are called from outside the loops, with the loops running for Stop. The
// router must outlive the server. Counters are atomics; everything else a
// connection holds is confined to its loop.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace memkv::http {

class Router;

struct Limits {
  size_t header_bytes = 16 * 1024;                  // request line and fields
  size_t body_bytes = 1024 * 1024;                  // larger bodies: 413
  std::chrono::milliseconds header_timeout{10000};  // also the keep-alive idle time
  std::chrono::milliseconds body_timeout{30000};    // to receive the body
  std::chrono::milliseconds write_timeout{30000};   // to send a response
  size_t max_connections = 64;                      // at once; see above
};

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;     // 0: any free port (tests)
  std::string tls_cert;  // PEM certificate chain; with tls_key: HTTPS
  std::string tls_key;   // PEM private key
  Limits limits;
  std::string server_name = "memkv";  // the Server header
  std::chrono::milliseconds shutdown_deadline{5000};
};

struct Stats {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;  // over max_connections, none to evict: 503
  uint64_t connections_evicted = 0;  // closed while waiting, to admit a new one
  uint64_t requests = 0;
  uint64_t timeouts = 0;  // connections closed for a deadline
  uint64_t rejected = 0;  // 400, 413, 431 before a handler ran
};

class Server {
 public:
  // Accepts on loops[0]; connections go round-robin over `loops`.
  Server(std::vector<boost::asio::io_context*> loops, const Router& router, Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the TLS files (when set), binds and starts accepting. Errors are
  // logged with what failed (file, address) and returned.
  Status Start();
  // Stops accepting, closes every connection (a response being written is
  // cut), waits for them with the deadline. Idempotent.
  void Stop();

  uint16_t port() const;
  bool tls() const;
  Stats stats() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with its running coroutines
};

}  // namespace memkv::http
