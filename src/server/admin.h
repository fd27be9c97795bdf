#pragma once
// server::AdminServer: the admin HTTP API (docs/admin-api.md) on the admin
// port (network.address's port + 1): health, readiness, status, metrics,
// drives, online drive reset and sessions, as routes of an http::Router
// served by an http::Server on the server's loops.
//
// Owner: main, next to the Server; it reads the Server, the store and the
// loops, which outlive it. Start and Stop are called from outside the
// loops (Stop with them running). Handlers run on the loops and touch only
// thread-safe parts of the store and server (stats, sessions, resets).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "http/server.h"

namespace memkv::store {
class Store;
}

namespace memkv::server {

class Loops;
class Server;
struct Config;

struct AdminOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 9901;  // 0: any free port (tests)
  std::string tls_cert;  // both set: HTTPS
  std::string tls_key;
  std::string auth_key;   // network.auth_key (hex): the bearer token for POST; empty: none
  std::string version;    // reported by /v1/status
  bool shm_rail = false;  // a Unix socket is configured
  // Host names answered besides IP literals and localhost (admin.allowed_hosts).
  std::vector<std::string> allowed_hosts;
  http::Limits limits;
};

// The admin part of a validated config (address, TLS, auth key, admin.*).
AdminOptions ToAdminOptions(const Config& config);

// Per drive, whether an online reset through the API is under way (GET
// /v1/drives shows it; a second reset is refused with 409). A reset holds a
// Claim for as long as it runs, and the flag drops when the Claim goes,
// however the handler leaves: a return, an exception, or its coroutine
// frame destroyed mid-reset as the server stops. A flag left set would
// refuse every later reset of that drive until a restart.
// Thread-safe (atomics): handlers on any loop claim and read.
class ResetFlags {
 public:
  explicit ResetFlags(size_t drives);

  class Claim {
   public:
    explicit Claim(std::atomic<bool>& flag) : flag_(&flag) {}
    Claim(Claim&& other) noexcept : flag_(std::exchange(other.flag_, nullptr)) {}
    Claim& operator=(Claim&&) = delete;
    ~Claim() {
      if (flag_ != nullptr) flag_->store(false);
    }

   private:
    std::atomic<bool>* flag_;
  };

  // The drive's claim, or nullopt when it is being reset already.
  std::optional<Claim> TryClaim(size_t drive);
  bool resetting(size_t drive) const { return flags_[drive].load(); }

 private:
  std::unique_ptr<std::atomic<bool>[]> flags_;
};

class AdminServer {
 public:
  AdminServer(Loops& loops, store::Store& store, Server& server, AdminOptions options);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the admin port and starts serving (errors are logged, naming the
  // address or TLS file).
  Status Start();
  // From now on /v1/ready answers 503 (the server is shutting down).
  void SetDraining();
  // Stops the listener and closes admin connections. Idempotent.
  void Stop();

  uint16_t port() const;
  bool tls() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace memkv::server
