#include "common/stream_copy.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

namespace memkv {
namespace {

// Every length around the 16-byte alignment and the 64-byte loop, from
// every source and destination alignment: the bytes come over exactly, and
// nothing before or after the destination is touched.
TEST(StreamCopy, CopiesEveryByteAndNothingElse) {
  constexpr size_t kGuard = 80;
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  for (size_t n : {4095, 4096, 4097, 65536 + 17, (1 << 20) + 3}) lengths.push_back(n);
  for (size_t n : lengths) {
    std::vector<std::byte> src(n + 16);
    for (size_t i = 0; i < src.size(); ++i) src[i] = std::byte(i * 131 + n);
    std::vector<std::byte> dst(n + 16 + 2 * kGuard);
    for (size_t s_off : {0, 1, 7, 15}) {
      for (size_t d_off : {0, 3, 8, 13}) {
        std::fill(dst.begin(), dst.end(), std::byte{0xee});
        std::byte* to = dst.data() + kGuard + d_off;
        StreamCopy(to, src.data() + s_off, n);
        ASSERT_EQ(std::memcmp(to, src.data() + s_off, n), 0)
            << "length " << n << " src+" << s_off << " dst+" << d_off;
        for (std::byte* p = dst.data(); p < to; ++p)
          ASSERT_EQ(*p, std::byte{0xee}) << "written before the destination, length " << n;
        for (std::byte* p = to + n; p < dst.data() + dst.size(); ++p)
          ASSERT_EQ(*p, std::byte{0xee}) << "written past the destination, length " << n;
      }
    }
  }
}

}  // namespace
}  // namespace memkv
