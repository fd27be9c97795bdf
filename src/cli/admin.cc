// memkv admin status|health: asks the admin API of one or more servers
// (docs/admin-api.md) and prints a table, or JSON with --json. Exit status:
// 0 when every server answered and none is unhealthy, 1 otherwise, 2 for a
// bad command line.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>
#include <CLI/CLI.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "cli/commands.h"
#include "cli/json_print.h"
#include "common/size.h"
#include "http/client.h"

namespace memkv::cli {
namespace {

namespace json = boost::json;

constexpr const char* kDefaultServer = "http://127.0.0.1:9901";

struct AdminFlags {
  std::vector<std::string> servers;
  bool json = false;
  double timeout_s = 5;
  std::string cacert;
  bool insecure = false;
};

// simdjson's document as a Boost.JSON value (JSON in with simdjson, out
// with Boost.JSON).
json::value ToBoost(simdjson::dom::element e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::ARRAY: {
      json::array a;
      for (simdjson::dom::element item : simdjson::dom::array(e)) a.push_back(ToBoost(item));
      return a;
    }
    case T::OBJECT: {
      json::object o;
      for (auto field : simdjson::dom::object(e)) o[field.key] = ToBoost(field.value);
      return o;
    }
    case T::INT64:
      return int64_t(e);
    case T::UINT64:
      return uint64_t(e);
    case T::DOUBLE:
      return double(e);
    case T::STRING:
      return json::string(std::string_view(e));
    case T::BOOL:
      return bool(e);
    case T::NULL_VALUE:
      break;
  }
  return nullptr;
}

// One server's answer to GET `path`.
struct Answer {
  std::string server;  // as given
  bool reachable = false;
  int http_status = 0;
  std::string error;
  json::value body;  // the parsed response
};

std::string Text(const json::value& v, std::string_view key, std::string_view fallback = "-");

Answer Ask(const std::string& server, const std::string& path, const AdminFlags& f) {
  Answer a;
  a.server = server;
  auto url = http::ParseUrl(server);
  if (!url) {
    a.error = "not a server URL (expected http://HOST:PORT or https://HOST:PORT)";
    return a;
  }
  http::ClientOptions opt;
  opt.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  opt.ca_file = f.cacert;
  opt.insecure = f.insecure;
  auto res = http::Fetch(*url, "GET", path, opt);
  if (!res) {
    a.error = res.error().message();
    return a;
  }
  a.reachable = true;
  a.http_status = res->status;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(res->body).get(doc) != simdjson::SUCCESS) {
    a.error = fmt::format("HTTP {}: the answer is not JSON", res->status);
    return a;
  }
  a.body = ToBoost(doc);
  // A refusal (403 for a Host the server does not answer to, 404, ...) is
  // an error with the server's reason, not a row of dashes and exit 0. An
  // unhealthy 503 carries a status instead, and is reported as one.
  if (res->status != 200 && Text(a.body, "error", "").size() > 0)
    a.error = fmt::format("HTTP {}: {}", res->status, Text(a.body, "error"));
  return a;
}

std::string Text(const json::value& v, std::string_view key, std::string_view fallback) {
  if (const auto* o = v.if_object())
    if (const auto* s = o->if_contains(key); s && s->is_string())
      return std::string(s->get_string());
  return std::string(fallback);
}

uint64_t Number(const json::value& v, std::string_view key) {
  if (const auto* o = v.if_object()) {
    if (const auto* n = o->if_contains(key)) {
      if (n->is_uint64()) return n->get_uint64();
      if (n->is_int64() && n->get_int64() >= 0) return static_cast<uint64_t>(n->get_int64());
    }
  }
  return 0;
}

const json::value& Member(const json::value& v, std::string_view key) {
  static const json::value kNull;
  if (const auto* o = v.if_object())
    if (const auto* m = o->if_contains(key)) return *m;
  return kNull;
}

std::string Uptime(uint64_t s) {
  if (s >= 86400) return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}m{:02}s", s / 60, s % 60);
}

// Whether this answer makes the exit status non-zero.
bool Bad(const Answer& a, std::string_view status_key) {
  return !a.reachable || !a.error.empty() || Text(a.body, status_key) == "unhealthy";
}

