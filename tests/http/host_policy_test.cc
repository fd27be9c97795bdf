// http::CheckHostAndOrigin as a pure function: a table of requests (method,
// TLS, Host, Origin, Sec-Fetch-Site) and whether each is refused, and why.
// Grew from "a page on evil.example reset a drive of the embedded default
// through the visitor's browser" (Host evil.example:9901, foreign Origin).

#include <gtest/gtest.h>

#include <optional>

#include "http/host_policy.h"

namespace memkv::http {
namespace {

struct Case {
  const char* name;
  Method method;
  std::optional<std::string> host;  // nullopt: no Host field
  std::optional<std::string> origin;
  std::optional<std::string> fetch_site;
  const char* refused;  // the reason, or "" when allowed
  bool tls = false;
};

Request Make(const Case& c) {
  Request r;
  r.method = c.method;
  r.target = "/v1/drives/1/reset";
  r.tls = c.tls;
  if (c.host) r.headers.emplace_back("Host", *c.host);
  if (c.origin) r.headers.emplace_back("Origin", *c.origin);
  if (c.fetch_site) r.headers.emplace_back("Sec-Fetch-Site", *c.fetch_site);
  return r;
}

constexpr auto kGet = Method::kGet;
constexpr auto kPost = Method::kPost;
const std::nullopt_t none = std::nullopt;

const Case kCases[] = {
    // The curl: a rebinding page's POST, by Host and by Origin.
    {"rebinding POST", kPost, "evil.example:9901", "http://evil.example", none, "host"},
    {"rebinding read of sessions", kGet, "evil.example:9901", none, none, "host"},
    {"rebinding read, name in any case", kGet, "EVIL.example", none, none, "host"},
    // The names the server answers to.
    {"curl to 127.0.0.1", kPost, "127.0.0.1:9901", none, none, ""},
    {"v4 without port", kGet, "10.1.2.3", none, none, ""},
    {"v6 in brackets", kPost, "[::1]:9901", none, none, ""},
    {"v6 without port", kGet, "[fe80::1]", none, none, ""},
    {"localhost", kPost, "localhost:9901", none, none, ""},
    {"LOCALHOST", kGet, "LocalHost", none, none, ""},
    {"allowed name", kGet, "memkv-01.example.com:9901", none, none, ""},
    {"allowed name, other case", kGet, "MEMKV-01.Example.com", none, none, ""},
    {"a subdomain of an allowed name", kGet, "x.memkv-01.example.com", none, none, "host"},
    {"localhost look-alike", kGet, "localhost.evil.example", none, none, "host"},
    {"v4 look-alike name", kGet, "127.0.0.1.evil.example", none, none, "host"},
    {"short v4 form is a name", kGet, "127.1:9901", none, none, "host"},
    // Malformed or missing Host.
    {"no Host", kGet, none, none, none, "host"},
    {"empty Host", kGet, "", none, none, "host"},
    {"unbracketed v6", kGet, "::1", none, none, "host"},
    {"bad v6", kGet, "[::g]:9901", none, none, "host"},
    {"v6 zone id", kGet, "[fe80::1%25eth0]", none, none, "host"},
    {"empty port", kGet, "127.0.0.1:", none, none, "host"},
    {"port too large", kGet, "127.0.0.1:65536", none, none, "host"},
    {"port zero", kGet, "127.0.0.1:0", none, none, "host"},
    {"port not a number", kGet, "127.0.0.1:99a", none, none, "host"},
    {"userinfo", kGet, "evil@127.0.0.1", none, none, "host"},
    {"path in Host", kGet, "127.0.0.1/x", none, none, "host"},
    // Reads: Origin and Sec-Fetch-Site do not matter (the page cannot read
    // the answer without CORS, which this server never grants).
    {"cross-site GET", kGet, "127.0.0.1:9901", "http://evil.example", "cross-site", ""},
    {"HEAD with foreign origin", Method::kHead, "127.0.0.1:9901", "null", none, ""},
    {"OPTIONS with foreign origin", Method::kOptions, "127.0.0.1:9901", "http://evil.example",
     "cross-site", ""},
    // The dashboard's own calls: same origin.
    {"dashboard GET", kGet, "127.0.0.1:9901", none, "same-origin", ""},
    {"same-origin POST", kPost, "127.0.0.1:9901", "http://127.0.0.1:9901", "same-origin", ""},
    {"same-origin POST by name", kPost, "localhost:9901", "http://LOCALHOST:9901", none, ""},
    {"same-origin POST, default port", kPost, "127.0.0.1", "http://127.0.0.1:80", none, ""},
    {"same-origin POST, default port omitted", kPost, "127.0.0.1:80", "http://127.0.0.1", none, ""},
    {"same-origin v6", kPost, "[::1]:9901", "http://[::1]:9901", none, ""},
    {"same-origin https", kPost, "127.0.0.1:9901", "https://127.0.0.1:9901", none, "", true},
    {"typed into the address bar", kPost, "127.0.0.1:9901", none, "none", ""},
    // Foreign origins changing state.
    {"foreign origin, right Host", kPost, "127.0.0.1:9901", "http://evil.example", none, "origin"},
    {"another port of this host", kPost, "127.0.0.1:9901", "http://127.0.0.1:8080", none, "origin"},
    {"another loopback address", kPost, "127.0.0.1:9901", "http://127.0.0.2:9901", none, "origin"},
    {"other scheme", kPost, "127.0.0.1:9901", "https://127.0.0.1:9901", none, "origin"},
    {"http origin to https", kPost, "127.0.0.1:9901", "http://127.0.0.1:9901", none, "origin",
     true},
    {"null origin", kPost, "127.0.0.1:9901", "null", none, "origin"},
    {"empty origin", kPost, "127.0.0.1:9901", "", none, "origin"},
    {"origin with a path", kPost, "127.0.0.1:9901", "http://127.0.0.1:9901/", none, "origin"},
    {"origin without scheme", kPost, "127.0.0.1:9901", "127.0.0.1:9901", none, "origin"},
    {"DELETE from a foreign origin", Method::kDelete, "127.0.0.1:9901", "http://evil.example", none,
     "origin"},
    {"cross-site without Origin", kPost, "127.0.0.1:9901", none, "cross-site", "sec-fetch-site"},
    {"same-site without Origin", kPost, "127.0.0.1:9901", none, "same-site", "sec-fetch-site"},
    {"cross-site even with our Origin", kPost, "127.0.0.1:9901", "http://127.0.0.1:9901",
     "Cross-Site", "sec-fetch-site"},
};

TEST(HostPolicy, RefusesForeignHostsAndForeignOriginsThatChangeState) {
  HostPolicy policy;
  policy.allowed_hosts = {"memkv-01.example.com"};
  policy.allowed_hosts_setting = "admin.allowed_hosts";
  for (const Case& c : kCases) {
    const std::optional<Refusal> no = CheckHostAndOrigin(policy, Make(c));
    if (*c.refused == '\0') {
      EXPECT_FALSE(no) << c.name << ": refused: " << no->message;
    } else {
      ASSERT_TRUE(no) << c.name << ": allowed";
      EXPECT_EQ(no->reason, c.refused) << c.name << ": " << no->message;
    }
  }
}

TEST(HostPolicy, TheRefusalNamesTheHostAndTheSettingToChange) {
  HostPolicy policy;
  policy.allowed_hosts_setting = "admin.allowed_hosts";
  const auto no =
      CheckHostAndOrigin(policy, Make({"", kPost, "evil.example:9901", none, none, ""}));
  ASSERT_TRUE(no);
  EXPECT_EQ(no->message,
            "host 'evil.example:9901' is not one this server answers to; add 'evil.example' to "
            "admin.allowed_hosts");
  const auto origin = CheckHostAndOrigin(
      policy, Make({"", kPost, "127.0.0.1:9901", "http://evil.example", none, ""}));
  ASSERT_TRUE(origin);
  EXPECT_NE(origin->message.find("'http://evil.example'"), std::string::npos) << origin->message;
  EXPECT_NE(origin->message.find("http://127.0.0.1:9901"), std::string::npos) << origin->message;
}

TEST(HostPolicy, TwoHostFieldsAreRefused) {
  Request r;
  r.method = kGet;
  r.headers = {{"Host", "127.0.0.1"}, {"host", "evil.example"}};
  const auto no = CheckHostAndOrigin(HostPolicy{}, r);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->reason, "host");
}

TEST(HostPolicy, ParsesAuthorities) {
  auto a = ParseAuthority("Example.COM:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port, 8080);
  EXPECT_FALSE(a->ip_literal);
  a = ParseAuthority("[::FFFF:127.0.0.1]");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "[::ffff:127.0.0.1]");
  EXPECT_FALSE(a->port);
  EXPECT_TRUE(a->ip_literal);
  a = ParseAuthority("192.168.0.1:1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->ip_literal);
  EXPECT_EQ(a->port, 1);
  for (const char* bad : {"", ":80", "[::1", "[::1]x", "[::1]:", "a b", "a:b:c", "h:65536"})
    EXPECT_FALSE(ParseAuthority(bad)) << bad;
}

}  // namespace
}  // namespace memkv::http
