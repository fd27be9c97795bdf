#include "http/host_policy.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace memkv::http {
namespace {

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool StateChanging(Method m) {
  return m != Method::kGet && m != Method::kHead && m != Method::kOptions;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads "" (no port) or 1 to 65535 in decimal into `port`; false for
// anything else.
bool ParsePort(std::string_view text, std::optional<uint16_t>& port) {
  port.reset();
  if (text.empty()) return true;
  if (text.size() > 5) return false;
  uint32_t p = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
  if (ec != std::errc() || end != text.data() + text.size() || p == 0 || p > 65535) return false;
  port = static_cast<uint16_t>(p);
  return true;
}

// The port a request's origin has when its Host names none.
uint16_t DefaultPort(bool tls) { return tls ? 443 : 80; }

}  // namespace

std::optional<Authority> ParseAuthority(std::string_view text) {
  Authority a;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string inner(text.substr(1, close - 1));
    in6_addr a6{};
    // No zone ids ("%25eth0"): inet_pton refuses them, and no browser sends one.
    if (::inet_pton(AF_INET6, inner.c_str(), &a6) != 1) return std::nullopt;
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || rest.size() == 1) return std::nullopt;
      port = rest.substr(1);
    }
    a.host = "[" + Lower(inner) + "]";
    a.ip_literal = true;
  } else {
    const size_t colon = text.find(':');
    const std::string_view host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      // An unbracketed v6 address, or "host:" with no port.
      if (port.empty() || port.find(':') != std::string_view::npos) return std::nullopt;
    }
    if (host.empty() || host.size() > 253) return std::nullopt;
    for (char c : host) {
      const bool ok =
          std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
      if (!ok) return std::nullopt;
    }
    a.host = Lower(host);
    in_addr a4{};
    a.ip_literal = ::inet_pton(AF_INET, a.host.c_str(), &a4) == 1;
  }
  if (!ParsePort(port, a.port)) return std::nullopt;
  return a;
}

std::optional<Refusal> CheckHostAndOrigin(const HostPolicy& policy, const Request& req) {
  // Host: exactly one, naming this server.
  std::string_view host_text;
  size_t hosts = 0;
  for (const auto& [name, value] : req.headers) {
    if (EqualNoCase(name, "Host")) {
      host_text = value;
      ++hosts;
    }
  }
  if (hosts == 0) {
    return Refusal{"host",
                   "the request has no Host header; send one naming this server (its IP "
                   "address, localhost, or a name in " +
                       policy.allowed_hosts_setting + ")"};
  }
  if (hosts > 1) return Refusal{"host", "the request has more than one Host header"};
  const std::optional<Authority> host = ParseAuthority(host_text);
  if (!host) {
    return Refusal{"host", "host '" + std::string(host_text) +
                               "' is not a valid host name or address (with an optional port)"};
  }
  const bool known =
      host->ip_literal || host->host == "localhost" ||
      std::any_of(policy.allowed_hosts.begin(), policy.allowed_hosts.end(),
                  [&](const std::string& name) { return EqualNoCase(name, host->host); });
  if (!known) {
    return Refusal{"host", "host '" + std::string(host_text) +
                               "' is not one this server answers to; add '" + host->host + "' to " +
                               policy.allowed_hosts_setting};
  }
  if (!StateChanging(req.method)) return std::nullopt;

  // Changing state: not for another origin's page.
  const std::string_view site = req.Header("Sec-Fetch-Site");
  if (EqualNoCase(site, "cross-site") || EqualNoCase(site, "same-site")) {
    return Refusal{"sec-fetch-site",
                   "a request from another site's page (Sec-Fetch-Site: " + std::string(site) +
                       ") cannot change state here; use curl or memkv admin"};
  }
  bool has_origin = false;
  for (const auto& [name, value] : req.headers)
    has_origin = has_origin || EqualNoCase(name, "Origin");
  if (!has_origin) return std::nullopt;
  const std::string_view origin = req.Header("Origin");
  const std::string own = std::string(req.tls ? "https://" : "http://") + host->host + ":" +
                          std::to_string(host->port.value_or(DefaultPort(req.tls)));
  const auto foreign = [&] {
    return Refusal{"origin", "origin '" + std::string(origin) + "' is not this server's own (" +
                                 own + "); a page of another origin cannot change state here"};
  };
  // "null" (sandboxed frames, file: pages), or anything but scheme://authority.
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos) return foreign();
  const std::string scheme = Lower(origin.substr(0, sep));
  if (scheme != (req.tls ? "https" : "http")) return foreign();
  const std::optional<Authority> from = ParseAuthority(origin.substr(sep + 3));
  if (!from || from->host != host->host ||
      from->port.value_or(DefaultPort(req.tls)) != host->port.value_or(DefaultPort(req.tls)))
    return foreign();
  return std::nullopt;
}

}  // namespace memkv::http
