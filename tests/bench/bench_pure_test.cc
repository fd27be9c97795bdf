// The pure parts of memkv-bench: the value patterns and their verifier, the
// RESP codec of the Redis baseline, the SVG chart, the median/percentile/
// ratio math and the report writers (JSON, CSV, Markdown) of the rail tier.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "baselines.h"
#include "rail_tier.h"
#include "report.h"
#include "resp.h"
#include "svg_chart.h"
#include "verify.h"

namespace memkv::bench {
namespace {

// ---- verify.h ----

TEST(VerifyBlock, AcceptsWhatFillBlockWrote) {
  for (size_t size : {1u, 7u, 8u, 9u, 4096u, 4099u}) {
    std::vector<std::byte> b(size);
    FillBlock(b, 42, 7);
    EXPECT_TRUE(VerifyBlock(b, 42, 7)) << size;
  }
}

TEST(VerifyBlock, RejectsOneFlippedByteAnywhere) {
  std::vector<std::byte> b(4096 + 5);  // a tail shorter than a word too
  FillBlock(b, 3, 11);
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] ^= std::byte{0x01};
    EXPECT_FALSE(VerifyBlock(b, 3, 11)) << "flipped byte " << i;
    b[i] ^= std::byte{0x01};
  }
  EXPECT_TRUE(VerifyBlock(b, 3, 11));
}

TEST(VerifyBlock, RejectsAnotherKeySeedOrOffset) {
  std::vector<std::byte> b(4096);
  FillBlock(b, 5, 1);
  EXPECT_FALSE(VerifyBlock(b, 6, 1));
  EXPECT_FALSE(VerifyBlock(b, 5, 2));
  EXPECT_FALSE(VerifyBlock(b, 5, 1, 8));
  // A range of the value checks against its own offset.
  std::vector<std::byte> whole(8192), part(4096);
  FillBlock(whole, 9, 4);
  FillBlock(part, 9, 4, 4096);
  EXPECT_EQ(std::memcmp(whole.data() + 4096, part.data(), 4096), 0);
  EXPECT_TRUE(VerifyBlock(part, 9, 4, 4096));
}

TEST(VerifyBlock, RejectsAnUntouchedBuffer) {
  std::vector<std::byte> b(4096, std::byte{0xa5});  // what the bench poisons with
  EXPECT_FALSE(VerifyBlock(b, 0, 0));
}

// ---- resp.h ----

std::string Encode(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::AppendCommand(out, args);
  return out;
}

