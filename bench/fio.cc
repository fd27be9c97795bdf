#include "fio.h"

#include <sys/wait.h>

#include <simdjson.h>

#include "child.h"

namespace memkv::bench {
namespace {

std::string Tail(const std::string& s, size_t n = 600) {
  std::string t = s.size() > n ? s.substr(s.size() - n) : s;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

// A JSON number of any kind as a double; nullopt when it is not a number.
std::optional<double> Number(simdjson::dom::element e) {
  double d;
  if (e.get_double().get(d) == simdjson::SUCCESS) return d;
  uint64_t u;
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return static_cast<double>(u);
  int64_t i;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> FioVersion() {
  // Looked up on PATH by the spawn itself: a failure to spawn means no fio.
  ChildOutput r = RunChild({"fio", "--version"}, {});
  if (!r.spawn_error.empty() || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    return std::nullopt;
  std::string v = r.out;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

std::vector<std::string> FioCommand(const FioJob& job) {
  std::vector<std::string> a = {
      "fio",
      "--name=memkv-bench",
      "--filename=" + job.filename,
      "--ioengine=io_uring",
      "--direct=1",
      "--rw=" + job.rw,
      "--bs=" + std::to_string(job.block_size),
      "--iodepth=" + std::to_string(job.iodepth),
      "--size=" + std::to_string(job.size),
      "--numjobs=1",
      "--randrepeat=0",
      "--norandommap=1",
      "--output-format=json",
  };
  if (job.seconds > 0) {
    a.push_back("--time_based=1");
    a.push_back("--runtime=" + std::to_string(static_cast<uint64_t>(job.seconds * 1000)) + "ms");
  }
  if (job.fdatasync > 0) a.push_back("--fdatasync=" + std::to_string(job.fdatasync));
  if (job.readonly) {
    a.push_back("--readonly");
    a.push_back("--allow_file_create=0");
  }
  return a;
}

std::optional<FioResult> RunFio(const FioJob& job, std::string& error,
                                const std::function<void()>& tick) {
  ChildOutput r = RunChild(FioCommand(job), tick);
  if (!r.spawn_error.empty()) {
    error = "cannot run fio: " + r.spawn_error;
    return std::nullopt;
  }
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
    error = "fio failed (status " + std::to_string(r.status) + "): " + Tail(r.err + r.out);
    return std::nullopt;
  }
  // fio may print notes before its report; the report is the first object.
  const size_t brace = r.out.find('{');
  if (brace == std::string::npos) {
    error = "fio printed no JSON report: " + Tail(r.err + r.out);
    return std::nullopt;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(r.out.data() + brace, r.out.size() - brace).get(doc)) {
    error = std::string("fio's report is not JSON: ") + simdjson::error_message(e);
    return std::nullopt;
  }
  simdjson::dom::element job0;
  if (doc["jobs"].at(0).get(job0) != simdjson::SUCCESS) {
    error = "fio's report has no jobs";
    return std::nullopt;
  }
  if (auto err = Number(job0["error"]); err && *err != 0) {
    error = "fio's job failed with error " + std::to_string(static_cast<int>(*err)) + ": " +
            Tail(r.err);
    return std::nullopt;
  }
  const bool reading = job.rw.find("read") != std::string::npos;
  simdjson::dom::element dir;
  if (job0[reading ? "read" : "write"].get(dir) != simdjson::SUCCESS) {
    error = "fio's report has no figures for the job's direction";
    return std::nullopt;
  }
  FioResult res;
  const auto bytes = Number(dir["io_bytes"]);
  const auto ios = Number(dir["total_ios"]);
  const auto runtime_ms = Number(dir["runtime"]);
  const auto bw = Number(dir["bw_bytes"]);
  const auto iops = Number(dir["iops"]);
  if (!bytes || !runtime_ms || !bw || !iops || *runtime_ms <= 0) {
    error = "fio's report lacks io_bytes, runtime, bw_bytes or iops";
    return std::nullopt;
  }
  res.bytes = static_cast<uint64_t>(*bytes);
  res.ios = ios ? static_cast<uint64_t>(*ios) : 0;
  res.seconds = *runtime_ms / 1000.0;
  res.bw_bytes = *bw;
  res.iops = *iops;
  return res;
}

}  // namespace memkv::bench
