// memkv::Engine: routing, the process's shared connections per (server,
// rail), batches split by server and by rail, fallback along the HRW
// ranking, and the memory registry.

#include "memkv/engine.h"

#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <map>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "client/connection.h"
#include "client/engine_internal.h"
#include "client/error.h"
#include "client/memory_registry.h"
#include "client/process_fabric.h"
#include "rdma/fabric_api.h"
#include "client/shared_region.h"
#include "common/cuda.h"
#include "common/hrw.h"
#include "common/log.h"
#include "common/mutex.h"
#include "proto/auth.h"

namespace memkv {

using client::Connection;
using client::IoThreads;
using client::Registration;
using client::SharedRegion;
using ConnPtr = std::shared_ptr<Connection>;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

namespace {

Code FromStatus(proto::StatusCode s) {
  using S = proto::StatusCode;
  switch (s) {
    case S::kOk:
      return Code::kOk;
    case S::kNotFound:
      return Code::kNotFound;
    case S::kInvalidArgument:
      return Code::kInvalidArgument;
    case S::kTooLarge:
      return Code::kTooLarge;
    case S::kTooManyEntries:
      return Code::kTooManyEntries;
    case S::kTooManyInflight:
    case S::kBufferLimit:
    case S::kTooManySessions:
    case S::kTooManyRegions:
    case S::kBusy:
      return Code::kBusy;
    case S::kStreamTimeout:
      return Code::kTimeout;
    case S::kNoSpace:
      return Code::kNoSpace;
    case S::kUnsupportedVersion:
    case S::kUnsupported:
      return Code::kUnsupported;
    case S::kVersionChanged:
      return Code::kNotFound;  // the version read is gone
    case S::kUnauthorized:
    case S::kNotAttached:
      return Code::kUnauthorized;
    case S::kChecksumMismatch:
      return Code::kChecksumMismatch;
    case S::kRangeOutOfBounds:
      return Code::kRangeOutOfBounds;
    case S::kBufferTooSmall:
      return Code::kBufferTooSmall;
    case S::kUnavailable:
      return Code::kUnavailable;
    case S::kBadRegion:
    case S::kInternal:
    case S::kProtocolError:
      return Code::kInternal;
    default:  // a status newer than this table: treat as the server's failure
      return Code::kInternal;
  }
}

}  // namespace

namespace client {

Code CodeFromError(const error_code& ec) {
  if (!ec) return Code::kOk;
  if (ec.category() == status_category())
    return FromStatus(static_cast<proto::StatusCode>(ec.value()));
  if (ec.category() != category()) return Code::kInternal;
  switch (static_cast<errc>(ec.value())) {
    case errc::ok:
      return Code::kOk;
    case errc::bad_address:
    case errc::connect_failed:
    case errc::connect_timeout:
    case errc::not_attached:
    case errc::connection_lost:
    case errc::closed:
      return Code::kUnavailable;
    case errc::attach_refused:
      return Code::kUnauthorized;
    case errc::queue_full:
      return Code::kBusy;
    case errc::timeout:
      return Code::kTimeout;
    case errc::bad_argument:
      return Code::kInvalidArgument;
    case errc::value_too_large_for_frame:
      return Code::kTooLarge;
    case errc::shm_needs_unix_socket:
    case errc::rdma_not_accepted:
      return Code::kUnavailable;
    case errc::bad_reply:
    case errc::region_not_registered:
    case errc::region_out_of_bounds:
      return Code::kInternal;
  }
  return Code::kInternal;
}

Ms BackoffAfter(int failures, Ms base, Ms max) {
  Ms b = base;
  for (int i = 1; i < failures && b < max; ++i) b *= 2;
  return std::min(b, max);
}

namespace {

bool IsReachableSocket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::atomic<size_t> g_live_links{0};

}  // namespace

size_t LiveServerLinks() { return g_live_links.load(); }

// ---------------------------------------------------------------------------
// ServerLink: one server's connections, one per rail (main: the configured
// address; shm: the server's Unix socket named in Attach), shared by every
// Engine of the process that names the same server, key and transport.
// Made on first use; a server that cannot be reached is retried after a
// backoff, and until then its requests fail at once.
//
// Thread-safe: mu_ guards the rails; connect completions run on an I/O
// thread and take mu_ briefly. No callback is called with mu_ held, and no
// Connection is destroyed with mu_ held (its destructor may wait for the
// I/O thread).
class ServerLink : public std::enable_shared_from_this<ServerLink> {
 public:
  struct Config {
    std::string address;
    std::optional<proto::AuthKey> key;
    Transport transport = Transport::kAuto;
    std::string rdma_endpoint;  // the fabric's endpoint ("<provider>|<address>"): its identity
    std::shared_ptr<rdma::Fabric> rdma_fabric;  // offered at Attach (TCP only)
    Ms connect_timeout{5000};
    Ms backoff{200};
    Ms max_backoff{5000};
  };
  // What a batch needs: the main connection, and the shm one (null when
  // shared memory moves inline on this server).
  struct Conns {
    Result<ConnPtr> main = ConnPtr{};
    Result<ConnPtr> shm = ConnPtr{};
  };

  ServerLink(Config c, std::shared_ptr<IoThreads> threads)
      : config_(std::move(c)), threads_(std::move(threads)) {
    g_live_links.fetch_add(1);
  }
  ~ServerLink() {
    ConnPtr a, b;
    {
      MutexLock lock(mu_);
      a = std::move(main_.conn);
      b = std::move(shm_.conn);
    }
    a.reset();
    b.reset();
    g_live_links.fetch_sub(1);
  }

  const Config& config() const { return config_; }

  void AcquireMain(Callback<ConnPtr> cb) { Acquire(&main_, config_.address, std::move(cb)); }

  // Both connections; `want_shm` false skips the shm rail.
  void AcquireConns(bool want_shm, Completion<Conns> done) {
    AcquireMain([self = shared_from_this(), want_shm,
                 done = std::move(done)](Result<ConnPtr> m) mutable {
      Conns c;
      c.main = m;
      if (!m || !want_shm || self->config_.transport == Transport::kTcp) return done(std::move(c));
      ConnPtr main = *m;
      if (main->is_unix_socket()) {
        c.shm = main;
        return done(std::move(c));
      }
      const std::string path = main->attach_info().unix_socket;
      if (path.empty() || !IsReachableSocket(path)) {
        if (self->config_.transport == Transport::kShm) {
          self->WarnShmOnce(
              "transport shm: the server is not on this host (no Unix socket in its "
              "Attach reply)");
          c.shm = error_code(errc::shm_needs_unix_socket);
        }
        return done(std::move(c));
      }
      self->Acquire(
          &self->shm_, path,
          [self, c = std::move(c), done = std::move(done)](Result<ConnPtr> s) mutable {
            if (s) {
              c.shm = *s;
            } else {
              self->WarnShmOnce("its shm rail failed (" + s.error().message() + "); moving to tcp");
              if (self->config_.transport == Transport::kShm) c.shm = s.error();
            }
            done(std::move(c));
          });
    });
  }

  // Registers `region` on `conn` once (concurrent callers wait for the one
  // registration).
  void EnsureRegion(const ConnPtr& conn, std::shared_ptr<SharedRegion> region, Callback<void> cb) {
    MutexLock lock(mu_);
    Rail* r = RailOf(conn.get());
    if (!r) {
      lock.Unlock();
      return cb(error_code(errc::connection_lost));
    }
    RegionState& st = r->regions[region->id()];
    if (st.done) {
      lock.Unlock();
      return cb(Status{});
    }
    st.waiters.push_back(std::move(cb));
    if (st.waiters.size() > 1) return;
    lock.Unlock();
    Connection* raw = conn.get();
    const uint32_t id = region->id();
    conn->AsyncRegisterRegion(std::move(region), config_.connect_timeout,
                              [self = shared_from_this(), raw, id](Status s) {
                                std::vector<Callback<void>> waiters;
                                {
                                  MutexLock lock(self->mu_);
                                  if (Rail* r = self->RailOf(raw)) {
                                    auto it = r->regions.find(id);
                                    if (it != r->regions.end()) {
                                      waiters.swap(it->second.waiters);
                                      if (s)
                                        it->second.done = true;
                                      else
                                        r->regions.erase(it);
                                    }
                                  }
                                }
                                for (auto& w : waiters) w(s);
                              });
  }

  // The region is freed: the connections that hold it let it go.
  void ReleaseRegion(const std::shared_ptr<SharedRegion>& region) {
    std::vector<ConnPtr> conns;
    {
      MutexLock lock(mu_);
      for (Rail* r : {&main_, &shm_}) {
        auto it = r->regions.find(region->id());
        if (it == r->regions.end() || !it->second.done) continue;
        r->regions.erase(it);
        if (r->conn && r->conn->is_open()) conns.push_back(r->conn);
      }
    }
    for (auto& c : conns) c->AsyncReleaseRegion(region, config_.connect_timeout, [](Status) {});
  }

