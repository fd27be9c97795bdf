#pragma once
// http::Router: routes a request to its handler by method and path.
//
// Patterns are paths whose segments are literals or `{name}` parameters:
// "/v1/drives/{id}/reset" matches "/v1/drives/3/reset" with params["id"] ==
// "3". A path no route matches is 404; a path some route matches, with
// another method, is 405 with an Allow header. GET routes also answer HEAD.
// Every error is a JSON body {"error": "...", "status": N, ...}.
//
// Static files: AddStatic("/docs/", files) serves exactly the keys of
// `files` (relative paths such as "index.html" or "css/site.css") under the
// prefix; a path ending in '/' means its "index.html". Nothing outside the
// map can be named: a request is looked up by its decoded path, and one
// with "." or ".." segments, encoded slashes, backslashes or NUL is 404
// before any lookup.
//
// Host and Origin: with SetHostPolicy(policy), every request is first
// checked by http::CheckHostAndOrigin (http/host_policy.h) and refused with
// 403 {"error": ..., "reason": "host"|"origin"|"sec-fetch-site"} before any
// route, file or 404 is looked at.
//
// Auth: with RequireBearer(token), every request whose method changes state
// (anything but GET, HEAD and OPTIONS) needs "Authorization: Bearer <token>",
// compared in constant time; otherwise 401.
//
// Threads: routes are added before the server starts; after that the router
// is read-only and shared by every loop.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/host_policy.h"
#include "http/message.h"

namespace boost::asio {
class any_io_executor;
template <typename T, typename Executor>
class awaitable;
}  // namespace boost::asio

namespace memkv::http {

// Exactly boost::asio::awaitable<T> (see io/asio_fwd.h for why it is spelled
// out).
template <class T>
using Awaitable = boost::asio::awaitable<T, boost::asio::any_io_executor>;

// A route handler. It runs on the loop of the connection that asked and may
// co_await; it must not block the loop.
using Handler = std::function<Awaitable<Response>(const Request&)>;

// One embedded file: its bytes (static storage, not copied) and type.
struct StaticFile {
  std::string_view bytes;
  std::string_view content_type;
};
using StaticFiles = std::map<std::string, StaticFile, std::less<>>;

struct EmbeddedFile;  // http/embedded.h
// The table of files compiled into the binary, as a router serves them.
StaticFiles FilesOf(std::span<const EmbeddedFile> embedded);

// A request target split up: the percent-decoded path segments (no empty
// ones, except that `trailing_slash` says the path ended in '/'), and the
// decoded query. `ok` is false for a target that is not origin-form
// ("/..."), or whose encoding is broken (a bad %XY escape).
struct Target {
  bool ok = false;
  std::string path;                   // decoded, as "/a/b/"
  std::vector<std::string> segments;  // decoded
  bool trailing_slash = false;
  bool unsafe = false;  // some segment is "." or "..", or decodes to '/', '\\' or NUL
  std::map<std::string, std::string, std::less<>> query;
};
Target ParseTarget(std::string_view target);

// Appends the decoding of `in` to `out`: "%41b+c" gives "Ab c" when
// `plus_is_space` ("Ab+c" otherwise). False on a bad %XY escape.
bool PercentDecode(std::string_view in, std::string& out, bool plus_is_space);

// Whether two secrets are equal, in time that depends only on their lengths.
bool SecretsEqual(std::string_view a, std::string_view b);

class Router {
 public:
  Router();
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Adds a route. A pattern starts with '/'; `{name}` is a whole segment.
  void Add(Method method, std::string_view pattern, Handler handler);
  // Serves `files` under `prefix` (which starts and ends with '/').
  void AddStatic(std::string_view prefix, StaticFiles files);
  // State-changing requests need this bearer token (empty: none needed).
  void RequireBearer(std::string token);
  // Every request must pass `policy` (none set: every Host and Origin pass).
  void SetHostPolicy(HostPolicy policy);

  // What a request resolves to, without running anything.
  struct Resolution {
    int status = 404;  // 200: `handler` or `file` is set
    const Handler* handler = nullptr;
    const StaticFile* file = nullptr;
    std::map<std::string, std::string, std::less<>> params;
    std::string allow;  // for 405: "GET, HEAD"
  };
  Resolution Resolve(Method method, const Target& target) const;

  // Parses the target into `req` (path, query, params), checks auth, and
  // runs the handler; every failure is a JSON error response.
  Awaitable<Response> Handle(Request& req) const;

 private:
  struct Route;
  std::vector<Route> routes_;
  struct StaticRoute;
  std::vector<StaticRoute> statics_;
  std::string bearer_;
  std::optional<HostPolicy> host_policy_;
};

}  // namespace memkv::http
