#include "http/client.h"

#include <optional>

#include <openssl/ssl.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace memkv::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr size_t kMaxResponseBytes = 64 << 20;

template <class Stream>
asio::awaitable<Result<ClientResponse>> Exchange(Stream& stream, beast::tcp_stream& lowest,
                                                 bhttp::request<bhttp::string_body>& req,
                                                 std::chrono::steady_clock::time_point deadline) {
  lowest.expires_at(deadline);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
  if (wec) co_return wec;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  if (req.method() == bhttp::verb::head) parser.skip(true);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
  if (rec) co_return rec;
  auto& res = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.content_type = std::string(res[bhttp::field::content_type]);
  for (const auto& f : res)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(res.body());
  co_return out;
}

}  // namespace

std::string Url::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" + port +
         base;
}

Result<Url> ParseUrl(std::string_view text) {
  const auto bad = make_error_code(boost::system::errc::invalid_argument);
  Url u;
  if (text.starts_with("https://")) {
    u.tls = true;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else if (text.find("://") != std::string_view::npos) {
    return bad;
  }
  const size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) {
    u.base = std::string(text.substr(slash));
    while (!u.base.empty() && u.base.back() == '/') u.base.pop_back();
  }
  size_t colon;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad;
    u.host = std::string(authority.substr(1, close - 1));
    colon = close + 1;
    if (colon >= authority.size() || authority[colon] != ':') return bad;
  } else {
    colon = authority.rfind(':');
    if (colon == std::string_view::npos) return bad;
    u.host = std::string(authority.substr(0, colon));
  }
  u.port = std::string(authority.substr(colon + 1));
  if (u.host.empty() || u.port.empty() || u.port.size() > 5 ||
      u.port.find_first_not_of("0123456789") != std::string::npos)
    return bad;
  return u;
}

Result<ClientResponse> Fetch(const Url& url, std::string_view method, std::string_view target,
                             const ClientOptions& options, std::string_view body) {
  asio::io_context ctx(1);
  std::optional<asio::ssl::context> tls_ctx;
  if (url.tls) {
    tls_ctx.emplace(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    if (options.insecure) {
      tls_ctx->set_verify_mode(asio::ssl::verify_none);
    } else {
      tls_ctx->set_verify_mode(asio::ssl::verify_peer);
      if (!options.ca_file.empty()) {
        tls_ctx->load_verify_file(options.ca_file, ec);
      } else {
        tls_ctx->set_default_verify_paths(ec);
      }
      if (ec) return ec;
    }
  }
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(url.base + std::string(target));
  req.version(11);
  // An IPv6 host goes in brackets, as in a URL ("[::1]:9901"); bare, its
  // colons make a Host no server can read.
  const bool v6 = url.host.find(':') != std::string::npos;
  req.set(bhttp::field::host, (v6 ? "[" + url.host + "]" : url.host) + ":" + url.port);
  req.set(bhttp::field::user_agent, "memkv");
  req.set(bhttp::field::connection, "close");
  if (!options.bearer_token.empty())
    req.set(bhttp::field::authorization, "Bearer " + options.bearer_token);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = std::string(body);
    req.prepare_payload();
  }
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;

  Result<ClientResponse> result = make_error_code(boost::system::errc::interrupted);
  auto run = [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(ctx);
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, kTuple);
    if (rec) {
      result = rec;
      co_return;
    }
    beast::tcp_stream lowest(ctx);
    lowest.expires_at(deadline);
    auto [cec, ep] = co_await lowest.async_connect(endpoints, kTuple);
    if (cec) {
      result = cec;
      co_return;
    }
    if (!url.tls) {
      result = co_await Exchange(lowest, lowest, req, deadline);
      boost::system::error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(lowest), *tls_ctx);
    if (!options.insecure) {
      SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
      stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
    }
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) {
      result = hec;
      co_return;
    }
    result = co_await Exchange(stream, stream.next_layer(), req, deadline);
    stream.next_layer().close();
  };
  std::exception_ptr failure;
  asio::co_spawn(ctx, run(), [&](std::exception_ptr e) { failure = e; });
  ctx.run();
  if (failure) std::rethrow_exception(failure);
  return result;
}

}  // namespace memkv::http
