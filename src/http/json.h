#pragma once
// JSON responses, written with Boost.JSON (never by hand).

#include <string_view>

#include "http/message.h"

namespace boost::json {
class value;
}

namespace memkv::http {

inline constexpr std::string_view kJsonType = "application/json";

// `v` serialized, with Content-Type application/json.
Response JsonResponse(int status, const boost::json::value& v);
// {"error": message, "status": status}.
Response ErrorResponse(int status, std::string_view message);
// {"error": message, "status": status, ...extra's members}; `extra` must be
// an object.
Response ErrorResponse(int status, std::string_view message, const boost::json::value& extra);

}  // namespace memkv::http
