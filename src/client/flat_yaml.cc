// ParseFlatYaml: the client config's YAML subset (flat_yaml.h), line by line.

#include "client/flat_yaml.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace memkv::client {
namespace {

using Value = FlatYamlValue;

Outcome LineError(int line, const std::string& what) {
  return {Code::kInvalidArgument, "line " + std::to_string(line) + ": " + what};
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Plain text up to its comment (a `#` at its start or after a blank), trimmed.
std::string_view CutComment(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) return Trim(s.substr(0, i));
  return Trim(s);
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// What may follow a value on its line: nothing, or blanks and a comment.
bool OnlyComment(std::string_view rest) {
  if (rest.empty()) return true;
  if (!IsBlank(rest.front())) return false;
  rest = Trim(rest);
  return rest.empty() || rest.front() == '#';
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<uint32_t> Hex(std::string_view s) {
  uint32_t v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
    else return std::nullopt;
  }
  return v;
}

// A quoted scalar at the start of `s`; `rest` is what follows its closing quote.
Expected<std::string> Unquote(std::string_view s, int line, std::string_view& rest) {
  const char q = s.front();
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (q == '\'' && c == '\'') {
      if (i + 1 < s.size() && s[i + 1] == '\'') {
        out += '\'';
        ++i;
        continue;
      }
      rest = s.substr(i + 1);
      return out;
    }
    if (q == '"' && c == '"') {
      rest = s.substr(i + 1);
      return out;
    }
    if (q == '"' && c == '\\') {
      if (++i == s.size()) break;
      const char e = s[i];
      switch (e) {
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case '/': out += '/'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case ' ': out += ' '; break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          auto v = i + n < s.size() ? Hex(s.substr(i + 1, n)) : std::nullopt;
          if (!v || *v > 0x10FFFF || (*v >= 0xD800 && *v <= 0xDFFF))
            return LineError(line, std::string("bad \\") + e + " escape in a double-quoted value");
          AppendUtf8(out, *v);
          i += n;
          break;
        }
        default:
          return LineError(line, std::string("unknown escape \\") + e + " in a double-quoted value");
      }
      continue;
    }
    out += c;
  }
  return LineError(line, std::string("a ") + (q == '"' ? "double" : "single") +
                             "-quoted value is not closed on its line");
}

// Why YAML does not read `s` as a plain scalar from its first character, if
// it does not: the indicators, and `-?:` unless a non-blank follows.
std::optional<std::string> BadPlainStart(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const char c = s.front();
  static constexpr std::string_view kNever = "[]{},#&*!|>%@`'\"";
  if (kNever.find(c) != std::string_view::npos)
    return std::string("a plain name or value cannot start with '") + c + "' (quote it)";
  if ((c == '-' || c == '?' || c == ':') && (s.size() == 1 || s[1] == ' ' || s[1] == '\t'))
    return std::string("a plain name or value cannot be or start with '") + c + " ' (quote it)";
  return std::nullopt;
}

// The offset of the first byte that is not part of well-formed UTF-8.
std::optional<ptrdiff_t> FirstBadUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return static_cast<ptrdiff_t>(i);
    }
    if (i + n >= s.size()) return static_cast<ptrdiff_t>(i);
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return static_cast<ptrdiff_t>(i);
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return static_cast<ptrdiff_t>(i);
    i += n + 1;
  }
  return std::nullopt;
}

bool IsNull(std::string_view plain) {
  return plain.empty() || plain == "~" || plain == "null" || plain == "Null" || plain == "NULL";
}

// A plain scalar's text (comment cut): what YAML would not read as one
// value here is refused.
Expected<Value> Plain(std::string_view s, int line) {
  Value v;
  if (!s.empty()) {
    const char c = s.front();
    if (c == '&' || c == '*' || c == '!')
      return LineError(line, "anchors, aliases and tags are not supported in the client config");
    if (c == '|' || c == '>')
      return LineError(line, "block scalars (| and >) are not supported in the client config");
    if (c == '{' || c == '[')
      return LineError(line, "nested collections are not supported in the client config "
                             "(a flat mapping of values and lists)");
    if (c == '-' && (s.size() == 1 || IsBlank(s[1])))
      return LineError(line, "nested lists are not supported in the client config");
    if (auto bad = BadPlainStart(s)) return LineError(line, *bad);
  }
  if (s.find(": ") != std::string_view::npos || s.find(":\t") != std::string_view::npos ||
      (s.size() > 1 && s.back() == ':'))
    return LineError(line, "nested mappings are not supported in the client config "
                           "(a flat mapping of values and lists)");
  if (IsNull(s)) return v;
  v.kind = Value::Kind::kScalar;
  v.scalar = std::string(s);
  return v;
}

