// libFuzzer target for the server's config parser: the input is a YAML
// document, read as `memkv server --config` reads one. ParseConfig either
// gives a config or throws ConfigError (never anything else: a yaml-cpp
// exception or a crash would stop start-up with no field named); a config
// that parses is validated, and one that validates must read back equal
// from its own ToYaml (what `memkv setup` prints is read by `memkv server`).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memkv::server;
  // Config files are small (LoadConfigFile refuses more than 1 MiB); deep
  // inputs only slow the search.
  if (size > 64 * 1024) return 0;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  Config config;
  try {
    config = ParseConfig(yaml);
  } catch (const ConfigError&) {
    return 0;
  }
  try {
    Validate(config);
  } catch (const ConfigError&) {
    return 0;
  }
  const std::string again = ToYaml(config);
  Config back;
  try {
    back = ParseConfig(again);
  } catch (const ConfigError&) {
    __builtin_trap();  // ToYaml wrote what ParseConfig refuses
  }
  if (!(back == config)) __builtin_trap();
  return 0;
}
