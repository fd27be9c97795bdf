// libFuzzer target for the client config's YAML reader (client/flat_yaml.h):
// MEMKV_CONFIG as libmemkv.so reads it without a YAML library. It must never
// crash, and what it accepts it must read as a YAML library does: yaml-cpp
// (the server's parser) is the oracle, entry by entry, value by value.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "client/flat_yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using memkv::client::FlatYamlValue;
  if (size > 16 * 1024) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = memkv::client::ParseFlatYaml(text);
  if (!doc) return 0;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception&) {
    __builtin_trap();  // accepted what YAML refuses
  }
  if (doc->empty()) {
    if (!(root.IsNull() || (root.IsMap() && root.size() == 0))) __builtin_trap();
    return 0;
  }
  if (!root.IsMap() || root.size() != doc->size()) __builtin_trap();
  for (const FlatYamlValue& v : *doc) {
    const YAML::Node n = root[v.name];
    switch (v.kind) {
      case FlatYamlValue::Kind::kNull:
        if (!n.IsNull()) __builtin_trap();
        break;
      case FlatYamlValue::Kind::kScalar:
        if (!n.IsScalar() || n.Scalar() != v.scalar) __builtin_trap();
        break;
      case FlatYamlValue::Kind::kList:
        if (!n.IsSequence() || n.size() != v.list.size()) __builtin_trap();
        for (size_t i = 0; i < v.list.size(); ++i) {
          const YAML::Node item = n[i];
          if (item.IsNull() ? !v.list[i].empty() : (!item.IsScalar() || item.Scalar() != v.list[i]))
            __builtin_trap();
        }
        break;
    }
  }
  return 0;
}
