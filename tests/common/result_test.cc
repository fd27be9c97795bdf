#include "common/result.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/log.h"
#include "common/size.h"

namespace memkv {
namespace {

Result<uint64_t> DoubleSize(std::string_view text) {
  auto size = ParseSize(text);
  MEMKV_TRY(size);
  return *size * 2;
}

TEST(MemkvTry, PassesTheValueOnAndTheErrorUp) {
  EXPECT_EQ(DoubleSize("1 KiB").value(), 2048u);
  EXPECT_EQ(DoubleSize("1 XiB").error(), common::errc::bad_unit);
}

TEST(ErrorCode, NamesItsModule) {
  error_code ec = common::errc::bad_unit;
  EXPECT_STREQ(ec.category().name(), "memkv.common");
}

TEST(InitLogging, AcceptsLevelsAndRejectsOtherNames) {
  EXPECT_TRUE(InitLogging("warn"));
  EXPECT_TRUE(InitLogging("off"));
  EXPECT_EQ(InitLogging("loud").error(), common::errc::bad_name);
  EXPECT_TRUE(InitLogging("info"));  // can run again
}

}  // namespace
}  // namespace memkv
