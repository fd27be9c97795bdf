#include "http/message.h"

#include <strings.h>

namespace memkv::http {
namespace {

struct MethodNameEntry {
  Method method;
  const char* name;
};
constexpr MethodNameEntry kMethods[] = {
    {Method::kGet, "GET"},         {Method::kHead, "HEAD"},     {Method::kPost, "POST"},
    {Method::kPut, "PUT"},         {Method::kDelete, "DELETE"}, {Method::kPatch, "PATCH"},
    {Method::kOptions, "OPTIONS"},
};

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

const char* MethodName(Method m) {
  for (const auto& e : kMethods)
    if (e.method == m) return e.name;
  return "OTHER";
}

Method ParseMethod(std::string_view token) {
  for (const auto& e : kMethods)
    if (token == e.name) return e.method;
  return Method::kOther;
}

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (EqualNoCase(k, name)) return v;
  return {};
}

std::string_view Request::Param(std::string_view name, std::string_view fallback) const {
  auto it = params.find(name);
  return it == params.end() ? fallback : std::string_view(it->second);
}

std::string_view Request::Query(std::string_view name, std::string_view fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : std::string_view(it->second);
}

}  // namespace memkv::http
