#pragma once
// Little-endian byte writing and bounds-checked reading, shared by the wire
// format and the on-disk format. Reader has a sticky error: after the first
// failure every read returns zero and the caller checks it once at the end.
// Its error type is the module's errc, which must have ok, truncated and
// trailing_bytes.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace memkv {

using Bytes = std::span<const std::byte>;
using Buffer = std::vector<std::byte>;

class Writer {
 public:
  explicit Writer(Buffer& out) : out_(out) {}

  void U8(uint8_t v) { Put(&v, 1); }
  void U16(uint16_t v) { PutLe(v); }
  void U32(uint32_t v) { PutLe(v); }
  void U64(uint64_t v) { PutLe(v); }
  void Raw(const void* p, size_t n) { Put(p, n); }
  // A string with a 16-bit length; callers check the length limits.
  void Str16(std::string_view s) {
    U16(static_cast<uint16_t>(s.size()));
    Put(s.data(), s.size());
  }

 private:
  template <class T>
  void PutLe(T v) {
    static_assert(std::endian::native == std::endian::little, "memkv targets little-endian hosts");
    Put(&v, sizeof v);
  }
  void Put(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  Buffer& out_;
};

template <class Errc>
class ByteReader {
 public:
  explicit ByteReader(Bytes in) : p_(in.data()), end_(in.data() + in.size()) {}

  uint8_t U8() { return Get<uint8_t>(); }
  uint16_t U16() { return Get<uint16_t>(); }
  uint32_t U32() { return Get<uint32_t>(); }
  uint64_t U64() { return Get<uint64_t>(); }
  // n bytes as a view into the input; empty on failure.
  Bytes Raw(size_t n) {
    if (!Need(n)) return {};
    Bytes b(p_, n);
    p_ += n;
    return b;
  }
  std::string_view Str16() {
    const uint16_t n = U16();
    Bytes b = Raw(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool ok() const { return error_ == Errc::ok; }
  Errc error() const { return error_; }
  // Records the first error only.
  void Fail(Errc e) {
    if (error_ == Errc::ok) error_ = e;
    p_ = end_;
  }
  // The first error, or trailing_bytes when input is left over.
  Errc Finish() const {
    if (error_ != Errc::ok) return error_;
    return p_ == end_ ? Errc::ok : Errc::trailing_bytes;
  }

 private:
  bool Need(size_t n) {
    if (error_ != Errc::ok) return false;
    if (static_cast<size_t>(end_ - p_) < n) {
      Fail(Errc::truncated);
      return false;
    }
    return true;
  }
  template <class T>
  T Get() {
    T v{};
    if (!Need(sizeof v)) return v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  const std::byte* p_;
  const std::byte* end_;
  Errc error_ = Errc::ok;
};

}  // namespace memkv
