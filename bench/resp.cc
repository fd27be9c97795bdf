#include "resp.h"

#include <charconv>

namespace memkv::bench::resp {
namespace {

constexpr int64_t kMaxLength = int64_t{1} << 30;
constexpr int kMaxDepth = 32;

void AppendNumber(std::string& out, int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void AppendBulk(std::string& out, std::string_view s) {
  out += '$';
  AppendNumber(out, static_cast<int64_t>(s.size()));
  out += "\r\n";
  out += s;
  out += "\r\n";
}

// The line starting at `at` (without its CRLF); npos in `end` when the
// buffer holds no complete line yet.
bool Line(std::string_view in, size_t at, std::string_view& line, size_t& next) {
  const size_t cr = in.find("\r\n", at);
  if (cr == std::string_view::npos) return false;
  line = in.substr(at, cr - at);
  next = cr + 2;
  return true;
}

bool Integer(std::string_view s, int64_t& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

ParseStatus ParseAt(std::string_view in, size_t at, Value& out, size_t& next, int depth) {
  if (depth > kMaxDepth) return ParseStatus::kError;
  if (at >= in.size()) return ParseStatus::kIncomplete;
  const char kind = in[at];
  std::string_view line;
  size_t after = 0;
  if (!Line(in, at + 1, line, after)) {
    // A line that cannot end well is an error already; otherwise wait.
    if (kind != '+' && kind != '-' && kind != ':' && kind != '$' && kind != '*')
      return ParseStatus::kError;
    return ParseStatus::kIncomplete;
  }
  out.elements.clear();
  switch (kind) {
    case '+':
    case '-':
      out.type = kind == '+' ? Type::kSimple : Type::kError;
      out.text = line;
      next = after;
      return ParseStatus::kOk;
    case ':':
      out.type = Type::kInteger;
      if (!Integer(line, out.integer)) return ParseStatus::kError;
      next = after;
      return ParseStatus::kOk;
    case '$': {
      int64_t len;
      if (!Integer(line, len) || len < -1 || len > kMaxLength) return ParseStatus::kError;
      if (len == -1) {
        out.type = Type::kNull;
        next = after;
        return ParseStatus::kOk;
      }
      const size_t n = static_cast<size_t>(len);
      if (in.size() - after < n + 2) return ParseStatus::kIncomplete;
      if (in[after + n] != '\r' || in[after + n + 1] != '\n') return ParseStatus::kError;
      out.type = Type::kBulk;
      out.text = in.substr(after, n);
      next = after + n + 2;
      return ParseStatus::kOk;
    }
    case '*': {
      int64_t count;
      if (!Integer(line, count) || count < -1 || count > kMaxLength) return ParseStatus::kError;
      if (count == -1) {
        out.type = Type::kNull;
        next = after;
        return ParseStatus::kOk;
      }
      out.type = Type::kArray;
      std::vector<Value> elements(static_cast<size_t>(count));
      size_t pos = after;
      for (Value& e : elements) {
        const ParseStatus st = ParseAt(in, pos, e, pos, depth + 1);
        if (st != ParseStatus::kOk) return st;
      }
      out.elements = std::move(elements);
      next = pos;
      return ParseStatus::kOk;
    }
    default:
      return ParseStatus::kError;
  }
}

}  // namespace

void AppendCommand(std::string& out, std::span<const std::string_view> args) {
  out += '*';
  AppendNumber(out, static_cast<int64_t>(args.size()));
  out += "\r\n";
  for (std::string_view a : args) AppendBulk(out, a);
}

void AppendCommand(std::string& out, std::initializer_list<std::string_view> args) {
  AppendCommand(out, std::span<const std::string_view>(args.begin(), args.size()));
}

ParseStatus Parse(std::string_view in, Value& out, size_t& consumed) {
  size_t next = 0;
  const ParseStatus st = ParseAt(in, 0, out, next, 0);
  if (st == ParseStatus::kOk) consumed = next;
  return st;
}

void AppendValue(std::string& out, const Value& v) {
  switch (v.type) {
    case Type::kSimple:
    case Type::kError:
      out += v.type == Type::kSimple ? '+' : '-';
      out += v.text;
      out += "\r\n";
      return;
    case Type::kInteger:
      out += ':';
      AppendNumber(out, v.integer);
      out += "\r\n";
      return;
    case Type::kBulk:
      AppendBulk(out, v.text);
      return;
    case Type::kNull:
      out += "$-1\r\n";
      return;
    case Type::kArray:
      out += '*';
      AppendNumber(out, static_cast<int64_t>(v.elements.size()));
      out += "\r\n";
      for (const Value& e : v.elements) AppendValue(out, e);
      return;
  }
}

}  // namespace memkv::bench::resp
