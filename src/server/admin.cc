#include "server/admin.h"

#include <charconv>
#include <ctime>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "http/json.h"
#include "http/router.h"
#include "http/embedded.h"
#include "server/config.h"
#include "server/dashboard.h"
#include "server/loops.h"
#include "server/metrics.h"
#include "server/server.h"
#include "store/store.h"

namespace memkv::server {
namespace json = boost::json;
using http::Awaitable;
using http::ErrorResponse;
using http::JsonResponse;
using http::Method;
using http::Request;
using http::Response;

namespace {

struct Health {
  const char* status = "healthy";
  uint64_t online = 0, offline = 0, total = 0;
};

Health HealthOf(const store::StoreStats& st) {
  Health h;
  h.total = st.drives.size();
  for (const auto& d : st.drives) (d.online ? h.online : h.offline) += 1;
  if (h.total > 0 && h.online == 0) {
    h.status = "unhealthy";
  } else if (h.offline > 0) {
    h.status = "degraded";
  }
  return h;
}

json::object DriveJson(size_t id, const store::DriveStats& d, bool resetting) {
  json::object o;
  o["id"] = id;
  o["name"] = d.name;
  o["online"] = d.online;
  o["resetting"] = resetting;
  o["generation"] = d.generation;
  o["raw_bytes"] = d.raw_bytes;
  o["usable_bytes"] = d.usable_bytes;
  o["used_bytes"] = d.used_bytes;
  return o;
}

// Prometheus text exposition (format 0.0.4).
class PromText {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(std::string_view name, std::string_view labels, uint64_t v) {
    out_ += labels.empty() ? fmt::format("{} {}\n", name, v)
                           : fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
  void Sample(std::string_view name, std::string_view labels, double v) {
    out_ += labels.empty() ? fmt::format("{} {}\n", name, v)
                           : fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// A label value with \, " and newlines escaped.
std::string LabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

ResetFlags::ResetFlags(size_t drives)
    : flags_(new std::atomic<bool>[std::max<size_t>(drives, 1)]) {
  for (size_t i = 0; i < std::max<size_t>(drives, 1); ++i) flags_[i] = false;
}

std::optional<ResetFlags::Claim> ResetFlags::TryClaim(size_t drive) {
  if (flags_[drive].exchange(true)) return std::nullopt;
  return Claim(flags_[drive]);
}

AdminOptions ToAdminOptions(const Config& cfg) {
  AdminOptions o;
  const HostPort admin = AdminAddress(cfg);
  o.host = admin.host;
  o.port = admin.port;
  o.tls_cert = cfg.network.tls_cert;
  o.tls_key = cfg.network.tls_key;
  o.auth_key = cfg.network.auth_key;
  o.shm_rail = !cfg.network.unix_socket.empty();
  o.allowed_hosts = cfg.admin.allowed_hosts;
  o.limits.max_connections = cfg.admin.max_connections;
  o.limits.header_timeout = std::chrono::seconds(cfg.admin.header_timeout_seconds);
  o.limits.header_bytes = cfg.admin.max_header_size;
  o.limits.body_bytes = cfg.admin.max_body_size;
  return o;
}

class AdminServer::Impl {
 public:
  Impl(Loops& l, store::Store& st, Server& sv, AdminOptions o)
      : loops(l),
        store(st),
        server(sv),
        opt(std::move(o)),
        started(std::chrono::steady_clock::now()),
        resetting(st.drive_count()) {
    AddRoutes();
    std::vector<boost::asio::io_context*> ctxs;
    for (size_t i = 0; i < loops.size(); ++i) ctxs.push_back(&loops.loop(i));
    http::Options ho;
    ho.host = opt.host;
    ho.port = opt.port;
    ho.tls_cert = opt.tls_cert;
    ho.tls_key = opt.tls_key;
    ho.limits = opt.limits;
    http = std::make_unique<http::Server>(std::move(ctxs), router, ho);
  }

  // Constant after construction.
  Loops& loops;
  store::Store& store;
  Server& server;
  const AdminOptions opt;
  const std::chrono::steady_clock::time_point started;
  http::Router router;
  std::unique_ptr<http::Server> http;

  std::atomic<bool> draining{false};
  ResetFlags resetting;

  void AddRoutes();
  Response HealthResponse();
  Response ReadyResponse();
  Response StatusResponse();
  Response MetricsResponse();
  Response DrivesResponse();
  Response SessionsResponse();
  Awaitable<Response> Reset(const Request& req);
  json::array DrivesJson(const store::StoreStats& st);
};

void AdminServer::Impl::AddRoutes() {
  // Every route, the files included: a page on a foreign name must not even
  // read (DNS rebinding), and no page of another origin may reset a drive.
  http::HostPolicy policy;
  policy.allowed_hosts = opt.allowed_hosts;
  policy.allowed_hosts_setting = "admin.allowed_hosts";
  router.SetHostPolicy(std::move(policy));
  if (!opt.auth_key.empty()) router.RequireBearer(opt.auth_key);
  auto sync = [this](Response (Impl::*fn)()) {
    return [this, fn](const Request&) -> Awaitable<Response> { co_return (this->*fn)(); };
  };
  router.Add(Method::kGet, "/v1/health", sync(&Impl::HealthResponse));
  router.Add(Method::kGet, "/v1/ready", sync(&Impl::ReadyResponse));
  router.Add(Method::kGet, "/v1/status", sync(&Impl::StatusResponse));
  router.Add(Method::kGet, "/v1/metrics", sync(&Impl::MetricsResponse));
  router.Add(Method::kGet, "/metrics", sync(&Impl::MetricsResponse));
  router.Add(Method::kGet, "/v1/drives", sync(&Impl::DrivesResponse));
  router.Add(Method::kGet, "/v1/sessions", sync(&Impl::SessionsResponse));
  router.Add(Method::kPost, "/v1/drives/{id}/reset",
             [this](const Request& req) -> Awaitable<Response> { co_return co_await Reset(req); });
  // The docs site first: "/" below serves only the dashboard's own files.
  router.AddStatic("/docs/", http::FilesOf(http::DocsSite()));
  router.AddStatic("/", http::FilesOf(DashboardFiles()));
}

json::array AdminServer::Impl::DrivesJson(const store::StoreStats& st) {
  json::array drives;
  for (size_t i = 0; i < st.drives.size(); ++i)
    drives.push_back(DriveJson(i, st.drives[i], resetting.resetting(i)));
  return drives;
}

Response AdminServer::Impl::HealthResponse() {
  const Health h = HealthOf(store.stats());
  json::object o;
  o["status"] = h.status;
  o["rdma_active"] = server.stats().rdma_active;
  o["drives_online"] = h.online;
  o["drives_offline"] = h.offline;
  o["drives_total"] = h.total;
  return JsonResponse(std::string_view(h.status) == "unhealthy" ? 503 : 200, o);
}

Response AdminServer::Impl::ReadyResponse() {
  const Health h = HealthOf(store.stats());
  json::object o;
  if (draining.load()) {
    o["ready"] = false;
    o["reason"] = "shutting down";
    return JsonResponse(503, o);
  }
  if (std::string_view(h.status) == "unhealthy") {
    o["ready"] = false;
    o["reason"] = "no drive is online";
    return JsonResponse(503, o);
  }
  o["ready"] = true;
  return JsonResponse(200, o);
}

Response AdminServer::Impl::StatusResponse() {
  const store::StoreStats st = store.stats();
  const ServerStats ss = server.stats();
  const Health h = HealthOf(st);
  json::object o;
  o["version"] = opt.version;
  o["status"] = h.status;
  o["uptime_seconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  json::object memory;
  memory["capacity_bytes"] = st.memory_capacity;
  memory["used_bytes"] = st.memory_used;
  o["memory"] = std::move(memory);
  json::object storage;
  storage["mode"] = ModeName(store.mode());
  uint64_t raw = 0, usable = 0, used = 0;
  for (const auto& d : st.drives) {
    raw += d.raw_bytes;
    usable += d.usable_bytes;
    used += d.used_bytes;
  }
  if (store.mode() == store::Mode::kMemory) {
    // No drives: the values live in the memory pool, which is the storage.
    raw = usable = st.memory_capacity;
    used = st.memory_used;
  }
  storage["raw_bytes_total"] = raw;
  storage["usable_bytes_total"] = usable;
  storage["used_bytes_total"] = used;
  storage["keys"] = st.keys;
  storage["drives"] = DrivesJson(st);
  o["storage"] = std::move(storage);
  json::object sessions;
  sessions["active"] = ss.sessions;
  sessions["max"] = server.options().limits.max_sessions;
  o["sessions"] = std::move(sessions);
  json::object conns;
  conns["open"] = ss.connections_open;
  conns["total"] = ss.connections_total;
  o["connections"] = std::move(conns);
  json::object rails;
  rails["tcp"] = true;
  rails["shm"] = opt.shm_rail;
  rails["rdma"] = ss.rdma_active;
  o["rails"] = std::move(rails);
  // Value bytes per rail, of the entries that succeeded.
  json::object rail_bytes;
  for (size_t i = 0; i < kRailCount; ++i) {
    const Metrics::RailCounters c = server.metrics().GetRail(static_cast<Rail>(i));
    json::object b;
    b["to_clients"] = c.to_clients;
    b["from_clients"] = c.from_clients;
    rail_bytes[RailName(static_cast<Rail>(i))] = std::move(b);
  }
  o["rail_bytes"] = std::move(rail_bytes);
  if (ss.rdma_active) {
    json::object r;
    r["provider"] = ss.rdma_provider;
    r["peers"] = ss.rdma_peers;
    r["bytes_written"] = ss.rdma_bytes_written;
    r["bytes_read"] = ss.rdma_bytes_read;
    o["rdma"] = std::move(r);
  }
  json::object ops;
  ops["requests"] = ss.requests;
  ops["protocol_errors"] = ss.protocol_errors;
  // Lookups as clients make them: the keys of BatchRead and Exists entries,
  // and those not found (the store's own counters are in /v1/metrics).
  const Metrics::OpCounters reads = server.metrics().Get(Op::kGet);
  const Metrics::OpCounters exists = server.metrics().Get(Op::kExists);
  ops["puts"] = st.puts;
  ops["gets"] = reads.entries + exists.entries;
  ops["deletes"] = st.deletes;
  ops["misses"] = reads.entry_misses + exists.entry_misses;
  ops["cache_hits"] = st.cache_hits;
  ops["evictions"] = st.evictions;
  ops["checksum_errors"] = st.checksum_errors;
  o["operations"] = std::move(ops);
  return JsonResponse(200, o);
}

Response AdminServer::Impl::DrivesResponse() {
  const store::StoreStats st = store.stats();
  json::object o;
  o["mode"] = ModeName(store.mode());
  o["drives"] = DrivesJson(st);
  return JsonResponse(200, o);
}

Response AdminServer::Impl::SessionsResponse() {
  json::array list;
  for (const SessionInfo& s : server.sessions().List()) {
    json::object o;
    o["id"] = s.id;
    o["peer"] = s.peer;
    o["host_id"] = s.host_id;
    o["rail"] = s.rail;
    o["attached_unix"] = s.attached_unix;
    o["regions"] = s.regions;
    o["requests"] = s.requests;
    list.push_back(std::move(o));
  }
  json::object o;
  o["count"] = list.size();
  o["max"] = server.options().limits.max_sessions;
  o["sessions"] = std::move(list);
  return JsonResponse(200, o);
}

Awaitable<Response> AdminServer::Impl::Reset(const Request& req) {
  const std::string_view id_text = req.Param("id");
  size_t id = 0;
  const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || end != id_text.data() + id_text.size()) {
    json::object extra;
    extra["id"] = id_text;
    co_return ErrorResponse(400, "a drive id is a number (see GET /v1/drives)", extra);
  }
  if (id >= store.drive_count()) {
    json::object extra;
    extra["id"] = id;
    extra["drives_total"] = store.drive_count();
    co_return ErrorResponse(
        404, fmt::format("no drive {}: this server has {} drives", id, store.drive_count()), extra);
  }
  bool secure = false;
  if (req.HasQuery("secure")) {
    const std::string_view s = req.Query("secure");
    if (s == "true" || s == "1" || s.empty()) {
      secure = true;
    } else if (s != "false" && s != "0") {
      co_return ErrorResponse(400, "secure: expected true or false");
    }
  }
  const std::optional<ResetFlags::Claim> claim = resetting.TryClaim(id);
  if (!claim) {
    json::object extra;
    extra["id"] = id;
    co_return ErrorResponse(409, fmt::format("drive {} is being reset already", id), extra);
  }
  spdlog::warn("admin API ({}): resetting drive {}{}", req.peer, id,
               secure ? " (zero-filling its data region)" : "");
  const auto t0 = std::chrono::steady_clock::now();
  const Status st = co_await store.ResetDriveOnline(id, secure);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  const store::StoreStats after = store.stats();
  if (!st) {
    json::object extra;
    extra["id"] = id;
    extra["drive"] = DriveJson(id, after.drives[id], false);
    co_return ErrorResponse(500, fmt::format("resetting drive {}: {}", id, st.error().message()),
                            extra);
  }
  json::object o;
  o["reset"] = true;
  o["secure"] = secure;
  o["duration_ms"] = ms;
  o["drive"] = DriveJson(id, after.drives[id], false);
  co_return JsonResponse(200, o);
}

Response AdminServer::Impl::MetricsResponse() {
  const store::StoreStats st = store.stats();
  const ServerStats ss = server.stats();
  const Metrics& m = server.metrics();
  PromText p;

  std::array<Metrics::OpCounters, kOpCount> ops;
  for (size_t i = 0; i < kOpCount; ++i) ops[i] = m.Get(static_cast<Op>(i));
  auto per_op = [&](std::string_view name, std::string_view help,
                    uint64_t Metrics::OpCounters::*field) {
    p.Family(name, "counter", help);
    for (size_t i = 0; i < kOpCount; ++i)
      p.Sample(name, fmt::format("op=\"{}\"", OpName(static_cast<Op>(i))), ops[i].*field);
  };
  per_op("memkv_requests_total", "Requests handled, by operation.", &Metrics::OpCounters::requests);
  per_op("memkv_request_bytes_total", "Request payload bytes received, by operation.",
         &Metrics::OpCounters::request_bytes);
  per_op("memkv_entries_total", "Batch entries handled, by operation.",
         &Metrics::OpCounters::entries);
  per_op("memkv_entry_errors_total",
         "Batch entries answered with an error (not counting misses), by operation.",
         &Metrics::OpCounters::entry_errors);
  per_op("memkv_entry_misses_total", "Batch entries answered not found, by operation.",
         &Metrics::OpCounters::entry_misses);
  per_op("memkv_value_bytes_total", "Value bytes written (put) or read (get), by operation.",
         &Metrics::OpCounters::value_bytes);

  p.Family("memkv_request_duration_seconds", "histogram",
           "Time from a request's arrival to its last reply, by operation.");
  for (size_t i = 0; i < kOpCount; ++i) {
    const std::string op = OpName(static_cast<Op>(i));
    uint64_t cumulative = 0;
    for (size_t b = 0; b < Metrics::kBuckets.size(); ++b) {
      cumulative += ops[i].buckets[b];
      p.Sample("memkv_request_duration_seconds_bucket",
               fmt::format("op=\"{}\",le=\"{}\"", op, Metrics::kBuckets[b]), cumulative);
    }
    cumulative += ops[i].buckets.back();
    p.Sample("memkv_request_duration_seconds_bucket", fmt::format("op=\"{}\",le=\"+Inf\"", op),
             cumulative);
    p.Sample("memkv_request_duration_seconds_sum", fmt::format("op=\"{}\"", op),
             static_cast<double>(ops[i].latency_ns_sum) * 1e-9);
    p.Sample("memkv_request_duration_seconds_count", fmt::format("op=\"{}\"", op), cumulative);
  }

  p.Family("memkv_protocol_errors_total", "counter",
           "Connections closed for a malformed or unauthorized frame.");
  p.Sample("memkv_protocol_errors_total", "", ss.protocol_errors);
  p.Family("memkv_connections_open", "gauge", "Control-plane connections open.");
  p.Sample("memkv_connections_open", "", ss.connections_open);
  p.Family("memkv_connections_total", "counter", "Control-plane connections accepted.");
  p.Sample("memkv_connections_total", "", ss.connections_total);
  p.Family("memkv_rdma_bytes_total", "counter",
           "Bytes moved over the rdma rail: written into clients' memory (reads), read from it (writes).");
  p.Sample("memkv_rdma_bytes_total", "direction=\"written\"", ss.rdma_bytes_written);
  p.Sample("memkv_rdma_bytes_total", "direction=\"read\"", ss.rdma_bytes_read);
  p.Family("memkv_rail_bytes_total", "counter",
           "Value bytes moved per rail (tcp, shm, rdma), to clients (gets) and from them (puts).");
  for (size_t i = 0; i < kRailCount; ++i) {
    const Rail r = static_cast<Rail>(i);
    const Metrics::RailCounters c = server.metrics().GetRail(r);
    p.Sample("memkv_rail_bytes_total", fmt::format("rail=\"{}\",direction=\"to_clients\"", RailName(r)),
             c.to_clients);
    p.Sample("memkv_rail_bytes_total",
             fmt::format("rail=\"{}\",direction=\"from_clients\"", RailName(r)), c.from_clients);
  }
  p.Family("memkv_rdma_peers", "gauge", "Sessions attached over the rdma rail.");
  p.Sample("memkv_rdma_peers", "", ss.rdma_peers);
  p.Family("memkv_sessions", "gauge", "Attached sessions.");
  p.Sample("memkv_sessions", "", ss.sessions);
  p.Family("memkv_sessions_max", "gauge", "limits.max_sessions.");
  p.Sample("memkv_sessions_max", "", uint64_t{server.options().limits.max_sessions});

  p.Family("memkv_store_keys", "gauge", "Keys in the store.");
  p.Sample("memkv_store_keys", "", st.keys);
  p.Family("memkv_store_operations_total", "counter", "Store operations, by kind.");
  p.Sample("memkv_store_operations_total", "op=\"put\"", st.puts);
  p.Sample("memkv_store_operations_total", "op=\"get\"", st.gets);
  p.Sample("memkv_store_operations_total", "op=\"delete\"", st.deletes);
  p.Family("memkv_store_misses_total", "counter", "Store lookups of keys it does not hold.");
  p.Sample("memkv_store_misses_total", "", st.misses);
  p.Family("memkv_store_cache_hits_total", "counter", "Reads served by the DRAM cache.");
  p.Sample("memkv_store_cache_hits_total", "", st.cache_hits);
  p.Family("memkv_store_evictions_total", "counter", "Values evicted to make room.");
  p.Sample("memkv_store_evictions_total", "", st.evictions);
  p.Family("memkv_store_checksum_errors_total", "counter",
           "Pages that failed their checksum on a read.");
  p.Sample("memkv_store_checksum_errors_total", "", st.checksum_errors);
  p.Family("memkv_store_journal_records_total", "counter", "Journal records written.");
  p.Sample("memkv_store_journal_records_total", "", st.journal_records);
  p.Family("memkv_store_checkpoints_total", "counter", "Checkpoints written.");
  p.Sample("memkv_store_checkpoints_total", "", st.checkpoints);
  p.Family("memkv_memory_used_bytes", "gauge", "DRAM pool bytes in use.");
  p.Sample("memkv_memory_used_bytes", "", st.memory_used);
  p.Family("memkv_memory_capacity_bytes", "gauge", "memory.max_size.");
  p.Sample("memkv_memory_capacity_bytes", "", st.memory_capacity);

  auto per_drive = [&](std::string_view name, std::string_view type, std::string_view help,
                       auto value) {
    p.Family(name, type, help);
    for (size_t i = 0; i < st.drives.size(); ++i)
      p.Sample(name, fmt::format("drive=\"{}\",media=\"{}\"", i, LabelValue(st.drives[i].name)),
               uint64_t{value(st.drives[i])});
  };
  per_drive("memkv_drive_online", "gauge", "1 when the drive is in service.",
            [](const store::DriveStats& d) { return uint64_t{d.online}; });
  per_drive("memkv_drive_generation", "gauge", "The drive's generation (bumped by each reset).",
            [](const store::DriveStats& d) { return d.generation; });
  per_drive("memkv_drive_raw_bytes", "gauge", "The drive's size.",
            [](const store::DriveStats& d) { return d.raw_bytes; });
  per_drive("memkv_drive_usable_bytes", "gauge", "The drive's data region.",
            [](const store::DriveStats& d) { return d.usable_bytes; });
  per_drive("memkv_drive_used_bytes", "gauge", "Bytes of the data region holding values.",
            [](const store::DriveStats& d) { return d.used_bytes; });

  const http::Stats hs = http->stats();
  p.Family("memkv_admin_requests_total", "counter", "Admin HTTP requests.");
  p.Sample("memkv_admin_requests_total", "", hs.requests);
  p.Family("memkv_admin_connections_open", "gauge", "Admin HTTP connections open.");
  p.Sample("memkv_admin_connections_open", "", hs.connections_open);
  p.Family("memkv_admin_connections_refused_total", "counter",
           "Admin HTTP connections refused over the connection cap (all being answered).");
  p.Sample("memkv_admin_connections_refused_total", "", hs.connections_refused);
  p.Family("memkv_admin_connections_evicted_total", "counter",
           "Admin HTTP connections closed while waiting for a request, to admit a new one.");
  p.Sample("memkv_admin_connections_evicted_total", "", hs.connections_evicted);
  p.Family("memkv_uptime_seconds", "gauge", "Seconds since the admin API started.");
  p.Sample("memkv_uptime_seconds", "",
           static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()));

  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = p.Take();
  return r;
}

AdminServer::AdminServer(Loops& loops, store::Store& store, Server& server, AdminOptions options)
    : impl_(std::make_unique<Impl>(loops, store, server, std::move(options))) {}

AdminServer::~AdminServer() = default;

Status AdminServer::Start() { return impl_->http->Start(); }
void AdminServer::SetDraining() { impl_->draining.store(true); }
void AdminServer::Stop() {
  impl_->draining.store(true);
  impl_->http->Stop();
}
uint16_t AdminServer::port() const { return impl_->http->port(); }
bool AdminServer::tls() const { return impl_->http->tls(); }

}  // namespace memkv::server
