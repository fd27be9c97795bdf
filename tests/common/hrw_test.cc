#include "common/hrw.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
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

// ---- golden vectors: key -> server ranking, as every client has computed it ----
// Clients of different builds must send a key to the same server, or a
// value written by one is a miss for the other. The file was written by
// DISABLED_WriteGoldenVectors (run it with --gtest_also_run_disabled_tests
// and --gtest_filter=*WriteGoldenVectors) and is never regenerated to make a
// change pass: a change to the ranking is a change of the cluster's layout.

const char* kGoldenFile = MEMKV_SOURCE_DIR "/tests/common/golden/hrw_v1.txt";

std::vector<std::string> GoldenServers() {
  return {"10.0.0.1:9900", "10.0.0.2:9900", "storage-3.example:9900", "[fd00::4]:9900",
          "/run/memkv/memkv.sock"};
}

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::vector<std::string> GoldenKeys() {
  std::vector<std::string> keys;
  for (int i = 0; i < 48; ++i) keys.push_back(Key(i));
  keys.push_back(std::string("\0\x01\xff", 3));
  keys.push_back("vllm/llama-3-70b/layer/79/block/0123456789abcdef");
  keys.push_back(std::string(1024, 'k'));
  keys.push_back("\xc3\xa9t\xc3\xa9");
  return keys;
}

std::string Ranking(const Rendezvous& r, uint64_t hash) {
  std::vector<size_t> order(r.size());
  r.Rank(hash, order);
  std::string s;
  for (size_t i : order) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

TEST(Rendezvous, DISABLED_WriteGoldenVectors) {
  std::ofstream out(kGoldenFile);
  const Rendezvous r(GoldenServers());
  out << "# memkv HRW golden vectors v1: key (hex) or block id, then the server ranking.\n";
  for (const std::string& k : GoldenKeys()) out << "key " << Hex(k) << " " << Ranking(r, HrwKeyHash(k)) << "\n";
  for (uint64_t b : {0ull, 1ull, 2ull, 4095ull, 1ull << 40, ~0ull})
    out << "block " << b << " " << Ranking(r, HrwBlockHash(b)) << "\n";
}

TEST(Rendezvous, GoldenVectorsRankEveryKeyAsBefore) {
  std::ifstream in(kGoldenFile);
  ASSERT_TRUE(in) << kGoldenFile;
  const Rendezvous r(GoldenServers());
  std::vector<std::string> keys;
  for (const std::string& k : GoldenKeys()) keys.push_back(Hex(k));
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream l(line);
    std::string kind, id, want;
    l >> kind >> id >> want;
    if (kind == "key") {
      const auto it = std::find(keys.begin(), keys.end(), id);
      ASSERT_NE(it, keys.end()) << "unknown key in the golden file: " << id;
      EXPECT_EQ(Ranking(r, HrwKeyHash(GoldenKeys()[it - keys.begin()])), want) << "key " << id;
    } else {
      ASSERT_EQ(kind, "block") << line;
      EXPECT_EQ(Ranking(r, HrwBlockHash(std::stoull(id))), want) << "block " << id;
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(GoldenKeys().size()) + 6);
}

}  // namespace
}  // namespace memkv