TEST(Resp, EncodesCommandsAsArraysOfBulkStrings) {
  EXPECT_EQ(Encode({"GET", "k"}), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  EXPECT_EQ(Encode({"SET", "a", ""}), "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n");
  // Binary values go through untouched, CRLF included.
  const std::string v("x\r\n\0y", 5);
  EXPECT_EQ(Encode({"SET", "k", v}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n" + v + "\r\n");
}

TEST(Resp, ParsesWhatItEncodes) {
  resp::Value arr;
  arr.type = resp::Type::kArray;
  const std::string binary("a\r\nb\0c", 6);
  for (auto [type, text, integer] :
       std::vector<std::tuple<resp::Type, std::string_view, int64_t>>{
           {resp::Type::kSimple, "OK", 0},
           {resp::Type::kError, "ERR wrong", 0},
           {resp::Type::kInteger, "", -42},
           {resp::Type::kBulk, binary, 0},
           {resp::Type::kBulk, "", 0},
           {resp::Type::kNull, "", 0}}) {
    resp::Value v;
    v.type = type;
    v.text = text;
    v.integer = integer;
    arr.elements.push_back(v);
  }
  resp::Value nested;
  nested.type = resp::Type::kArray;
  nested.elements.push_back(arr);
  std::string wire;
  resp::AppendValue(wire, nested);

  resp::Value back;
  size_t used = 0;
  ASSERT_EQ(resp::Parse(wire, back, used), resp::ParseStatus::kOk);
  EXPECT_EQ(used, wire.size());
  std::string again;
  resp::AppendValue(again, back);
  EXPECT_EQ(again, wire);
  ASSERT_EQ(back.elements.size(), 1u);
  const auto& e = back.elements[0].elements;
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[0].text, "OK");
  EXPECT_EQ(e[1].type, resp::Type::kError);
  EXPECT_EQ(e[2].integer, -42);
  EXPECT_EQ(e[3].text, binary);
  EXPECT_EQ(e[5].type, resp::Type::kNull);
}

TEST(Resp, EveryPrefixIsIncompleteAndRepliesFollowOneAnother) {
  const std::string wire = "+OK\r\n$5\r\nhello\r\n:7\r\n*2\r\n$1\r\na\r\n$-1\r\n";
  // Any cut inside the first reply asks for more bytes.
  for (size_t cut = 0; cut < 5; ++cut) {
    resp::Value v;
    size_t used = 0;
    EXPECT_EQ(resp::Parse(std::string_view(wire).substr(0, cut), v, used),
              resp::ParseStatus::kIncomplete)
        << cut;
  }
  std::string_view rest = wire;
  std::vector<resp::Type> types;
  while (!rest.empty()) {
    resp::Value v;
    size_t used = 0;
    ASSERT_EQ(resp::Parse(rest, v, used), resp::ParseStatus::kOk);
    types.push_back(v.type);
    rest.remove_prefix(used);
  }
  EXPECT_EQ(types, (std::vector<resp::Type>{resp::Type::kSimple, resp::Type::kBulk,
                                            resp::Type::kInteger, resp::Type::kArray}));
  // A bulk string cut before its CRLF is incomplete, not an error.
  resp::Value v;
  size_t used = 0;
  EXPECT_EQ(resp::Parse("$5\r\nhel", v, used), resp::ParseStatus::kIncomplete);
  EXPECT_EQ(resp::Parse("$5\r\nhello", v, used), resp::ParseStatus::kIncomplete);
}

TEST(Resp, RejectsWhatIsNotResp) {
  resp::Value v;
  size_t used = 0;
  EXPECT_EQ(resp::Parse("hello\r\n", v, used), resp::ParseStatus::kError);
  EXPECT_EQ(resp::Parse("$abc\r\n", v, used), resp::ParseStatus::kError);
  EXPECT_EQ(resp::Parse("$-2\r\n", v, used), resp::ParseStatus::kError);
  EXPECT_EQ(resp::Parse("$3\r\nabcXY", v, used), resp::ParseStatus::kError);
  EXPECT_EQ(resp::Parse(":12x\r\n", v, used), resp::ParseStatus::kError);
  std::string deep(40, '*');
  std::string nested;
  for (int i = 0; i < 40; ++i) nested += "*1\r\n";
  nested += ":1\r\n";
  EXPECT_EQ(resp::Parse(nested, v, used), resp::ParseStatus::kError);
}

// ---- svg_chart.h ----

// Checks that tags nest and close, attributes are quoted and text holds no
// raw '<' or '&' outside entities: enough of XML well-formedness to catch
// what a hand-written writer gets wrong.
bool WellFormed(const std::string& doc, std::string& why) {
  std::vector<std::string> stack;
  size_t i = 0;
  if (doc.rfind("<?xml", 0) == 0) i = doc.find("?>") + 2;
  while (i < doc.size()) {
    if (doc[i] == '&') {
      const size_t semi = doc.find(';', i);
      const std::string ent = doc.substr(i, semi == std::string::npos ? 0 : semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;") {
        why = "bad entity at " + std::to_string(i);
        return false;
      }
      i = semi + 1;
      continue;
    }
    if (doc[i] != '<') {
      if (doc[i] == '>') {
        why = "raw '>' at " + std::to_string(i);
        return false;
      }
      ++i;
      continue;
    }
    const size_t close = doc.find('>', i);
    if (close == std::string::npos) {
      why = "unterminated tag";
      return false;
    }
    std::string tag = doc.substr(i + 1, close - i - 1);
    // Quotes inside a tag come in pairs and hold no '<'.
    size_t quotes = 0;
    for (char c : tag) quotes += c == '"';
    if (quotes % 2 || tag.find('<') != std::string::npos) {
      why = "bad attributes in <" + tag + ">";
      return false;
    }
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) {
        why = "</" + tag.substr(1) + "> closes " + (stack.empty() ? "nothing" : stack.back());
        return false;
      }
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
    i = close + 1;
  }
  if (!stack.empty()) {
    why = "<" + stack.back() + "> is never closed";
    return false;
  }
  return true;
}

TEST(SvgChart, IsWellFormedAndEscapesNames) {
  Chart c;
  c.title = "rails <&> \"baselines\"";
  c.series.push_back({"memkv tcp read", {{4096, 0.5}, {16384, 1.5}, {1 << 20, 3.0}}, false});
  c.series.push_back({"Redis GET & SET <pipelined>", {{4096, 0.2}, {1 << 20, 1.0}}, true});
  c.series.push_back({"nothing measured", {}, false});
  const std::string svg = RenderSvg(c);
  std::string why;
  EXPECT_TRUE(WellFormed(svg, why)) << why << "\n" << svg;
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("Redis GET &amp; SET &lt;pipelined&gt;"), std::string::npos);
  EXPECT_NE(svg.find("rails &lt;&amp;&gt; &quot;baselines&quot;"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // a baseline is dashed
  EXPECT_NE(svg.find("4 KiB"), std::string::npos);
  EXPECT_NE(svg.find("1 MiB"), std::string::npos);
  EXPECT_NE(svg.find("(no data)"), std::string::npos);
  // Two polylines: the series without points has none.
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1))
    ++lines;
  EXPECT_EQ(lines, 2u);
}

