// EngineOptions: the client config of DESIGN.md from MEMKV_CONFIG (YAML,
// read by client/flat_yaml.h)
// and the environment, and the names of codes and transports.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "client/flat_yaml.h"
#include "client/options.h"
#include "memkv/engine.h"
#include "proto/auth.h"

namespace memkv {
namespace {

Outcome Bad(std::string message) { return {Code::kInvalidArgument, std::move(message)}; }

std::optional<Transport> ParseTransport(std::string_view s) {
  if (s == "auto") return Transport::kAuto;
  if (s == "shm") return Transport::kShm;
  if (s == "tcp") return Transport::kTcp;
  if (s == "rdma") return Transport::kRdma;
  return std::nullopt;
}

// YAML's booleans (1.1 and 1.2 spellings).
std::optional<bool> ParseBool(std::string_view s) {
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* t : kTrue)
    if (s == t) return true;
  for (const char* f : kFalse)
    if (s == f) return false;
  return std::nullopt;
}

// "30s", "500ms", "2m", "1.5s" or a bare number of milliseconds.
std::optional<std::chrono::milliseconds> ParseDuration(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  try {
    v = std::stod(s.substr(0, i));
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  double ms = 0;
  if (unit.empty() || unit == "ms")
    ms = v;
  else if (unit == "s")
    ms = v * 1000;
  else if (unit == "m" || unit == "min")
    ms = v * 60000;
  else if (unit == "h")
    ms = v * 3600000;
  else
    return std::nullopt;
  if (ms < 0 || ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

}  // namespace

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "Ok";
    case Code::kNotFound:
      return "NotFound";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kTooLarge:
      return "TooLarge";
    case Code::kTooManyEntries:
      return "TooManyEntries";
    case Code::kBusy:
      return "Busy";
    case Code::kNoSpace:
      return "NoSpace";
    case Code::kChecksumMismatch:
      return "ChecksumMismatch";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kTimeout:
      return "Timeout";
    case Code::kUnauthorized:
      return "Unauthorized";
    case Code::kUnsupported:
      return "Unsupported";
    case Code::kBufferTooSmall:
      return "BufferTooSmall";
    case Code::kRangeOutOfBounds:
      return "RangeOutOfBounds";
    case Code::kInternal:
      return "Internal";
    case Code::kNoMemory:
      return "NoMemory";
  }
  return "Unknown";
}

const char* TransportName(Transport t) {
  switch (t) {
    case Transport::kAuto:
      return "auto";
    case Transport::kShm:
      return "shm";
    case Transport::kTcp:
      return "tcp";
    case Transport::kRdma:
      return "rdma";
  }
  return "unknown";
}

Outcome EngineOptions::Validate() const {
  if (servers.empty())
    return Bad(
        "servers: no server given (set MEMKV_SERVERS=host:port,... or servers: in MEMKV_CONFIG)");
  std::set<std::string> seen;
  for (size_t i = 0; i < servers.size(); ++i) {
    const std::string& s = servers[i];
    const std::string field = "servers[" + std::to_string(i) + "]";
    if (s.empty()) return Bad(field + ": empty address");
    if (s.find('/') == std::string::npos) {
      const size_t colon = s.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
        return Bad(field + ": '" + s + "' is neither host:port nor a Unix socket path");
    }
    if (!seen.insert(s).second) return Bad(field + ": '" + s + "' is listed twice");
  }
  if (!auth_key.empty() && !proto::AuthKey::FromHex(auth_key))
    return Bad("auth_key: must be 64 hex characters (the server's network.auth_key)");
  if (timeout.count() <= 0) return Bad("timeout: must be more than 0");
  if (connect_timeout.count() <= 0) return Bad("connect_timeout: must be more than 0");
  if (io_threads == 0 || io_threads > 64) return Bad("io_threads: must be 1 to 64");
  if (rdma_provider == "verbs" && rdma_device.empty())
    return Bad("rdma_device: required with rdma_provider verbs (the HCA, e.g. mlx5_0: "
               "`ibv_devices` lists them)");
  if (reconnect_backoff.count() <= 0 || max_reconnect_backoff < reconnect_backoff)
    return Bad("reconnect_backoff: must be more than 0 and at most max_reconnect_backoff");
  return {};
}

Expected<EngineOptions> EngineOptions::FromYaml(std::string_view yaml, std::string_view origin) {
  const std::string where(origin);
  auto doc = client::ParseFlatYaml(yaml);
  if (!doc) return Bad(where + ": not valid client config YAML: " + doc.error().message);
  EngineOptions o;
  using Kind = client::FlatYamlValue::Kind;
  for (const client::FlatYamlValue& v : *doc) {
    const std::string& name = v.name;
    const std::string field = where + ":" + std::to_string(v.line) + ": " + name;
    if (name == "servers") {
      if (v.kind == Kind::kList)
        o.servers = v.list;
      else if (v.kind == Kind::kScalar)
        o.servers = client::SplitServers(v.scalar);
      else
        return Bad(field + ": expected a list of host:port (or a comma-separated string)");
      continue;
    }
    static const char* const kKnown[] = {"auth_key",       "transport",     "timeout",
                                         "connect_timeout", "io_threads",   "immutable_keys",
                                         "rdma_provider",   "rdma_address",  "rdma_device"};
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown))
      return Bad(field +
                 ": unknown field (known: servers, auth_key, transport, timeout, "
                 "connect_timeout, io_threads, immutable_keys, rdma_provider, rdma_address, "
                 "rdma_device)");
    if (v.kind != Kind::kScalar)
      return Bad(field + (v.kind == Kind::kList ? ": expected one value, not a list"
                                                 : ": expected a value"));
    const std::string& text = v.scalar;
    if (name == "auth_key") {
      o.auth_key = text;
    } else if (name == "rdma_provider") {
      o.rdma_provider = text;
    } else if (name == "rdma_address") {
      o.rdma_address = text;
    } else if (name == "rdma_device") {
      o.rdma_device = text;
    } else if (name == "transport") {
      auto t = ParseTransport(text);
      if (!t) return Bad(field + ": '" + text + "' is not one of auto, rdma, shm, tcp");
      o.transport = *t;
    } else if (name == "timeout" || name == "connect_timeout") {
      auto d = ParseDuration(text);
      if (!d || d->count() <= 0)
        return Bad(field + ": '" + text + "' is not a duration (e.g. 500ms, 30s)");
      (name == "timeout" ? o.timeout : o.connect_timeout) = *d;
    } else if (name == "io_threads") {
      int n = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 64)
        return Bad(field + ": '" + text + "' is not a number from 1 to 64");
      o.io_threads = static_cast<size_t>(n);
    } else if (name == "immutable_keys") {
      auto b = ParseBool(text);
      if (!b) return Bad(field + ": '" + text + "' is not true or false");
      o.immutable_keys = *b;
    }
  }
  return o;
}

