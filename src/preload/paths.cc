#include "preload/paths.h"

#include <algorithm>

namespace memkv::preload {

std::string Normalize(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    const std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == ".") {
      // nothing
    } else if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(part);
    }
    i = j;
  }
  std::string out;
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

Prefixes Prefixes::Parse(std::string_view spec) {
  Prefixes p;
  size_t i = 0;
  while (i <= spec.size()) {
    size_t j = spec.find(':', i);
    if (j == std::string_view::npos) j = spec.size();
    const std::string_view item = spec.substr(i, j - i);
    if (!item.empty() && item[0] == '/') {
      std::string n = Normalize(item);
      if (n != "/" && std::find(p.list_.begin(), p.list_.end(), n) == p.list_.end())
        p.list_.push_back(std::move(n));
    }
    i = j + 1;
  }
  std::stable_sort(p.list_.begin(), p.list_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return p;
}

std::optional<Prefixes::Match> Prefixes::Find(std::string_view path) const {
  for (size_t i = 0; i < list_.size(); ++i) {
    const std::string& p = list_[i];
    if (path.size() < p.size() || path.compare(0, p.size(), p) != 0) continue;
    if (path.size() == p.size()) return Match{i, std::string()};
    if (path[p.size()] != '/') continue;
    return Match{i, std::string(path.substr(p.size() + 1))};
  }
  return std::nullopt;
}

std::string Join(std::string_view dir, std::string_view name) {
  if (!name.empty() && name[0] == '/') return Normalize(name);
  std::string s(dir);
  s += '/';
  s += name;
  return Normalize(s);
}

std::string ParentKey(std::string_view key) {
  const size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(key.substr(0, slash));
}

std::optional<Child> ChildOf(std::string_view child_prefix, std::string_view key) {
  if (key.size() <= child_prefix.size() || key.compare(0, child_prefix.size(), child_prefix) != 0)
    return std::nullopt;
  std::string_view rest = key.substr(child_prefix.size());
  Child c;
  const size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    c.directory = true;
    rest = rest.substr(0, slash);
  } else if (rest.back() == '\0') {
    c.empty_file = true;
    rest.remove_suffix(1);
  }
  if (rest.empty() || rest.find('\0') != std::string_view::npos) return std::nullopt;
  c.name = std::string(rest);
  return c;
}

std::string SkipPast(std::string_view prefix, size_t max_key) {
  std::string s(prefix);
  if (s.size() < max_key) s.append(max_key - s.size(), '\xff');
  return s;
}

}  // namespace memkv::preload
