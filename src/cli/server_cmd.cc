// memkv server (alias start): runs a server on a config file or the embedded
// default, until SIGINT or SIGTERM.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/version.h"
#include "common/size.h"
#include "server/admin.h"
#include "server/config.h"
#include "server/loops.h"
#include "server/server.h"
#include "store/drives.h"
#include "store/error.h"
#include "store/store.h"

namespace memkv::cli {
namespace {

struct ServerFlags {
  std::string config;
  std::vector<std::string> sets;
  std::string address, unix_socket, mode, memory, threads;
};

// heap-profile sampling costs every allocation; say so when it is on.
void WarnAboutMallocConf() {
  const char* conf = std::getenv("MALLOC_CONF");
  if (!conf) return;
  const std::string c = conf;
  if (c.find("prof:true") != std::string::npos || c.find("prof_active:true") != std::string::npos)
    spdlog::warn("MALLOC_CONF='{}' turns jemalloc heap-profile sampling on: every allocation "
                 "pays for it; unset it outside profiling",
                 c);
}

// The embedded default's drives are made on first start: sparse files, then
// formatted as one set. Drives named in a config file must exist already
// (`memkv drive init`, `memkv setup`).
Status PrepareEmbeddedDrives(const server::Config& cfg, server::Loops& loops) {
  bool created = false;
  for (const auto& d : cfg.storage.drives) {
    std::error_code ec;
    if (std::filesystem::exists(d.media, ec)) continue;
    std::filesystem::create_directories(std::filesystem::path(d.media).parent_path(), ec);
    auto st = store::CreateDriveFile(d.media, kGiB);
    if (!st) {
      spdlog::error("{}: cannot create the drive file: {}", d.media, st.error().message());
      return st;
    }
    created = true;
  }
  if (!created) return {};
  std::vector<std::unique_ptr<io::BlockDevice>> devs;
  std::vector<io::BlockDevice*> raw;
  for (const auto& d : cfg.storage.drives) {
    auto dev = store::OpenDrive(d.media, store::Mode::kFile, loops.helpers());
    if (!dev) return dev.error();
    raw.push_back(dev->get());
    devs.push_back(std::move(*dev));
  }
  spdlog::info("formatting the embedded default's drives: {} x 1 GiB sparse files in {}",
               raw.size(), std::filesystem::path(cfg.storage.drives[0].media).parent_path().string());
  return loops.RunBlocking([&]() -> io::Awaitable<Status> {
    co_return co_await store::FormatSet(raw, server::ToFormatOptions(cfg));
  });
}

// How long start-up waits for a drive another process holds (see RunServer).
constexpr auto kDriveLockWait = std::chrono::seconds(2);

int RunServer(const ServerFlags& f) {
  server::Config cfg;
  try {
    cfg = f.config.empty() ? server::Config::EmbeddedDefault() : server::LoadConfigFile(f.config);
    if (!f.address.empty()) server::ApplyOverride(cfg, "network.address", f.address);
    if (!f.unix_socket.empty()) server::ApplyOverride(cfg, "network.unix_socket", f.unix_socket);
    if (!f.mode.empty()) server::ApplyOverride(cfg, "storage.mode", f.mode);
    if (!f.memory.empty()) server::ApplyOverride(cfg, "memory.max_size", f.memory);
    if (!f.threads.empty()) server::ApplyOverride(cfg, "server.threads", f.threads);
    for (const std::string& s : f.sets) {
      const auto eq = s.find('=');
      if (eq == std::string::npos)
        throw server::ConfigError("--set " + s + ": expected PATH=VALUE, e.g. memory.max_size=1GiB");
      server::ApplyOverride(cfg, s.substr(0, eq), s.substr(eq + 1));
    }
    server::Validate(cfg);
  } catch (const server::ConfigError& e) {
    // Errors read from the file name it already; the others get its name.
    const std::string what = e.what();
    const bool named = f.config.empty() || what.rfind(f.config, 0) == 0;
    std::fprintf(stderr, "memkv: %s%s\n", named ? "" : (f.config + ": ").c_str(), what.c_str());
    return 2;
  }
  WarnAboutMallocConf();

  // Signals go to the thread that waits for them, never to a loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Before any drive is opened: two servers must never share drives.
  if (const std::string live = server::LiveServerOn(cfg.network.unix_socket); !live.empty()) {
    std::fprintf(stderr, "memkv: %s\n", live.c_str());
    return 1;
  }
  auto loops = server::Loops::Create(cfg.server.threads, 256,
                                     server::Loops::BackendNamed(cfg.server.io_backend));
  if (!loops) {
    spdlog::error("server.io_backend {}: cannot set up drive I/O for {} loops: {}",
                  cfg.server.io_backend, cfg.server.threads, loops.error().message());
    return 1;
  }
  if (f.config.empty() && cfg.storage.mode == store::Mode::kFile) {
    if (!PrepareEmbeddedDrives(cfg, **loops)) return 1;
  }
  std::vector<std::unique_ptr<io::BlockDevice>> drives;
  if (cfg.storage.mode != store::Mode::kMemory) {
    for (size_t i = 0; i < cfg.storage.drives.size(); ++i) {
      const std::string& media = cfg.storage.drives[i].media;
      auto dev = store::OpenDrive(media, cfg.storage.mode, (*loops)->helpers());
      // A server killed a moment ago holds its drives' locks until the
      // kernel has torn down its io_uring requests (a fraction of a second):
      // a supervisor's immediate restart waits for that, a second server on
      // the same drives is still refused.
      const auto give_up = std::chrono::steady_clock::now() + kDriveLockWait;
      while (!dev && store::DriveInUse(dev.error()) &&
             std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        dev = store::OpenDrive(media, cfg.storage.mode, (*loops)->helpers());
      }
      if (!dev) {
        spdlog::error("storage.drives[{}].media: {}: {}", i, media, dev.error().message());
        return 1;
      }
      drives.push_back(std::move(*dev));
    }
  }
  std::unique_ptr<store::Store> store;
  auto opened = (*loops)->RunBlocking([&]() -> io::Awaitable<Status> {
    auto s = co_await store::Store::Open(std::move(drives), server::ToStoreOptions(cfg));
    if (!s) co_return s.error();
    store = std::move(*s);
    co_return Status{};
  });
  if (!opened) {
    spdlog::error("cannot open the store: {}{}", opened.error().message(),
                  opened.error() == store::errc::bad_magic
                      ? " (format the drives with `memkv setup --drives ...`)"
                      : "");
    return 1;
  }

  const server::ServerOptions opt = server::ToServerOptions(cfg);
  const server::HostPort data = server::DataAddress(cfg);
  server::Server srv(**loops, *store, opt);
  if (auto st = srv.Start(); !st) {
    spdlog::error("network.address {}: cannot listen: {}", data.ToString(), st.error().message());
    return 1;
  }
  // The admin API on port + 1 (docs/admin-api.md).
  server::AdminOptions admin_opt = server::ToAdminOptions(cfg);
  admin_opt.version = MEMKV_VERSION;
  server::AdminServer admin(**loops, *store, srv, admin_opt);
  if (auto st = admin.Start(); !st) {
    spdlog::error("admin HTTP on {} (network.address's port + 1): cannot serve: {}",
                  server::AdminAddress(cfg).ToString(), st.error().message());
    return 1;
  }
  (*loops)->Start();
  spdlog::info("{} serving on {} and {} ({} mode, {} drives, {} loops on {}{})", VersionLine(),
               server::HostPort{data.host, srv.port()}.ToString(), cfg.network.unix_socket,
               server::ModeName(cfg.storage.mode), store->drive_count(), (*loops)->size(),
               (*loops)->backend(), opt.auth_key ? ", auth key set" : "");
  spdlog::info("admin API on {}://{}", admin.tls() ? "https" : "http",
               server::HostPort{server::AdminAddress(cfg).host, admin.port()}.ToString());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("{}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  admin.SetDraining();
  srv.Shutdown();
  admin.Stop();
  auto closed = (*loops)->RunOn(0, [&]() -> io::Awaitable<Status> { co_return co_await store->Close(); });
  if (!closed) spdlog::error("closing the store: {}", closed.error().message());
  (*loops)->Stop();
  store.reset();
  spdlog::info("stopped");
  return closed ? 0 : 1;
}

}  // namespace

void AddServerCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<ServerFlags>();
  auto* cmd = app.add_subcommand(
      "server", "Run a server (with no --config: the embedded default, two 1 GiB sparse drives "
                "in ./var/memkv, 127.0.0.1:9900)");
  cmd->alias("start");
  cmd->add_option("--config", f->config, "config.yaml (as `memkv setup` writes it)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", f->sets, "Override a config field: PATH=VALUE (repeatable), e.g. "
                                    "--set limits.max_sessions=100");
  cmd->add_option("--address", f->address, "network.address (host:port)");
  cmd->add_option("--unix-socket", f->unix_socket, "network.unix_socket");
  cmd->add_option("--mode", f->mode, "storage.mode: direct, file or memory");
  cmd->add_option("--memory", f->memory, "memory.max_size, e.g. \"4 GiB\"");
  cmd->add_option("--threads", f->threads, "server.threads");
  cmd->callback([f, &exit_code] { exit_code = RunServer(*f); });
}

}  // namespace memkv::cli
