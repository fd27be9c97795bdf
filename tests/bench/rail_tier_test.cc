// memkv-bench --tier rail as a user runs it: tiny sizes and short runs
// against the bench's own server (two: with and without an auth key), with
// the baselines that are installed. Checks the process's outputs, not its
// figures (speed is measured, never asserted).

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class RailTierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/memkv-rail-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs memkv-bench with `args`; its exit status, stdout in `out`.
  int Bench(const std::string& args, std::string& out) {
    // TMPDIR: the bench's own temp dir (server sockets and logs) goes here,
    // so that the test can see it removed.
    // MEMKV_BENCH_SERVER_BINARY: another memkv binary to start (by hand,
    // to tell a bench bug from a server bug).
    const char* server = std::getenv("MEMKV_BENCH_SERVER_BINARY");
    const std::string cmd = "TMPDIR=" + dir_.string() + " " + std::string(MEMKV_BENCH) +
                            " --tier rail " + (server ? "--memkv " + std::string(server) + " " : "") +
                            args + " 2>" +
                            (dir_ / "stderr.txt").string();
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Stderr() { return Slurp(dir_ / "stderr.txt"); }

  fs::path dir_;
};

TEST_F(RailTierTest, SweepWritesTableJsonCsvSvgAndMarkdown) {
  const fs::path json_file = dir_ / "r.json", csv = dir_ / "r.csv", svg = dir_ / "r.svg",
                 md = dir_ / "r.md";
  std::string out;
  const int status = Bench("--sizes 4K,64K --threads 1,2 --batch 4 --rails tcp,shm "
                           "--ops read,write,mixed --auth both --runs 1 --seconds 0.2 "
                           "--no-goal-points --baseline --json " +
                               json_file.string() + " --csv " + csv.string() + " --svg " +
                               svg.string() + " --markdown " + md.string() +
                               " --label 'integration test'",
                           out);
  ASSERT_EQ(status, 0) << out << Stderr();
  EXPECT_NE(out.find("PASS"), std::string::npos) << out;

  const json::value v = json::parse(Slurp(json_file));  // throws when malformed
  const json::object& o = v.as_object();
  EXPECT_EQ(o.at("tier").as_string(), "rail");
  EXPECT_TRUE(o.at("ok").as_bool());
  EXPECT_EQ(o.at("verify_failures").as_int64(), 0);
  EXPECT_GT(o.at("verified").as_int64(), 0);
  const json::array& points = o.at("points").as_array();
  // 2 sizes x 2 thread counts x 2 rails x 3 ops x 2 auth settings.
  ASSERT_EQ(points.size(), 48u);
  std::set<std::string> seen;
  for (const json::value& pv : points) {
    const json::object& p = pv.as_object();
    seen.insert(std::string(p.at("rail").as_string()) + "/" + std::string(p.at("op").as_string()) +
                "/" + (p.at("auth").as_bool() ? "on" : "off"));
    EXPECT_EQ(p.at("status").as_string(), "ok") << json::serialize(p);
    EXPECT_EQ(p.at("batch").as_int64(), 4);
    EXPECT_EQ(p.at("runs").as_array().size(), 1u);
    EXPECT_GT(p.at("gib_per_s").at("median").as_double(), 0);
    EXPECT_GT(p.at("latency_ms").at("requests").as_int64(), 0);
    EXPECT_TRUE(p.at("ratios").as_object().contains("memcpy"));
    EXPECT_EQ(p.at("errors").as_int64(), 0);
  }
  EXPECT_EQ(seen.size(), 12u);
  // memcpy needs nothing installed: its ratio is always there for auth off.
  EXPECT_TRUE(points[0].at("ratios").at("memcpy").is_double());
  bool memcpy_run = false;
  for (const json::value& b : o.at("baselines").as_array()) {
    if (b.at("kind").as_string() == "memcpy") memcpy_run = !b.at("runs").as_array().empty();
    // Each baseline ran, or says why not (e.g. the Debian package to install).
    EXPECT_TRUE(!b.at("runs").as_array().empty() || b.as_object().contains("skipped"));
  }
  EXPECT_TRUE(memcpy_run);
  EXPECT_TRUE(o.contains("goals"));

  const std::string c = Slurp(csv);
  EXPECT_EQ(c.rfind("kind,id,rail,op,block_size", 0), 0u);
  EXPECT_NE(c.find("memkv,,shm,mixed,65536,2,4,on,\"ok\""), std::string::npos) << c;
  const std::string s = Slurp(svg);
  EXPECT_EQ(s.rfind("<?xml", 0), 0u);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  EXPECT_NE(s.find("memkv shm read"), std::string::npos);
  const std::string m = Slurp(md);
  EXPECT_NE(m.find("integration test"), std::string::npos);
  EXPECT_NE(m.find("r.svg"), std::string::npos);

  // The bench's temp dir (server sockets and logs) is gone.
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_NE(e.path().filename().string().rfind("memkv-bench-rail-", 0), 0u) << e.path();
}

// A value larger than one frame over tcp is refused by the client until
// values are streamed in chunks; either way the run goes on and says so.
TEST_F(RailTierTest, AValueTheRailRefusesIsReportedNotFatal) {
  const fs::path json_file = dir_ / "big.json";
  std::string out;
  const int status = Bench("--sizes 4K,16M --threads 1 --rails tcp --ops read --auth off "
                           "--runs 1 --seconds 0.2 --no-goal-points --json " + json_file.string(),
                           out);
  ASSERT_EQ(status, 0) << out << Stderr();
  const json::value v = json::parse(Slurp(json_file));
  const json::array& points = v.at("points").as_array();
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].at("status").as_string(), "ok");
  const std::string big = std::string(points[1].at("status").as_string());
  EXPECT_TRUE(big == "ok" || big == "n/a") << big;
  if (big == "n/a") {
    EXPECT_TRUE(points[1].as_object().contains("refused"));
    EXPECT_NE(out.find("n/a (refused"), std::string::npos) << out;
  }
}

TEST_F(RailTierTest, BadArgumentsAreRefused) {
  std::string out;
  EXPECT_NE(Bench("--rails udp", out), 0);
  EXPECT_NE(Stderr().find("unknown rail 'udp'"), std::string::npos) << Stderr();
  EXPECT_NE(Bench("--servers 127.0.0.1:1 --auth both", out), 0);
  EXPECT_NE(Stderr().find("--auth both"), std::string::npos) << Stderr();
}

}  // namespace
