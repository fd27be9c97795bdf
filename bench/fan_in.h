#pragma once
// memkv-bench --tier fan-in: the seed's fan-in pattern as engines run it.
// Several client processes (--processes), each with one Engine for its
// whole life (the client library keeps its state per process), run worker
// threads that come and go: --workers threads are alive at once, and each
// exits after --worker-batches batches and a new thread takes its place, as
// an engine's worker pool rotates. A batch puts --entries values of random
// size in [--min-value, --max-value] from one registered arena per worker
// slot, then reads them all back into the zeroed arena and checks every
// byte (verify.h).
//
// The parent starts one `memkv server` (storage.mode memory, loopback) and
// samples it every --sample seconds: attached sessions (admin API), open
// descriptors (/proc/PID/fd) and resident memory (VmRSS). It compares the
// first sample after --warmup with the last one before the clients exit,
// and the sessions and descriptors after they exit with the baseline taken
// before they started. With --servers the clients use those servers
// instead and nothing is sampled (the network tests in tests/net).
//
// The children are this same binary (--fan-in-child N); they print one
// "RESULT ..." line, which the parent reads from their logs. With --trace
// FILE every batch appends one line per server to FILE:
//   <put start, unix s> <get end, unix s> <process> <slot> <server> <ok> <failed> <first failure>
// (the e2e fail-over test reads it).

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "report.h"

namespace memkv::bench {

struct FanInOptions {
  int processes = 8;
  int workers = 2;          // threads alive at once in each process
  int worker_batches = 3;   // batches a thread runs before a new one replaces it
  int entries = 7500;       // per batch
  uint64_t min_value = 64, max_value = 16384;
  double seconds = 60;      // the clients' run (the warm-up included)
  double warmup = -1;       // < 0: a fifth of the run, at most 60 s
  double sample = 5;        // seconds between samples of the server
  std::vector<std::string> servers;  // empty: start our own
  std::string auth_key_hex;
  std::string transport = "tcp";
  double timeout = 60;          // seconds: the client's deadline of every call
  double connect_timeout = 5;   // seconds
  std::string trace_path;
  bool allow_failures = false;  // entry failures are reported, not fatal (fail-over runs)
  uint64_t fd_slack = 16;       // descriptors the server may gain over the run
  uint64_t server_memory = 0;   // 0: from the working set
  uint32_t server_threads = 2;
  std::string memkv_binary;
  int child = -1;  // >= 0: this process is client process N
};

// Adds the fan-in options (group "fan-in") to the bench's command line.
void AddFanInOptions(CLI::App& app, FanInOptions& o);

// The whole run (parent): prints the report on stdout, progress on stderr;
// returns the exit status (0: every entry and byte good, sessions back to
// the baseline, descriptors flat within --fd-slack).
int RunFanIn(const FanInOptions& o, const std::string& self, Progress& progress);

// One client process (--fan-in-child N); returns its exit status.
int RunFanInChild(const FanInOptions& o);

}  // namespace memkv::bench
