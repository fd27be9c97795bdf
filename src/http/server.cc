#include "http/server.h"

#include <strings.h>
#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "http/json.h"
#include "http/router.h"
#include "http/task_group.h"

namespace memkv::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

// One connection's stream: TCP, or TLS over TCP once the handshake begins.
// Shared by its session and by Stop, which closes it on the connection's
// loop.
struct Conn {
  explicit Conn(tcp::socket s) : plain(std::move(s)) {}
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }
  asio::any_io_executor executor() { return lowest().get_executor(); }
  std::string peer;
  // Since when (steady clock ticks) the connection has been waiting for a
  // whole request (its TLS handshake, headers or body; from its accept for
  // the first request, from its last response after that); 0 while a request
  // it sent is handled and answered. Written on its loop, read by the
  // acceptor to pick a connection to evict.
  std::atomic<int64_t> waiting_since{Now()};
  // Chosen to make room for a new connection: it ends at its next wait.
  std::atomic<bool> evicted{false};

  static int64_t Now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }
};

bool IsParseError(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::need_more;
}

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
 public:
  Impl(std::vector<asio::io_context*> l, const Router& r, Options o)
      : loops(std::move(l)), router(r), opt(std::move(o)), tasks("http " + opt.host) {}

  // Constant after Start.
  const std::vector<asio::io_context*> loops;
  const Router& router;
  const Options opt;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::ssl::context> tls;
  std::string busy_reply;  // the whole 503 sent to a connection over the cap
  uint16_t port = 0;

  TaskGroup tasks;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> next_loop{0};
  std::atomic<uint64_t> open{0}, total{0}, refused{0}, requests{0}, timeouts{0}, rejected{0},
      evicted{0};
  // Connections chosen for eviction whose sessions have not ended yet: they
  // no longer count against the cap.
  std::atomic<uint64_t> evicting{0};

  std::mutex mu;
  std::vector<std::weak_ptr<Conn>> conns;  // guarded by mu

  Status LoadTls();
  bool EvictLongestWaiting();
  Response TooLarge() const {
    return ErrorResponse(
        413, "request body larger than " + std::to_string(opt.limits.body_bytes) + " bytes");
  }
  Awaitable<void> Accept(std::shared_ptr<Impl> self);
  Awaitable<void> Session(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c);
  template <class Stream>
  Awaitable<void> Serve(Stream& stream, Conn& c);
  template <class Stream>
  Awaitable<bool> Write(Stream& stream, Conn& c, Response res, unsigned version, bool keep,
                        bool head);
};

Status Server::Impl::LoadTls() {
  tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  tls->use_certificate_chain_file(opt.tls_cert, ec);
  if (ec) {
    spdlog::error("network.tls_cert: {}: cannot load the certificate chain: {}", opt.tls_cert,
                  ec.message());
    return ec;
  }
  tls->use_private_key_file(opt.tls_key, asio::ssl::context::pem, ec);
  if (ec) {
    spdlog::error("network.tls_key: {}: cannot load the private key: {}", opt.tls_key,
                  ec.message());
    return ec;
  }
  return {};
}

// A flood of connections that never send a whole request must not keep out
// the next one (a liveness probe): the connection that has waited longest
// for its request is closed instead. One that is being answered is left
// alone; if every connection is, there is no room.
bool Server::Impl::EvictLongestWaiting() {
  std::shared_ptr<Conn> victim;
  // A connection ending meanwhile marks itself evicted: then pick again.
  for (int tries = 0; tries < 4 && !victim; ++tries) {
    int64_t oldest = 0;
    {
      std::lock_guard lock(mu);
      for (const auto& w : conns) {
        auto c = w.lock();
        if (!c || c->evicted.load()) continue;
        const int64_t since = c->waiting_since.load();
        if (since != 0 && (!victim || since < oldest)) {
          victim = std::move(c);
          oldest = since;
        }
      }
    }
    if (!victim) return false;
    // Counted before it is marked, so its session's end, which may come at
    // once, never takes the count below zero.
    evicting.fetch_add(1);
    if (victim->evicted.exchange(true)) {
      evicting.fetch_sub(1);
      victim.reset();
    }
  }
  if (!victim) return false;
  evicted.fetch_add(1);
  const auto ex = victim->executor();
  asio::post(ex, [c = std::move(victim)] {
    // On its loop now: if its request arrived meanwhile, it is answered and
    // the session ends after the response (it sees `evicted`).
    if (c->waiting_since.load() != 0) c->lowest().close();
  });
  return true;
}

