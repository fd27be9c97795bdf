#pragma once
// http::Request and http::Response: what a route handler sees and returns.
// Plain data, no Beast: the server (server.cc) converts from and to Beast's
// messages, so a handler and its tests need no HTTP machinery at all.

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memkv::http {

enum class Method { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };

// "GET", "POST", ...; kOther is "OTHER".
const char* MethodName(Method m);
// The method of a request line's token (case-sensitive, as HTTP is).
Method ParseMethod(std::string_view token);

struct Request {
  Method method = Method::kGet;
  std::string target;  // as sent: "/v1/drives/0/reset?secure=true"
  std::string path;    // percent-decoded path, without the query
  // Query parameters, percent-decoded ('+' is a space); the last of a
  // repeated name wins. A name without '=' has an empty value.
  std::map<std::string, std::string, std::less<>> query;
  // The {name} parts of the matched route ("/v1/drives/{id}/reset").
  std::map<std::string, std::string, std::less<>> params;
  // Header fields as sent, in order (names keep their case).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string peer;  // "127.0.0.1:53422"
  bool tls = false;  // it came over TLS: its own origin is https://<Host>

  // The first field named `name` (any case), or "" if none.
  std::string_view Header(std::string_view name) const;
  // A path parameter or query parameter, or `fallback`.
  std::string_view Param(std::string_view name, std::string_view fallback = {}) const;
  std::string_view Query(std::string_view name, std::string_view fallback = {}) const;
  bool HasQuery(std::string_view name) const { return query.count(name) != 0; }
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra header fields (Allow, WWW-Authenticate, Cache-Control, ...).
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace memkv::http