  // Which rail this server's batches take, and why: logged once, at the
  // first connection.
  void LogRailOnce(const Connection& main) {
    if (rail_logged_.exchange(true)) return;
    const AttachInfo& a = main.attach_info();
    const std::string& socket = a.unix_socket;
    std::string rail, why;
    if (config_.transport == Transport::kTcp) {
      rail = "tcp";
      why = "transport tcp";
    } else if (!config_.rdma_endpoint.empty() && (a.rails & proto::kRailRdma)) {
      rail = "rdma (" + config_.rdma_endpoint.substr(0, config_.rdma_endpoint.find('|')) + ")";
      why = config_.transport == Transport::kRdma
                ? "both sides have it; registered memory moves in place, other memory "
                  "through the registered bounce pool"
                : "both sides have it; registered memory moves by one-sided RDMA, other "
                  "memory as without it (shm or tcp)";
    } else if (main.is_unix_socket()) {
      rail = "shm";
      why = "connected over its Unix socket";
    } else {
      const bool local = !socket.empty() && IsReachableSocket(socket);
      rail = local ? "tcp, shm for shared buffers" : "tcp";
      why = config_.rdma_endpoint.empty() ? "no rdma rail in this client (rdma_provider unset)"
                                          : "the server offers no rdma rail";
      why += local ? "; the server is on this host (" + socket + ")"
                   : "; the server is not on this host";
    }
    spdlog::info("memkv client: {}: rail {}: {}", config_.address, rail, why);
  }

  // The one warning of a faster rail given up for a slower one.
  void WarnShmOnce(const std::string& what) {
    if (!shm_warned_.exchange(true)) spdlog::warn("memkv client: {}: {}", config_.address, what);
  }

  ServerState State() {
    MutexLock lock(mu_);
    ServerState s;
    s.address = config_.address;
    s.connected = main_.conn && main_.conn->is_open();
    s.backing_off = !s.connected && Clock::now() < main_.retry_at;
    s.shm = (shm_.conn && shm_.conn->is_open()) ||
            (s.connected && main_.conn->is_unix_socket() && config_.transport != Transport::kTcp);
    return s;
  }

 private:
  struct RegionState {
    bool done = false;
    std::vector<Callback<void>> waiters;
  };
  struct Rail {
    ConnPtr conn;
    bool connecting = false;
    std::vector<Callback<ConnPtr>> waiters;
    int failures = 0;
    Clock::time_point retry_at{};
    bool down = false;                                  // logged as unreachable
    std::unordered_map<uint32_t, RegionState> regions;  // on conn
  };

  Rail* RailOf(const Connection* c) REQUIRES(mu_) {
    if (c == nullptr) return nullptr;
    if (main_.conn.get() == c) return &main_;
    if (shm_.conn.get() == c) return &shm_;
    return nullptr;
  }

  // `rail` is &main_ or &shm_: every access through it is under mu_.
  void Acquire(Rail* rail, const std::string& address, Callback<ConnPtr> cb) {
    ConnPtr stale;  // destroyed after the lock is released
    MutexLock lock(mu_);
    Rail& r = *rail;
    if (r.conn && r.conn->is_open()) {
      ConnPtr c = r.conn;
      lock.Unlock();
      return cb(std::move(c));
    }
    if (r.conn) {  // broken: reconnect now, then back off if that fails
      stale = std::move(r.conn);
      r.regions.clear();
    }
    if (r.connecting) {
      r.waiters.push_back(std::move(cb));
      return;
    }
    if (Clock::now() < r.retry_at) {
      lock.Unlock();
      return cb(error_code(errc::connect_failed));
    }
    r.connecting = true;
    r.waiters.push_back(std::move(cb));
    lock.Unlock();
    client::ConnectionOptions o;
    o.address = address;
    o.auth_key = config_.key;
    o.connect_timeout = config_.connect_timeout;
    if (address == config_.address) o.rdma_fabric = config_.rdma_fabric;
    Connection::AsyncConnect(o, threads_,
                             [self = shared_from_this(), rail, address](Result<Connection> c) {
                               self->OnConnected(rail, address, std::move(c));
                             });
  }

  void OnConnected(Rail* rail, const std::string& address, Result<Connection> c) {
    std::vector<Callback<ConnPtr>> waiters;
    Result<ConnPtr> out = ConnPtr{};
    {
      MutexLock lock(mu_);
      Rail& r = *rail;
      r.connecting = false;
      if (c) {
        r.conn = std::make_shared<Connection>(std::move(*c));
        r.regions.clear();
        r.failures = 0;
        r.retry_at = {};
        if (r.down) spdlog::info("memkv client: {}: connected again", address);
        r.down = false;
        out = r.conn;
      } else {
        ++r.failures;
        const Ms wait = BackoffAfter(r.failures, config_.backoff, config_.max_backoff);
        r.retry_at = Clock::now() + wait;
        if (!r.down)
          spdlog::warn(
              "memkv client: {}: {}; its keys fail as unavailable, retrying in the "
              "background of later calls (backoff from {} ms)",
              address, c.error().message(), wait.count());
        r.down = true;
        out = c.error();
      }
      waiters.swap(r.waiters);
    }
    if (rail == &main_ && out) LogRailOnce(**out);
    for (auto& w : waiters) w(out);
  }

  const Config config_;
  const std::shared_ptr<IoThreads> threads_;
  std::atomic<bool> shm_warned_{false};
  std::atomic<bool> rail_logged_{false};

  Mutex mu_;
  Rail main_ GUARDED_BY(mu_);
  Rail shm_ GUARDED_BY(mu_);
};

namespace {

// The process's links, by (address, key, transport): every Engine naming the
// same server shares its connections.
Mutex g_links_mu;
using LinkMap = std::map<std::string, std::weak_ptr<ServerLink>>;
LinkMap* g_links GUARDED_BY(g_links_mu) = new LinkMap;  // never freed: used until exit
LinkMap& Links() REQUIRES(g_links_mu) { return *g_links; }

// After fork the child's engines connect afresh, on the child's own I/O
// threads (io_threads.cc): the parent's links are forgotten (leaked).
void ForgetLinksInChild() NO_THREAD_SAFETY_ANALYSIS {
  new (&g_links_mu) Mutex();
  g_links = new LinkMap;
}
[[maybe_unused]] const int g_links_fork_handler = pthread_atfork(nullptr, nullptr, ForgetLinksInChild);

std::shared_ptr<ServerLink> GetLink(ServerLink::Config c,
                                    const std::shared_ptr<IoThreads>& threads) {
  const std::string id =
      c.address + "|" + (c.key ? c.key->ToHex() : "") + "|" + TransportName(c.transport) + "|" +
      c.rdma_endpoint;
  MutexLock lock(g_links_mu);
  auto& links = Links();
  for (auto it = links.begin(); it != links.end();) {  // drop dead entries
    if (it->second.expired())
      it = links.erase(it);
    else
      ++it;
  }
  if (auto l = links[id].lock()) return l;
  auto l = std::make_shared<ServerLink>(std::move(c), threads);
  links[id] = l;
  return l;
}

}  // namespace
}  // namespace client

// ---------------------------------------------------------------------------
// Engine::Impl

class Engine::Impl : public std::enable_shared_from_this<Engine::Impl> {
 public:
  explicit Impl(EngineOptions o)
      : options(std::move(o)),
        hrw(options.servers),
        threads(IoThreads::Acquire({options.io_threads})) {}

  // The rdma rail's fabric (transport rdma, or auto with rdma_provider
  // set): the process's one endpoint for that provider and address. Then
  // the server links, which offer its endpoint at Attach.
  Outcome Init() {
    std::string endpoint;
    const bool want_rdma = options.transport == Transport::kRdma ||
                           (options.transport == Transport::kAuto && !options.rdma_provider.empty());
    if (want_rdma) {
      const std::string provider =
          options.rdma_provider.empty() ? "tcp;ofi_rxm" : options.rdma_provider;
      std::string why;
      auto fab = client::ProcessFabric::Acquire(provider, options.rdma_address,
                                                options.rdma_device, threads, &why);
      if (!fab) {
        if (why.empty()) why = fab.error().message();
        if (options.transport == Transport::kRdma)
          return {Code::kUnavailable, "transport rdma: " + why};
        spdlog::warn("memkv client: no rdma rail ({}); shm and tcp only", why);
      } else {
        fabric = std::move(*fab);
        endpoint = fabric->endpoint();
        registry = std::make_unique<client::MemoryRegistry>(
            client::HostMemoryOnly(fabric->registrar()));
      }
    }
    std::optional<proto::AuthKey> key;
    if (!options.auth_key.empty()) key = *proto::AuthKey::FromHex(options.auth_key);
    for (const auto& s : options.servers) {
      client::ServerLink::Config c;
      c.address = s;
      c.key = key;
      c.transport = options.transport;
      c.connect_timeout = options.connect_timeout;
      c.backoff = options.reconnect_backoff;
      c.max_backoff = options.max_reconnect_backoff;
      c.rdma_endpoint = endpoint;
      if (fabric) c.rdma_fabric = fabric->shared_fabric();
      links.push_back(client::GetLink(std::move(c), threads));
    }
    return {};
  }

