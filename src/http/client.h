#pragma once
// A small blocking HTTP/1.1 client for the admin API (`memkv admin`, tests):
// one request per connection, with a deadline over the whole exchange.

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace memkv::http {

// "http://host:port", "https://host:port" or "host:port" (http); a path
// after the port is the base of every request's target.
struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base;  // "" or "/prefix" (no trailing '/')
  std::string ToString() const;
};
// errc: invalid_argument for anything else (a bad scheme, no port, ...).
Result<Url> ParseUrl(std::string_view text);

struct ClientOptions {
  std::chrono::milliseconds timeout{5000};
  std::string bearer_token;  // sent as Authorization: Bearer
  std::string ca_file;       // https: trust this CA (PEM) instead of the system's
  bool insecure = false;     // https: do not verify the server's certificate
};

struct ClientResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends `method target` (target joined to url.base) with `body`; the
// response, or the error (connection refused, timed out, TLS, ...).
Result<ClientResponse> Fetch(const Url& url, std::string_view method, std::string_view target,
                             const ClientOptions& options = {}, std::string_view body = {});

}  // namespace memkv::http