Awaitable<void> Server::Impl::Accept(std::shared_ptr<Impl> self) {
  asio::steady_timer backoff(acceptor->get_executor());
  constexpr std::chrono::milliseconds kFirstBackoff{10}, kMaxBackoff{1000};
  std::chrono::milliseconds delay{0};
  for (;;) {
    asio::io_context& loop = *loops[next_loop.fetch_add(1) % loops.size()];
    auto [ec, accepted] = co_await acceptor->async_accept(loop, kTuple);
    if (stopping.load()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors (EMFILE, ENFILE) or memory, most likely: the
      // connection stays queued and accepting again at once fails the same
      // way, so wait, longer each time (up to a second). A descriptor held
      // by an admin connection that is only waiting is worth more to the
      // queued one (a health probe, perhaps).
      if (delay.count() == 0) spdlog::warn("admin http: accept: {}; backing off", ec.message());
      if (ec == asio::error::no_descriptors ||
          ec == boost::system::errc::too_many_files_open_in_system)
        EvictLongestWaiting();
      delay = delay.count() == 0 ? kFirstBackoff : std::min(delay * 2, kMaxBackoff);
      backoff.expires_after(delay);
      co_await backoff.async_wait(kTuple);
      continue;
    }
    delay = std::chrono::milliseconds(0);
    tcp::socket sock(std::move(accepted));
    boost::system::error_code ignored;
    if (open.load() - evicting.load() >= opt.limits.max_connections && !EvictLongestWaiting()) {
      // Full of connections being answered: a short answer, best effort,
      // without waiting.
      refused.fetch_add(1);
      if (!tls) {
        sock.non_blocking(true, ignored);
        sock.write_some(asio::buffer(busy_reply), ignored);
      }
      sock.close(ignored);
      continue;
    }
    sock.set_option(tcp::no_delay(true), ignored);
    auto conn = std::make_shared<Conn>(std::move(sock));
    const auto ep = conn->plain->socket().remote_endpoint(ignored);
    conn->peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    {
      std::lock_guard lock(mu);
      std::erase_if(conns, [](const std::weak_ptr<Conn>& w) { return w.expired(); });
      conns.push_back(conn);
    }
    open.fetch_add(1);
    total.fetch_add(1);
    tasks.Spawn(conn->executor(), Session(self, conn));
  }
}

Awaitable<void> Server::Impl::Session(std::shared_ptr<Impl> self, std::shared_ptr<Conn> c) {
  // Counted down however the session ends (an exception included). Marking
  // the connection evicted as it ends keeps the acceptor from choosing it
  // afterwards (and counting an eviction that never ends); one evicted
  // before stops counting as being evicted first, so the two counts never
  // admit more than the cap.
  struct OpenCount {
    Impl& s;
    Conn& c;
    ~OpenCount() {
      if (c.evicted.exchange(true)) s.evicting.fetch_sub(1);
      s.open.fetch_sub(1);
    }
  } count{*this, *c};
  boost::system::error_code ignored;
  if (!tls) {
    co_await Serve(*c->plain, *c);
    c->plain->socket().shutdown(tcp::socket::shutdown_send, ignored);
    c->plain->close();
    co_return;
  }
  c->tls.emplace(std::move(*c->plain), *tls);
  c->plain.reset();
  c->lowest().expires_after(opt.limits.header_timeout);
  auto [ec] = co_await c->tls->async_handshake(asio::ssl::stream_base::server, kTuple);
  if (ec) {
    if (ec == beast::error::timeout) timeouts.fetch_add(1);
    spdlog::debug("admin http {}: TLS handshake: {}", c->peer, ec.message());
    c->lowest().close();
    co_return;
  }
  co_await Serve(*c->tls, *c);
  c->lowest().expires_after(std::chrono::seconds(2));
  co_await c->tls->async_shutdown(kTuple);
  c->lowest().close();
}

