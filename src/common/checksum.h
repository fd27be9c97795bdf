#pragma once
// Checksums (XXH3-64). Used for every on-disk record, every value's 4 KiB
// pages and the per-entry checksum of writes on the wire.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace memkv {

uint64_t Xxh3(const void* data, size_t len, uint64_t seed = 0);
inline uint64_t Xxh3(std::span<const std::byte> bytes, uint64_t seed = 0) {
  return Xxh3(bytes.data(), bytes.size(), seed);
}
inline uint64_t Xxh3(std::string_view s, uint64_t seed = 0) { return Xxh3(s.data(), s.size(), seed); }

// Incremental XXH3-64 over pieces that arrive one after another (a value
// streamed in chunks). The result equals Xxh3() of the concatenation.
class Xxh3Stream {
 public:
  explicit Xxh3Stream(uint64_t seed = 0);
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;

  void Update(const void* data, size_t len);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace memkv
