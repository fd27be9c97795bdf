// http::Router and request-target parsing, with no sockets: routes, path
// parameters, 404/405, auth, static files and path traversal.

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "http/json.h"
#include "http/router.h"

namespace memkv::http {
namespace {

namespace json = boost::json;

// Runs the router's Handle for one request on a private io_context.
Response Serve(const Router& router, Method method, std::string target,
               std::vector<std::pair<std::string, std::string>> headers = {}) {
  boost::asio::io_context ctx;
  Request req;
  req.method = method;
  req.target = std::move(target);
  req.headers = std::move(headers);
  auto fut = boost::asio::co_spawn(ctx, router.Handle(req), boost::asio::use_future);
  ctx.run();
  return fut.get();
}

std::string Header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

Handler Echo(std::string tag) {
  return [tag](const Request& req) -> Awaitable<Response> {
    json::object o;
    o["tag"] = tag;
    json::object params;
    for (const auto& [k, v] : req.params) params[k] = v;
    o["params"] = params;
    json::object query;
    for (const auto& [k, v] : req.query) query[k] = v;
    o["query"] = query;
    o["path"] = req.path;
    co_return JsonResponse(200, o);
  };
}

TEST(ParseTarget, SplitsAndDecodesPathAndQuery) {
  const Target t = ParseTarget("/v1/drives/%31/reset?secure=true&x=a%20b+c&flag&=v&y=1&y=2");
  ASSERT_TRUE(t.ok);
  EXPECT_FALSE(t.unsafe);
  EXPECT_EQ(t.path, "/v1/drives/1/reset");
  EXPECT_EQ(t.segments, (std::vector<std::string>{"v1", "drives", "1", "reset"}));
  EXPECT_EQ(t.query.at("secure"), "true");
  EXPECT_EQ(t.query.at("x"), "a b c");
  EXPECT_EQ(t.query.at("flag"), "");
  EXPECT_EQ(t.query.at("y"), "2");  // the last one wins
  EXPECT_FALSE(t.trailing_slash);
  EXPECT_TRUE(ParseTarget("/docs/").trailing_slash);
  EXPECT_TRUE(ParseTarget("/").ok);
  EXPECT_EQ(ParseTarget("/").path, "/");
}

TEST(ParseTarget, RefusesWhatIsNotOriginFormOrBadlyEncoded) {
  EXPECT_FALSE(ParseTarget("").ok);
  EXPECT_FALSE(ParseTarget("v1/health").ok);
  EXPECT_FALSE(ParseTarget("http://host/v1/health").ok);
  EXPECT_FALSE(ParseTarget("/a%2").ok);
  EXPECT_FALSE(ParseTarget("/a%zz").ok);
  EXPECT_FALSE(ParseTarget("/a?x=%G0").ok);
}

TEST(ParseTarget, FlagsEveryTraversalSpelling) {
  for (const char* t :
       {"/docs/../etc/passwd", "/docs/%2e%2e/etc/passwd", "/docs/%2E%2e/x", "/docs/.%2e/x",
        "/docs/./index.html", "/docs/a%2f..%2fb", "/docs/a%2Fb", "/docs/..%5c..%5cwin.ini",
        "/docs/a%00.html", "/docs//etc/passwd", "/docs/a\\b"}) {
    const Target parsed = ParseTarget(t);
    EXPECT_TRUE(!parsed.ok || parsed.unsafe) << t;
  }
  EXPECT_FALSE(ParseTarget("/docs/a..b/c.d.html").unsafe);  // dots inside a name are fine
}

TEST(PercentDecode, DecodesAndRejects) {
  std::string out;
  EXPECT_TRUE(PercentDecode("%41b+c%7e", out, true));
  EXPECT_EQ(out, "Ab c~");
  out.clear();
  EXPECT_TRUE(PercentDecode("a+b", out, false));
  EXPECT_EQ(out, "a+b");
  out.clear();
  EXPECT_FALSE(PercentDecode("%", out, false));
  EXPECT_FALSE(PercentDecode("%4", out, false));
}

TEST(SecretsEqual, ComparesWholeSecrets) {
  EXPECT_TRUE(SecretsEqual("abc", "abc"));
  EXPECT_FALSE(SecretsEqual("abc", "abd"));
  EXPECT_FALSE(SecretsEqual("abc", "abcd"));
  EXPECT_FALSE(SecretsEqual("", "a"));
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(Method::kGet, "/v1/health", Echo("health"));
    router_.Add(Method::kGet, "/v1/drives", Echo("drives"));
    router_.Add(Method::kPost, "/v1/drives/{id}/reset", Echo("reset"));
    router_.Add(Method::kDelete, "/v1/drives/{id}/reset", Echo("reset-delete"));
    StaticFiles files;
    files["index.html"] = {"<h1>docs</h1>", "text/html; charset=utf-8"};
    files["css/site.css"] = {"body{}", "text/css"};
    router_.AddStatic("/docs/", std::move(files));
  }
  Router router_;
};

TEST_F(RouterTest, RoutesByMethodAndPathWithParameters) {
  const Response r = Serve(router_, Method::kPost, "/v1/drives/7/reset?secure=true");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json::value v = json::parse(r.body);
  EXPECT_EQ(v.at("tag"), "reset");
  EXPECT_EQ(v.at("params").at("id"), "7");
  EXPECT_EQ(v.at("query").at("secure"), "true");
  EXPECT_EQ(json::parse(Serve(router_, Method::kGet, "/v1/health").body).at("tag"), "health");
}

TEST_F(RouterTest, HeadAnswersLikeGet) {
  const Response r = Serve(router_, Method::kHead, "/v1/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body).at("tag"), "health");  // the server drops the body
}

TEST_F(RouterTest, UnknownPathIs404WithAJsonError) {
  for (const char* t : {"/nope", "/v1/health/", "/v1/health/x", "/v1/drives/1", "/v1"}) {
    const Response r = Serve(router_, Method::kGet, t);
    EXPECT_EQ(r.status, 404) << t;
    const json::value v = json::parse(r.body);
    EXPECT_TRUE(v.at("error").is_string()) << t;
    EXPECT_EQ(v.at("status"), 404) << t;
  }
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  Response r = Serve(router_, Method::kPost, "/v1/health");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET, HEAD");
  EXPECT_EQ(json::parse(r.body).at("allow"), json::parse(R"(["GET","HEAD"])"));
  r = Serve(router_, Method::kGet, "/v1/drives/0/reset");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "POST, DELETE");
  r = Serve(router_, Method::kPost, "/docs/index.html");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET, HEAD");
}

TEST_F(RouterTest, WrongMethodIs405EvenUnderAStaticRootAndTheRootServesItsFiles) {
  StaticFiles root;
  root["index.html"] = {"<h1>dashboard</h1>", "text/html; charset=utf-8"};
  router_.AddStatic("/", std::move(root));  // after /docs/: the more specific prefix first
  Response r = Serve(router_, Method::kPost, "/v1/health");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET, HEAD");
  EXPECT_EQ(Serve(router_, Method::kDelete, "/v1/drives").status, 405);
  EXPECT_EQ(Serve(router_, Method::kGet, "/").body, "<h1>dashboard</h1>");
  EXPECT_EQ(Serve(router_, Method::kGet, "/docs/").body, "<h1>docs</h1>");
  EXPECT_EQ(Serve(router_, Method::kGet, "/v1/nothing").status, 404);
  EXPECT_EQ(Serve(router_, Method::kGet, "/nothing.html").status, 404);
}

TEST_F(RouterTest, MalformedTargetIs400) {
  EXPECT_EQ(Serve(router_, Method::kGet, "/v1/%zz").status, 400);
  EXPECT_EQ(Serve(router_, Method::kGet, "*").status, 400);
}

TEST_F(RouterTest, StateChangingRequestsNeedTheBearerToken) {
  router_.RequireBearer("s3cret");
  Response r = Serve(router_, Method::kPost, "/v1/drives/1/reset");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Header(r, "WWW-Authenticate"), "Bearer");
  EXPECT_TRUE(json::parse(r.body).at("error").is_string());
  EXPECT_EQ(Serve(router_, Method::kPost, "/v1/drives/1/reset", {{"Authorization", "Bearer wrong"}})
                .status,
            401);
  EXPECT_EQ(Serve(router_, Method::kPost, "/v1/drives/1/reset", {{"Authorization", "Bearer s3cre"}})
                .status,
            401);
  EXPECT_EQ(
      Serve(router_, Method::kPost, "/v1/drives/1/reset", {{"Authorization", "s3cret"}}).status,
      401);
  EXPECT_EQ(Serve(router_, Method::kDelete, "/v1/drives/1/reset").status, 401);
  EXPECT_EQ(
      Serve(router_, Method::kPost, "/v1/drives/1/reset", {{"authorization", "bearer s3cret"}})
          .status,
      200);
  // Reading needs no key.
  EXPECT_EQ(Serve(router_, Method::kGet, "/v1/health").status, 200);
}

