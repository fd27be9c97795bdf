#include "common/size.h"

#include <gtest/gtest.h>

namespace memkv {
namespace {

TEST(ParseSize, AcceptsTheFormsConfigFilesUse) {
  EXPECT_EQ(ParseSize("2 MiB").value(), 2 * kMiB);
  EXPECT_EQ(ParseSize("247 GiB").value(), 247 * kGiB);
  EXPECT_EQ(ParseSize("256MiB").value(), 256 * kMiB);
  EXPECT_EQ(ParseSize("4096").value(), 4096u);
  EXPECT_EQ(ParseSize("4096 B").value(), 4096u);
  EXPECT_EQ(ParseSize("  1 gib ").value(), kGiB);
  EXPECT_EQ(ParseSize("1.5 GiB").value(), kGiB + kGiB / 2);
  EXPECT_EQ(ParseSize("4K").value(), 4 * kKiB);
  EXPECT_EQ(ParseSize("2 TiB").value(), 2 * kTiB);
}

TEST(ParseSize, DecimalUnitsArePowersOfTen) {
  EXPECT_EQ(ParseSize("1 KB").value(), 1000u);
  EXPECT_EQ(ParseSize("3 MB").value(), 3'000'000u);
  EXPECT_EQ(ParseSize("2 GB").value(), 2'000'000'000u);
}

TEST(ParseSize, RejectsBadInputWithTheReason) {
  EXPECT_EQ(ParseSize("").error(), common::errc::empty_value);
  EXPECT_EQ(ParseSize("   ").error(), common::errc::empty_value);
  EXPECT_EQ(ParseSize("MiB").error(), common::errc::bad_number);
  EXPECT_EQ(ParseSize("-1 MiB").error(), common::errc::bad_number);
  EXPECT_EQ(ParseSize("2 MB/s").error(), common::errc::bad_unit);
  EXPECT_EQ(ParseSize("2 parsecs").error(), common::errc::bad_unit);
  EXPECT_EQ(ParseSize("0.3 B").error(), common::errc::bad_number);  // not whole bytes
  EXPECT_EQ(ParseSize("99999999999999999999").error(), common::errc::out_of_range);
  EXPECT_EQ(ParseSize("17179869184 GiB").error(), common::errc::out_of_range);
}

TEST(ParseSize, ErrorsPrintAMessageForTheUser) {
  const auto r = ParseSize("2 parsecs");
  EXPECT_NE(r.error().message().find("unknown unit"), std::string::npos);
}

TEST(FormatSize, PrintsTheLargestWholeUnit) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(2 * kMiB), "2 MiB");
  EXPECT_EQ(FormatSize(247 * kGiB), "247 GiB");
  EXPECT_EQ(FormatSize(kGiB + kGiB / 2), "1.50 GiB");
  EXPECT_EQ(FormatSize(4097), "4.00 KiB");
}

TEST(FormatSize, RoundTripsThroughParseSize) {
  for (uint64_t v : std::initializer_list<uint64_t>{1, 1023, 4096, 3 * kMiB, kGiB + kGiB / 4, 5 * kTiB}) {
    EXPECT_EQ(ParseSize(FormatSize(v)).value(), v) << FormatSize(v);
  }
}

}  // namespace
}  // namespace memkv