  // Destroyed off the pool (the usual case: the user drops the last
  // Engine), first let every I/O thread finish the handler it is in: a
  // completion that has just woken a caller may still hold a server link,
  // and the links, their connections and the pool must be released here, on
  // the caller's thread, not later on an I/O thread.
  ~Impl() {
    // The fabric (when this was its last Engine) goes on its loop, after
    // the links that offered its endpoint.
    if (fabric) {
      links.clear();
      registry.reset();
      fabric.reset();
    }
    if (threads->InPool()) return;
    for (size_t i = 0; i < threads->size(); ++i) {
      std::promise<void> passed;
      auto f = passed.get_future();
      boost::asio::post(threads->context(i), [&passed] { passed.set_value(); });
      f.wait();
    }
  }

  // Lets go of `self` on an I/O thread, after the current handler: a
  // completion may drop the last reference, and the connections must not be
  // closed from inside their own reply dispatch.
  static void ReleaseLater(std::shared_ptr<Impl> self) {
    // Off the pool (a batch refused before sending) it is dropped here.
    if (!self || !self->threads->InPool()) return;
    auto& ctx = self->threads->context(0);
    boost::asio::post(ctx, [self = std::move(self)]() mutable { self.reset(); });
  }

  const EngineOptions options;
  const Rendezvous hrw;
  const std::shared_ptr<IoThreads> threads;
  std::vector<std::shared_ptr<client::ServerLink>> links;
  std::shared_ptr<client::ProcessFabric> fabric;  // the rdma rail, when open
  std::unique_ptr<client::MemoryRegistry> registry = std::make_unique<client::MemoryRegistry>();
};

struct MemoryHandle::Impl {
  std::shared_ptr<const Registration> reg;
};

struct SharedBuffer::Impl {
  std::shared_ptr<SharedRegion> region;
  std::shared_ptr<const Registration> reg;
  std::weak_ptr<Engine::Impl> engine;
  ~Impl() {
    auto e = engine.lock();
    if (!e) return;
    e->registry->Unregister(reg->id);
    for (auto& l : e->links) l->ReleaseRegion(region);
  }
};

void* MemoryHandle::data() const { return impl_ ? impl_->reg->base : nullptr; }
size_t MemoryHandle::size() const { return impl_ ? impl_->reg->size : 0; }
uint64_t MemoryHandle::id() const { return impl_ ? impl_->reg->id : 0; }
void* SharedBuffer::data() const { return impl_ ? impl_->region->data() : nullptr; }
size_t SharedBuffer::size() const { return impl_ ? impl_->region->size() : 0; }

namespace {

// ---------------------------------------------------------------------------
// A batch in flight: entries grouped by server, each group sent over that
// server's connections; a group that finds its server unavailable moves, with
// immutable_keys, to the next server of each entry's ranking. `pending_`
// counts launched groups (plus the launcher); the last one to finish calls
// the completion.
template <class R>
class BatchOp : public std::enable_shared_from_this<BatchOp<R>> {
 public:
  BatchOp(std::shared_ptr<Engine::Impl> engine, size_t n, bool failover,
          Completion<BatchResult<R>> done)
      : engine_(std::move(engine)),
        deadline_(Clock::now() + engine_->options.timeout),
        failover_(failover && engine_->links.size() > 1),
        done_(std::move(done)),
        results_(n),
        attempt_(n, 0),
        hashes_(n, 0) {}
  virtual ~BatchOp() = default;

  // Routes entry i by its key hash and launches every group.
  void Start(std::optional<size_t> fixed_server) {
    std::map<size_t, std::vector<uint32_t>> groups;
    for (uint32_t i = 0; i < hashes_.size(); ++i)
      groups[fixed_server ? *fixed_server : engine_->hrw.Pick(hashes_[i])].push_back(i);
    for (auto& [server, idx] : groups) Launch(server, std::move(idx));
    Release();
  }

  std::vector<uint64_t>& hashes() { return hashes_; }

 protected:
  // Sends entries `idx` to `server`; calls Release() once when they all
  // have results (or have moved on through GroupFailed).
  virtual void Send(size_t server, std::vector<uint32_t> idx) = 0;
  virtual void SetCode(R& r, Code c) = 0;

  void Launch(size_t server, std::vector<uint32_t> idx) {
    pending_.fetch_add(1);
    const auto left = deadline_ - Clock::now();
    if (left <= Clock::duration::zero()) {
      Fail(idx, Code::kTimeout);
      return Release();
    }
    Send(server, std::move(idx));
  }

  Ms Remaining() const {
    const auto left = std::chrono::duration_cast<Ms>(deadline_ - Clock::now());
    return std::max(left, Ms{1});
  }

  void Fail(const std::vector<uint32_t>& idx, Code c) {
    MutexLock lock(mu_);
    for (uint32_t i : idx) SetCode(results_[i], c);
  }

  // A whole request for `idx` on `server` failed with `ec`.
  void GroupFailed(size_t server, const std::vector<uint32_t>& idx, const error_code& ec) {
    const Code c = client::CodeFromError(ec);
    if (!failover_ || c != Code::kUnavailable) return Fail(idx, c);
    const size_t n = engine_->links.size();
    std::vector<size_t> rank(n);
    std::map<size_t, std::vector<uint32_t>> next;
    std::vector<uint32_t> exhausted;
    for (uint32_t i : idx) {
      if (++attempt_[i] >= n) {
        exhausted.push_back(i);
        continue;
      }
      engine_->hrw.Rank(hashes_[i], rank);
      next[rank[attempt_[i]]].push_back(i);
    }
    (void)server;
    Fail(exhausted, c);
    for (auto& [s, v] : next) Launch(s, std::move(v));
  }

  template <class F>
  void WithResults(F f) {
    MutexLock lock(mu_);
    f(results_);
  }

  void Hold() { pending_.fetch_add(1); }
  void Release() {
    if (pending_.fetch_sub(1) != 1) return;
    BatchResult<R> out;
    {
      MutexLock lock(mu_);
      out.entries = std::move(results_);
    }
    // A caller blocked on this batch holds the engine too: drop ours before
    // waking it, so that an Engine it destroys next closes on its thread.
    auto engine = std::move(engine_);
    if (engine.use_count() > 1) engine.reset();
    done_(std::move(out));
    Engine::Impl::ReleaseLater(std::move(engine));
  }

  std::shared_ptr<Engine::Impl> engine_;
  const Clock::time_point deadline_;
  const bool failover_;

 private:
  Completion<BatchResult<R>> done_;
  std::atomic<size_t> pending_{1};
  Mutex mu_;
  std::vector<R> results_ GUARDED_BY(mu_);
  std::vector<uint8_t> attempt_;  // entry i's place in its ranking; touched by one group at a time
  std::vector<uint64_t> hashes_;  // constant after Start
};

// ---- Exists and Delete: keys only, over the main connection ----

template <class R>
class KeysOp final : public BatchOp<R> {
 public:
  using Base = BatchOp<R>;
  KeysOp(std::shared_ptr<Engine::Impl> e, std::vector<std::string> keys, bool failover,
         Completion<BatchResult<R>> done)
      : Base(std::move(e), keys.size(), failover, std::move(done)), keys_(std::move(keys)) {
    for (size_t i = 0; i < keys_.size(); ++i) this->hashes()[i] = HrwKeyHash(keys_[i]);
  }

 private:
  void SetCode(R& r, Code c) override {
    if constexpr (std::is_same_v<R, Code>)
      r = c;
    else
      r.status = c;
  }

