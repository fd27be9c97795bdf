// conan/conanfile.py must declare what the CMake files find. Conan cannot run
// here, so this is what keeps the recipe honest.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// CMake package or pkg-config module -> Conan Center reference name.
const std::map<std::string, std::string>& ConanNames() {
  static const std::map<std::string, std::string> names = {
      {"Boost", "boost"},         {"OpenSSL", "openssl"},     {"fmt", "fmt"},
      {"spdlog", "spdlog"},       {"CLI11", "cli11"},         {"yaml-cpp", "yaml-cpp"},
      {"simdjson", "simdjson"},   {"GTest", "gtest"},         {"benchmark", "benchmark"},
      {"libxxhash", "xxhash"},    {"liburing", "liburing"},   {"libibverbs", "rdma-core"},
      {"librdmacm", "rdma-core"}, {"jemalloc", "jemalloc"},   {"libcmark", "cmark"},
      {"cmark", "cmark"},         {"libfabric", "libfabric"},
  };
  return names;
}

// Found by CMake itself or the system, not packages; ccache is an optional
// speed-up of local rebuilds, used when present. Python3: the optional Python
// extension (python/) is built for the system's interpreter (Debian's
// python3-dev), the one that loads it; a Conan CPython would be another.
const std::set<std::string> kBuiltIn = {"Threads", "PkgConfig", "ccache", "Python3"};

// Every package the CMake files of `root` look for.
std::set<std::string> CMakeDependencies(const fs::path& root) {
  std::set<std::string> found;
  const std::regex find_re(R"(find_package\(\s*([A-Za-z0-9_+-]+))");
  // Build tools: find_program(VAR name ...).
  const std::regex program_re(R"(find_program\(\s*\w+\s+([A-Za-z0-9_+-]+))");
  const std::regex pkg_re(R"(pkg_check_modules\(\s*\w+\s+(?:REQUIRED\s+|QUIET\s+|IMPORTED_TARGET\s+)*([A-Za-z0-9_+-]+))");
  for (const auto& f : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(f.path(), root).string();
    if (rel.rfind("build", 0) == 0 || rel.rfind(".git", 0) == 0) continue;
    // A program built against the installed memkv (tests/packaging): its
    // find_package(memkv) is memkv itself, not a dependency.
    if (rel.rfind("tests/packaging/consumer", 0) == 0) continue;
    const std::string name = f.path().filename().string();
    if (name != "CMakeLists.txt" && f.path().extension() != ".cmake") continue;
    const std::string text = ReadFile(f.path());
    for (const std::regex* re : {&find_re, &pkg_re, &program_re}) {
      for (auto it = std::sregex_iterator(text.begin(), text.end(), *re);
           it != std::sregex_iterator(); ++it) {
        if (!kBuiltIn.count((*it)[1])) found.insert((*it)[1]);
      }
    }
  }
  return found;
}

// Every reference the recipe requires, by name ("boost" of "boost/1.81.0").
std::set<std::string> ConanRequires(const std::string& recipe) {
  std::set<std::string> refs;
  const std::regex req_re(R"re((?:requires|test_requires|tool_requires)\("([a-z0-9_.+-]+)/)re");
  for (auto it = std::sregex_iterator(recipe.begin(), recipe.end(), req_re);
       it != std::sregex_iterator(); ++it)
    refs.insert((*it)[1]);
  return refs;
}

TEST(ConanRecipe, RequiresEveryPackageTheCMakeFilesFind) {
  const fs::path root = MEMKV_SOURCE_DIR;
  const auto deps = CMakeDependencies(root);
  ASSERT_FALSE(deps.empty());
  const auto refs = ConanRequires(ReadFile(root / "conan" / "conanfile.py"));
  for (const std::string& dep : deps) {
    const auto it = ConanNames().find(dep);
    if (it == ConanNames().end()) {
      ADD_FAILURE() << "CMake finds '" << dep
                    << "', which has no Conan name in conan_sync_test.cc: add it there and "
                       "its requires to conan/conanfile.py";
      continue;
    }
    EXPECT_TRUE(refs.count(it->second))
        << "CMake finds '" << dep << "' but conan/conanfile.py does not require '" << it->second
        << "'";
  }
}

TEST(ConanRecipe, RequiresNothingTheCMakeFilesDoNotUse) {
  const fs::path root = MEMKV_SOURCE_DIR;
  std::set<std::string> expected;
  for (const std::string& dep : CMakeDependencies(root)) {
    if (auto it = ConanNames().find(dep); it != ConanNames().end()) expected.insert(it->second);
  }
  for (const std::string& ref : ConanRequires(ReadFile(root / "conan" / "conanfile.py"))) {
    EXPECT_TRUE(expected.count(ref)) << "conan/conanfile.py requires '" << ref
                                     << "', which no CMake file looks for";
  }
}

TEST(ConanRecipe, TheParsersSeeWhatTheyShould) {
  const auto refs = ConanRequires(
      "self.requires(\"boost/1.81.0\")\nself.test_requires(\"gtest/1.12.1\")\n# requires(x)");
  EXPECT_EQ(refs, (std::set<std::string>{"boost", "gtest"}));
}

}  // namespace
