#include "http/json.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace memkv::http {

Response JsonResponse(int status, const boost::json::value& v) {
  Response r;
  r.status = status;
  r.content_type = std::string(kJsonType);
  r.body = boost::json::serialize(v);
  r.body += '\n';
  return r;
}

Response ErrorResponse(int status, std::string_view message) {
  return ErrorResponse(status, message, boost::json::object{});
}

Response ErrorResponse(int status, std::string_view message, const boost::json::value& extra) {
  boost::json::object o;
  o["error"] = message;
  o["status"] = status;
  if (const auto* x = extra.if_object())
    for (const auto& [k, v] : *x) o[k] = v;
  return JsonResponse(status, o);
}

}  // namespace memkv::http