  void Send(size_t server, std::vector<uint32_t> idx) override {
    auto self = std::static_pointer_cast<KeysOp>(this->shared_from_this());
    this->engine_->links[server]->AcquireMain(
        [self, server, idx = std::move(idx)](Result<ConnPtr> c) mutable {
          if (!c) {
            self->GroupFailed(server, idx, c.error());
            return self->Release();
          }
          std::vector<std::string> keys;
          keys.reserve(idx.size());
          for (uint32_t i : idx) keys.push_back(self->keys_[i]);
          if constexpr (std::is_same_v<R, ExistsResult>) {
            (*c)->AsyncExists(
                std::move(keys), self->Remaining(),
                [self, server, idx = std::move(idx)](Result<std::vector<client::KeyInfo>> r) {
                  if (!r) {
                    self->GroupFailed(server, idx, r.error());
                  } else {
                    self->WithResults([&](std::vector<R>& out) {
                      for (size_t k = 0; k < idx.size(); ++k)
                        out[idx[k]] = {FromStatus((*r)[k].status), (*r)[k].size,
                                       (*r)[k].version};
                    });
                  }
                  self->Release();
                });
          } else {
            (*c)->AsyncDelete(
                std::move(keys), self->Remaining(),
                [self, server, idx = std::move(idx)](Result<std::vector<proto::StatusCode>> r) {
                  if (!r) {
                    self->GroupFailed(server, idx, r.error());
                  } else {
                    self->WithResults([&](std::vector<R>& out) {
                      for (size_t k = 0; k < idx.size(); ++k) out[idx[k]] = FromStatus((*r)[k]);
                    });
                  }
                  self->Release();
                });
          }
        });
  }

  const std::vector<std::string> keys_;
};

// ---- Put and Get: bytes in the caller's memory ----

// One entry of a put or get as the engine keeps it.
struct DataEntry {
  std::string key;
  std::byte* data = nullptr;
  size_t size = 0;                          // value size (put) or capacity (get)
  uint64_t offset = 0;                      // get
  uint64_t length = 0;                      // get
  std::shared_ptr<const Registration> reg;  // registered or shared memory holding it
  uint64_t version = 0;                     // get: the version pinned (0: any)
};

template <class R>
class DataOp final : public BatchOp<R> {
 public:
  using Base = BatchOp<R>;
  static constexpr bool kPut = std::is_same_v<R, Code>;

  DataOp(std::shared_ptr<Engine::Impl> e, std::vector<DataEntry> entries, bool failover,
         Completion<BatchResult<R>> done)
      : Base(std::move(e), entries.size(), failover, std::move(done)),
        entries_(std::move(entries)) {
    for (size_t i = 0; i < entries_.size(); ++i) this->hashes()[i] = HrwKeyHash(entries_[i].key);
  }

 private:
  void SetCode(R& r, Code c) override {
    if constexpr (kPut)
      r = c;
    else
      r.status = c;
  }

  bool InShared(uint32_t i) const { return entries_[i].reg && entries_[i].reg->attachment; }

  void Send(size_t server, std::vector<uint32_t> idx) override {
    auto self = std::static_pointer_cast<DataOp>(this->shared_from_this());
    bool want_shm = false;
    for (uint32_t i : idx) want_shm |= InShared(i);
    this->engine_->links[server]->AcquireConns(
        want_shm, [self, server, idx = std::move(idx)](client::ServerLink::Conns c) mutable {
          self->SendOver(server, std::move(idx), std::move(c));
        });
  }

  void SendOver(size_t server, std::vector<uint32_t> idx, client::ServerLink::Conns c) {
    const bool rdma_rail = this->engine_->fabric && c.main && *c.main &&
                           ((*c.main)->attach_info().rails & proto::kRailRdma);
    if (this->engine_->options.transport == Transport::kRdma && c.main && !rdma_rail) {
      this->GroupFailed(server, idx, error_code(client::errc::rdma_not_accepted));
      return this->Release();
    }
    if (rdma_rail) {
      // rdma: registered memory is named in place; with transport rdma the
      // rest goes through a registered bounce buffer, with auto as before.
      std::vector<uint32_t> direct, bounce, rest;
      for (uint32_t i : idx) {
        if (RegionFor(i))
          direct.push_back(i);
        else if (this->engine_->options.transport == Transport::kRdma)
          bounce.push_back(i);
        else
          rest.push_back(i);
      }
      if (!direct.empty()) {
        this->pending_add();
        SendRdma(server, *c.main, std::move(direct), nullptr);
      }
      if (!bounce.empty()) {
        this->pending_add();
        SendRdmaBounce(server, *c.main, std::move(bounce));
      }
      if (rest.empty()) return this->Release();  // the group's own count
      idx = std::move(rest);
    }
    // Split: shm entries by region (when the shm rail is up), the rest inline.
    std::vector<uint32_t> inline_idx;
    std::map<uint32_t, std::vector<uint32_t>> by_region;
    std::vector<uint32_t> shm_failed;
    for (uint32_t i : idx) {
      if (InShared(i) && c.shm && *c.shm) {
        by_region[client::RegionOf(*entries_[i].reg)->id()].push_back(i);
      } else if (InShared(i) && !c.shm) {
        shm_failed.push_back(i);
      } else {
        inline_idx.push_back(i);
      }
    }
    if (!shm_failed.empty()) this->GroupFailed(server, shm_failed, c.shm.error());
    if (!inline_idx.empty()) {
      this->pending_add();
      if (!c.main) {
        this->GroupFailed(server, inline_idx, c.main.error());
        this->Release();
      } else {
        SendInline(server, *c.main, std::move(inline_idx));
      }
    }
    for (auto& [id, v] : by_region) {
      this->pending_add();
      SendShm(server, *c.shm, c.main ? *c.main : ConnPtr{}, std::move(v));
    }
    this->Release();  // the group's own count
  }

  void SendInline(size_t server, const ConnPtr& conn, std::vector<uint32_t> idx) {
    auto self = std::static_pointer_cast<DataOp>(this->shared_from_this());
    if constexpr (kPut) {
      client::PutBatch batch;
      batch.entries.reserve(idx.size());
      bool all_registered = true;
      for (uint32_t i : idx) {
        const DataEntry& e = entries_[i];
        batch.entries.push_back({e.key, {e.data, e.size}});
        all_registered &= e.reg != nullptr;
      }
      // Registered memory is sent in place (the registration keeps shared
      // memory alive); anything else is copied by the connection.
      if (all_registered) {
        auto regs = std::make_shared<std::vector<std::shared_ptr<const Registration>>>();
        for (uint32_t i : idx) regs->push_back(entries_[i].reg);
        batch.owner = regs;
      }
      conn->AsyncPut(
          std::move(batch), this->Remaining(),
          [self, server, idx = std::move(idx)](Result<std::vector<proto::StatusCode>> r) {
            self->OnPut(server, idx, std::move(r));
          });
    } else {
      std::vector<client::GetEntry> gets;
      gets.reserve(idx.size());
      for (uint32_t i : idx) {
        const DataEntry& e = entries_[i];
        gets.push_back({e.key, e.offset, e.length, {e.data, e.size}, e.version});
      }
      conn->AsyncGet(
          std::move(gets), this->Remaining(),
          [self, server, idx = std::move(idx)](Result<std::vector<client::GetResult>> r) {
            self->OnGet(server, idx, std::move(r));
          });
    }
  }

  void SendShm(size_t server, const ConnPtr& shm, ConnPtr main, std::vector<uint32_t> idx) {
    auto self = std::static_pointer_cast<DataOp>(this->shared_from_this());
    auto region = client::RegionOf(*entries_[idx.front()].reg);
    this->engine_->links[server]->EnsureRegion(
        shm, region, [self, server, shm, main, region, idx = std::move(idx)](Status s) mutable {
          if (!s) {
            // auto: the region could not be registered; move it inline.
            if (self->engine_->options.transport != Transport::kShm && main) {
              return self->SendInline(server, main, std::move(idx));
            }
            self->GroupFailed(server, idx, s.error());
            return self->Release();
          }
          if constexpr (kPut) {
            client::ShmPutBatch b;
            b.region = region;
            for (uint32_t i : idx) {
              const DataEntry& e = self->entries_[i];
              b.entries.push_back({e.key, static_cast<uint64_t>(e.data - region->data()), e.size});
            }
            shm->AsyncPutShm(std::move(b), self->Remaining(),
                             [self, server, main, idx = std::move(idx)](
                                 Result<std::vector<proto::StatusCode>> r) mutable {
                               if (!r && self->MoveToTcp(server, main, r.error()))
                                 return self->SendInline(server, main, std::move(idx));
                               self->OnPut(server, idx, std::move(r));
                             });
          } else {
            client::ShmGetBatch b;
            b.region = region;
            for (uint32_t i : idx) {
              const DataEntry& e = self->entries_[i];
              b.entries.push_back({e.key, e.offset, e.length,
                                   static_cast<uint64_t>(e.data - region->data()), e.size,
                                   e.version});
            }
            shm->AsyncGetShm(std::move(b), self->Remaining(),
                             [self, server, main, idx = std::move(idx)](
                                 Result<std::vector<client::GetResult>> r) mutable {
                               if (!r && self->MoveToTcp(server, main, r.error()))
                                 return self->SendInline(server, main, std::move(idx));
                               self->OnGet(server, idx, std::move(r));
                             });
          }
        });
  }

