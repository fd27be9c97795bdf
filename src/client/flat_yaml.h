// The YAML of the client config (MEMKV_CONFIG): a flat mapping whose values
// are scalars or lists of scalars. The client library reads it itself so
// that libmemkv.so needs no YAML library (and, in the wheel, no C++ runtime
// of the host: python/CMakeLists.txt). What it reads is YAML's meaning of
// that subset: block and flow lists, plain, single- and double-quoted
// scalars, comments, `~`/`null`, an optional `---`. Anything beyond it
// (nested mappings, anchors, tags, block scalars) is refused with its line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "memkv/engine.h"

namespace memkv::client {

struct FlatYamlValue {
  enum class Kind { kNull, kScalar, kList };
  std::string name;
  int line = 0;  // 1-based, of the name
  Kind kind = Kind::kNull;
  std::string scalar;               // kScalar
  std::vector<std::string> list;    // kList
};

// The entries in document order; names are unique. Errors read
// "line N: <what>".
Expected<std::vector<FlatYamlValue>> ParseFlatYaml(std::string_view text);

}  // namespace memkv::client
