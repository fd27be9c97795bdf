// The outputs of memkv-bench --tier rail: the table on stdout, JSON, CSV,
// the SVG chart and the Markdown of docs/performance.md. Pure functions of
// a RailTierResult.

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include <boost/json/array.hpp>

#include "common/size.h"
#include "rail_tier.h"
#include "svg_chart.h"

namespace memkv::bench {
namespace {

namespace json = boost::json;
constexpr double kGiB = double(1ull << 30);

double GiBps(const RailRun& r) { return r.seconds > 0 ? r.bytes / r.seconds / kGiB : 0; }
double GiBps(const BaselineRun& r) { return r.seconds > 0 ? r.bytes / r.seconds / kGiB : 0; }
double EntriesPerS(const RailRun& r) { return r.seconds > 0 ? r.entries / r.seconds : 0; }
double EntriesPerS(const BaselineRun& r) { return r.seconds > 0 ? r.entries / r.seconds : 0; }

template <class R>
Spread Of(const std::vector<R>& runs, double (*f)(const R&)) {
  std::vector<double> v;
  for (const R& r : runs) v.push_back(f(r));
  return SpreadOf(v);
}

size_t Chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}
std::string Pad(std::string s, size_t w) {
  const size_t n = Chars(s);
  if (n < w) s.append(w - n, ' ');
  return s;
}
std::string PadLeft(const std::string& s, size_t w) {
  const size_t n = Chars(s);
  return n < w ? std::string(w - n, ' ') + s : s;
}
std::string Ratio(double v) { return std::isfinite(v) ? Fixed(v, 2) : "-"; }
std::string Ms(const std::vector<double>& lat, double q) {
  return lat.empty() ? "-" : Fixed(Percentile(lat, q), q >= 99 ? 2 : 2);
}

json::value Num(double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); }

json::object SpreadJson(const Spread& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

// The points the chart and the summary show for a rail and op: the sweep's
// fewest threads, its first batch setting, auth off when measured.
bool Charted(const RailTierResult& r, const RailPoint& p) {
  const auto& o = r.options;
  const uint32_t t1 = *std::min_element(o.threads.begin(), o.threads.end());
  const bool auth = std::find(o.auth.begin(), o.auth.end(), false) == o.auth.end();
  const uint32_t batch = o.batches.front() ? o.batches.front() : AutoBatch(p.block_size);
  return !p.goal_point && p.threads == t1 && p.auth == auth && p.batch == batch;
}

std::string PointStatus(const RailPoint& p) {
  if (!p.refused.empty()) return "n/a (" + p.refused + ")";
  if (p.verify_failures) return "FAIL: wrong bytes";
  if (p.errors) return "errors: " + p.first_error;
  return "ok";
}

}  // namespace

uint32_t AutoBatch(uint64_t block_size) {
  if (block_size == 0) return 1;
  return static_cast<uint32_t>(std::clamp<uint64_t>(kAutoBatchBytes / block_size, 1, kMaxAutoBatch));
}

double MedianGiBps(const std::vector<RailRun>& runs) { return Of(runs, GiBps).median; }
double MedianGiBps(const std::vector<BaselineRun>& runs) {
  return Of(runs, GiBps).median;
}

std::string SizeName(uint64_t bytes) { return FormatSize(bytes); }

bool ParseSizeList(const std::string& text, std::vector<uint64_t>& out, std::string& error) {
  out.clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto v = ParseSize(item);
    if (!v || *v == 0) {
      error = "'" + item + "' is not a size (4K, 64 KiB, 1M, ...)";
      return false;
    }
    out.push_back(*v);
  }
  if (out.empty()) {
    error = "an empty list";
    return false;
  }
  return true;
}

