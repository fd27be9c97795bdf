// The admin HTTP API of a real `memkv server` on loopback: every endpoint
// and field, auth, limits, errors, HTTPS, and an online drive reset while
// the other drive serves traffic.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "../http/http_test_util.h"
#include "../io/test_util.h"
#include "common/checksum.h"
#include "http/client.h"
#include "server_process.h"

namespace memkv::testing {
namespace {

namespace json = boost::json;
using http::testing::RawHttp;
using proto::Opcode;
using proto::StatusCode;

constexpr const char* kKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

proto::Bytes B(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::vector<StatusCode> Put(RawClient& c,
                            const std::vector<std::pair<std::string, std::string>>& kv,
                            uint64_t id = 10) {
  proto::BatchWriteRequest req;
  req.batch = {static_cast<uint32_t>(kv.size()), 0, static_cast<uint32_t>(kv.size())};
  std::string data;
  for (auto& [k, v] : kv) {
    req.entries.push_back({k, v.size(), Xxh3(v), {}});
    data += v;
  }
  proto::Buffer control;
  proto::Encode(req, control);
  if (!c.Send(Opcode::kBatchWrite, control, B(data), id)) return {};
  auto f = c.Recv();
  if (!f) return {};
  proto::StatusReply rep;
  if (!proto::Decode(f->control, rep)) return {};
  if (rep.head.status != StatusCode::kOk) return {rep.head.status};
  return rep.statuses;
}

// (status, bytes) per key; empty when the exchange itself failed.
std::vector<std::pair<StatusCode, std::string>> Get(RawClient& c,
                                                    const std::vector<std::string>& keys,
                                                    uint64_t id = 20) {
  proto::BatchReadRequest req;
  req.batch = {static_cast<uint32_t>(keys.size()), 0, static_cast<uint32_t>(keys.size())};
  for (auto& k : keys) req.entries.push_back({k, 0, 0, {}});
  proto::Buffer control;
  proto::Encode(req, control);
  if (!c.Send(Opcode::kBatchRead, control, {}, id)) return {};
  std::vector<std::pair<StatusCode, std::string>> out;
  for (;;) {
    auto f = c.Recv();
    if (!f) return {};
    proto::BatchReadReply rep;
    if (!proto::Decode(f->control, f->data, rep)) return {};
    if (rep.head.status != StatusCode::kOk) return {{rep.head.status, ""}};
    size_t at = 0;
    for (auto& r : rep.results) {
      std::string v;
      if (r.delivery == proto::Delivery::kInline) {
        v.assign(reinterpret_cast<const char*>(rep.data.data()) + at, r.length);
        at += r.length;
      }
      out.push_back({r.status, v});
    }
    if (!f->header.has_more()) break;
  }
  return out;
}

std::string ValueOf(const std::string& key) { return "value of " + key + std::string(3000, 'v'); }

class AdminTest : public ::testing::Test {
 protected:
  // A server on the embedded default (two 1 GiB file drives) plus `extra`,
  // with its admin port accepting.
  std::unique_ptr<ServerProcess> Start(std::vector<std::string> extra = {}) {
    auto s = std::make_unique<ServerProcess>(dir_.path().string(), extra);
    EXPECT_TRUE(s->ready()) << "the server did not start";
    bool admin = false;
    for (int i = 0; i < 200 && !admin; ++i) {
      admin = RawHttp(s->admin_port()).ok();
      if (!admin) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(admin) << "the admin port does not accept";
    url_ = *http::ParseUrl("http://127.0.0.1:" + std::to_string(s->admin_port()));
    return s;
  }

  http::ClientResponse Fetch(std::string_view method, std::string_view target,
                             const http::ClientOptions& opt = {}) {
    auto r = http::Fetch(url_, method, target, opt);
    EXPECT_TRUE(r) << method << " " << target << ": " << r.error().message();
    return r ? *r : http::ClientResponse{};
  }
  json::value GetJson(std::string_view target, int want_status = 200) {
    const auto r = Fetch("GET", target);
    EXPECT_EQ(r.status, want_status) << target << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json") << target;
    return json::parse(r.body);
  }

  io::testing::TempDir dir_;
  http::Url url_;
};

uint64_t U(const json::value& v) { return v.to_number<uint64_t>(); }

// One request with exactly the header lines `fields` ("Name: value\r\n"
// each), on its own connection, as a browser or curl would send it.
std::optional<RawHttp::Reply> Send(uint16_t port, const std::string& method,
                                   const std::string& target, const std::string& fields) {
  RawHttp c(port);
  if (!c.ok() || !c.Send(method + " " + target + " HTTP/1.1\r\n" + fields +
                         "Content-Length: 0\r\nConnection: close\r\n\r\n"))
    return std::nullopt;
  return c.Read();
}

std::string ErrorOf(const RawHttp::Reply& r) {
  return std::string(json::parse(r.body).at("error").as_string());
}

TEST_F(AdminTest, HealthAndReadyOfAHealthyServer) {
  auto s = Start();
  const json::value h = GetJson("/v1/health");
  EXPECT_EQ(h.at("status"), "healthy");
  EXPECT_EQ(h.at("rdma_active"), false);
  EXPECT_EQ(U(h.at("drives_online")), 2u);
  EXPECT_EQ(U(h.at("drives_offline")), 0u);
  EXPECT_EQ(U(h.at("drives_total")), 2u);
  EXPECT_EQ(h.as_object().size(), 5u);
  const json::value r = GetJson("/v1/ready");
  EXPECT_EQ(r.at("ready"), true);
}

TEST_F(AdminTest, StatusDrivesSessionsAndMetricsReportEveryField) {
  auto s = Start();
  auto c = std::make_unique<RawClient>(ConnectTcp(s->port()));
  ASSERT_TRUE(c->Attach("admin-test-host"));
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 8; ++i)
    kv.push_back({"k" + std::to_string(i), ValueOf("k" + std::to_string(i))});
  for (StatusCode st : Put(*c, kv)) ASSERT_EQ(st, StatusCode::kOk);
  ASSERT_EQ(Get(*c, {"k0", "missing"}).size(), 2u);

  const json::value st = GetJson("/v1/status");
  EXPECT_EQ(st.at("status"), "healthy");
  EXPECT_TRUE(st.at("version").is_string());
  EXPECT_TRUE(st.at("uptime_seconds").is_number());
  EXPECT_EQ(U(st.at("memory").at("capacity_bytes")), 256ull << 20);
  EXPECT_TRUE(st.at("memory").at("used_bytes").is_number());
  const json::value& storage = st.at("storage");
  EXPECT_EQ(storage.at("mode"), "file");
  EXPECT_EQ(U(storage.at("raw_bytes_total")), 2ull << 30);
  EXPECT_LE(U(storage.at("usable_bytes_total")), U(storage.at("raw_bytes_total")));
  EXPECT_GT(U(storage.at("usable_bytes_total")), 1ull << 30);
  EXPECT_GE(U(storage.at("used_bytes_total")), 8u * 3000);
  EXPECT_EQ(U(storage.at("keys")), 8u);
  const json::array& drives = storage.at("drives").as_array();
  ASSERT_EQ(drives.size(), 2u);
  uint64_t raw = 0, usable = 0, used = 0;
  for (size_t i = 0; i < drives.size(); ++i) {
    const json::value& d = drives[i];
    EXPECT_EQ(U(d.at("id")), i);
    EXPECT_NE(d.at("name").as_string().find("drive" + std::to_string(i)), json::string::npos);
    EXPECT_EQ(d.at("online"), true);
    EXPECT_EQ(d.at("resetting"), false);
    EXPECT_TRUE(d.at("generation").is_number());
    raw += U(d.at("raw_bytes"));
    usable += U(d.at("usable_bytes"));
    used += U(d.at("used_bytes"));
  }
  EXPECT_EQ(raw, U(storage.at("raw_bytes_total")));
  EXPECT_EQ(usable, U(storage.at("usable_bytes_total")));
  EXPECT_EQ(used, U(storage.at("used_bytes_total")));
  EXPECT_EQ(U(st.at("sessions").at("active")), 1u);
  EXPECT_EQ(U(st.at("sessions").at("max")), 1024u);
  EXPECT_GE(U(st.at("connections").at("open")), 1u);
  EXPECT_GE(U(st.at("connections").at("total")), 1u);
  EXPECT_EQ(st.at("rails").at("tcp"), true);
  EXPECT_EQ(st.at("rails").at("shm"), true);
  EXPECT_EQ(st.at("rails").at("rdma"), false);
  // The 8 values went in inline over tcp, one came back out.
  const uint64_t value = ValueOf("k0").size();
  EXPECT_EQ(U(st.at("rail_bytes").at("tcp").at("from_clients")), 8 * value);
  EXPECT_EQ(U(st.at("rail_bytes").at("tcp").at("to_clients")), value);
  for (const char* rail : {"shm", "rdma"})
    for (const char* dir : {"from_clients", "to_clients"})
      EXPECT_EQ(U(st.at("rail_bytes").at(rail).at(dir)), 0u) << rail << " " << dir;
  EXPECT_GE(U(st.at("operations").at("requests")), 3u);
  EXPECT_EQ(U(st.at("operations").at("puts")), 8u);
  // One BatchRead of two entries, one of them missing: the dashboard's hit
  // ratio (1 - misses / gets) is 50 %.
  EXPECT_EQ(U(st.at("operations").at("gets")), 2u);
  EXPECT_EQ(U(st.at("operations").at("misses")), 1u);
  for (const char* k : {"misses", "gets", "deletes", "cache_hits", "evictions", "checksum_errors",
                        "protocol_errors"})
    EXPECT_TRUE(st.at("operations").at(k).is_number()) << k;

  const json::value dv = GetJson("/v1/drives");
  EXPECT_EQ(dv.at("mode"), "file");
  EXPECT_EQ(dv.at("drives").as_array().size(), 2u);
  EXPECT_EQ(dv.at("drives").as_array()[1].at("id"), drives[1].at("id"));

  const json::value ss = GetJson("/v1/sessions");
  EXPECT_EQ(U(ss.at("count")), 1u);
  EXPECT_EQ(U(ss.at("max")), 1024u);
  const json::value& session = ss.at("sessions").as_array().at(0);
  EXPECT_EQ(session.at("host_id"), "admin-test-host");
  EXPECT_EQ(session.at("rail"), "tcp");
  EXPECT_NE(session.at("peer").as_string().find("127.0.0.1:"), json::string::npos);
  for (const char* k : {"id", "attached_unix", "regions", "requests"})
    EXPECT_TRUE(session.at(k).is_number()) << k;
  EXPECT_GE(U(session.at("requests")), 1u);  // its first request is recorded
  EXPECT_EQ(U(session.at("regions")), 0u);    // tcp: no shared memory

  for (const char* path : {"/v1/metrics", "/metrics"}) {
    const auto m = Fetch("GET", path);
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
    for (const std::string& line : std::vector<std::string>{
             "memkv_requests_total{op=\"put\"} 1\n", "memkv_entries_total{op=\"put\"} 8\n",
             "memkv_entries_total{op=\"get\"} 2\n", "memkv_entry_misses_total{op=\"get\"} 1\n",
             "memkv_value_bytes_total{op=\"put\"} " + std::to_string(8 * ValueOf("k0").size()) +
                 "\n",
             "memkv_value_bytes_total{op=\"get\"} " + std::to_string(ValueOf("k0").size()) + "\n",
             "memkv_request_duration_seconds_count{op=\"put\"} 1\n",
             "memkv_request_duration_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n",
             "# TYPE memkv_request_duration_seconds histogram\n", "memkv_sessions 1\n",
             "memkv_store_keys 8\n", "memkv_store_evictions_total 0\n",
             "memkv_protocol_errors_total 0\n", "memkv_drive_online{drive=\"0\"",
             "memkv_drive_used_bytes{drive=\"1\"", "memkv_drive_raw_bytes{drive=\"0\"",
             "memkv_memory_capacity_bytes 268435456\n", "memkv_entry_errors_total{op=\"put\"} 0\n",
             "memkv_rail_bytes_total{rail=\"tcp\",direction=\"from_clients\"} " +
                 std::to_string(8 * ValueOf("k0").size()) + "\n",
             "memkv_rail_bytes_total{rail=\"shm\",direction=\"to_clients\"} 0\n"})
      EXPECT_NE(m.body.find(line), std::string::npos) << path << " lacks " << line;
  }
}

TEST_F(AdminTest, TheDashboardAndTheDocsSiteAreServedFromTheBinary) {
  auto s = Start();
  auto r = Fetch("GET", "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("id=\"chart-ops\""), std::string::npos);
  EXPECT_NE(r.body.find("src=\"/dashboard.js\""), std::string::npos);
  r = Fetch("GET", "/dashboard.js");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("/v1/status"), std::string::npos);
  r = Fetch("GET", "/docs/");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<h1>memkv documentation</h1>"), std::string::npos);
  r = Fetch("GET", "/docs/operations.html");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Troubleshooting"), std::string::npos);
  EXPECT_EQ(Fetch("GET", "/docs/style.css").status, 200);
  EXPECT_EQ(Fetch("GET", "/docs/nothing.html").status, 404);
}

TEST_F(AdminTest, UnknownPathsWrongMethodsAndTraversalAreRefused) {
  auto s = Start();
  auto r = Fetch("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body).at("status"), 404);
  EXPECT_TRUE(json::parse(r.body).at("error").is_string());
  r = Fetch("POST", "/v1/health");
  EXPECT_EQ(r.status, 405);
  bool allow = false;
  for (const auto& [k, v] : r.headers) allow = allow || (k == "Allow" && v == "GET, HEAD");
  EXPECT_TRUE(allow);
  EXPECT_EQ(Fetch("GET", "/v1/drives/0/reset").status, 405);
  EXPECT_EQ(Fetch("DELETE", "/v1/drives").status, 405);
  for (const char* t :
       {"/docs/../v1/health", "/docs/%2e%2e/v1/health", "/v1/../v1/health", "/v1/%2e%2e/v1/health",
        "/docs/..%2f..%2fetc%2fpasswd", "/../../../../etc/passwd",
        "/docs/%2e%2e%5c%2e%2e%5cetc%5cpasswd", "/v1//health", "/v1/health%00"}) {
    r = Fetch("GET", t);
    EXPECT_EQ(r.status, 404) << t;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << t;
    EXPECT_EQ(r.body.find("healthy"), std::string::npos) << t;
  }
}

TEST_F(AdminTest, OversizedBodyIs413) {
  auto s = Start();
  RawHttp c(s->admin_port());
  ASSERT_TRUE(c.Send("POST /v1/drives/0/reset HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(64 << 20) + "\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(json::parse(r->body).at("error").is_string());
  EXPECT_TRUE(c.ClosedWithin(10000));
  // Nothing was reset.
  EXPECT_EQ(GetJson("/v1/status").at("status"), "healthy");
}

TEST_F(AdminTest, ClientSendingHeadersTooSlowlyIsDisconnected) {
  auto s = Start();
  RawHttp c(s->admin_port());
  ASSERT_TRUE(c.Send("GET /v1/health HTTP/1.1\r\n"));
  bool closed = false;
  // One header byte every half second: never a complete request.
  for (int i = 0; i < 60 && !closed; ++i) {
    c.Send("X");
    closed = c.ClosedWithin(500);
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(c.buffered().find("200 OK"), std::string::npos);
  // The server still answers others.
  EXPECT_EQ(GetJson("/v1/health").at("status"), "healthy");
}

TEST_F(AdminTest, ResetNeedsTheAuthKeyWhenOneIsSet) {
  auto s = Start({"--set", std::string("network.auth_key=") + kKeyHex});
  // Reading needs no key.
  EXPECT_EQ(GetJson("/v1/health").at("status"), "healthy");
  auto r = Fetch("POST", "/v1/drives/0/reset");
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(json::parse(r.body).at("error").is_string());
  http::ClientOptions wrong;
  wrong.bearer_token = std::string(64, 'f');
  EXPECT_EQ(Fetch("POST", "/v1/drives/0/reset", wrong).status, 401);
  http::ClientOptions right;
  right.bearer_token = kKeyHex;
  r = Fetch("POST", "/v1/drives/0/reset", right);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("reset"), true);
}

TEST_F(AdminTest, ResetRefusesBadIdsAndArguments) {
  auto s = Start();
  auto r = Fetch("POST", "/v1/drives/2/reset");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(U(json::parse(r.body).at("drives_total")), 2u);
  EXPECT_EQ(Fetch("POST", "/v1/drives/abc/reset").status, 400);
  EXPECT_EQ(Fetch("POST", "/v1/drives/-1/reset").status, 400);
  EXPECT_EQ(Fetch("POST", "/v1/drives/0/reset?secure=maybe").status, 400);
}

TEST_F(AdminTest, ResetThroughTheApiWhileTheOtherDriveServesTraffic) {
  auto s = Start();
  auto c = std::make_unique<RawClient>(ConnectTcp(s->port()));
  ASSERT_TRUE(c->Attach());
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<std::string> keys;
  for (int i = 0; i < 64; ++i) {
    keys.push_back("key-" + std::to_string(i));
    kv.push_back({keys.back(), ValueOf(keys.back())});
  }
  for (StatusCode st : Put(*c, kv)) ASSERT_EQ(st, StatusCode::kOk);
  const json::value before = GetJson("/v1/drives");
  const uint64_t gen0 = U(before.at("drives").as_array()[0].at("generation"));
  ASSERT_GT(U(before.at("drives").as_array()[0].at("used_bytes")), 0u);
  ASSERT_GT(U(before.at("drives").as_array()[1].at("used_bytes")), 0u);

  // First reset: find which keys live on drive 1 only (the survivors).
  auto r = Fetch("POST", "/v1/drives/0/reset");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> survivors;
  size_t lost = 0;
  const auto got = Get(*c, keys);
  ASSERT_EQ(got.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (got[i].first == StatusCode::kOk) {
      EXPECT_EQ(got[i].second, ValueOf(keys[i]));
      survivors.push_back(keys[i]);
    } else {
      EXPECT_EQ(got[i].first, StatusCode::kNotFound) << keys[i];
      ++lost;
    }
  }
  ASSERT_FALSE(survivors.empty());
  ASSERT_GT(lost, 0u);

  // Refill drive 0, then reset it (zero-filled, so it takes a while) while
  // another connection reads drive 1's keys without pause.
  for (StatusCode st : Put(*c, kv)) ASSERT_EQ(st, StatusCode::kOk);
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0}, failures{0};
  std::thread reader([&] {
    RawClient rc(ConnectTcp(s->port()));
    if (!rc.Attach("reader")) {
      failures.fetch_add(1);
      return;
    }
    uint64_t id = 100;
    while (!stop.load()) {
      const auto g = Get(rc, survivors, id++);
      if (g.size() != survivors.size()) {
        failures.fetch_add(1);
        return;
      }
      for (size_t i = 0; i < g.size(); ++i)
        if (g[i].first != StatusCode::kOk || g[i].second != ValueOf(survivors[i]))
          failures.fetch_add(1);
      rounds.fetch_add(1);
    }
  });
  while (rounds.load() == 0 && failures.load() == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  http::ClientOptions slow;
  slow.timeout = std::chrono::seconds(120);
  r = Fetch("POST", "/v1/drives/0/reset?secure=true", slow);
  const int rounds_at_end = rounds.load();
  // Let the reader go on a little past the reset too.
  while (rounds.load() < rounds_at_end + 3 && failures.load() == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop.store(true);
  reader.join();
  ASSERT_EQ(r.status, 200) << r.body << " (server exit status " << s->Stop() << ")";
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(rounds.load(), 0);
  const json::value reply = json::parse(r.body);
  EXPECT_EQ(reply.at("reset"), true);
  EXPECT_EQ(reply.at("secure"), true);
  EXPECT_TRUE(reply.at("duration_ms").is_number());
  EXPECT_EQ(U(reply.at("drive").at("id")), 0u);

  // Drive 0 is back, empty and healthy; the keys it held are misses.
  const json::value after = GetJson("/v1/drives");
  const json::value& d0 = after.at("drives").as_array()[0];
  EXPECT_EQ(d0.at("online"), true);
  EXPECT_EQ(d0.at("resetting"), false);
  EXPECT_EQ(U(d0.at("used_bytes")), 0u);
  EXPECT_GT(U(d0.at("generation")), gen0);
  EXPECT_EQ(GetJson("/v1/health").at("status"), "healthy");
  const auto final_get = Get(*c, keys);
  ASSERT_EQ(final_get.size(), keys.size());
  size_t ok = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (final_get[i].first == StatusCode::kOk) {
      EXPECT_EQ(final_get[i].second, ValueOf(keys[i]));
      ++ok;
    }
  }
  EXPECT_EQ(ok, survivors.size());
  // And it takes new values.
  for (StatusCode st : Put(*c, kv)) EXPECT_EQ(st, StatusCode::kOk);
  for (const auto& [status, value] : Get(*c, keys)) EXPECT_EQ(status, StatusCode::kOk);
}

// The reproduction: on the embedded default, a page on a foreign
// name (DNS rebinding: Host evil.example, Origin evil.example) reset drive
// 1 and its keys were gone. Also a foreign Origin with our own Host (a
// plain cross-site POST) and a browser's Sec-Fetch-Site: cross-site.
TEST_F(AdminTest, AWebPageCannotResetADrive) {
  auto s = Start();
  const std::string port = std::to_string(s->admin_port());
  auto c = std::make_unique<RawClient>(ConnectTcp(s->port()));
  ASSERT_TRUE(c->Attach());
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<std::string> keys;
  for (int i = 0; i < 32; ++i) {
    keys.push_back("key-" + std::to_string(i));
    kv.push_back({keys.back(), ValueOf(keys.back())});
  }
  for (StatusCode st : Put(*c, kv)) ASSERT_EQ(st, StatusCode::kOk);
  const uint64_t gen1 = U(GetJson("/v1/drives").at("drives").as_array()[1].at("generation"));

  struct Attempt {
    std::string fields;
    std::string reason;
  };
  for (const Attempt& a : std::vector<Attempt>{
           {"Host: evil.example:" + port + "\r\nOrigin: http://evil.example\r\n", "host"},
           {"Host: 127.0.0.1:" + port + "\r\nOrigin: http://evil.example\r\n", "origin"},
           {"Host: 127.0.0.1:" + port + "\r\nOrigin: null\r\n", "origin"},
           {"Host: 127.0.0.1:" + port + "\r\nOrigin: http://127.0.0.1:8080\r\n", "origin"},
           {"Host: 127.0.0.1:" + port + "\r\nSec-Fetch-Site: cross-site\r\n",
            "sec-fetch-site"}}) {
    const auto r = Send(s->admin_port(), "POST", "/v1/drives/1/reset", a.fields);
    ASSERT_TRUE(r) << a.fields;
    EXPECT_EQ(r->status, 403) << a.fields << r->body;
    EXPECT_EQ(r->Field("Content-Type"), "application/json");
    EXPECT_EQ(std::string(json::parse(r->body).at("reason").as_string()), a.reason) << a.fields;
  }
  const auto r = Send(s->admin_port(), "POST", "/v1/drives/1/reset",
                      "Host: evil.example:" + port + "\r\nOrigin: http://evil.example\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(ErrorOf(*r), "host 'evil.example:" + port +
                             "' is not one this server answers to; add 'evil.example' to "
                             "admin.allowed_hosts");
  // Nothing was reset: every key is still there.
  EXPECT_EQ(U(GetJson("/v1/drives").at("drives").as_array()[1].at("generation")), gen1);
  const auto got = Get(*c, keys);
  ASSERT_EQ(got.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(got[i].first, StatusCode::kOk) << keys[i];
    EXPECT_EQ(got[i].second, ValueOf(keys[i])) << keys[i];
  }
}

TEST_F(AdminTest, ReadsWithAForeignHostAreRefused) {
  auto s = Start();
  const std::string port = std::to_string(s->admin_port());
  for (const char* target : {"/v1/sessions", "/v1/status", "/metrics", "/", "/dashboard.js",
                             "/docs/", "/v1/nothing"}) {
    const auto r = Send(s->admin_port(), "GET", target, "Host: evil.example:" + port + "\r\n");
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 403) << target;
    EXPECT_EQ(json::parse(r->body).at("reason"), "host") << target;
    EXPECT_EQ(r->body.find("sessions\""), std::string::npos) << target;
  }
  // No Host at all (HTTP/1.0) is no better.
  RawHttp old(s->admin_port());
  ASSERT_TRUE(old.Send("GET /v1/sessions HTTP/1.0\r\n\r\n"));
  auto r = old.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(AdminTest, AllowedHostsAreAnsweredByName) {
  auto s = Start({"--set", "admin.allowed_hosts=memkv-01.example.com,dash.local"});
  const std::string port = std::to_string(s->admin_port());
  auto r = Send(s->admin_port(), "GET", "/v1/sessions", "Host: MEMKV-01.example.com:" + port + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // The dashboard opened by that name resets a drive (same-origin POST).
  r = Send(s->admin_port(), "POST", "/v1/drives/0/reset",
           "Host: dash.local:" + port + "\r\nOrigin: http://dash.local:" + port +
               "\r\nSec-Fetch-Site: same-origin\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = Send(s->admin_port(), "GET", "/v1/health", "Host: evil.example\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(AdminTest, TheDashboardAndCurlKeepWorking) {
  auto s = Start();
  const std::string port = std::to_string(s->admin_port());
  // The dashboard's fetches, as a browser sends them from http://127.0.0.1:PORT/.
  for (const std::string host : {"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port}) {
    for (const char* target : {"/", "/dashboard.js", "/v1/status", "/v1/sessions", "/v1/metrics"}) {
      const auto r = Send(s->admin_port(), "GET", target,
                          "Host: " + host + "\r\nSec-Fetch-Site: same-origin\r\nReferer: http://" +
                              host + "/\r\n");
      ASSERT_TRUE(r) << host << target;
      EXPECT_EQ(r->status, 200) << host << target << r->body;
    }
  }
  // A same-origin POST from the dashboard's page.
  auto r = Send(s->admin_port(), "POST", "/v1/drives/0/reset",
                "Host: 127.0.0.1:" + port + "\r\nOrigin: http://127.0.0.1:" + port +
                    "\r\nSec-Fetch-Site: same-origin\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // curl: a Host of the URL, no Origin.
  r = Send(s->admin_port(), "POST", "/v1/drives/1/reset",
           "Host: 127.0.0.1:" + port + "\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // The project's own client, by address and by name.
  EXPECT_EQ(Fetch("GET", "/v1/health").status, 200);
  auto by_name = http::ParseUrl("http://localhost:" + port);
  ASSERT_TRUE(by_name);
  auto f = http::Fetch(*by_name, "GET", "/v1/health");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->status, 200);
}

TEST_F(AdminTest, ASameOriginPostStillNeedsTheAuthKey) {
  auto s = Start({"--set", std::string("network.auth_key=") + kKeyHex});
  const std::string port = std::to_string(s->admin_port());
  const std::string same = "Host: 127.0.0.1:" + port + "\r\nOrigin: http://127.0.0.1:" + port + "\r\n";
  auto r = Send(s->admin_port(), "POST", "/v1/drives/0/reset", same);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = Send(s->admin_port(), "POST", "/v1/drives/0/reset",
           same + "Authorization: Bearer " + kKeyHex + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // The right key does not make a foreign page welcome.
  r = Send(s->admin_port(), "POST", "/v1/drives/0/reset",
           "Host: 127.0.0.1:" + port + "\r\nOrigin: http://evil.example\r\nAuthorization: Bearer " +
               kKeyHex + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

// The admin port must answer a liveness probe even when every connection
// it allows is taken by clients that send nothing (they used to hold it
// until their header timeout; the probe got 503).
TEST_F(AdminTest, HealthAnswersWhileIdleConnectionsFillTheCap) {
  auto s = Start();
  std::vector<std::unique_ptr<RawHttp>> idle;
  for (int i = 0; i < 64; ++i) {
    idle.push_back(std::make_unique<RawHttp>(s->admin_port()));
    ASSERT_TRUE(idle.back()->ok()) << i;
  }
  // Accepted in order: the probe comes after all 64 are in.
  RawHttp probe(s->admin_port());
  ASSERT_TRUE(probe.Send("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto r = probe.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body).at("status"), "healthy");
  // Asked again at once (before its keep-alive idle time could run out).
  ASSERT_TRUE(probe.Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  r = probe.Read();
  ASSERT_TRUE(r);
  const size_t at = r->body.find("\nmemkv_admin_connections_evicted_total ");
  ASSERT_NE(at, std::string::npos) << r->body;
  EXPECT_GE(std::atoi(r->body.c_str() + at + 39), 1) << r->body.substr(at, 45);
  EXPECT_NE(r->body.find("memkv_admin_connections_refused_total 0\n"), std::string::npos);
  // The one evicted waited longest since its accept: idle[0] or, on a
  // loaded machine, the connection of Start()'s readiness check if the
  // server had not yet seen it close. Never a younger one, even when the
  // loops started their sessions out of order.
  for (int i = 1; i < 64; ++i) EXPECT_FALSE(idle[i]->ClosedWithin(0)) << i;
}

TEST_F(AdminTest, AdminLimitsComeFromTheConfig) {
  auto s = Start({"--set", "admin.max_connections=2", "--set", "admin.max_body_size=2 KiB",
                  "--set", "admin.max_header_size=1 KiB"});
  RawHttp a(s->admin_port()), b(s->admin_port());
  RawHttp probe(s->admin_port());
  ASSERT_TRUE(probe.Send("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto r = probe.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(a.ClosedWithin(10000));
  r = Send(s->admin_port(), "POST", "/v1/drives/0/reset",
           "Host: 127.0.0.1\r\nX-Pad: " + std::string(2000, 'x') + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  RawHttp big(s->admin_port());
  ASSERT_TRUE(big.Send("POST /v1/drives/0/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4096\r\n\r\n"));
  r = big.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(AdminTest, HttpsWhenCertificateAndKeyAreSet) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
  const std::string cert = dir_.File("cert.pem"), key = dir_.File("key.pem");
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto s = Start({"--set", "network.tls_cert=" + cert, "--set", "network.tls_key=" + key});
  url_ = *http::ParseUrl("https://127.0.0.1:" + std::to_string(s->admin_port()));
  http::ClientOptions trust;
  trust.ca_file = cert;
  auto r = http::Fetch(url_, "GET", "/v1/health", trust);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body).at("status"), "healthy");
  // Not trusted without the CA; plain HTTP gets no answer.
  EXPECT_FALSE(http::Fetch(url_, "GET", "/v1/health"));
  http::Url plain = url_;
  plain.tls = false;
  http::ClientOptions quick;
  quick.timeout = std::chrono::seconds(15);
  auto p = http::Fetch(plain, "GET", "/v1/health", quick);
  EXPECT_TRUE(!p || p->status != 200);
}

TEST_F(AdminTest, GracefulShutdownStopsTheAdminListener) {
  auto s = Start();
  EXPECT_EQ(GetJson("/v1/ready").at("ready"), true);
  const uint16_t admin = s->admin_port();
  EXPECT_EQ(s->Stop(), 0);
  EXPECT_FALSE(RawHttp(admin).ok());
}

}  // namespace
}  // namespace memkv::testing
