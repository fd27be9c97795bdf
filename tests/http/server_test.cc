// http::Server on loopback, in process, on a loop the test runs: limits
// (header and body sizes, header timeout, connection cap), keep-alive, HEAD,
// malformed requests, the blocking client, and Stop.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "http/client.h"
#include "http/json.h"
#include "http/router.h"
#include "http/server.h"
#include "http_test_util.h"

namespace memkv::http {
namespace {

using testing::RawHttp;
namespace json = boost::json;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(Method::kGet, "/hello", [](const Request&) -> Awaitable<Response> {
      json::object o;
      o["hello"] = "world";
      co_return JsonResponse(200, o);
    });
    router_.Add(Method::kPost, "/echo", [](const Request& req) -> Awaitable<Response> {
      json::object o;
      o["bytes"] = req.body.size();
      o["peer_set"] = !req.peer.empty();
      co_return JsonResponse(200, o);
    });
    // Answers once the test releases it: a request being handled.
    router_.Add(Method::kGet, "/hold", [this](const Request&) -> Awaitable<Response> {
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
      while (!release_.load()) {
        t.expires_after(std::chrono::milliseconds(5));
        co_await t.async_wait(boost::asio::use_awaitable);
      }
      co_return JsonResponse(200, json::object{});
    });
  }
  void StartServer(Limits limits) {
    Options opt;
    opt.limits = limits;
    server_ = std::make_unique<Server>(std::vector<boost::asio::io_context*>{&ctx_}, router_, opt);
    ASSERT_TRUE(server_->Start());
    thread_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    release_.store(true);
    if (server_) server_->Stop();
    guard_.reset();
    ctx_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }
  uint16_t port() const { return server_->port(); }

  boost::asio::io_context ctx_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_{
      ctx_.get_executor()};
  Router router_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> release_{false};
};

// Waits (without a deadline of its own; ctest's bounds the test) until the
// server counts `n` of something.
template <class F>
void WaitFor(F count, uint64_t n) {
  while (count() < n) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

TEST_F(HttpServerTest, AnswersAndKeepsTheConnectionAlive) {
  StartServer({});
  RawHttp c(port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Field("Content-Type"), "application/json");
    EXPECT_EQ(r->Field("Server"), "memkv");
    EXPECT_EQ(json::parse(r->body).at("hello"), "world");
  }
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body).at("bytes"), 5);
  EXPECT_EQ(json::parse(r->body).at("peer_set"), true);
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(c.Read());
  EXPECT_TRUE(c.ClosedWithin(10000));
  EXPECT_GE(server_->stats().requests, 5u);
}

TEST_F(HttpServerTest, HeadSendsTheLengthWithoutABody) {
  StartServer({});
  RawHttp c(port());
  c.SkipBodies(true);
  ASSERT_TRUE(c.Send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->Field("Content-Length"), "0");
  // The next response starts right after the head: no body was sent.
  c.SkipBodies(false);
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body).at("hello"), "world");
}

TEST_F(HttpServerTest, OversizedBodyIs413BeforeItIsRead) {
  Limits lim;
  lim.body_bytes = 1000;
  StartServer(lim);
  RawHttp c(port());
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(json::parse(r->body).at("error").is_string());
  EXPECT_TRUE(c.ClosedWithin(10000));
  // At the limit is fine.
  RawHttp ok(port());
  ASSERT_TRUE(ok.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                      std::string(1000, 'b')));
  r = ok.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OversizedChunkedBodyIs413) {
  Limits lim;
  lim.body_bytes = 1000;
  StartServer(lim);
  RawHttp c(port());
  std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(512, 'c') + "\r\n";
  req += "0\r\n\r\n";
  ASSERT_TRUE(c.Send(req));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.ClosedWithin(10000));
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  Limits lim;
  lim.header_bytes = 1024;
  StartServer(lim);
  RawHttp c(port());
  ASSERT_TRUE(
      c.Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'h') + "\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c.ClosedWithin(10000));
}

