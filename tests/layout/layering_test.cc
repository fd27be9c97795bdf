// The layers of DESIGN.md, enforced: a file in src/<m>/ may include only the
// folders its layer names, and no two folders depend on each other.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The table of DESIGN.md ("Layers"): each folder and what it may use.
const std::map<std::string, std::set<std::string>>& AllowedUses() {
  static const std::map<std::string, std::set<std::string>> table = {
      {"common", {}},
      {"proto", {"common"}},
      {"io", {"common"}},
      {"store", {"io", "common"}},
      {"rdma", {"common"}},
      {"http", {"common"}},
      {"server", {"proto", "store", "io", "rdma", "http", "common"}},
      {"client", {"proto", "rdma", "common"}},
      {"preload", {"client"}},
      {"nixl", {"client"}},
      {"cli", {"server", "client", "store", "http", "common"}},
  };
  return table;
}

struct Violation {
  std::string file;
  std::string message;
};

// Scans a source tree laid out as src/<folder>/... and reports every include
// of a folder the layer table does not allow, and every unknown folder.
// Also fills `uses` with the folder graph it found.
std::vector<Violation> CheckTree(const fs::path& src,
                                 std::map<std::string, std::set<std::string>>& uses) {
  std::vector<Violation> out;
  const std::regex include_re(R"re(^\s*#\s*include\s*"([a-z_]+)/[^"]+")re");
  for (const auto& folder : fs::directory_iterator(src)) {
    if (!folder.is_directory()) continue;
    const std::string m = folder.path().filename().string();
    const auto allowed = AllowedUses().find(m);
    if (allowed == AllowedUses().end()) {
      out.push_back({folder.path().string(),
                     "folder '" + m + "' is not in the layer table of DESIGN.md"});
      continue;
    }
    for (const auto& f : fs::recursive_directory_iterator(folder.path())) {
      if (!f.is_regular_file()) continue;
      const auto ext = f.path().extension();
      if (ext != ".h" && ext != ".cc" && ext != ".hpp" && ext != ".cpp") continue;
      std::ifstream in(f.path());
      std::string line;
      int lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        std::smatch m2;
        if (!std::regex_search(line, m2, include_re)) continue;
        const std::string used = m2[1];
        if (used == m || used == "memkv") continue;  // own folder; public API headers
        if (!AllowedUses().count(used)) continue;     // not one of our folders
        uses[m].insert(used);
        if (!allowed->second.count(used)) {
          out.push_back({f.path().string() + ":" + std::to_string(lineno),
                         "layer '" + m + "' may not include '" + used + "/'"});
        }
      }
    }
  }
  return out;
}

// Folders that reach themselves through the include graph.
std::set<std::string> FoldersInCycles(const std::map<std::string, std::set<std::string>>& uses) {
  std::set<std::string> in_cycle;
  for (const auto& [start, _] : uses) {
    std::vector<std::string> stack(uses.at(start).begin(), uses.at(start).end());
    std::set<std::string> seen;
    while (!stack.empty()) {
      const std::string cur = stack.back();
      stack.pop_back();
      if (cur == start) {
        in_cycle.insert(start);
        break;
      }
      if (!seen.insert(cur).second) continue;
      if (auto it = uses.find(cur); it != uses.end())
        stack.insert(stack.end(), it->second.begin(), it->second.end());
    }
  }
  return in_cycle;
}

TEST(Layering, EveryIncludeRespectsTheLayerTable) {
  std::map<std::string, std::set<std::string>> uses;
  const auto violations = CheckTree(fs::path(MEMKV_SOURCE_DIR) / "src", uses);
  for (const auto& v : violations) ADD_FAILURE() << v.file << ": " << v.message;
}

TEST(Layering, NoTwoFoldersDependOnEachOther) {
  std::map<std::string, std::set<std::string>> uses;
  CheckTree(fs::path(MEMKV_SOURCE_DIR) / "src", uses);
  for (const auto& m : FoldersInCycles(uses)) ADD_FAILURE() << "'" << m << "' is in a cycle";
}

TEST(Layering, TheTableItselfHasNoCycle) {
  EXPECT_TRUE(FoldersInCycles(AllowedUses()).empty());
}

// The checker must catch what it is there to catch.
class LayeringCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("memkv_layering_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "common");
    fs::create_directories(root_ / "proto");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }
  fs::path root_;
};

TEST_F(LayeringCheckerTest, FlagsAnIncludeUpTheStack) {
  Write("proto/frame.h", "#pragma once\n#include \"common/result.h\"\n");
  Write("common/size.cc", "#include <string>\n#include \"proto/frame.h\"\n");
  std::map<std::string, std::set<std::string>> uses;
  const auto v = CheckTree(root_, uses);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].file.find("common/size.cc:2"), std::string::npos);
  EXPECT_NE(v[0].message.find("may not include 'proto/'"), std::string::npos);
  EXPECT_EQ(FoldersInCycles(uses), (std::set<std::string>{"common", "proto"}));
}

TEST_F(LayeringCheckerTest, FlagsAFolderOutsideTheTable) {
  fs::create_directories(root_ / "misc");
  std::map<std::string, std::set<std::string>> uses;
  const auto v = CheckTree(root_, uses);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].message.find("'misc' is not in the layer table"), std::string::npos);
}

}  // namespace