TEST(SvgChart, AnEmptyChartIsStillADocument) {
  std::string why;
  const std::string svg = RenderSvg(Chart{});
  EXPECT_TRUE(WellFormed(svg, why)) << why;
  Chart nan;
  nan.series.push_back({"bad", {{0, 1}, {4096, NAN}, {-1, 2}}, false});
  EXPECT_TRUE(WellFormed(RenderSvg(nan), why)) << why;
  EXPECT_EQ(RenderSvg(nan).find("nan"), std::string::npos);
}

// ---- report.h: medians, percentiles, ratios ----

TEST(Baselines, RedisBenchmarkCsvGivesEachTestsRate) {
  const std::string csv =
      "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n"
      "\"SET\",\"1234.50\",\"3.1\",\"0.5\"\n"
      "\"GET\",\"2000.00\",\"1.9\",\"0.4\"\n";
  EXPECT_EQ(ParseRedisBenchmarkCsv(csv, "SET"), 1234.5);
  EXPECT_EQ(ParseRedisBenchmarkCsv(csv, "GET"), 2000.0);
  EXPECT_FALSE(ParseRedisBenchmarkCsv(csv, "LPUSH"));
  EXPECT_FALSE(ParseRedisBenchmarkCsv("\"GET\",\"0\"\n", "GET"));  // no rate
  EXPECT_FALSE(ParseRedisBenchmarkCsv("Could not connect to Redis", "GET"));
}

TEST(Baselines, Iperf3WritesTheMeasuredBlockUpToItsLimit) {
  EXPECT_EQ(Iperf3Block(4096), 4096u);
  EXPECT_EQ(Iperf3Block(1u << 20), 1u << 20);
  EXPECT_EQ(Iperf3Block(16u << 20), 1u << 20);
}

TEST(Math, SpreadOfIsMedianAndRange) {
  const double odd[] = {3, 1, 2};
  EXPECT_EQ(SpreadOf(odd).median, 2);
  const double even[] = {4, 1, 3, 2};
  const Spread s = SpreadOf(even);
  EXPECT_EQ(s.median, 2.5);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 4);
  EXPECT_EQ(SpreadOf({}).median, 0);
}

TEST(Math, PercentileIsNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  const double four[] = {1, 2, 3, 4};
  EXPECT_EQ(Percentile(four, 50), 2);
  const double one[] = {7};
  EXPECT_EQ(Percentile(one, 99), 7);
  EXPECT_EQ(Percentile({}, 50), 0);
}

TEST(Math, RatioOfMediansAndMissingSides) {
  EXPECT_DOUBLE_EQ(RatioOf(3, 2), 1.5);
  EXPECT_TRUE(std::isnan(RatioOf(1, 0)));
  EXPECT_TRUE(std::isnan(RatioOf(NAN, 2)));
  EXPECT_TRUE(std::isnan(RatioOf(2, NAN)));
  // Ratios of the medians of runs, not medians of per-run ratios.
  std::vector<RailRun> mk = {{1, 3ull << 30, 0, 0}, {1, 1ull << 30, 0, 0}, {1, 2ull << 30, 0, 0}};
  std::vector<BaselineRun> base(3);
  for (int i = 0; i < 3; ++i) {
    base[i].seconds = 2;
    base[i].bytes = uint64_t(i + 1) << 30;  // 0.5, 1, 1.5 GiB/s
  }
  EXPECT_DOUBLE_EQ(MedianGiBps(mk), 2.0);
  EXPECT_DOUBLE_EQ(MedianGiBps(base), 1.0);
  EXPECT_DOUBLE_EQ(RatioOf(MedianGiBps(mk), MedianGiBps(base)), 2.0);
  EXPECT_EQ(Fixed(NAN, 2), "-");
}

