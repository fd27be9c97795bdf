#include "rail_cli.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/json/serialize.hpp>

#include "client/options.h"
#include "common/size.h"

namespace memkv::bench {
namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "memkv-bench: %s\n", what.c_str());
  return 2;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

bool Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

void RailCli::AddOptions(CLI::App& app) {
  auto* g = "rail tier";
  app.add_option("--sizes", sizes_, "rail: block sizes (default 4K,16K,64K,256K,1M,4M,16M)")
      ->group(g);
  app.add_option("--threads", threads_, "rail: client threads, a list (one shared connection "
                                        "per rail)")
      ->capture_default_str()
      ->group(g);
  app.add_option("--batch", batches_,
                 "rail: entries per request, a list; auto = ~8 MiB per request, at most 7,500")
      ->capture_default_str()
      ->group(g);
  app.add_option("--rails", rails_, "rail: tcp,shm,rdma (rdma: libfabric's tcp provider on loopback)")->capture_default_str()->group(g);
  app.add_option("--ops", ops_, "rail: read,write,mixed")->capture_default_str()->group(g);
  app.add_option("--auth", auth_, "rail: with and without an auth key: both, on or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"both", "on", "off"}))
      ->group(g);
  app.add_flag("--baseline", o_.baseline,
               "rail: also run memcpy, iperf3 and Redis, interleaved with memkv's runs")
      ->group(g);
  app.add_option("--servers", servers_,
                 "rail: measure these servers (host:port,...) instead of starting one")
      ->group(g);
  app.add_option("--auth-key", auth_key_, "rail: the auth key of --servers (default: "
                                          "MEMKV_AUTH_KEY)")
      ->group(g);
  app.add_option("--memkv", o_.memkv_binary, "rail: the memkv binary to start")
      ->capture_default_str()
      ->group(g);
  app.add_option("--server-memory", server_memory_,
                 "rail: memory.max_size of the server started (default: from the working set)")
      ->group(g);
  app.add_option("--server-threads", o_.server_threads,
                 "rail: server.threads of the server started (default: the server's)")
      ->group(g);
  app.add_option("--verify", verify_,
                 "rail: check every value read (all) or one request in 16 per thread (sample)")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "sample"}))
      ->group(g);
  app.add_flag("--no-goal-points", no_goal_points_,
               "rail: do not add 4 KiB x 7,500 points when the sweep lacks them")
      ->group(g);
  app.add_option("--csv", csv_, "rail: also write the results as CSV")->group(g);
  app.add_option("--svg", svg_, "rail: also write the chart (GiB/s against block size)")->group(g);
  app.add_option("--markdown", markdown_, "rail: also write the report as Markdown")->group(g);
  app.add_option("--markdown-drive", markdown_drive_,
                 "rail: a file with the drive tier's table, embedded in the Markdown")
      ->group(g);
  app.add_option("--svg-link", svg_link_,
                 "rail: how the Markdown links the chart (default: --svg relative to it)")
      ->group(g);
  app.add_option("--label", label_, "rail: a line put at the top of the Markdown (\"smoke run\")")
      ->group(g);
#ifdef MEMKV_BINARY
  o_.memkv_binary = MEMKV_BINARY;
#endif
}

