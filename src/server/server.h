#pragma once
// server::Server: the control plane. It listens on TCP and on a Unix socket,
// hands each accepted connection to one of the loops for its life, and
// serves the requests of the wire protocol (docs/wire-protocol.md) over the
// store: many requests in flight per connection, replies as they complete,
// bounded by the connection limits.
//
// Owner: main, which owns the loops and the store and outlives the server.
// Start and Shutdown are called from outside the loops; everything a
// connection holds is confined to its loop.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "io/asio_fwd.h"
#include "proto/auth.h"
#include "rdma/fabric_api.h"
#include "server/session.h"

namespace memkv::store {
class Store;
}

namespace memkv::server {

class Loops;
class Metrics;
struct Config;

struct Limits {
  uint64_t max_value_size = 1ull << 30;
  uint32_t max_batch_entries = 65536;
  uint32_t max_inflight_per_connection = 4096;
  uint64_t max_buffered_bytes_per_connection = 64ull << 20;
  uint32_t max_sessions = 10000;
  uint32_t max_regions_per_session = 64;
  std::chrono::milliseconds stream_idle{30000};  // no chunk for this long: StreamTimeout
  uint32_t max_open_streams_per_session = 16;     // open streams at once; more: Busy
  std::chrono::milliseconds attach_timeout{2000};  // accepted, not attached this long: closed
  uint32_t max_unattached_connections = 256;      // one more closes the oldest unattached
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 9900;          // 0: any free port (tests)
  std::string unix_socket;       // empty: no Unix socket
  std::optional<proto::AuthKey> auth_key;
  Limits limits;
  std::chrono::milliseconds shutdown_deadline{5000};
  // The rdma rail (docs/rdma.md): a fabric opened at Start when set; the
  // server WRITEs reads into clients' registered buffers, and READs writes
  // from them, `rdma_chunk` bytes (memory.block_size) per transfer.
  std::optional<rdma::FabricOptions> rdma;
  uint64_t rdma_chunk = 2ull << 20;
  // None of a session's posted transfers completed this long: the session
  // is closed (its peer removed, its transfers failed).
  std::chrono::milliseconds rdma_transfer_timeout{30000};
};

struct ServerStats {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t requests = 0;
  uint64_t protocol_errors = 0;
  uint64_t sessions = 0;
  bool rdma_active = false;        // the rdma rail is open
  std::string rdma_provider;       // e.g. "ofi:tcp;ofi_rxm"
  uint64_t rdma_peers = 0;         // clients attached over rdma
  uint64_t rdma_bytes_written = 0; // into clients' memory (reads)
  uint64_t rdma_bytes_read = 0;    // from clients' memory (writes)
};

// The server's part of a validated config.
ServerOptions ToServerOptions(const Config& config);

// Non-empty when a server answers on the Unix socket `path`: a message that
// names it (its process id) and the fix. A second server with the same
// config must refuse to start rather than take the socket (or drives) over.
std::string LiveServerOn(const std::string& path);

class Server {
 public:
  Server(Loops& loops, store::Store& store, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts accepting (on loop 0). Errors name the
  // address (in use, not permitted, ...).
  Status Start();
  // Stops accepting, closes every connection (requests in flight finish or
  // are cancelled) and returns when all are gone. Connections still there
  // at the deadline are forced closed (their sockets shut, their waits
  // cancelled) and waited for: when this returns, no coroutine of the
  // server holds anything of the store. Call from outside the loops; the
  // loops must be running.
  void Shutdown();

  uint16_t port() const { return port_; }
  const ServerOptions& options() const { return options_; }
  SessionRegistry& sessions() { return sessions_; }
  ServerStats stats() const;
  // Per-operation counters and latencies (for the admin API).
  const Metrics& metrics() const;

  class Impl;

 private:
  void StopFabric();
  Loops& loops_;
  store::Store& store_;
  const ServerOptions options_;
  SessionRegistry sessions_;
  uint16_t port_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memkv::server
