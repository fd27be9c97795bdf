#pragma once
// The values the crash tests write: a pure function of (size, seed), so a
// checker knows every byte a key was ever given from the seeds alone.

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace memkv::store::testing {

inline std::string WorkloadValue(size_t size, uint64_t seed) {
  std::string v(size, '\0');
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + 1);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t r = rng();
    std::memcpy(v.data() + i, &r, std::min<size_t>(8, size - i));
  }
  return v;
}

}  // namespace memkv::store::testing