template <class Stream>
Awaitable<bool> Server::Impl::Write(Stream& stream, Conn& c, Response res, unsigned version,
                                    bool keep, bool head) {
  bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), version};
  out.set(bhttp::field::server, opt.server_name);
  out.set(bhttp::field::content_type, res.content_type);
  for (const auto& [name, value] : res.headers) out.set(name, value);
  out.keep_alive(keep);
  if (head) {
    out.content_length(res.body.size());  // what GET would send; no body
  } else {
    out.body() = std::move(res.body);
    out.prepare_payload();
  }
  c.lowest().expires_after(opt.limits.write_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream, out, kTuple);
  if (ec == beast::error::timeout) timeouts.fetch_add(1);
  co_return !ec;
}

template <class Stream>
Awaitable<void> Server::Impl::Serve(Stream& stream, Conn& c) {
  const Limits& lim = opt.limits;
  // Never more than a request's worth (plus one read) is buffered.
  beast::flat_buffer buffer(lim.header_bytes + lim.body_bytes + 64 * 1024);
  while (!stopping.load() && !c.evicted.load()) {
    // Waiting since its accept (for its first request; sessions start in
    // whatever order the loops run them) or since its last response.
    if (c.waiting_since.load() == 0) c.waiting_since.store(Conn::Now());
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(std::min<size_t>(lim.header_bytes, UINT32_MAX)));
    parser.body_limit(lim.body_bytes);
    c.lowest().expires_after(lim.header_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    if (ec) {
      if (ec == beast::error::timeout) {
        timeouts.fetch_add(1);
      } else if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        rejected.fetch_add(1);
        co_await Write(stream, c, ErrorResponse(431, "request header fields too large"), 11, false,
                       false);
      } else if (ec == bhttp::error::body_limit) {
        // The parser checks Content-Length against the limit with the headers.
        rejected.fetch_add(1);
        co_await Write(stream, c, TooLarge(), 11, false, false);
      } else if (IsParseError(ec)) {
        rejected.fetch_add(1);
        co_await Write(stream, c, ErrorResponse(400, "malformed request: " + ec.message()), 11,
                       false, false);
      }
      co_return;
    }
    auto& head = parser.get();
    const unsigned version = head.version();
    if (const auto len = parser.content_length(); len && *len > lim.body_bytes) {
      rejected.fetch_add(1);
      co_await Write(stream, c, TooLarge(), version, false, false);
      co_return;
    }
    if (!parser.is_done()) {
      if (EqualNoCase(head[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> go{bhttp::status::continue_, version};
        c.lowest().expires_after(lim.write_timeout);
        auto [wec, wn] = co_await bhttp::async_write(stream, go, kTuple);
        if (wec) co_return;
      }
      c.lowest().expires_after(lim.body_timeout);
      auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      if (bec) {
        if (bec == bhttp::error::body_limit || bec == bhttp::error::buffer_overflow) {
          rejected.fetch_add(1);
          co_await Write(stream, c, TooLarge(), version, false, false);
        } else if (bec == beast::error::timeout) {
          timeouts.fetch_add(1);
        } else if (IsParseError(bec)) {
          rejected.fetch_add(1);
          co_await Write(stream, c, ErrorResponse(400, "malformed body: " + bec.message()), version,
                         false, false);
        }
        co_return;
      }
    }
    c.lowest().expires_never();  // a handler may take its time (a secure reset)
    c.waiting_since.store(0);    // busy: not to be evicted while answered
    requests.fetch_add(1, std::memory_order_relaxed);
    auto& msg = parser.get();
    Request req;
    req.method = ParseMethod(std::string_view(msg.method_string()));
    req.target = std::string(msg.target());
    for (const auto& f : msg)
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.peer = c.peer;
    req.tls = tls != nullptr;
    const bool keep = msg.keep_alive();
    Response res = co_await router.Handle(req);
    const bool again = keep && !stopping.load() && !c.evicted.load();
    if (!co_await Write(stream, c, std::move(res), version, again, req.method == Method::kHead))
      co_return;
    if (!again) co_return;
  }
}

Server::Server(std::vector<asio::io_context*> loops, const Router& router, Options options)
    : impl_(std::make_shared<Impl>(std::move(loops), router, std::move(options))) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  Impl& s = *impl_;
  if (s.loops.empty()) return make_error_code(boost::system::errc::invalid_argument);
  if (!s.opt.tls_cert.empty() || !s.opt.tls_key.empty()) MEMKV_TRY(s.LoadTls());
  {
    bhttp::response<bhttp::string_body> busy{bhttp::status::service_unavailable, 11};
    Response r = ErrorResponse(503, "too many admin connections; try again");
    busy.set(bhttp::field::server, s.opt.server_name);
    busy.set(bhttp::field::content_type, r.content_type);
    busy.set(bhttp::field::retry_after, "1");
    busy.keep_alive(false);
    busy.body() = r.body;
    busy.prepare_payload();
    std::ostringstream os;
    os << busy;
    s.busy_reply = os.str();
  }
  boost::system::error_code ec;
  const auto addr =
      asio::ip::make_address(s.opt.host == "localhost" ? "127.0.0.1" : s.opt.host, ec);
  if (ec) {
    spdlog::error("admin http: {}: not an IP address: {}", s.opt.host, ec.message());
    return ec;
  }
  const tcp::endpoint ep(addr, s.opt.port);
  auto acceptor = std::make_unique<tcp::acceptor>(*s.loops[0]);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::error(
        "admin http: cannot listen on {}: {}",
        (addr.is_v6() ? "[" + s.opt.host + "]" : s.opt.host) + ":" + std::to_string(s.opt.port),
        ec.message());
    return ec;
  }
  s.port = acceptor->local_endpoint().port();
  s.acceptor = std::move(acceptor);
  s.tasks.Spawn(s.acceptor->get_executor(), s.Accept(impl_));
  return {};
}