// [a, "b", c] on one line, then at most a comment.
Expected<Value> FlowList(std::string_view s, int line) {
  Value v;
  v.kind = Value::Kind::kList;
  const auto not_closed = [line] {
    return LineError(line, "a [ list must close with ] on the same line");
  };
  size_t pos = 1;
  bool want_item = true;  // after [ or a comma
  for (;;) {
    while (pos < s.size() && IsBlank(s[pos])) ++pos;
    if (pos >= s.size() || (s[pos] == '#' && IsBlank(s[pos - 1]))) return not_closed();
    const char c = s[pos];
    if (c == ']') {
      ++pos;
      break;
    }
    if (!want_item) return LineError(line, "expected , or ] in a [ list");
    if (c == ',') return LineError(line, "an empty item in a [ list");
    if (c == '"' || c == '\'') {
      std::string_view rest;
      auto text = Unquote(s.substr(pos), line, rest);
      if (!text) return text.error();
      v.list.push_back(std::move(*text));
      pos = s.size() - rest.size();
    } else {
      const size_t start = pos;
      for (; pos < s.size() && s[pos] != ',' && s[pos] != ']'; ++pos) {
        const char d = s[pos];
        if (d == '[' || d == '{' || d == '}')
          return LineError(line, "nested collections are not supported in the client config");
        if (d == '?') return LineError(line, "a '?' in an unquoted item of a [ list (quote the item)");
        if (d == '"' || d == '\'')
          return LineError(line, "a quote inside an unquoted item of a [ list (quote the whole item)");
        if (d == '#' && IsBlank(s[pos - 1])) return not_closed();
      }
      auto item = Plain(Trim(s.substr(start, pos - start)), line);
      if (!item) return item.error();
      v.list.push_back(item->kind == Value::Kind::kNull ? std::string() : std::move(item->scalar));
    }
    while (pos < s.size() && IsBlank(s[pos])) ++pos;
    if (pos < s.size() && s[pos] == ',') {
      ++pos;
      want_item = true;
    } else {
      want_item = false;
    }
  }
  if (!OnlyComment(s.substr(pos)))
    return LineError(line, "unexpected '" + std::string(Trim(s.substr(pos))) + "' after a ] list");
  return v;
}

// The value after `name:` or `-`, comment and all.
Expected<Value> ParseValue(std::string_view s, int line) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  if (s.empty() || s.front() == '#') return Value{};
  if (s.front() == '"' || s.front() == '\'') {
    std::string_view rest;
    auto text = Unquote(s, line, rest);
    if (!text) return text.error();
    if (!OnlyComment(rest))
      return LineError(line, "unexpected '" + std::string(Trim(rest)) + "' after a quoted value");
    Value v;
    v.kind = Value::Kind::kScalar;
    v.scalar = std::move(*text);
    return v;
  }
  if (s.front() == '[') return FlowList(s, line);
  return Plain(CutComment(s), line);
}

}  // namespace