std::string RailTierTable(const RailTierResult& r) {
  const RailTierOptions& o = r.options;
  std::string t;
  auto line = [&](const std::string& s) { t += s + "\n"; };
  line("memkv-bench --tier rail");
  line("machine   " + r.machine.cpu_model + ", " + std::to_string(r.machine.cpus) + " CPUs, " +
       r.machine.kernel + ", " + r.machine.date);
  for (const std::string& c : r.server_commands) line("server    " + c);
  if (!o.servers.empty()) line("servers   " + [&] {
    std::string s;
    for (const auto& x : o.servers) s += (s.empty() ? "" : ",") + x;
    return s;
  }());
  line("runs      " + std::to_string(o.runs) + " per point, " + Fixed(o.seconds, 1) +
       " s each" + (o.baseline ? ", each followed by a run of its baselines" : "") +
       "; reads verified: " + (o.verify_all ? "every value" : "one request in 16 per thread"));
  if (o.baseline)
    line("baselines memcpy (1 thread); iperf3 " +
         (r.iperf3_version.empty() ? std::string("(not installed)") : r.iperf3_version) +
         "; Redis " + (r.redis_version.empty() ? std::string("(not installed)") : r.redis_version) +
         " (RESP pipelined to the batch size, one connection per memkv thread)" +
         (std::find(o.rails.begin(), o.rails.end(), "rdma") != o.rails.end()
              ? "; rdma: a raw fi_writemsg/fi_readmsg loop over the same libfabric provider"
              : ""));
  line("");
  line(Pad("rail", 5) + Pad("op", 6) + PadLeft("size", 8) + PadLeft("thr", 4) +
       PadLeft("batch", 6) + "  " + Pad("auth", 5) + PadLeft("GiB/s", 8) + "  " +
       Pad("min–max", 15) + PadLeft("entries/s", 12) + PadLeft("p50 ms", 9) +
       PadLeft("p99 ms", 9) + PadLeft("÷memcpy", 9) + PadLeft("÷iperf3", 9) +
       PadLeft("÷redis", 8) + PadLeft("÷raw fi", 9) + "  status");
  for (const RailPoint& p : r.points) {
    std::string row = Pad(p.rail, 5) + Pad(p.op, 6) + PadLeft(SizeName(p.block_size), 8) +
                      PadLeft(std::to_string(p.threads), 4) +
                      PadLeft(std::to_string(p.batch), 6) + "  " + Pad(p.auth ? "on" : "off", 5);
    if (p.runs.empty()) {
      line(row + PadLeft("n/a", 8) + "  " + PointStatus(p));
      continue;
    }
    const Spread g = Of(p.runs, GiBps);
    const Spread e = Of(p.runs, EntriesPerS);
    line(row + PadLeft(Fixed(g.median, 3), 8) + "  " +
         Pad(Fixed(g.min, 3) + "–" + Fixed(g.max, 3), 15) +
         PadLeft(Thousands(uint64_t(e.median)), 12) + PadLeft(Ms(p.latencies_ms, 50), 9) +
         PadLeft(Ms(p.latencies_ms, 99), 9) + PadLeft(Ratio(p.vs_memcpy), 9) +
         PadLeft(Ratio(p.vs_iperf3), 9) + PadLeft(Ratio(p.vs_redis), 8) +
         PadLeft(Ratio(p.vs_fabric), 9) + "  " + PointStatus(p) +
         (p.goal_point ? " (goal point)" : ""));
  }
  if (!r.baselines.empty()) {
    line("");
    line(Pad("baseline", 58) + PadLeft("GiB/s", 8) + "  " + Pad("min–max", 15) +
         PadLeft("entries/s", 12) + PadLeft("p50 ms", 9) + PadLeft("p99 ms", 9));
    for (const BaselineSeries& b : r.baselines) {
      if (b.runs.empty()) {
        line(Pad(b.label, 58) + "skipped: " + b.skipped);
        continue;
      }
      const Spread g = Of(b.runs, GiBps);
      const Spread e = Of(b.runs, EntriesPerS);
      line(Pad(b.label, 58) + PadLeft(Fixed(g.median, 3), 8) + "  " +
           Pad(Fixed(g.min, 3) + "–" + Fixed(g.max, 3), 15) +
           PadLeft(e.median > 0 ? Thousands(uint64_t(e.median)) : "-", 12) +
           PadLeft(Ms(b.latencies_ms, 50), 9) + PadLeft(Ms(b.latencies_ms, 99), 9) +
           (b.verify_failures ? "  VERIFY FAILURES" : ""));
    }
  }
  if (!r.goals.empty()) {
    line("");
    line("goals");
    for (const Goal& g : r.goals) {
      std::string verdict;
      if (!std::isfinite(g.value)) verdict = "n/a";
      else if (g.target > 0) verdict = g.value >= g.target ? "met" : "NOT MET";
      const std::string value =
          std::isfinite(g.value) ? Fixed(g.value, 2) + (g.unit == "x" ? "x" : " " + g.unit) : "-";
      line("  " + Pad(g.text, 70) + PadLeft(value, 10) +
           (g.target > 0 ? "  (goal " + Fixed(g.target, 1) + "x) " + verdict : "") + "  " +
           g.how);
    }
  }
  line("");
  for (const std::string& n : r.notes) line("note: " + n);
  line(std::string(r.ok ? "PASS" : "FAIL") + ": " + Thousands(r.verified) +
       " memkv values verified, " + Thousands(r.verify_failures) + " verify failures");
  return t;
}