void Server::Stop() {
  Impl& s = *impl_;
  if (!s.acceptor || s.stopping.exchange(true)) return;
  std::promise<void> closed;
  asio::post(*s.loops[0], [&s, &closed] {
    boost::system::error_code ignored;
    s.acceptor->close(ignored);
    closed.set_value();
  });
  closed.get_future().wait();
  std::vector<std::shared_ptr<Conn>> live;
  {
    std::lock_guard lock(s.mu);
    for (auto& w : s.conns)
      if (auto c = w.lock()) live.push_back(std::move(c));
    s.conns.clear();
  }
  for (auto& c : live) {
    const auto ex = c->executor();
    asio::post(ex, [c = std::move(c)] { c->lowest().close(); });
  }
  if (!s.tasks.Wait(std::chrono::steady_clock::now() + s.opt.shutdown_deadline))
    spdlog::warn("admin http: {} tasks still running after the shutdown deadline", s.tasks.live());
}

uint16_t Server::port() const { return impl_->port; }
bool Server::tls() const { return impl_->tls != nullptr; }

Stats Server::stats() const {
  const Impl& s = *impl_;
  Stats st;
  st.connections_open = s.open.load();
  st.connections_total = s.total.load();
  st.connections_refused = s.refused.load();
  st.requests = s.requests.load();
  st.timeouts = s.timeouts.load();
  st.rejected = s.rejected.load();
  st.connections_evicted = s.evicted.load();
  return st;
}

}  // namespace memkv::http
