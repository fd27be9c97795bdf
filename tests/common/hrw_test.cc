#include "common/hrw.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace memkv {
namespace {

std::vector<std::string> Servers(int n) {
  std::vector<std::string> s;
  for (int i = 0; i < n; ++i) s.push_back("10.0.0." + std::to_string(i + 1) + ":9900");
  return s;
}

std::string Key(int i) { return "block/" + std::to_string(i); }

TEST(Rendezvous, RemovingOneServerMovesOnlyItsKeys) {
  const auto names = Servers(8);
  Rendezvous all(names);
  for (size_t removed = 0; removed < names.size(); ++removed) {
    auto rest = names;
    rest.erase(rest.begin() + static_cast<long>(removed));
    Rendezvous fewer(rest);
    int moved = 0;
    for (int i = 0; i < 20000; ++i) {
      const std::string& before = all.server(all.PickKey(Key(i)));
      const std::string& after = fewer.server(fewer.PickKey(Key(i)));
      if (before != names[removed]) {
        ASSERT_EQ(before, after) << "key " << Key(i) << " moved though its server stayed";
      } else {
        ++moved;
      }
    }
    EXPECT_GT(moved, 0);
  }
}

TEST(Rendezvous, LoadIsWithinAFewPercentOfEvenOver100kKeys) {
  for (int n : {3, 8, 16}) {
    Rendezvous r(Servers(n));
    std::vector<int> count(n);
    const int keys = 100000;
    for (int i = 0; i < keys; ++i) ++count[r.PickKey(Key(i))];
    const double even = static_cast<double>(keys) / n;
    for (int c : count) EXPECT_NEAR(c, even, even * 0.05) << "n=" << n;
  }
}

TEST(Rendezvous, BlockIdsSpreadEvenlyToo) {
  Rendezvous r(Servers(16));
  std::vector<int> count(16);
  for (uint64_t b = 0; b < 100000; ++b) ++count[r.Pick(HrwBlockHash(b))];
  for (int c : count) EXPECT_NEAR(c, 100000 / 16.0, 100000 / 16.0 * 0.05);
}

TEST(Rendezvous, RankStartsWithPickAndListsEveryServerOnce) {
  Rendezvous r(Servers(5));
  std::vector<size_t> order(5);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t h = HrwKeyHash(Key(i));
    r.Rank(h, order);
    EXPECT_EQ(order[0], r.Pick(h));
    auto sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<size_t>{0, 1, 2, 3, 4}));
  }
}

TEST(Rendezvous, SecondChoiceIsWhereKeysGoWhenTheFirstIsRemoved) {
  // The fallback order a client uses must agree with the routing it would
  // get if the failed server were dropped from the list.
  const auto names = Servers(4);
  Rendezvous all(names);
  std::vector<size_t> order(4);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t h = HrwKeyHash(Key(i));
    all.Rank(h, order);
    auto rest = names;
    rest.erase(rest.begin() + static_cast<long>(order[0]));
    Rendezvous fewer(rest);
    EXPECT_EQ(fewer.server(fewer.Pick(h)), names[order[1]]);
  }
}

TEST(Rendezvous, SameListSameAnswerInAnyInstance) {
  Rendezvous a(Servers(6)), b(Servers(6));
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(a.PickKey(Key(i)), b.PickKey(Key(i)));
}

}  // namespace
}  // namespace memkv