TEST(Math, AutoBatchMovesAboutEightMiBUpToTheMaximum) {
  EXPECT_EQ(AutoBatch(4096), 2048u);
  EXPECT_EQ(AutoBatch(1 << 20), 8u);
  EXPECT_EQ(AutoBatch(16 << 20), 1u);
  EXPECT_EQ(AutoBatch(512), kMaxAutoBatch);
  EXPECT_EQ(AutoBatch(1), kMaxAutoBatch);
}

TEST(Math, SizeListsParse) {
  std::vector<uint64_t> sizes;
  std::string error;
  ASSERT_TRUE(ParseSizeList("4K,16KiB,1M,4096", sizes, error)) << error;
  EXPECT_EQ(sizes, (std::vector<uint64_t>{4096, 16384, 1 << 20, 4096}));
  EXPECT_FALSE(ParseSizeList("4K,lots", sizes, error));
  EXPECT_NE(error.find("lots"), std::string::npos);
  EXPECT_FALSE(ParseSizeList("", sizes, error));
}

// ---- the rail tier's reports from a made-up result ----

RailTierResult MadeUp() {
  RailTierResult r;
  r.options.sizes = {4096, 1 << 20};
  r.options.threads = {1};
  r.options.rails = {"tcp", "shm"};
  r.options.ops = {"read"};
  r.options.auth = {false};
  r.options.runs = 3;
  r.options.baseline = true;
  r.options.command_line = "memkv-bench --tier rail";
  r.machine.cpu_model = "Test CPU";
  r.machine.date = "2026-01-01T00:00:00Z";
  for (const char* rail : {"tcp", "shm"})
    for (uint64_t size : r.options.sizes) {
      RailPoint p;
      p.rail = rail;
      p.op = "read";
      p.block_size = size;
      p.batch = AutoBatch(size);
      p.runs = {{1, 1ull << 30, 1000, 10}, {1, 2ull << 30, 2000, 20}, {1, 3ull << 30, 3000, 30}};
      p.latencies_ms = {1, 2, 3, 4};
      p.vs_memcpy = 0.5;
      p.vs_redis = 2;
      p.vs_iperf3 = std::string(rail) == "tcp" ? 0.9 : NAN;
      r.points.push_back(p);
    }
  RailPoint rdma;
  rdma.rail = "rdma";
  rdma.op = "read";
  rdma.block_size = 1 << 20;
  rdma.batch = AutoBatch(1 << 20);
  rdma.runs = {{1, 1ull << 30, 1000, 10}};
  rdma.vs_memcpy = 0.1;
  rdma.vs_redis = 1;
  rdma.vs_iperf3 = NAN;
  rdma.vs_fabric = 0.75;
  rdma.fabric_id = "fi-write/1048576";
  r.points.push_back(rdma);
  RailPoint refused;
  refused.rail = "tcp";
  refused.op = "read";
  refused.block_size = 16 << 20;
  refused.batch = 1;
  refused.refused = "refused: the value does not fit in one frame";
  refused.vs_memcpy = refused.vs_redis = refused.vs_iperf3 = NAN;
  r.points.push_back(refused);
  BaselineSeries m;
  m.id = "memcpy/4096x2048";
  m.kind = "memcpy";
  m.label = "memcpy 4 KiB x2048, 1 thread";
  m.block_size = 4096;
  m.batch = 2048;
  m.runs.resize(3);
  for (auto& x : m.runs) x.seconds = 1, x.bytes = 4ull << 30;
  r.baselines.push_back(m);
  BaselineSeries redis;
  redis.id = "redis-get/4096x2048/c1";
  redis.kind = "redis-get";
  redis.label = "Redis GET";
  redis.skipped = "redis-server is not installed (Debian: apt-get install redis-server)";
  r.baselines.push_back(redis);
  BaselineSeries raw;
  raw.id = "fi-write/1048576";
  raw.kind = "fi-write";
  raw.label = "raw fi_writemsg 1 MiB, depth 64, tcp;ofi_rxm";
  raw.block_size = 1 << 20;
  raw.runs.resize(1);
  raw.runs[0].seconds = 1;
  raw.runs[0].bytes = 2ull << 30;
  r.baselines.push_back(raw);
  r.options.rails.push_back("rdma");
  r.goals.push_back({"g", "a goal", 0.85, 0.8, "x", "from somewhere"});
  r.goals.push_back({"p50", "a latency", 1.5, 0, "ms", ""});
  r.goals.push_back({"n", "not measured", NAN, 1.0, "x", ""});
  r.notes.push_back("a note");
  return r;
}