  // ---- the rdma rail ----

  // The fabric registration holding entry i (RegisterMemory with a fabric
  // open), or null.
  const rdma::MemoryRegion* RegionFor(uint32_t i) const {
    const auto& reg = entries_[i].reg;
    return reg && reg->handle ? static_cast<const rdma::MemoryRegion*>(reg->handle.get()) : nullptr;
  }

  // Unregistered memory on the rdma rail: places in the process's bounce
  // pool, the values copied in (put) or out after the reply (get).
  struct Bounce {
    std::unique_ptr<rdma::BufferPool::Lease> lease;
    std::vector<rdma::BufferPool::Lease::Place> at;  // per entry of the group
  };

  void SendRdmaBounce(size_t server, const ConnPtr& conn, std::vector<uint32_t> idx) {
    auto b = std::make_shared<Bounce>();
    b->lease = this->engine_->fabric->bounce().NewLease();
    for (uint32_t i : idx) {
      auto place = b->lease->Take(entries_[i].size);
      if (!place) {
        this->GroupFailed(server, idx, place.error());
        return this->Release();
      }
      b->at.push_back(*place);
      if constexpr (kPut)
        if (entries_[i].size) std::memcpy(place->data, entries_[i].data, entries_[i].size);
    }
    SendRdma(server, conn, std::move(idx), std::move(b));
  }

  // The group over the rdma rail: each entry names its memory (or its place
  // in `bounce`) by (address, key); the server transfers the bytes.
  void SendRdma(size_t server, const ConnPtr& conn, std::vector<uint32_t> idx,
                std::shared_ptr<Bounce> bounce) {
    auto self = std::static_pointer_cast<DataOp>(this->shared_from_this());
    auto regs = std::make_shared<std::vector<std::shared_ptr<const Registration>>>();
    struct Named {
      std::byte* p;
      uint64_t address;
      uint32_t rkey;
    };
    std::vector<Named> named;
    for (size_t k = 0; k < idx.size(); ++k) {
      const DataEntry& e = entries_[idx[k]];
      const rdma::MemoryRegion* mr =
          bounce ? static_cast<const rdma::MemoryRegion*>(bounce->at[k].handle) : RegionFor(idx[k]);
      std::byte* p = bounce ? bounce->at[k].data : e.data;
      if (mr->key() > UINT32_MAX) {  // the wire carries 32-bit keys (as verbs rkeys are)
        this->GroupFailed(server, idx, error_code(client::errc::bad_argument));
        return this->Release();
      }
      named.push_back({p, mr->RemoteAddress(p), static_cast<uint32_t>(mr->key())});
      if (!bounce) regs->push_back(e.reg);
    }
    std::shared_ptr<const void> owner =
        bounce ? std::shared_ptr<const void>(bounce) : std::shared_ptr<const void>(regs);
    if constexpr (kPut) {
      std::vector<client::RdmaPutEntry> es;
      es.reserve(idx.size());
      for (size_t k = 0; k < idx.size(); ++k) {
        const DataEntry& e = entries_[idx[k]];
        es.push_back({e.key, named[k].p, e.size, named[k].address, named[k].rkey});
      }
      conn->AsyncPutRdma(std::move(es), std::move(owner), this->Remaining(),
                         [self, server, idx = std::move(idx)](
                             Result<std::vector<proto::StatusCode>> r) {
                           self->OnPut(server, idx, std::move(r));
                         });
    } else {
      std::vector<client::RdmaGetEntry> es;
      es.reserve(idx.size());
      for (size_t k = 0; k < idx.size(); ++k) {
        const DataEntry& e = entries_[idx[k]];
        es.push_back({e.key, e.offset, e.length, std::span<std::byte>(named[k].p, e.size),
                      named[k].address, named[k].rkey, e.version});
      }
      conn->AsyncGetRdma(
          std::move(es), std::move(owner), this->Remaining(),
          [self, server, idx = std::move(idx), bounce](Result<std::vector<client::GetResult>> r) {
            if (r && bounce) {
              for (size_t k = 0; k < idx.size(); ++k) {
                const client::GetResult& g = (*r)[k];
                if (g.status == proto::StatusCode::kOk && g.length)
                  std::memcpy(self->entries_[idx[k]].data, bounce->at[k].data, g.length);
              }
            }
            self->OnGet(server, idx, std::move(r));
          });
    }
  }

  // With transport auto, a request whose shm connection broke is sent again
  // inline over the main connection (the shm rail is reconnected, or left
  // for tcp, by the next batch).
  bool MoveToTcp(size_t server, const ConnPtr& main, const error_code& ec) {
    if (this->engine_->options.transport == Transport::kShm || !main || !main->is_open() ||
        main->is_unix_socket() || client::CodeFromError(ec) != Code::kUnavailable)
      return false;
    this->engine_->links[server]->WarnShmOnce("its shm rail failed (" + ec.message() +
                                              "); moving to tcp");
    return true;
  }

  void OnPut(size_t server, const std::vector<uint32_t>& idx,
             Result<std::vector<proto::StatusCode>> r) {
    if constexpr (kPut) {
      if (!r) {
        this->GroupFailed(server, idx, r.error());
      } else {
        this->WithResults([&](std::vector<R>& out) {
          for (size_t k = 0; k < idx.size(); ++k) out[idx[k]] = FromStatus((*r)[k]);
        });
      }
    }
    this->Release();
  }

  void OnGet(size_t server, const std::vector<uint32_t>& idx,
             Result<std::vector<client::GetResult>> r) {
    if constexpr (!kPut) {
      if (!r) {
        this->GroupFailed(server, idx, r.error());
      } else {
        this->WithResults([&](std::vector<R>& out) {
          for (size_t k = 0; k < idx.size(); ++k) {
            const auto& g = (*r)[k];
            out[idx[k]] = {FromStatus(g.status), g.value_size, g.length, g.version};
          }
        });
      }
    }
    this->Release();
  }

  void pending_add() { this->Hold(); }

  const std::vector<DataEntry> entries_;
};

Outcome CheckKey(std::string_view key, size_t i, const char* what) {
  if (key.empty() || key.size() > 1024)
    return {Code::kInvalidArgument, std::string(what) + "[" + std::to_string(i) +
                                        "].key: keys are 1 to 1024 bytes (this one is " +
                                        std::to_string(key.size()) + ")"};
  return {};
}

template <class R>
void RefuseAll(size_t n, Outcome why, Completion<BatchResult<R>>& done) {
  BatchResult<R> out;
  out.entries.resize(n);
  for (auto& e : out.entries) {
    if constexpr (std::is_same_v<R, Code>)
      e = why.code;
    else
      e.status = why.code;
  }
  out.outcome = std::move(why);
  done(std::move(out));
}

template <class T, class Start>
T Block(const std::shared_ptr<IoThreads>& threads, size_t n, Start start) {
  if (threads->InPool()) {
    T out;
    out.outcome = {Code::kInvalidArgument,
                   "a blocking call on one of the library's I/O threads (from a completion) would "
                   "deadlock: use the Async form"};
    out.entries.resize(n);
    for (auto& e : out.entries) {
      if constexpr (std::is_same_v<std::decay_t<decltype(e)>, Code>)
        e = Code::kInvalidArgument;
      else
        e.status = Code::kInvalidArgument;
    }
    return out;
  }
  std::promise<T> p;
  auto f = p.get_future();
  start(Completion<T>([&p](T r) { p.set_value(std::move(r)); }));
  return f.get();
}

}  // namespace

// ---------------------------------------------------------------------------
// Engine

Expected<Engine> Engine::Create(EngineOptions options) {
  LogToStderrUnlessSet();
  if (auto v = options.Validate(); !v) return v;
  auto impl = std::make_shared<Impl>(std::move(options));
  if (auto st = impl->Init(); !st) return st;
  return Engine(std::move(impl));
}

Expected<Engine> Engine::FromEnvironment() {
  auto o = EngineOptions::FromEnvironment();
  if (!o) return o.error();
  return Create(std::move(*o));
}

const EngineOptions& Engine::options() const { return impl_->options; }
size_t Engine::server_count() const { return impl_->hrw.size(); }
const std::string& Engine::server(size_t i) const { return impl_->hrw.server(i); }

std::vector<ServerState> Engine::Servers() const {
  std::vector<ServerState> out;
  for (auto& l : impl_->links) out.push_back(l->State());
  return out;
}

size_t Engine::RouteKey(std::string_view key) const { return impl_->hrw.PickKey(key); }
size_t Engine::RouteBlock(uint64_t block) const { return impl_->hrw.Pick(HrwBlockHash(block)); }
std::vector<size_t> Engine::RankKey(std::string_view key) const {
  std::vector<size_t> out(impl_->hrw.size());
  impl_->hrw.Rank(HrwKeyHash(key), out);
  return out;
}

void Engine::AsyncExists(std::span<const std::string_view> keys, Completion<ExistsResults> done) {
  std::vector<std::string> k;
  k.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto c = CheckKey(keys[i], i, "keys"); !c)
      return RefuseAll(keys.size(), std::move(c), done);
    k.emplace_back(keys[i]);
  }
  auto op = std::make_shared<KeysOp<ExistsResult>>(impl_, std::move(k),
                                                   impl_->options.immutable_keys, std::move(done));
  op->Start(std::nullopt);
}

