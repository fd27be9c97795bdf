#include "http/router.h"

#include "http/embedded.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "http/json.h"

namespace memkv::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "{name}" -> "name"; otherwise empty.
std::string_view ParamName(std::string_view segment) {
  if (segment.size() >= 3 && segment.front() == '{' && segment.back() == '}')
    return segment.substr(1, segment.size() - 2);
  return {};
}

std::vector<std::string> SplitPattern(std::string_view pattern) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < pattern.size()) {
    const size_t slash = pattern.find('/', at);
    const size_t end = slash == std::string_view::npos ? pattern.size() : slash;
    if (end > at) out.emplace_back(pattern.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

bool StateChanging(Method m) {
  return m != Method::kGet && m != Method::kHead && m != Method::kOptions;
}

}  // namespace

struct Router::Route {
  Method method;
  std::string pattern;
  std::vector<std::string> segments;  // literals, or "{name}"
  Handler handler;
};

struct Router::StaticRoute {
  std::vector<std::string> prefix;  // "/docs/" -> {"docs"}
  StaticFiles files;
};

bool PercentDecode(std::string_view in, std::string& out, bool plus_is_space) {
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

Target ParseTarget(std::string_view target) {
  Target t;
  if (target.empty() || target.front() != '/') return t;
  const size_t q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  std::string_view raw_query = q == std::string_view::npos ? "" : target.substr(q + 1);
  if (const size_t hash = raw_query.find('#'); hash != std::string_view::npos)
    raw_query = raw_query.substr(0, hash);

  t.trailing_slash = raw_path.size() > 1 && raw_path.back() == '/';
  size_t at = 1;
  while (at <= raw_path.size()) {
    const size_t slash = raw_path.find('/', at);
    const size_t end = slash == std::string_view::npos ? raw_path.size() : slash;
    const std::string_view raw = raw_path.substr(at, end - at);
    at = end + 1;
    if (raw.empty()) {
      // "//" inside a path: not a name any route or file has.
      if (end != raw_path.size()) t.unsafe = true;
      continue;
    }
    std::string seg;
    if (!PercentDecode(raw, seg, false)) return t;
    if (seg == "." || seg == ".." ||
        seg.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos)
      t.unsafe = true;
    t.segments.push_back(std::move(seg));
  }
  t.path = "/";
  for (size_t i = 0; i < t.segments.size(); ++i) {
    if (i) t.path += '/';
    t.path += t.segments[i];
  }
  if (t.trailing_slash && !t.segments.empty()) t.path += '/';

  at = 0;
  while (at < raw_query.size()) {
    const size_t amp = raw_query.find('&', at);
    const size_t end = amp == std::string_view::npos ? raw_query.size() : amp;
    const std::string_view pair = raw_query.substr(at, end - at);
    at = end + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string name, value;
    if (!PercentDecode(pair.substr(0, eq), name, true)) return t;
    if (eq != std::string_view::npos && !PercentDecode(pair.substr(eq + 1), value, true)) return t;
    t.query[std::move(name)] = std::move(value);
  }
  t.ok = true;
  return t;
}

bool SecretsEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Router::Router() = default;
Router::~Router() = default;

void Router::Add(Method method, std::string_view pattern, Handler handler) {
  routes_.push_back(Route{method, std::string(pattern), SplitPattern(pattern), std::move(handler)});
}

void Router::AddStatic(std::string_view prefix, StaticFiles files) {
  statics_.push_back(StaticRoute{SplitPattern(prefix), std::move(files)});
}

void Router::RequireBearer(std::string token) { bearer_ = std::move(token); }

void Router::SetHostPolicy(HostPolicy policy) { host_policy_ = std::move(policy); }

Router::Resolution Router::Resolve(Method method, const Target& target) const {
  Resolution res;
  if (target.unsafe) return res;  // 404: no route or file has such a name
  const Method as = method == Method::kHead ? Method::kGet : method;
  std::vector<Method> allowed;
  for (const Route& r : routes_) {
    if (r.segments.size() != target.segments.size()) continue;
    std::map<std::string, std::string, std::less<>> params;
    bool match = true;
    for (size_t i = 0; i < r.segments.size() && match; ++i) {
      const std::string_view name = ParamName(r.segments[i]);
      if (!name.empty()) {
        params[std::string(name)] = target.segments[i];
      } else {
        match = r.segments[i] == target.segments[i];
      }
    }
    // "/v1/health/" is not "/v1/health".
    if (!match || target.trailing_slash) continue;
    if (r.method == as) {
      res.status = 200;
      res.handler = &r.handler;
      res.params = std::move(params);
      return res;
    }
    allowed.push_back(r.method);
  }
  // A route's path with another method is 405, even under a static prefix
  // ("/" serving files).
  if (!allowed.empty()) {
    res.status = 405;
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    for (Method m : allowed) {
      if (!res.allow.empty()) res.allow += ", ";
      res.allow += MethodName(m);
      if (m == Method::kGet) res.allow += ", HEAD";
    }
    return res;
  }
  for (const StaticRoute& s : statics_) {
    if (target.segments.size() < s.prefix.size()) continue;
    if (!std::equal(s.prefix.begin(), s.prefix.end(), target.segments.begin())) continue;
    // "/docs" (no slash) is not under "/docs/"; "/" is the root's index.
    if (target.segments.size() == s.prefix.size() && !target.trailing_slash && !s.prefix.empty())
      continue;
    std::string key;
    for (size_t i = s.prefix.size(); i < target.segments.size(); ++i) {
      if (!key.empty()) key += '/';
      key += target.segments[i];
    }
    if (key.empty() || target.trailing_slash) key += key.empty() ? "index.html" : "/index.html";
    auto it = s.files.find(key);
    if (it == s.files.end()) return res;  // 404
    if (as != Method::kGet) {
      res.status = 405;
      res.allow = "GET, HEAD";
      return res;
    }
    res.status = 200;
    res.file = &it->second;
    return res;
  }
  return res;
}

Awaitable<Response> Router::Handle(Request& req) const {
  // First, so that a page on a foreign name learns nothing, not even which
  // paths exist.
  if (host_policy_) {
    if (std::optional<Refusal> no = CheckHostAndOrigin(*host_policy_, req)) {
      boost::json::object extra;
      extra["reason"] = no->reason;
      co_return ErrorResponse(403, no->message, extra);
    }
  }
  const Target target = ParseTarget(req.target);
  if (!target.ok) co_return ErrorResponse(400, "malformed request target");
  req.path = target.path;
  req.query = target.query;
  Resolution res = Resolve(req.method, target);
  if (res.status == 404) {
    boost::json::object extra;
    extra["path"] = target.unsafe ? std::string_view(req.target) : std::string_view(req.path);
    co_return ErrorResponse(404, "no such resource", extra);
  }
  if (res.status == 405) {
    boost::json::object extra;
    boost::json::array allow;
    size_t at = 0;
    while (at < res.allow.size()) {
      size_t comma = res.allow.find(", ", at);
      if (comma == std::string::npos) comma = res.allow.size();
      allow.emplace_back(std::string_view(res.allow).substr(at, comma - at));
      at = comma + 2;
    }
    extra["allow"] = std::move(allow);
    Response r =
        ErrorResponse(405, std::string(MethodName(req.method)) + " is not allowed here", extra);
    r.headers.emplace_back("Allow", res.allow);
    co_return r;
  }
  if (StateChanging(req.method) && !bearer_.empty()) {
    const std::string_view auth = req.Header("Authorization");
    constexpr std::string_view kScheme = "Bearer ";
    const bool ok = auth.size() > kScheme.size() &&
                    std::equal(kScheme.begin(), kScheme.end(), auth.begin(),
                               [](char a, char b) { return std::tolower(a) == std::tolower(b); }) &&
                    SecretsEqual(auth.substr(kScheme.size()), bearer_);
    if (!ok) {
      Response r = ErrorResponse(401, auth.empty() ? "this request needs the auth key: "
                                                     "Authorization: Bearer <network.auth_key>"
                                                   : "wrong auth key");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      co_return r;
    }
  }
  if (res.file) {
    Response r;
    r.content_type = std::string(res.file->content_type);
    r.body = std::string(res.file->bytes);
    co_return r;
  }
  req.params = std::move(res.params);
  co_return co_await (*res.handler)(req);
}

StaticFiles FilesOf(std::span<const EmbeddedFile> embedded) {
  StaticFiles files;
  for (const EmbeddedFile& f : embedded)
    files.emplace(std::string(f.path), StaticFile{f.body, f.content_type});
  return files;
}

}  // namespace memkv::http