TEST_F(HttpServerTest, SlowHeadersAreDisconnected) {
  Limits lim;
  lim.header_timeout = std::chrono::milliseconds(300);
  StartServer(lim);
  RawHttp c(port());
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHo"));
  // A byte now and then does not keep the connection: the deadline covers
  // all of the headers.
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    c.Send("s");
    closed = c.ClosedWithin(100);
  }
  EXPECT_TRUE(closed || c.ClosedWithin(10000));
  // Counted by the connection's coroutine as it ends, which may be just
  // after the client sees the close.
  for (int i = 0; i < 500 && server_->stats().timeouts == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(server_->stats().timeouts, 1u);
  // An idle keep-alive connection goes the same way.
  RawHttp idle(port());
  ASSERT_TRUE(idle.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.Read());
  EXPECT_TRUE(idle.ClosedWithin(10000));
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  StartServer({});
  RawHttp c(port());
  ASSERT_TRUE(c.Send("GET /hello HTTP/9.9x\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.ClosedWithin(10000));
}

TEST_F(HttpServerTest, ConnectionsOverTheCapAreAnswered503WhenAllAreBeingAnswered) {
  Limits lim;
  lim.max_connections = 2;
  StartServer(lim);
  RawHttp a(port()), b(port());
  // Both are in a handler (so neither may be evicted) before the third comes.
  for (RawHttp* c : {&a, &b}) ASSERT_TRUE(c->Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  WaitFor([&] { return server_->stats().requests; }, 2);
  RawHttp third(port());
  auto r = third.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->Field("Retry-After"), "1");
  EXPECT_TRUE(third.ClosedWithin(10000));
  EXPECT_EQ(server_->stats().connections_refused, 1u);
  EXPECT_EQ(server_->stats().connections_evicted, 0u);
  EXPECT_EQ(server_->stats().connections_open, 2u);
  // The two held requests are answered whole.
  release_.store(true);
  for (RawHttp* c : {&a, &b}) {
    auto held = c->Read();
    ASSERT_TRUE(held);
    EXPECT_EQ(held->status, 200);
  }
}

TEST_F(HttpServerTest, AFloodOfIdleConnectionsDoesNotLockOutANewRequest) {
  Limits lim;
  lim.max_connections = 4;
  StartServer(lim);
  // The oldest sends nothing; then one half a request line, one whole
  // headers but half a body, one that was answered and idles in keep-alive.
  std::vector<std::unique_ptr<RawHttp>> flood;
  for (int i = 0; i < 4; ++i) flood.push_back(std::make_unique<RawHttp>(port()));
  WaitFor([&] { return server_->stats().connections_open; }, 4);
  ASSERT_TRUE(flood[1]->Send("GET /hel"));
  ASSERT_TRUE(flood[2]->Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"));
  ASSERT_TRUE(flood[3]->Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(flood[3]->Read());
  // Each new request gets in, by closing the connection that has waited
  // longest for a whole request. The probes stay open (answered, so they
  // have waited less than the flood), keeping the server full.
  std::vector<std::unique_ptr<RawHttp>> probes;
  for (int i = 0; i < 3; ++i) {
    RawHttp& probe = *probes.emplace_back(std::make_unique<RawHttp>(port()));
    ASSERT_TRUE(probe.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = probe.Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_TRUE(flood[i]->ClosedWithin(10000)) << i;
  }
  EXPECT_EQ(server_->stats().connections_refused, 0u);
  EXPECT_GE(server_->stats().connections_evicted, 3u);
  EXPECT_EQ(flood[0]->buffered(), "");  // closed without an answer
  // The connection answered last is still there and still served.
  ASSERT_TRUE(flood[3]->Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto again = flood[3]->Read();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpServerTest, TheClientFetches) {
  StartServer({});
  auto url = ParseUrl("http://127.0.0.1:" + std::to_string(port()));
  ASSERT_TRUE(url);
  auto r = Fetch(*url, "GET", "/hello");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  r = Fetch(*url, "GET", "/nothing-here");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = Fetch(*url, "POST", "/echo", {}, "12345");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body).at("bytes"), 5);
}

TEST_F(HttpServerTest, StopClosesIdleConnections) {
  StartServer({});
  RawHttp c(port());
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.Read());
  server_->Stop();
  EXPECT_TRUE(c.ClosedWithin(10000));
  EXPECT_EQ(server_->stats().connections_open, 0u);
  EXPECT_FALSE(RawHttp(port()).ok());
}

TEST(HttpClient, ParsesUrls) {
  auto u = ParseUrl("http://127.0.0.1:9901");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "9901");
  u = ParseUrl("https://[::1]:9901/base/");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->base, "/base");
  EXPECT_EQ(u->ToString(), "https://[::1]:9901/base");
  u = ParseUrl("localhost:1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "localhost");
  for (const char* bad : {"ftp://x:1", "http://x", "x", "http://:80", "http://x:port", "[::1:80"})
    EXPECT_FALSE(ParseUrl(bad)) << bad;
}

TEST(HttpClient, AnUnreachableServerIsAnError) {
  // Port 1 on loopback: nothing listens there.
  auto r = Fetch(*ParseUrl("http://127.0.0.1:1"), "GET", "/v1/health");
  EXPECT_FALSE(r);
}

}  // namespace
}  // namespace memkv::http