json::object RailTierJson(const RailTierResult& r) {
  const RailTierOptions& o = r.options;
  json::object out;
  out["tier"] = "rail";
  out["ok"] = r.ok;
  out["machine"] = {{"cpu_model", r.machine.cpu_model}, {"cpus", r.machine.cpus},
                    {"kernel", r.machine.kernel}, {"date", r.machine.date}};
  json::array sizes, threads, batches, rails, ops, auth, servers, cmds;
  for (auto s : o.sizes) sizes.push_back(s);
  for (auto s : o.threads) threads.push_back(s);
  for (auto s : o.batches) batches.push_back(s);
  for (auto& s : o.rails) rails.push_back(json::value(s));
  for (auto& s : o.ops) ops.push_back(json::value(s));
  for (bool a : o.auth) auth.push_back(a);
  for (auto& s : o.servers) servers.push_back(json::value(s));
  for (auto& s : r.server_commands) cmds.push_back(json::value(s));
  out["options"] = {{"sizes", sizes},         {"threads", threads},     {"batches", batches},
                    {"rails", rails},         {"ops", ops},             {"auth", auth},
                    {"runs", o.runs},         {"seconds", o.seconds},   {"baseline", o.baseline},
                    {"verify_all", o.verify_all}, {"servers", servers},
                    {"command_line", o.command_line}};
  out["server_commands"] = cmds;
  out["redis_version"] = r.redis_version.empty() ? json::value(nullptr) : json::value(r.redis_version);
  out["iperf3_version"] =
      r.iperf3_version.empty() ? json::value(nullptr) : json::value(r.iperf3_version);
  out["fabric_provider"] =
      r.fabric_provider.empty() ? json::value(nullptr) : json::value(r.fabric_provider);
  json::array points;
  for (const RailPoint& p : r.points) {
    json::object po;
    po["rail"] = p.rail;
    po["op"] = p.op;
    po["block_size"] = p.block_size;
    po["threads"] = p.threads;
    po["batch"] = p.batch;
    po["auth"] = p.auth;
    po["goal_point"] = p.goal_point;
    po["status"] = p.refused.empty() ? (p.errors || p.verify_failures ? "error" : "ok") : "n/a";
    if (!p.refused.empty()) po["refused"] = p.refused;
    json::array runs;
    for (const RailRun& x : p.runs)
      runs.push_back(json::object{{"seconds", x.seconds},   {"bytes", x.bytes},
                                  {"entries", x.entries},   {"requests", x.requests},
                                  {"gib_per_s", GiBps(x)}});
    po["runs"] = std::move(runs);
    po["gib_per_s"] = SpreadJson(Of(p.runs, GiBps));
    po["entries_per_s"] = SpreadJson(Of(p.runs, EntriesPerS));
    po["latency_ms"] = {{"requests", p.latencies_ms.size()},
                        {"p50", Num(p.latencies_ms.empty() ? NAN : Percentile(p.latencies_ms, 50))},
                        {"p99", Num(p.latencies_ms.empty() ? NAN : Percentile(p.latencies_ms, 99))}};
    po["verified"] = p.verified;
    po["verify_failures"] = p.verify_failures;
    po["errors"] = p.errors;
    if (!p.first_error.empty()) po["first_error"] = p.first_error;
    po["ratios"] = {{"memcpy", Num(p.vs_memcpy)}, {"iperf3", Num(p.vs_iperf3)},
                    {"redis", Num(p.vs_redis)}, {"fabric", Num(p.vs_fabric)}};
    po["baselines"] = {{"memcpy", p.memcpy_id}, {"iperf3", p.iperf3_id}, {"redis", p.redis_id},
                       {"fabric", p.fabric_id}};
    points.push_back(std::move(po));
  }
  out["points"] = std::move(points);
  json::array baselines;
  for (const BaselineSeries& b : r.baselines) {
    json::object bo;
    bo["id"] = b.id;
    bo["kind"] = b.kind;
    bo["label"] = b.label;
    bo["block_size"] = b.block_size;
    bo["batch"] = b.batch;
    bo["connections"] = b.connections;
    if (!b.skipped.empty()) bo["skipped"] = b.skipped;
    json::array runs;
    for (const BaselineRun& x : b.runs)
      runs.push_back(json::object{{"seconds", x.seconds},   {"bytes", x.bytes},
                                  {"entries", x.entries},   {"requests", x.requests},
                                  {"gib_per_s", GiBps(x)}});
    bo["runs"] = std::move(runs);
    bo["gib_per_s"] = SpreadJson(Of(b.runs, GiBps));
    bo["latency_ms"] = {{"p50", Num(b.latencies_ms.empty() ? NAN : Percentile(b.latencies_ms, 50))},
                        {"p99", Num(b.latencies_ms.empty() ? NAN : Percentile(b.latencies_ms, 99))}};
    bo["verify_failures"] = b.verify_failures;
    baselines.push_back(std::move(bo));
  }
  out["baselines"] = std::move(baselines);
  json::array goals;
  for (const Goal& g : r.goals)
    goals.push_back(json::object{{"id", g.id},
                                 {"text", g.text},
                                 {"value", Num(g.value)},
                                 {"target", g.target > 0 ? json::value(g.target) : json::value(nullptr)},
                                 {"met", g.target > 0 && std::isfinite(g.value)
                                             ? json::value(g.value >= g.target)
                                             : json::value(nullptr)},
                                 {"unit", g.unit},
                                 {"how", g.how}});
  out["goals"] = std::move(goals);
  json::array notes;
  for (const auto& n : r.notes) notes.push_back(json::value(n));
  out["notes"] = std::move(notes);
  out["verified"] = r.verified;
  out["verify_failures"] = r.verify_failures;
  return out;
}