TEST_F(RouterTest, TheHostPolicyComesBeforeEverythingElse) {
  router_.RequireBearer("s3cret");
  HostPolicy policy;
  policy.allowed_hosts_setting = "admin.allowed_hosts";
  router_.SetHostPolicy(policy);
  const std::pair<std::string, std::string> evil{"Host", "evil.example:9901"};
  // Before auth, 404, 405 and files: a foreign page learns nothing.
  for (const auto& [method, target] :
       std::vector<std::pair<Method, std::string>>{{Method::kPost, "/v1/drives/1/reset"},
                                                   {Method::kGet, "/v1/health"},
                                                   {Method::kGet, "/v1/nothing"},
                                                   {Method::kPut, "/v1/health"},
                                                   {Method::kGet, "/docs/"},
                                                   {Method::kGet, "not-origin-form"}}) {
    const Response r = Serve(router_, method, target, {evil});
    EXPECT_EQ(r.status, 403) << target;
    EXPECT_EQ(r.content_type, "application/json");
    const json::value v = json::parse(r.body);
    EXPECT_EQ(v.at("reason"), "host") << target;
    EXPECT_NE(std::string(v.at("error").as_string()).find("admin.allowed_hosts"),
              std::string::npos);
  }
  Response r = Serve(router_, Method::kPost, "/v1/drives/1/reset",
                     {{"Host", "127.0.0.1:9901"}, {"Origin", "http://evil.example"},
                      {"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(json::parse(r.body).at("reason"), "origin");
  // A good Host and no Origin: the bearer check still applies.
  EXPECT_EQ(Serve(router_, Method::kPost, "/v1/drives/1/reset", {{"Host", "127.0.0.1:9901"}})
                .status,
            401);
  EXPECT_EQ(Serve(router_, Method::kPost, "/v1/drives/1/reset",
                  {{"Host", "127.0.0.1:9901"}, {"Authorization", "Bearer s3cret"}})
                .status,
            200);
  EXPECT_EQ(Serve(router_, Method::kGet, "/v1/health", {{"Host", "localhost"}}).status, 200);
}

TEST_F(RouterTest, StaticFilesAreServedByExactName) {
  Response r = Serve(router_, Method::kGet, "/docs/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<h1>docs</h1>");
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  r = Serve(router_, Method::kGet, "/docs/css/site.css");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/css");
  EXPECT_EQ(Serve(router_, Method::kGet, "/docs/index.html").status, 200);
  EXPECT_EQ(Serve(router_, Method::kGet, "/docs/%69ndex.html").status, 200);  // 'i' encoded
  EXPECT_EQ(Serve(router_, Method::kGet, "/docs/missing.html").status, 404);
  EXPECT_EQ(Serve(router_, Method::kGet, "/docs").status, 404);
  EXPECT_EQ(Serve(router_, Method::kGet, "/docs/css").status, 404);
}

TEST_F(RouterTest, PathTraversalUnderAStaticRouteNeverEscapes) {
  for (const char* t : {"/docs/../v1/health", "/docs/%2e%2e/v1/health", "/docs/css/../index.html",
                        "/docs/css/%2e%2e/index.html", "/docs/..%2fv1%2fhealth",
                        "/docs/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/docs/....//etc/passwd",
                        "/docs/..\\..\\etc\\passwd", "/docs/%5c..%5cindex.html",
                        "/docs/./index.html", "/docs/index.html%00.css", "/docs//index.html",
                        "/docs/../../../../etc/passwd", "/docs/%252e%252e/index.html"}) {
    const Response r = Serve(router_, Method::kGet, t);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << t << " -> " << r.status;
    EXPECT_EQ(r.body.find("<h1>"), std::string::npos) << t;
  }
}

TEST(JsonResponses, ErrorsCarryMessageStatusAndExtras) {
  json::object extra;
  extra["id"] = 3;
  const Response r = ErrorResponse(409, "busy \"drive\"", extra);
  EXPECT_EQ(r.status, 409);
  const json::value v = json::parse(r.body);
  EXPECT_EQ(v.at("error"), "busy \"drive\"");
  EXPECT_EQ(v.at("status"), 409);
  EXPECT_EQ(v.at("id"), 3);
}

TEST(Methods, NamesRoundTrip) {
  for (Method m : {Method::kGet, Method::kHead, Method::kPost, Method::kPut, Method::kDelete,
                   Method::kPatch, Method::kOptions})
    EXPECT_EQ(ParseMethod(MethodName(m)), m);
  EXPECT_EQ(ParseMethod("get"), Method::kOther);
  Request req;
  req.headers = {{"Content-Type", "a"}, {"X-Y", "b"}};
  EXPECT_EQ(req.Header("content-type"), "a");
  EXPECT_EQ(req.Header("missing"), "");
}

}  // namespace
}  // namespace memkv::http
