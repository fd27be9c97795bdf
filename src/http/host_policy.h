#pragma once
// http::HostPolicy: which requests a server answers at all, judged by the
// names in them, so that no web page can use a browser to act on a port
// that listens on loopback (or anywhere) without a password.
//
// Two attacks, two checks:
// - DNS rebinding: a page on evil.example points its own name at 127.0.0.1
//   and then reads the port as same-origin; every request it sends carries
//   `Host: evil.example:PORT`. So every request (reads too) must name the
//   server by an IP literal (v4, or v6 in brackets), `localhost`, or one of
//   `allowed_hosts`, with or without a port.
// - Cross-site requests: any page can send a "simple" POST to
//   http://127.0.0.1:PORT (no preflight, the response unread but the
//   damage done). Browsers label such requests: `Origin` names the page's
//   origin and `Sec-Fetch-Site` says cross-site or same-site. A request
//   that changes state (not GET, HEAD or OPTIONS) is refused when its
//   Origin is present and is not the origin it was addressed to (scheme,
//   and Host's name and port), or when Sec-Fetch-Site is `cross-site` or
//   `same-site` (a sibling origin, e.g. another port of the same host).
// Clients that are not browsers (curl, `memkv admin`) send no Origin and
// pass; the server's own pages (same-origin fetches) pass.
//
// Pure: no I/O, no state. The router applies it to every request before
// anything else (http/router.h).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace memkv::http {

struct HostPolicy {
  // Host names answered besides IP literals and `localhost` (any case, no
  // port, no trailing dot): the names users put in the address bar.
  std::vector<std::string> allowed_hosts;
  // Where a user adds a name (named in the refusal): "admin.allowed_hosts".
  std::string allowed_hosts_setting = "allowed_hosts";
};

// Why a request is refused: `reason` is a short tag ("host", "origin",
// "sec-fetch-site"), `message` the whole explanation for the client.
struct Refusal {
  std::string reason;
  std::string message;
};

// The refusal of `req` under `policy` (answer 403 with it), or nullopt when
// the request may go on. Reads `req.method`, `req.tls` and the Host, Origin
// and Sec-Fetch-Site fields.
std::optional<Refusal> CheckHostAndOrigin(const HostPolicy& policy, const Request& req);

// "host", "host:port", "[v6]" or "[v6]:port", split, with the host in
// lower case (brackets kept for v6). nullopt for anything else (an empty
// host or port, a bad v6 literal, characters no host name has).
struct Authority {
  std::string host;
  std::optional<uint16_t> port;
  bool ip_literal = false;  // a dotted-quad IPv4 or a bracketed IPv6 address
};
std::optional<Authority> ParseAuthority(std::string_view text);

}  // namespace memkv::http
