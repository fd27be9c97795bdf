#include "fio.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <simdjson.h>

extern char** environ;

namespace memkv::bench {
namespace {

struct ChildOutput {
  int status = -1;  // as waitpid reports it
  std::string out, err;
  std::string spawn_error;
};

// Runs argv with stdout and stderr captured; stdin is /dev/null.
ChildOutput RunChild(const std::vector<std::string>& args, const std::function<void()>& tick) {
  ChildOutput r;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.spawn_error = std::strerror(errno);
    return r;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.spawn_error = std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    r.spawn_error = std::strerror(rc);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return r;
  }
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&r.out, &r.err};
  int open_fds = 2;
  std::array<char, 65536> buf;
  while (open_fds > 0) {
    const int n = ::poll(fds.data(), fds.size(), 200);
    if (tick) tick();
    if (n < 0 && errno != EINTR) break;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got > 0) {
        sinks[i]->append(buf.data(), static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

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