void Engine::AsyncDelete(std::span<const std::string_view> keys, Completion<DeleteResults> done) {
  std::vector<std::string> k;
  k.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto c = CheckKey(keys[i], i, "keys"); !c)
      return RefuseAll(keys.size(), std::move(c), done);
    k.emplace_back(keys[i]);
  }
  auto op = std::make_shared<KeysOp<Code>>(impl_, std::move(k), impl_->options.immutable_keys,
                                           std::move(done));
  op->Start(std::nullopt);
}

namespace {

// An entry in registered CUDA device memory: every rail reads and writes
// host memory (and checks every byte on the CPU), so its value is staged in
// host memory: a put's copied out of the device before it is sent, a get's
// received and checked there, then copied into the device.
struct DeviceStage {
  size_t entry;
  std::byte* device;
  std::unique_ptr<std::byte[]> host;
};

template <class R>
void StartData(const std::shared_ptr<Engine::Impl>& impl, std::vector<DataEntry> entries,
               std::optional<size_t> server, Completion<BatchResult<R>> done) {
  constexpr bool kPut = std::is_same_v<R, Code>;
  std::vector<DeviceStage> staged;
  for (size_t i = 0; i < entries.size(); ++i) {
    DataEntry& e = entries[i];
    e.reg = impl->registry->Find(e.data, e.size);
    if (!e.reg || !e.reg->is_device()) continue;
    DeviceStage s{i, e.data, std::make_unique_for_overwrite<std::byte[]>(e.size)};
    if constexpr (kPut) {
      std::string why;
      if (!common::Cuda::Process().Copy(s.host.get(), e.data, e.size, &why))
        return RefuseAll(entries.size(),
                         {Code::kInternal, "entries[" + std::to_string(i) +
                                               "]: copying the value out of CUDA device memory: " +
                                               why},
                         done);
    }
    e.data = s.host.get();
    e.reg = nullptr;
    staged.push_back(std::move(s));
  }
  if (!staged.empty()) {
    auto keep = std::make_shared<std::vector<DeviceStage>>(std::move(staged));
    done = [keep, done = std::move(done)](BatchResult<R> r) mutable {
      if constexpr (!kPut) {
        for (const DeviceStage& s : *keep) {
          GetResult& g = r.entries[s.entry];
          if (g.status != Code::kOk || g.length == 0) continue;
          std::string why;
          if (!common::Cuda::Process().Copy(s.device, s.host.get(), g.length, &why)) {
            spdlog::error("memkv client: copying a value into CUDA device memory: {}", why);
            g = {Code::kInternal, g.value_size, 0, g.version};
          }
        }
      }
      done(std::move(r));
    };
  }
  const bool failover = impl->options.immutable_keys && !server;
  auto op = std::make_shared<DataOp<R>>(impl, std::move(entries), failover, std::move(done));
  op->Start(server);
}

Outcome CheckPut(std::string_view key, const void* data, size_t size, size_t i) {
  if (auto c = CheckKey(key, i, "entries"); !c) return c;
  if (data == nullptr || size == 0)
    return {Code::kInvalidArgument,
            "entries[" + std::to_string(i) + "]: a value is 1 byte or more, at a non-null address"};
  return {};
}

Outcome CheckGet(std::string_view key, const void* buffer, size_t capacity, size_t i) {
  if (auto c = CheckKey(key, i, "entries"); !c) return c;
  if (buffer == nullptr || capacity == 0)
    return {Code::kInvalidArgument,
            "entries[" + std::to_string(i) + "]: the buffer is null or has no room"};
  return {};
}

}  // namespace

void Engine::AsyncBatchPut(std::span<const PutEntry> entries, Completion<PutResults> done) {
  std::vector<DataEntry> v(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const PutEntry& e = entries[i];
    if (auto c = CheckPut(e.key, e.data, e.size, i); !c)
      return RefuseAll(entries.size(), std::move(c), done);
    v[i].key = e.key;
    v[i].data = static_cast<std::byte*>(const_cast<void*>(e.data));
    v[i].size = e.size;
  }
  StartData<Code>(impl_, std::move(v), std::nullopt, std::move(done));
}

void Engine::AsyncBatchGet(std::span<const GetEntry> entries, Completion<GetResults> done) {
  std::vector<DataEntry> v(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const GetEntry& e = entries[i];
    if (auto c = CheckGet(e.key, e.buffer, e.capacity, i); !c)
      return RefuseAll(entries.size(), std::move(c), done);
    v[i] = {std::string(e.key), static_cast<std::byte*>(e.buffer),
            e.capacity,         e.offset,
            e.length,           nullptr,
            e.version};
  }
  StartData<GetResult>(impl_, std::move(v), std::nullopt, std::move(done));
}

void Engine::AsyncBatchXferForServer(size_t server, XferOp op, std::span<const XferEntry> entries,
                                     Completion<GetResults> done) {
  if (server >= impl_->links.size())
    return RefuseAll(entries.size(),
                     {Code::kInvalidArgument, "server " + std::to_string(server) + ": there are " +
                                                  std::to_string(impl_->links.size()) + " servers"},
                     done);
  std::vector<DataEntry> v(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const XferEntry& e = entries[i];
    Outcome c = op == XferOp::kPut ? CheckPut(e.key, e.buffer, e.size, i)
                                   : CheckGet(e.key, e.buffer, e.size, i);
    if (!c) return RefuseAll(entries.size(), std::move(c), done);
    v[i] = {std::string(e.key),
            static_cast<std::byte*>(e.buffer),
            e.size,
            op == XferOp::kGet ? e.offset : 0,
            op == XferOp::kGet ? e.length : 0,
            nullptr};
  }
  if (op == XferOp::kGet) return StartData<GetResult>(impl_, std::move(v), server, std::move(done));
  std::vector<uint64_t> sizes;
  for (auto& e : v) sizes.push_back(e.size);
  StartData<Code>(
      impl_, std::move(v), server,
      [sizes = std::move(sizes), done = std::move(done)](PutResults r) mutable {
        GetResults g;
        g.outcome = std::move(r.outcome);
        g.entries.resize(r.entries.size());
        for (size_t i = 0; i < r.entries.size(); ++i)
          g.entries[i] = {r.entries[i], sizes[i], r.entries[i] == Code::kOk ? sizes[i] : 0};
        done(std::move(g));
      });
}

ExistsResults Engine::Exists(std::span<const std::string_view> keys) {
  return Block<ExistsResults>(impl_->threads, keys.size(), [&](Completion<ExistsResults> cb) {
    AsyncExists(keys, std::move(cb));
  });
}
DeleteResults Engine::Delete(std::span<const std::string_view> keys) {
  return Block<DeleteResults>(impl_->threads, keys.size(), [&](Completion<DeleteResults> cb) {
    AsyncDelete(keys, std::move(cb));
  });
}
PutResults Engine::BatchPut(std::span<const PutEntry> entries) {
  return Block<PutResults>(impl_->threads, entries.size(), [&](Completion<PutResults> cb) {
    AsyncBatchPut(entries, std::move(cb));
  });
}
GetResults Engine::BatchGet(std::span<const GetEntry> entries) {
  return Block<GetResults>(impl_->threads, entries.size(), [&](Completion<GetResults> cb) {
    AsyncBatchGet(entries, std::move(cb));
  });
}
GetResults Engine::BatchXferForServer(size_t server, XferOp op,
                                      std::span<const XferEntry> entries) {
  return Block<GetResults>(impl_->threads, entries.size(), [&](Completion<GetResults> cb) {
    AsyncBatchXferForServer(server, op, entries, std::move(cb));
  });
}