Expected<std::vector<FlatYamlValue>> ParseFlatYaml(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool lone_cr = c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n');
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F || lone_cr) {
      const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(i), '\n');
      return LineError(static_cast<int>(line),
                       "a control character or a carriage return without a line feed");
    }
  }
  if (auto bad = FirstBadUtf8(text))
    return LineError(1 + static_cast<int>(std::count(text.begin(), text.begin() + *bad, '\n')),
                     "not UTF-8");
  std::vector<Value> out;
  int line_no = 0;
  int indent = -1;        // the mapping's indentation, from its first name
  Value* open = nullptr;  // a name with nothing after it: block list items may follow
  int open_indent = -1;   // the indentation of that list's items
  bool seen_content = false;
  bool ended = false;     // after `...`
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    size_t col = 0;
    while (col < raw.size() && raw[col] == ' ') ++col;
    if (col < raw.size() && raw[col] == '\t')
      return LineError(line_no, "a tab in the indentation (YAML allows spaces only)");
    const std::string_view body = raw.substr(col);
    if (CutComment(body).empty()) continue;
    if (col == 0 && (body.rfind("---", 0) == 0 || body.rfind("...", 0) == 0) &&
        (body.size() == 3 || IsBlank(body[3]))) {
      if (CutComment(body.substr(3)).size() != 0 || body.size() > 3)
        return LineError(line_no, "content on a document marker's line (--- and ... stand alone)");
      if (body[0] == '-') {
        if (seen_content) return LineError(line_no, "a second document: the client config is one mapping");
        seen_content = true;
      } else {
        ended = true;
      }
      continue;
    }
    if (ended) return LineError(line_no, "content after the end of the document (...)");
    seen_content = true;
    const int here = static_cast<int>(col);

    if (body == "-" || body.rfind("- ", 0) == 0 || body.rfind("-\t", 0) == 0) {
      if (!open || here < indent || (open_indent >= 0 && here != open_indent))
        return LineError(line_no, "a list item (-) that belongs to no field");
      open_indent = here;
      auto item = ParseValue(body.substr(1), line_no);
      if (!item) return item.error();
      if (item->kind == Value::Kind::kList)
        return LineError(line_no, "nested lists are not supported in the client config");
      open->kind = Value::Kind::kList;
      open->list.push_back(item->kind == Value::Kind::kNull ? std::string()
                                                            : std::move(item->scalar));
      continue;
    }
    if (indent < 0) indent = here;
    if (here != indent)
      return LineError(line_no, here > indent
                                    ? "unexpected indentation (nested mappings and values "
                                      "continued over lines are not supported in the client "
                                      "config)"
                                    : "indentation less than the mapping's");

    Value entry;
    entry.line = line_no;
    std::string_view rest;
    const auto colon_column = [](std::string_view line, std::string_view after) {
      return line.size() - after.size();
    };
    if (body.front() == '"' || body.front() == '\'') {
      auto name = Unquote(body, line_no, rest);
      if (!name) return name.error();
      entry.name = std::move(*name);
      while (!rest.empty() && IsBlank(rest.front())) rest.remove_prefix(1);
      if (rest.empty() || rest.front() != ':' || (rest.size() > 1 && !IsBlank(rest[1])))
        return LineError(line_no, "expected 'name: value'");
      rest.remove_prefix(1);
    } else {
      size_t colon = std::string_view::npos;
      for (size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '#' && i > 0 && IsBlank(body[i - 1])) break;
        if (body[i] == ':' && (i + 1 == body.size() || IsBlank(body[i + 1]))) {
          colon = i;
          break;
        }
      }
      if (colon == std::string_view::npos)
        return LineError(line_no, "expected 'name: value', found '" + std::string(CutComment(body)) + "'");
      entry.name = std::string(Trim(body.substr(0, colon)));
      rest = body.substr(colon + 1);
      if (entry.name.empty()) return LineError(line_no, "a value without a name");
      if (auto bad = BadPlainStart(entry.name)) return LineError(line_no, *bad);
      if (IsNull(entry.name)) return LineError(line_no, "a null name ('" + entry.name + "')");
    }
    if (colon_column(body, rest) > 1024)  // YAML's limit on an implicit key
      return LineError(line_no, "a name longer than 1024 characters");
    for (const Value& v : out)
      if (v.name == entry.name)
        return LineError(line_no, "'" + entry.name + "' appears twice (first on line " +
                                      std::to_string(v.line) + ")");
    auto value = ParseValue(rest, line_no);
    if (!value) return value.error();
    entry.kind = value->kind;
    entry.scalar = std::move(value->scalar);
    entry.list = std::move(value->list);
    out.push_back(std::move(entry));
    open = OnlyComment(rest) ? &out.back() : nullptr;
    open_indent = -1;
  }
  return out;
}

}  // namespace memkv::client
