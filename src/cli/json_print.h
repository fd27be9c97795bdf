#pragma once
// JSON for people: Boost.JSON values printed with two-space indentation.

#include <string>

#include <boost/json/value.hpp>

namespace memkv::cli {

std::string PrettyJson(const boost::json::value& v);

}  // namespace memkv::cli