TEST(RailReport, JsonHasTheFieldsAScriptReads) {
  const RailTierResult r = MadeUp();
  const std::string text = boost::json::serialize(RailTierJson(r));
  const boost::json::value v = boost::json::parse(text);  // throws when malformed
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("tier").as_string(), "rail");
  ASSERT_EQ(o.at("points").as_array().size(), 6u);
  const auto& p = o.at("points").as_array()[0].as_object();
  for (const char* k : {"rail", "op", "block_size", "threads", "batch", "auth", "status", "runs",
                        "gib_per_s", "entries_per_s", "latency_ms", "ratios", "verified"})
    EXPECT_TRUE(p.contains(k)) << k;
  EXPECT_DOUBLE_EQ(p.at("gib_per_s").at("median").as_double(), 2.0);
  EXPECT_DOUBLE_EQ(p.at("ratios").at("redis").as_double(), 2.0);
  EXPECT_TRUE(o.at("points").as_array()[2].at("ratios").at("iperf3").is_null());  // shm: NaN
  // rdma rows carry their ratio to the raw libfabric loop; the others none.
  EXPECT_DOUBLE_EQ(o.at("points").as_array()[4].at("ratios").at("fabric").as_double(), 0.75);
  EXPECT_TRUE(o.at("points").as_array()[0].at("ratios").at("fabric").is_null());
  EXPECT_EQ(o.at("points").as_array()[5].at("status").as_string(), "n/a");
  EXPECT_EQ(o.at("baselines").as_array().size(), 3u);
  EXPECT_TRUE(o.at("baselines").as_array()[1].as_object().contains("skipped"));
  EXPECT_EQ(o.at("goals").as_array()[0].at("met").as_bool(), true);
  EXPECT_TRUE(o.at("goals").as_array()[2].at("value").is_null());
}

TEST(RailReport, CsvHasAHeaderAndARowPerPointAndBaseline) {
  const std::string csv = RailTierCsv(MadeUp());
  size_t rows = 0;
  for (char c : csv) rows += c == '\n';
  EXPECT_EQ(rows, 1u + 6u + 3u);
  EXPECT_NE(csv.find(",ratio_fabric\n"), std::string::npos);
  EXPECT_EQ(csv.rfind("kind,id,rail,op,block_size", 0), 0u);
  EXPECT_NE(csv.find("\"n/a (refused: the value does not fit in one frame)\""), std::string::npos);
  // Every row has the header's number of fields (no comma inside quotes here).
  std::stringstream in(csv);
  std::string line;
  std::getline(in, line);
  const auto fields = std::count(line.begin(), line.end(), ',');
  while (std::getline(in, line)) EXPECT_EQ(std::count(line.begin(), line.end(), ','), fields) << line;
}

TEST(RailReport, SvgAndMarkdown) {
  const RailTierResult r = MadeUp();
  std::string why;
  const std::string svg = RailTierSvg(r);
  EXPECT_TRUE(WellFormed(svg, why)) << why;
  EXPECT_NE(svg.find("memkv tcp read"), std::string::npos);
  EXPECT_NE(svg.find("memcpy, 1 thread"), std::string::npos);
  EXPECT_NE(svg.find("raw fi_writemsg loop"), std::string::npos);
  const std::string md = RailTierMarkdown(r, "performance.svg", "drive table\n");
  EXPECT_NE(md.find("![GiB/s against block size](performance.svg)"), std::string::npos);
  EXPECT_NE(md.find("| a goal | 0.85x | 0.8x | met |"), std::string::npos);
  EXPECT_NE(md.find("n/a (refused: the value does not fit in one frame)"), std::string::npos);
  EXPECT_NE(md.find("```\ndrive table\n```"), std::string::npos);
  const std::string table = RailTierTable(r);
  EXPECT_NE(table.find("PASS"), std::string::npos);
  EXPECT_NE(table.find("skipped: redis-server is not installed"), std::string::npos);
  EXPECT_NE(table.find("÷raw fi"), std::string::npos);
  EXPECT_NE(table.find("0.75"), std::string::npos);
  EXPECT_NE(md.find("| ÷ raw fi |"), std::string::npos);
}

}  // namespace
}  // namespace memkv::bench
