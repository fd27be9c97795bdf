// libFuzzer target for HTTP requests as the admin port reads them: the
// input is raw bytes off a connection, parsed by Beast's request parser
// with the admin limits (http/server.cc reads the same way), then, for
// each whole request, dispatched through an http::Router with a few routes,
// static files, the bearer check and a HostPolicy. The router must answer
// every request (any status) without crashing, and must never run a route
// for a request the policy refuses.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>

#include "http/host_policy.h"
#include "http/json.h"
#include "http/router.h"

namespace memkv::http {
namespace {

namespace bhttp = boost::beast::http;

struct Fixture {
  Fixture() {
    policy.allowed_hosts = {"memkv.example"};
    policy.allowed_hosts_setting = "admin.allowed_hosts";
    router.SetHostPolicy(policy);
    router.RequireBearer("s3cret");
    const auto route = [this](const char* tag) {
      return [this, tag](const Request& req) -> Awaitable<Response> {
        // A route runs only for what the policy lets through.
        if (CheckHostAndOrigin(policy, req)) __builtin_trap();
        ++ran;
        boost::json::object o;
        o["tag"] = tag;
        o["id"] = req.Param("id");
        co_return JsonResponse(200, o);
      };
    };
    router.Add(Method::kGet, "/v1/health", route("health"));
    router.Add(Method::kGet, "/v1/sessions", route("sessions"));
    router.Add(Method::kPost, "/v1/drives/{id}/reset", route("reset"));
    StaticFiles files;
    files["index.html"] = {"<h1>docs</h1>", "text/html; charset=utf-8"};
    files["css/site.css"] = {"body{}", "text/css"};
    router.AddStatic("/docs/", std::move(files));
  }
  HostPolicy policy;
  Router router;
  uint64_t ran = 0;
};

}  // namespace
}  // namespace memkv::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memkv::http;
  static Fixture* fx = new Fixture;  // routes and files live for the process
  if (size == 0) return 0;
  boost::beast::flat_buffer buffer;
  {
    auto b = buffer.prepare(size);
    std::memcpy(b.data(), data, size);
    buffer.commit(size);
  }
  // Keep-alive: as many requests as the bytes hold, as a connection would.
  for (int i = 0; i < 8 && buffer.size() > 0; ++i) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::system::error_code ec;
    // Headers, then the body: each put takes what it can.
    while (!parser.is_done()) {
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec || used == 0) break;
    }
    if (!parser.is_done()) break;  // a bad request (400, 413, 431) or a partial one
    auto& msg = parser.get();
    Request req;
    req.method = ParseMethod(std::string_view(msg.method_string()));
    req.target = std::string(msg.target());
    for (const auto& f : msg)
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.tls = (data[0] & 1) != 0;
    boost::asio::io_context ctx;
    auto fut = boost::asio::co_spawn(ctx, fx->router.Handle(req), boost::asio::use_future);
    ctx.run();
    const Response res = fut.get();
    if (res.status < 200 || res.status > 599) __builtin_trap();
    if (!msg.keep_alive()) break;
  }
  return 0;
}
