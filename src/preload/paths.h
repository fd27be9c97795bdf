#pragma once
// Which paths the preload shim owns, and the key each one names. Pure: no
// I/O, no state; the shim's interposers call it on every path they see.
//
// MEMKV_PRELOAD_PREFIX holds one or more absolute prefixes, colon-separated
// ("/memkv:/scratch/kv"). A path is normalised lexically (".", "..", "//"
// and a trailing "/" folded, relative paths joined to a base directory)
// and is ours when it is a prefix itself or lies below one. Its key is the
// part below the prefix: "/memkv/cache/a.npy" -> "cache/a.npy"; a prefix
// itself is the root directory, key "".
//
// Keys of the shim's namespace:
//   "<dir>/"     marks a directory made by mkdir (a 1-byte value), so that
//                an empty directory is seen; other directories are implied
//                by the keys below them;
//   "<file>\0"   marks an empty file (values are at least 1 byte);
//   "<file>"     a file's bytes, readable by any client (`memkv kv get`).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memkv::preload {

// Folds "." and "..", repeated and trailing slashes of an absolute path.
// ".." above "/" stays at "/".
std::string Normalize(std::string_view absolute);

class Prefixes {
 public:
  // From MEMKV_PRELOAD_PREFIX's text. Entries that are empty or not
  // absolute are ignored; "/" is refused (it would take every path).
  static Prefixes Parse(std::string_view spec);
  bool empty() const { return list_.empty(); }
  const std::vector<std::string>& list() const { return list_; }

  struct Match {
    size_t prefix = 0;  // which prefix (index in list())
    std::string key;    // "" for the prefix itself
  };
  // The key of an absolute, normalised path, or nullopt if no prefix holds it.
  std::optional<Match> Find(std::string_view normalised) const;

 private:
  std::vector<std::string> list_;  // normalised, longest first
};

// The path `name` names relative to the directory `dir` (absolute,
// normalised): `name` itself when absolute.
std::string Join(std::string_view dir, std::string_view name);

// The marker keys (see above).
inline std::string DirMarker(std::string_view key) { return std::string(key) + "/"; }
inline std::string EmptyMarker(std::string_view key) { return std::string(key) + '\0'; }
// The key prefix of a directory's children: "" for the root, "<dir>/" otherwise.
inline std::string ChildPrefix(std::string_view dir_key) {
  return dir_key.empty() ? std::string() : std::string(dir_key) + "/";
}
// The key of a path's parent directory ("" for a top-level entry).
std::string ParentKey(std::string_view key);

// One entry of a directory listing, from a key below `child_prefix`.
struct Child {
  std::string name;
  bool directory = false;  // the key goes on below the name (or is a dir marker)
  bool empty_file = false; // an empty-file marker
};
std::optional<Child> ChildOf(std::string_view child_prefix, std::string_view key);
// The greatest key (keys are at most `max_key` bytes) that starts with
// `prefix`: listing from it as an exclusive cursor skips every key below.
std::string SkipPast(std::string_view prefix, size_t max_key = 1024);

}  // namespace memkv::preload