Expected<EngineOptions> EngineOptions::FromEnvironment(const char* (*getenv)(const char*)) {
  EngineOptions o;
  if (const char* path = getenv("MEMKV_CONFIG"); path && *path) {
    std::ifstream in(path);
    if (!in) return Bad(std::string("MEMKV_CONFIG: cannot read ") + path);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = FromYaml(text.str(), std::string("MEMKV_CONFIG (") + path + ")");
    if (!parsed) return parsed.error();
    o = std::move(*parsed);
  }
  if (const char* s = getenv("MEMKV_SERVERS"); s && *s) {
    o.servers = client::SplitServers(s);
    if (o.servers.empty()) return Bad("MEMKV_SERVERS: no server in the list");
  }
  if (const char* k = getenv("MEMKV_AUTH_KEY"); k && *k) {
    if (!proto::AuthKey::FromHex(k)) return Bad("MEMKV_AUTH_KEY: must be 64 hex characters");
    o.auth_key = k;
  }
  if (const char* t = getenv("MEMKV_TRANSPORT"); t && *t) {
    auto tr = ParseTransport(t);
    if (!tr)
      return Bad(std::string("MEMKV_TRANSPORT: '") + t + "' is not one of auto, rdma, shm, tcp");
    o.transport = *tr;
  }
  if (const char* p = getenv("MEMKV_RDMA_PROVIDER"); p && *p) o.rdma_provider = p;
  if (const char* a = getenv("MEMKV_RDMA_ADDRESS"); a && *a) o.rdma_address = a;
  if (const char* d = getenv("MEMKV_RDMA_DEVICE"); d && *d) o.rdma_device = d;
  if (auto v = o.Validate(); !v) return v;
  return o;
}

Expected<EngineOptions> EngineOptions::FromEnvironment() {
  return FromEnvironment([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace memkv