std::string RailTierCsv(const RailTierResult& r) {
  std::string t =
      "kind,id,rail,op,block_size,threads,batch,auth,status,gib_per_s_median,gib_per_s_min,"
      "gib_per_s_max,entries_per_s_median,p50_ms,p99_ms,ratio_memcpy,ratio_iperf3,ratio_redis,"
      "ratio_fabric\n";
  auto num = [](double v, int d) { return std::isfinite(v) ? Fixed(v, d) : std::string(); };
  auto quote = [](std::string s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  for (const RailPoint& p : r.points) {
    const Spread g = Of(p.runs, GiBps);
    const bool has = !p.runs.empty();
    t += "memkv,," + p.rail + "," + p.op + "," + std::to_string(p.block_size) + "," +
         std::to_string(p.threads) + "," + std::to_string(p.batch) + "," +
         (p.auth ? "on" : "off") + "," + quote(PointStatus(p)) + "," +
         (has ? Fixed(g.median, 4) : "") + "," + (has ? Fixed(g.min, 4) : "") + "," +
         (has ? Fixed(g.max, 4) : "") + "," +
         (has ? Fixed(Of(p.runs, EntriesPerS).median, 0) : "") + "," +
         (p.latencies_ms.empty() ? "" : Fixed(Percentile(p.latencies_ms, 50), 3)) + "," +
         (p.latencies_ms.empty() ? "" : Fixed(Percentile(p.latencies_ms, 99), 3)) + "," +
         num(p.vs_memcpy, 3) + "," + num(p.vs_iperf3, 3) + "," + num(p.vs_redis, 3) + "," +
         num(p.vs_fabric, 3) + "\n";
  }
  for (const BaselineSeries& b : r.baselines) {
    const Spread g = Of(b.runs, GiBps);
    const bool has = !b.runs.empty();
    t += b.kind + "," + b.id + ",,," + std::to_string(b.block_size) + "," +
         std::to_string(b.connections) + "," + std::to_string(b.batch) + ",," +
         quote(has ? "ok" : "skipped: " + b.skipped) + "," + (has ? Fixed(g.median, 4) : "") +
         "," + (has ? Fixed(g.min, 4) : "") + "," + (has ? Fixed(g.max, 4) : "") + "," +
         (has ? Fixed(Of(b.runs, EntriesPerS).median, 0) : "") + "," +
         (b.latencies_ms.empty() ? "" : Fixed(Percentile(b.latencies_ms, 50), 3)) + "," +
         (b.latencies_ms.empty() ? "" : Fixed(Percentile(b.latencies_ms, 99), 3)) + ",,,,\n";
  }
  return t;
}

std::string RailTierSvg(const RailTierResult& r) {
  Chart c;
  const uint32_t t1 = *std::min_element(r.options.threads.begin(), r.options.threads.end());
  c.title = "memkv rails against baselines, " + std::to_string(t1) + " client thread" +
            (t1 == 1 ? "" : "s") + " (median of " + std::to_string(r.options.runs) + " runs)";
  std::map<std::string, size_t> index;
  auto series = [&](const std::string& name, bool dashed) -> ChartSeries& {
    auto [it, fresh] = index.try_emplace(name, c.series.size());
    if (fresh) c.series.push_back({name, {}, dashed});
    return c.series[it->second];
  };
  uint64_t xmin = UINT64_MAX, xmax = 0;
  for (const RailPoint& p : r.points) {
    if (!Charted(r, p) || p.op == "mixed") continue;
    ChartSeries& s = series("memkv " + p.rail + " " + p.op, false);
    xmin = std::min(xmin, p.block_size);
    xmax = std::max(xmax, p.block_size);
    if (!p.runs.empty()) s.points.push_back({double(p.block_size), MedianGiBps(p.runs)});
  }
  for (const BaselineSeries& b : r.baselines) {
    if (b.runs.empty()) continue;
    if (b.kind == "memcpy") {
      if (r.options.batches.front() != 0 && b.batch != r.options.batches.front()) continue;
      if (r.options.batches.front() == 0 && b.batch != AutoBatch(b.block_size)) continue;
      series("memcpy, 1 thread", true).points.push_back({double(b.block_size), MedianGiBps(b.runs)});
    } else if ((b.kind == "redis-get" || b.kind == "redis-set") && b.connections == t1) {
      const uint32_t want =
          r.options.batches.front() ? r.options.batches.front() : AutoBatch(b.block_size);
      if (b.batch != want) continue;
      series(std::string("Redis ") + (b.kind == "redis-get" ? "GET" : "SET") + ", pipelined", true)
          .points.push_back({double(b.block_size), MedianGiBps(b.runs)});
    }
  }
  for (const BaselineSeries& b : r.baselines)
    if ((b.kind == "fi-write" || b.kind == "fi-read") && !b.runs.empty())
      series(b.kind == "fi-write" ? "raw fi_writemsg loop" : "raw fi_readmsg loop", true)
          .points.push_back({double(b.block_size), MedianGiBps(b.runs)});
  for (const BaselineSeries& b : r.baselines)
    if (b.kind == "iperf3" && !b.runs.empty() && xmax > 0) {
      // One point per block size written (-l); an old single run spans the chart.
      ChartSeries& s = series("iperf3, 1 stream", true);
      if (b.block_size) {
        s.points.push_back({double(b.block_size), MedianGiBps(b.runs)});
      } else {
        s.points.push_back({double(xmin), MedianGiBps(b.runs)});
        s.points.push_back({double(xmax), MedianGiBps(b.runs)});
      }
    }
  return RenderSvg(c);
}

std::string RailTierMarkdown(const RailTierResult& r, const std::string& svg_link,
                             const std::string& drive_tier_text) {
  const RailTierOptions& o = r.options;
  std::string m;
  auto line = [&](const std::string& s = {}) { m += s + "\n"; };
  line("# Performance");
  line();
  line("Generated by `scripts/bench.sh` (`memkv-bench --tier rail --baseline --markdown`); do not "
       "edit by hand. Every figure is the median of " + std::to_string(o.runs) + " runs of " +
       Fixed(o.seconds, 1) + " s; ratios are ratios of medians, measured in the same invocation "
       "with the baselines' runs interleaved with memkv's.");
  line();
  line("| | |");
  line("| --- | --- |");
  line("| date | " + r.machine.date + " |");
  line("| machine | " + r.machine.cpu_model + ", " + std::to_string(r.machine.cpus) + " CPUs, " +
       r.machine.kernel + " |");
  line("| command | `" + o.command_line + "` |");
  for (const std::string& c : r.server_commands) line("| server | `" + c + "` |");
  if (o.baseline)
    line("| baselines | memcpy (1 thread); iperf3 " +
         (r.iperf3_version.empty() ? std::string("not installed") : r.iperf3_version) +
         "; Redis " + (r.redis_version.empty() ? std::string("not installed") : r.redis_version) +
         " (`--save '' --appendonly no`, RESP pipelined to memkv's batch size, by memkv-bench's "
         "own client and cross-checked with redis-benchmark; \"÷ Redis\" is against the faster "
         "of the two)" +
         (std::find(o.rails.begin(), o.rails.end(), "rdma") != o.rails.end()
              ? "; rdma rows: a raw fi_writemsg (reads) or fi_readmsg (writes) loop between two "
                "endpoints of one process over " +
                    (r.fabric_provider.empty() ? std::string("the same provider") : r.fabric_provider) +
                    ", the server's pieces and depth (\"÷ raw fi\")"
              : std::string()) +
         " |");
  line("| verification | " +
       std::string(o.verify_all ? "every value read is checked" : "one read request in 16 per thread is checked") +
       "; " + Thousands(r.verified) + " values verified, " + Thousands(r.verify_failures) +
       " failures |");
  line();
  if (!r.goals.empty()) {
    line("## Goals");
    line();
    line("| goal | measured | target | | from |");
    line("| --- | ---: | ---: | --- | --- |");
    for (const Goal& g : r.goals) {
      const std::string value =
          std::isfinite(g.value) ? Fixed(g.value, 2) + (g.unit == "x" ? "x" : " " + g.unit) : "n/a";
      std::string verdict;
      if (g.target > 0) verdict = !std::isfinite(g.value) ? "not measured"
                                  : g.value >= g.target   ? "met"
                                                          : "**not met**";
      line("| " + g.text + " | " + value + " | " +
           (g.target > 0 ? Fixed(g.target, 1) + "x" : "") + " | " + verdict + " | " + g.how + " |");
    }
    line();
  }
  line("## Rails");
  line();
  if (!svg_link.empty()) {
    line("![GiB/s against block size](" + svg_link + ")");
    line();
  }
  line("| rail | op | size | threads | batch | auth | GiB/s (min–max) | entries/s | p50 ms | p99 ms "
       "| ÷ memcpy | ÷ iperf3 | ÷ Redis | ÷ raw fi |");
  line("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const RailPoint& p : r.points) {
    std::string row = "| " + p.rail + " | " + p.op + " | " + SizeName(p.block_size) + " | " +
                      std::to_string(p.threads) + " | " + Thousands(p.batch) + " | " +
                      (p.auth ? "on" : "off") + " | ";
    if (p.runs.empty()) {
      line(row + PointStatus(p) + " | | | | | | | |");
      continue;
    }
    const Spread g = Of(p.runs, GiBps);
    line(row + Fixed(g.median, 3) + " (" + Fixed(g.min, 3) + "–" + Fixed(g.max, 3) + ") | " +
         Thousands(uint64_t(Of(p.runs, EntriesPerS).median)) + " | " + Ms(p.latencies_ms, 50) +
         " | " + Ms(p.latencies_ms, 99) + " | " + Ratio(p.vs_memcpy) + " | " +
         Ratio(p.vs_iperf3) + " | " + Ratio(p.vs_redis) + " | " + Ratio(p.vs_fabric) + " |");
  }
  line();
  if (!r.baselines.empty()) {
    line("## Baselines");
    line();
    line("| baseline | GiB/s (min–max) | entries/s | p50 ms | p99 ms |");
    line("| --- | ---: | ---: | ---: | ---: |");
    for (const BaselineSeries& b : r.baselines) {
      if (b.runs.empty()) {
        line("| " + b.label + " | skipped: " + b.skipped + " | | | |");
        continue;
      }
      const Spread g = Of(b.runs, GiBps);
      const double e = Of(b.runs, EntriesPerS).median;
      line("| " + b.label + " | " + Fixed(g.median, 3) + " (" + Fixed(g.min, 3) + "–" +
           Fixed(g.max, 3) + ") | " + (e > 0 ? Thousands(uint64_t(e)) : "-") + " | " +
           Ms(b.latencies_ms, 50) + " | " + Ms(b.latencies_ms, 99) + " |");
    }
    line();
  }
  // The auth key's cost at every point measured both ways.
  std::string auth_rows;
  for (const RailPoint& on : r.points) {
    if (!on.auth || on.runs.empty()) continue;
    for (const RailPoint& off : r.points)
      if (!off.auth && !off.runs.empty() && off.rail == on.rail && off.op == on.op &&
          off.block_size == on.block_size && off.batch == on.batch && off.threads == on.threads)
        auth_rows += "| " + on.rail + " | " + on.op + " | " + SizeName(on.block_size) + " | " +
                     std::to_string(on.threads) + " | " + Thousands(on.batch) + " | " +
                     Fixed(MedianGiBps(off.runs), 3) + " | " + Fixed(MedianGiBps(on.runs), 3) +
                     " | " + Ratio(RatioOf(MedianGiBps(on.runs), MedianGiBps(off.runs))) + " |\n";
  }
  if (!auth_rows.empty()) {
    line("## The cost of the auth key");
    line();
    line("HMAC-SHA256 over each frame's header and control payload (the data is bound through "
         "its per-entry checksum). 1.00 means free.");
    line();
    line("| rail | op | size | threads | batch | GiB/s off | GiB/s on | on ÷ off |");
    line("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    m += auth_rows;
    line();
  }
  if (!drive_tier_text.empty()) {
    line("## Drive tier (memkv-bench --tier drive, against fio)");
    line();
    line("```");
    m += drive_tier_text;
    if (!drive_tier_text.empty() && drive_tier_text.back() != '\n') line();
    line("```");
    line();
  }
  if (!r.notes.empty()) {
    line("## Notes");
    line();
    for (const std::string& n : r.notes) line("- " + n);
    line();
  }
  return m;
}

}  // namespace memkv::bench