int Run(const AdminFlags& f, bool status) {
  const std::string path = status ? "/v1/status" : "/v1/health";
  std::vector<Answer> answers;
  for (const std::string& s : f.servers) answers.push_back(Ask(s, path, f));
  int rc = 0;
  for (const Answer& a : answers) rc |= Bad(a, "status") ? 1 : 0;

  if (f.json) {
    json::array out;
    for (const Answer& a : answers) {
      json::object o;
      o["server"] = a.server;
      o["reachable"] = a.reachable;
      if (a.http_status) o["http_status"] = a.http_status;
      if (!a.error.empty()) o["error"] = a.error;
      o[status ? "status" : "health"] = a.body;
      out.push_back(std::move(o));
    }
    std::fputs(PrettyJson(out).c_str(), stdout);
    return rc;
  }

  std::vector<std::vector<std::string>> rows;
  if (status) {
    rows.push_back({"SERVER", "STATUS", "DRIVES", "STORAGE USED", "MEMORY USED", "KEYS", "SESSIONS",
                    "UPTIME"});
  } else {
    rows.push_back({"SERVER", "STATUS", "ONLINE", "OFFLINE", "TOTAL", "RDMA"});
  }
  for (const Answer& a : answers) {
    if (!a.error.empty() || !a.reachable) {
      rows.push_back({a.server, a.reachable ? "error" : "unreachable"});
      std::fprintf(stderr, "memkv admin: %s: %s\n", a.server.c_str(), a.error.c_str());
      continue;
    }
    const json::value& b = a.body;
    if (status) {
      const json::value& storage = Member(b, "storage");
      const json::value& memory = Member(b, "memory");
      uint64_t online = 0, total = 0;
      if (const auto* d = Member(storage, "drives").if_array()) {
        total = d->size();
        for (const auto& drive : *d)
          online += drive.is_object() && drive.at("online") == json::value(true);
      }
      rows.push_back({a.server, Text(b, "status"), fmt::format("{}/{} online", online, total),
                      FormatSize(Number(storage, "used_bytes_total")) + " / " +
                          FormatSize(Number(storage, "usable_bytes_total")),
                      FormatSize(Number(memory, "used_bytes")) + " / " +
                          FormatSize(Number(memory, "capacity_bytes")),
                      std::to_string(Number(storage, "keys")),
                      std::to_string(Number(Member(b, "sessions"), "active")),
                      Uptime(Number(b, "uptime_seconds"))});
    } else {
      const json::value& rdma = Member(b, "rdma_active");
      rows.push_back({a.server, Text(b, "status"), std::to_string(Number(b, "drives_online")),
                      std::to_string(Number(b, "drives_offline")),
                      std::to_string(Number(b, "drives_total")),
                      rdma.is_bool() && rdma.get_bool() ? "active" : "inactive"});
    }
  }
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::puts(line.c_str());
  }
  return rc;
}

}  // namespace

void AddAdminCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<AdminFlags>();
  auto* admin = app.add_subcommand("admin", "Ask servers' admin API for their status or health");
  admin->require_subcommand(1);
  for (const bool status : {true, false}) {
    auto* cmd = admin->add_subcommand(
        status ? "status" : "health",
        status ? "Storage, memory, sessions and drives of each server"
               : "healthy, degraded or unhealthy, and drives online, of each server");
    cmd->add_option("--server", f->servers,
                    "Admin URL (repeatable): http://HOST:PORT, https://HOST:PORT or HOST:PORT "
                    "(the admin port is network.address's port + 1)")
        ->default_str(kDefaultServer);
    cmd->add_flag("--json", f->json, "Print JSON instead of a table");
    cmd->add_option("--timeout", f->timeout_s, "Seconds to wait for each server")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--cacert", f->cacert, "https: trust this CA certificate (PEM)")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--insecure", f->insecure, "https: do not verify the server's certificate");
    cmd->callback([f, status, &exit_code] {
      if (f->servers.empty()) f->servers.push_back(kDefaultServer);
      exit_code = Run(*f, status);
    });
  }
}

}  // namespace memkv::cli