int RailCli::Run(int runs, double seconds, const std::string& json_path,
                 const std::string& command_line) {
  o_.runs = runs;
  o_.seconds = seconds;
  o_.command_line = command_line;
  std::string error;
  if (!sizes_.empty() && !ParseSizeList(sizes_, o_.sizes, error))
    return Fail("--sizes: " + error);
  o_.threads.clear();
  for (const std::string& t : Split(threads_)) {
    const int n = std::atoi(t.c_str());
    if (n < 1 || n > 64) return Fail("--threads: '" + t + "' is not a number from 1 to 64");
    o_.threads.push_back(static_cast<uint32_t>(n));
  }
  o_.batches.clear();
  for (const std::string& b : Split(batches_)) {
    if (b == "auto") {
      o_.batches.push_back(0);
      continue;
    }
    const long n = std::atol(b.c_str());
    if (n < 1 || n > 65536) return Fail("--batch: '" + b + "' is not auto nor 1 to 65,536");
    o_.batches.push_back(static_cast<uint32_t>(n));
  }
  o_.rails = Split(rails_);
  for (const std::string& r : o_.rails)
    if (r != "tcp" && r != "shm" && r != "rdma")
      return Fail("--rails: unknown rail '" + r + "' (tcp, shm, rdma)");
  o_.ops = Split(ops_);
  for (const std::string& op : o_.ops)
    if (op != "read" && op != "write" && op != "mixed")
      return Fail("--ops: unknown operation '" + op + "' (read, write, mixed)");
  if (o_.threads.empty() || o_.batches.empty() || o_.rails.empty() || o_.ops.empty())
    return Fail("--threads, --batch, --rails and --ops need at least one item");
  o_.auth = auth_ == "both" ? std::vector<bool>{false, true}
            : auth_ == "on" ? std::vector<bool>{true}
                            : std::vector<bool>{false};
  o_.verify_all = verify_ == "all";
  o_.goal_points = !no_goal_points_;
  if (!server_memory_.empty()) {
    auto m = ParseSize(server_memory_);
    if (!m) return Fail("--server-memory: '" + server_memory_ + "': " + m.error().message());
    o_.server_memory = *m;
  }
  if (!servers_.empty()) {
    o_.servers = client::SplitServers(servers_);
    if (auth_key_.empty())
      if (const char* env = std::getenv("MEMKV_AUTH_KEY")) auth_key_ = env;
    o_.auth_key_hex = auth_key_;
    if (auth_ == "both")
      return Fail("--auth both needs servers of its own: with --servers give --auth on (and "
                  "--auth-key) or --auth off");
    if (auth_ == "on" && auth_key_.empty()) return Fail("--auth on with --servers needs --auth-key");
    if (auth_ == "off") o_.auth_key_hex.clear();
  } else if (o_.memkv_binary.empty() || !std::filesystem::exists(o_.memkv_binary)) {
    return Fail("--memkv: no memkv binary at '" + o_.memkv_binary + "'");
  }

  Progress progress;
  auto result = RunRailTier(o_, progress);
  if (!result) {
    std::fprintf(stderr, "memkv-bench: %s\n", result.error().message().c_str());
    return 1;
  }
  std::fputs(RailTierTable(*result).c_str(), stdout);
  std::fflush(stdout);
  int status = result->ok ? 0 : 1;
  auto write = [&](const std::string& path, const std::string& text, const char* what) {
    if (path.empty()) return;
    if (!Write(path, text)) {
      std::fprintf(stderr, "memkv-bench: %s: cannot write the %s\n", path.c_str(), what);
      status = 1;
    }
  };
  write(json_path, boost::json::serialize(RailTierJson(*result)) + "\n", "JSON results");
  write(csv_, RailTierCsv(*result), "CSV results");
  write(svg_, RailTierSvg(*result), "SVG chart");
  if (!markdown_.empty()) {
    std::string link = svg_link_;
    if (link.empty() && !svg_.empty()) {
      const auto base = std::filesystem::absolute(markdown_).parent_path();
      link = std::filesystem::absolute(svg_).lexically_relative(base).string();
    }
    std::string drive;
    if (!markdown_drive_.empty()) {
      std::ifstream in(markdown_drive_);
      std::stringstream text;
      text << in.rdbuf();
      drive = text.str();
      if (!in) drive = "(" + markdown_drive_ + " could not be read)\n";
    }
    std::string md = RailTierMarkdown(*result, link, drive);
    if (!label_.empty()) {
      const size_t after_title = md.find("\n\n");
      md.insert(after_title == std::string::npos ? 0 : after_title + 2, "> **" + label_ + "**\n\n");
    }
    write(markdown_, md, "Markdown report");
  }
  return status;
}

}  // namespace memkv::bench