Expected<MemoryHandle> Engine::RegisterMemory(void* ptr, size_t len) {
  if (ptr == nullptr || len == 0)
    return Outcome{Code::kInvalidArgument, "RegisterMemory: a null or empty range"};
  auto r = impl_->registry->Register(ptr, len);
  if (!r) return Outcome{Code::kInternal, "RegisterMemory: " + r.error().message()};
  return MemoryHandle(std::make_shared<const MemoryHandle::Impl>(MemoryHandle::Impl{*r}));
}

void Engine::UnregisterMemory(const MemoryHandle& handle) {
  if (handle.impl_) impl_->registry->Unregister(handle.impl_->reg->id);
}

Expected<SharedBuffer> Engine::AllocateShared(size_t size) {
  if (size == 0) return Outcome{Code::kInvalidArgument, "AllocateShared: size must be more than 0"};
  auto region = SharedRegion::Create(size, "memkv-shared");
  if (!region)
    return Outcome{Code::kNoMemory,
                   "AllocateShared(" + std::to_string(size) + "): " + region.error().message()};
  auto impl = std::make_shared<SharedBuffer::Impl>();
  impl->region = *region;
  impl->reg = impl_->registry->AddRegion(*region);
  impl->engine = impl_;
  return SharedBuffer(std::move(impl));
}

// ---------------------------------------------------------------------------
// List, Capacity, Rename and streamed puts: blocking calls over each
// server's main connection.

namespace {

// Rename's copy of a large value: bytes read (pinned to one version) and
// streamed on per piece.
constexpr uint64_t kCopyPiece = 16ull << 20;

Outcome OnPool(const Engine::Impl& e, const char* what) {
  if (!e.threads->InPool()) return {};
  return {Code::kInvalidArgument,
          std::string(what) +
              ": a blocking call on one of the library's I/O threads (from a completion) would "
              "deadlock"};
}

Outcome ServerError(const Engine::Impl& e, size_t server, const char* what, const error_code& ec) {
  const std::string& address = e.hrw.server(server);
  if (ec == client::make_status_error(proto::StatusCode::kUnsupported))
    return {Code::kUnsupported, std::string(what) + ": server " + address +
                                    " does not offer it (an older memkv server): upgrade it"};
  return {client::CodeFromError(ec), std::string(what) + ": server " + address + ": " + ec.message()};
}

Result<ConnPtr> MainConn(Engine::Impl& e, size_t server) {
  std::promise<Result<ConnPtr>> p;
  auto f = p.get_future();
  e.links[server]->AcquireMain([&p](Result<ConnPtr> c) { p.set_value(std::move(c)); });
  return f.get();
}

// Runs `send(conn, done)` on every server's main connection at once and
// waits for them all: one result per server. A server that does not offer
// `feature` gets Unsupported without a request.
template <class T, class Send>
std::vector<Result<T>> OnEveryServer(Engine::Impl& e, uint32_t feature, const Send& send) {
  const size_t n = e.links.size();
  std::vector<std::promise<Result<T>>> promises(n);
  std::vector<std::future<Result<T>>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  for (size_t s = 0; s < n; ++s) {
    e.links[s]->AcquireMain([&promises, &send, s, feature](Result<ConnPtr> c) {
      if (!c) return promises[s].set_value(c.error());
      if (feature && !((*c)->attach_info().features & feature))
        return promises[s].set_value(client::make_status_error(proto::StatusCode::kUnsupported));
      send(*c, client::Callback<T>([&promises, s](Result<T> r) { promises[s].set_value(std::move(r)); }));
    });
  }
  std::vector<Result<T>> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

Outcome CheckNamedKey(std::string_view key, const char* what) {
  if (key.empty() || key.size() > 1024)
    return {Code::kInvalidArgument, std::string(what) + ": keys are 1 to 1024 bytes (this one is " +
                                        std::to_string(key.size()) + ")"};
  return {};
}

}  // namespace

namespace client {

ListPage MergePages(std::vector<ServerPage> pages, std::string_view cursor, size_t limit) {
  ListPage page;
  // The highest key below which every server's keys are all known: a
  // server that may have more has given only those up to its last one.
  std::optional<std::string> horizon;
  bool more = false;
  std::vector<ListEntry> all;
  for (ServerPage& p : pages) {
    std::sort(p.entries.begin(), p.entries.end(),
              [](const ListEntry& a, const ListEntry& b) { return a.key < b.key; });
    if (!p.cursor.empty()) {
      more = true;
      std::string h = p.entries.empty() ? p.cursor : p.entries.back().key;
      if (!horizon || h < *horizon) horizon = std::move(h);
    }
    for (ListEntry& e : p.entries)
      if (cursor.empty() || std::string_view(e.key) > cursor) all.push_back(std::move(e));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const ListEntry& a, const ListEntry& b) { return a.key < b.key; });
  // A key on two servers (written along the HRW ranking with immutable_keys) once.
  all.erase(std::unique(all.begin(), all.end(),
                        [](const ListEntry& a, const ListEntry& b) { return a.key == b.key; }),
            all.end());
  size_t taken = 0;
  while (taken < all.size() && taken < limit && (!horizon || all[taken].key <= *horizon)) ++taken;
  more |= taken < all.size();
  all.resize(taken);
  page.entries = std::move(all);
  if (more) page.cursor = page.entries.empty() ? *horizon : page.entries.back().key;
  return page;
}

}  // namespace client

ListPage Engine::List(std::string_view prefix, std::string_view cursor, size_t limit) {
  ListPage page;
  if (auto o = OnPool(*impl_, "List"); !o) {
    page.outcome = std::move(o);
    return page;
  }
  if (prefix.size() > 1024 || cursor.size() > 1024) {
    page.outcome = {Code::kInvalidArgument, "List: the prefix and the cursor are at most 1024 bytes"};
    return page;
  }
  if (limit == 0) {
    page.outcome = {Code::kInvalidArgument, "List: limit must be 1 or more"};
    return page;
  }
  const auto lim = static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX));
  auto results = OnEveryServer<client::ListResult>(
      *impl_, proto::kFeatureList,
      [&](const ConnPtr& c, client::Callback<client::ListResult> done) {
        c->AsyncList(std::string(prefix), std::string(cursor), lim, impl_->options.timeout,
                     std::move(done));
      });
  std::vector<client::ServerPage> pages;
  for (size_t s = 0; s < results.size(); ++s) {
    // A page without one server's keys would skip them: the call fails.
    if (!results[s]) {
      page.outcome = ServerError(*impl_, s, "List", results[s].error());
      return page;
    }
    client::ServerPage& p = pages.emplace_back();
    for (auto& e : results[s]->entries) p.entries.push_back({std::move(e.key), e.size, e.version});
    p.cursor = std::move(results[s]->cursor);
  }
  return client::MergePages(std::move(pages), cursor, limit);
}

CapacityInfo Engine::Capacity() {
  CapacityInfo info;
  if (auto o = OnPool(*impl_, "Capacity"); !o) {
    info.outcome = std::move(o);
    return info;
  }
  auto results = OnEveryServer<client::CapacityResult>(
      *impl_, proto::kFeatureCapacity,
      [&](const ConnPtr& c, client::Callback<client::CapacityResult> done) {
        c->AsyncCapacity(impl_->options.timeout, std::move(done));
      });
  for (size_t s = 0; s < results.size(); ++s) {
    if (!results[s]) {
      // The sums then cover the servers that answered.
      if (info.outcome.ok()) info.outcome = ServerError(*impl_, s, "Capacity", results[s].error());
      continue;
    }
    const client::CapacityResult& r = *results[s];
    info.total_bytes += r.total_bytes;
    info.used_bytes += r.used_bytes;
    info.keys += r.keys;
    if (r.max_value_size && (info.max_value_size == 0 || r.max_value_size < info.max_value_size))
      info.max_value_size = r.max_value_size;
  }
  return info;
}

