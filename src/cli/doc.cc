// memkv doc [--listen ADDR]: serves the documentation site that the build
// rendered from docs/ and embedded in the binary, until SIGINT or SIGTERM.

#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "http/embedded.h"
#include "http/router.h"
#include "http/server.h"
#include "server/config.h"
#include "server/loops.h"

namespace memkv::cli {
namespace {

struct DocFlags {
  std::string listen = "127.0.0.1:9902";
};

int RunDoc(const DocFlags& f) {
  server::HostPort listen;
  try {
    listen = server::ParseHostPort(f.listen, "--listen");
  } catch (const server::ConfigError& e) {
    std::fprintf(stderr, "memkv doc: %s\n", e.what());
    return 2;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  http::Router router;
  router.AddStatic("/", http::FilesOf(http::DocsSite()));

  auto loops = server::Loops::Create(1);
  if (!loops) {
    spdlog::error("cannot set up the event loop: {}", loops.error().message());
    return 1;
  }
  http::Options options;
  options.host = listen.host;
  options.port = listen.port;
  http::Server site({&(*loops)->loop(0)}, router, options);
  if (auto st = site.Start(); !st) return 1;  // Start logged what failed
  (*loops)->Start();
  spdlog::info("documentation at http://{}/", server::HostPort{listen.host, site.port()}.ToString());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  site.Stop();
  (*loops)->Stop();
  return 0;
}

}  // namespace

void AddDocCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<DocFlags>();
  CLI::App* doc = app.add_subcommand(
      "doc", "Serve the documentation embedded in this binary (the docs/ of its source)");
  doc->add_option("--listen", flags->listen, "HOST:PORT to serve the site on")
      ->capture_default_str();
  doc->callback([flags, &exit_code] { exit_code = RunDoc(*flags); });
}

}  // namespace memkv::cli