namespace {

// Rename across servers (or where the server cannot rename): read, put
// under the new key, delete the old one.
Outcome CopyRename(Engine& engine, Engine::Impl& impl, std::string_view from,
                   std::string_view to) {
  const std::string missing = "Rename: " + std::string(from) + ": no such key";
  const auto fail = [&](Code c, const std::string& why) {
    return Outcome{c, "Rename " + std::string(from) + " to " + std::string(to) + ": " + why};
  };
  // The value read is pinned to the version Exists saw; if the key is
  // overwritten meanwhile the copy starts again with the new one.
  constexpr int kTries = 3;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    auto ex = engine.Exists({&from, 1});
    if (!ex.outcome) return ex.outcome;
    const ExistsResult e = ex.entries[0];
    if (e.status == Code::kNotFound) return {Code::kNotFound, missing};
    if (e.status != Code::kOk) return fail(e.status, std::string("exists: ") + CodeName(e.status));
    const size_t src = engine.RouteKey(from);
    auto c = MainConn(impl, src);
    if (!c) return ServerError(impl, src, "Rename", c.error());
    const bool pinned = ((*c)->attach_info().features & proto::kFeaturePinnedReads) && e.version;
    bool changed = false;
    Outcome put;
    std::optional<PutStream> stream;
    if (pinned && e.size > kCopyPiece) {
      // Large: piece by piece into a stream, never the whole value in memory.
      auto ps = engine.OpenPutStream(to);
      if (ps) stream.emplace(std::move(*ps));
      else if (ps.error().code != Code::kUnsupported) return ps.error();
    }
    if (stream) {
      std::vector<std::byte> buf(kCopyPiece);
      for (uint64_t off = 0; off < e.size && put.ok() && !changed;) {
        const uint64_t n = std::min<uint64_t>(kCopyPiece, e.size - off);
        GetEntry g{from, buf.data(), n, off, n, e.version};
        auto r = engine.BatchGet({&g, 1});
        if (!r.outcome) return r.outcome;
        const GetResult& gr = r.entries[0];
        if (gr.status == Code::kNotFound || gr.status == Code::kRangeOutOfBounds) {
          changed = true;  // deleted or overwritten since Exists
        } else if (gr.status != Code::kOk) {
          return fail(gr.status, std::string("read: ") + CodeName(gr.status));
        } else {
          put = stream->Write(buf.data(), gr.length);
          off += gr.length;
        }
      }
      if (changed) {
        stream->Abort();
        continue;
      }
      if (put.ok()) put = stream->Finish();
    } else {
      std::vector<std::byte> buf;
      try {
        buf.resize(e.size);
      } catch (const std::bad_alloc&) {
        return fail(Code::kNoMemory, "no memory for a copy of " + std::to_string(e.size) + " bytes");
      }
      // One read: consistent even unpinned (the server reads one version).
      GetEntry g{from, buf.data(), buf.size(), 0, 0, pinned ? e.version : 0};
      auto r = engine.BatchGet({&g, 1});
      if (!r.outcome) return r.outcome;
      const GetResult& gr = r.entries[0];
      if (gr.status == Code::kNotFound || gr.status == Code::kBufferTooSmall) continue;
      if (gr.status != Code::kOk) return fail(gr.status, std::string("read: ") + CodeName(gr.status));
      PutEntry p{to, buf.data(), static_cast<size_t>(gr.length)};
      auto w = engine.BatchPut({&p, 1});
      put = !w.outcome ? w.outcome
                       : w.entries[0] == Code::kOk
                             ? Outcome{}
                             : fail(w.entries[0], std::string("write: ") + CodeName(w.entries[0]));
    }
    if (!put) return put;
    auto d = engine.Delete({&from, 1});
    if (!d.outcome) return d.outcome;
    if (d.entries[0] != Code::kOk && d.entries[0] != Code::kNotFound)
      return fail(d.entries[0], std::string("copied, but deleting the old key failed: ") +
                                    CodeName(d.entries[0]));
    return {};
  }
  return fail(Code::kBusy, "the value changed during the copy " + std::to_string(kTries) +
                               " times; try again");
}

}  // namespace

Outcome Engine::Rename(std::string_view from, std::string_view to) {
  if (auto o = OnPool(*impl_, "Rename"); !o) return o;
  if (auto o = CheckNamedKey(from, "Rename: from"); !o) return o;
  if (auto o = CheckNamedKey(to, "Rename: to"); !o) return o;
  const std::string missing = "Rename: " + std::string(from) + ": no such key";
  if (from == to) {
    auto r = Exists({&from, 1});
    if (!r.outcome) return r.outcome;
    if (r.entries[0].status == Code::kNotFound) return {Code::kNotFound, missing};
    if (r.entries[0].status != Code::kOk)
      return {r.entries[0].status, "Rename: " + std::string(CodeName(r.entries[0].status))};
    return {};
  }
  const size_t server = RouteKey(from);
  if (server == RouteKey(to)) {
    auto c = MainConn(*impl_, server);
    if (!c) return ServerError(*impl_, server, "Rename", c.error());
    if ((*c)->attach_info().features & proto::kFeatureRename) {
      auto r = (*c)->Rename(std::string(from), std::string(to), impl_->options.timeout);
      if (!r && r.error() != client::make_status_error(proto::StatusCode::kUnsupported))
        return ServerError(*impl_, server, "Rename", r.error());
      if (r && *r == proto::StatusCode::kNotFound) return {Code::kNotFound, missing};
      if (r && *r != proto::StatusCode::kUnsupported) {
        if (*r == proto::StatusCode::kOk) return {};
        return {FromStatus(*r), "Rename: server " + impl_->hrw.server(server) + ": " +
                                    proto::StatusName(*r)};
      }
      // Unsupported for this entry: copied below.
    }
  }
  return CopyRename(*this, *impl_, from, to);
}

struct PutStream::Impl {
  // Destroyed in reverse: the writer (aborting an unfinished stream) first.
  std::shared_ptr<Engine::Impl> engine;
  ConnPtr conn;
  std::unique_ptr<client::StreamWriter> writer;
  std::string what;  // "PutStream KEY on server ADDRESS", for messages
};

PutStream::PutStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PutStream::PutStream(PutStream&&) noexcept = default;
PutStream& PutStream::operator=(PutStream&&) noexcept = default;
PutStream::~PutStream() = default;

Expected<PutStream> Engine::OpenPutStream(std::string_view key, size_t window) {
  if (auto o = OnPool(*impl_, "OpenPutStream"); !o) return o;
  if (auto o = CheckNamedKey(key, "OpenPutStream"); !o) return o;
  if (window == 0) return Outcome{Code::kInvalidArgument, "OpenPutStream: window must be 1 byte or more"};
  const size_t server = RouteKey(key);
  auto c = MainConn(*impl_, server);
  if (!c) return ServerError(*impl_, server, "OpenPutStream", c.error());
  if (!((*c)->attach_info().features & proto::kFeatureOpenStream))
    return ServerError(*impl_, server, "OpenPutStream",
                       client::make_status_error(proto::StatusCode::kUnsupported));
  auto w = (*c)->OpenStream(std::string(key), window, impl_->options.timeout);
  if (!w) return ServerError(*impl_, server, "OpenPutStream", w.error());
  auto impl = std::make_unique<PutStream::Impl>();
  impl->engine = impl_;
  impl->conn = *c;
  impl->writer = std::move(*w);
  impl->what = "PutStream " + std::string(key) + " on server " + impl_->hrw.server(server);
  return PutStream(std::move(impl));
}

Outcome PutStream::Write(const void* data, size_t size) {
  if (!impl_) return {Code::kInvalidArgument, "PutStream::Write: no stream (moved from)"};
  if (auto o = OnPool(*impl_->engine, "PutStream::Write"); !o) return o;
  if (size > 0 && data == nullptr)
    return {Code::kInvalidArgument, "PutStream::Write: null data"};
  // Registered CUDA device memory: copied to host memory first, as the
  // batch calls stage it.
  std::unique_ptr<std::byte[]> staged;
  if (size > 0) {
    if (auto reg = impl_->engine->registry->Find(data, size); reg && reg->is_device()) {
      staged = std::make_unique_for_overwrite<std::byte[]>(size);
      std::string why;
      if (!common::Cuda::Process().Copy(staged.get(), data, size, &why))
        return {Code::kInternal, impl_->what + ": copying out of CUDA device memory: " + why};
      data = staged.get();
    }
  }
  if (auto s = impl_->writer->Write(data, size); !s) {
    if (s.error() == client::errc::bad_argument)
      return {Code::kInvalidArgument, impl_->what + ": already finished or aborted"};
    return {client::CodeFromError(s.error()), impl_->what + ": " + s.error().message()};
  }
  return {};
}

Outcome PutStream::Finish() {
  if (!impl_) return {Code::kInvalidArgument, "PutStream::Finish: no stream (moved from)"};
  if (auto o = OnPool(*impl_->engine, "PutStream::Finish"); !o) return o;
  const bool empty = impl_->writer->written() == 0;
  auto r = impl_->writer->Finish();
  if (!r) {
    if (r.error() == client::errc::bad_argument)
      return {Code::kInvalidArgument,
              impl_->what + (empty ? ": a value is 1 byte or more, and none was written"
                                   : ": already finished or aborted")};
    return {client::CodeFromError(r.error()), impl_->what + ": " + r.error().message()};
  }
  if (*r == proto::StatusCode::kOk) return {};
  return {FromStatus(*r), impl_->what + ": " + proto::StatusName(*r)};
}

void PutStream::Abort() {
  if (impl_) impl_->writer->Abort();
}

uint64_t PutStream::written() const { return impl_ ? impl_->writer->written() : 0; }

}  // namespace memkv
