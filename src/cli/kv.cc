// memkv kv put|get|exists|rm|ls: a small scripting client over the client
// library's Engine. Any number of servers (--servers or MEMKV_SERVERS; keys
// are routed by rendezvous hashing, as every client does); MEMKV_CONFIG is
// read too. The exit status is non-zero on a miss or an error.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "memkv/engine.h"

namespace memkv::cli {
namespace {

struct KvFlags {
  std::string servers;
  std::string auth_key;
  std::string transport;
  std::string key;
  std::string prefix;
  std::string file = "-";
  std::vector<std::string> keys;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "memkv kv: %s\n", what.c_str());
  return 1;
}

// The environment as the command sees it: flags over MEMKV_*, and the
// default server when neither names one.
const KvFlags* g_flags = nullptr;
const char* KvGetenv(const char* name) {
  const std::string n = name;
  if (n == "MEMKV_SERVERS" && !g_flags->servers.empty()) return g_flags->servers.c_str();
  if (n == "MEMKV_AUTH_KEY" && !g_flags->auth_key.empty()) return g_flags->auth_key.c_str();
  if (n == "MEMKV_TRANSPORT" && !g_flags->transport.empty()) return g_flags->transport.c_str();
  const char* v = std::getenv(name);
  if (n == "MEMKV_SERVERS" && (!v || !*v) && !std::getenv("MEMKV_CONFIG")) return "127.0.0.1:9900";
  return v;
}

// The engine the command uses, or an exit status.
std::variant<Engine, int> Connect(const KvFlags& f) {
  g_flags = &f;
  auto options = EngineOptions::FromEnvironment(&KvGetenv);
  if (!options) return Fail(options.error().message);
  auto engine = Engine::Create(std::move(*options));
  if (!engine) return Fail(engine.error().message);
  return std::move(*engine);
}

std::string Where(Engine& e, const std::string& key) { return e.server(e.RouteKey(key)); }

int Put(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  auto& engine = std::get<Engine>(c);
  std::string value;
  if (f.file == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(f.file, std::ios::binary);
    if (!in) return Fail(f.file + ": cannot read it");
    value.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (value.empty()) return Fail("the value is empty (values are 1 byte and up)");
  PutEntry put{f.key, value.data(), value.size()};
  auto r = engine.BatchPut({&put, 1});
  if (!r.outcome) return Fail(r.outcome.message);
  if (r.entries[0] != Code::kOk)
    return Fail(f.key + ": " + CodeName(r.entries[0]) + " (server " + Where(engine, f.key) + ")");
  return 0;
}

int Get(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  auto& engine = std::get<Engine>(c);
  std::string_view key = f.key;
  auto info = engine.Exists({&key, 1});
  if (!info.outcome) return Fail(info.outcome.message);
  if (info.entries[0].status != Code::kOk) {
    std::fprintf(stderr, "memkv kv: %s: %s\n", f.key.c_str(), CodeName(info.entries[0].status));
    return 1;
  }
  std::string value(info.entries[0].size, '\0');
  GetEntry get{f.key, value.data(), value.size()};
  auto r = engine.BatchGet({&get, 1});
  if (!r.outcome) return Fail(r.outcome.message);
  if (r.entries[0].status != Code::kOk) return Fail(f.key + ": " + CodeName(r.entries[0].status));
  value.resize(r.entries[0].length);
  if (f.file == "-") {
    std::fwrite(value.data(), 1, value.size(), stdout);
  } else {
    std::ofstream out(f.file, std::ios::binary | std::ios::trunc);
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    if (!out) return Fail(f.file + ": cannot write it");
  }
  return 0;
}

int Exists(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  std::vector<std::string_view> keys(f.keys.begin(), f.keys.end());
  auto r = std::get<Engine>(c).Exists(keys);
  if (!r.outcome) return Fail(r.outcome.message);
  int missing = 0;
  for (size_t i = 0; i < f.keys.size(); ++i) {
    const auto& k = r.entries[i];
    if (k.status == Code::kOk) {
      std::printf("%s\t%llu\n", f.keys[i].c_str(), static_cast<unsigned long long>(k.size));
    } else {
      std::printf("%s\t%s\n", f.keys[i].c_str(), CodeName(k.status));
      ++missing;
    }
  }
  return missing ? 1 : 0;
}

int Remove(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  std::vector<std::string_view> keys(f.keys.begin(), f.keys.end());
  auto r = std::get<Engine>(c).Delete(keys);
  if (!r.outcome) return Fail(r.outcome.message);
  int failed = 0;
  for (size_t i = 0; i < f.keys.size(); ++i) {
    if (r.entries[i] != Code::kOk) {
      std::fprintf(stderr, "memkv kv: %s: %s\n", f.keys[i].c_str(), CodeName(r.entries[i]));
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

// Every key under the prefix, over every server, in byte order: one page
// of the merged listing at a time, through its cursor.
int List(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  auto& engine = std::get<Engine>(c);
  std::string cursor;
  do {
    ListPage page = engine.List(f.prefix, cursor, 1000);
    if (!page.outcome) return Fail(page.outcome.message);
    for (const ListEntry& e : page.entries)
      std::printf("%s\t%llu\n", e.key.c_str(), static_cast<unsigned long long>(e.size));
    cursor = std::move(page.cursor);
  } while (!cursor.empty());
  return 0;
}

}  // namespace

void AddKvCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<KvFlags>();
  auto* kv = app.add_subcommand("kv", "Put, get, check, list and remove keys on the servers");
  kv->require_subcommand(1);
  kv->add_option("--servers", f->servers,
                 "Servers, comma-separated: host:port or Unix socket paths; keys are routed by "
                 "rendezvous hashing (default: MEMKV_SERVERS, MEMKV_CONFIG, else 127.0.0.1:9900)");
  kv->add_option("--auth-key", f->auth_key, "64 hex characters (default: MEMKV_AUTH_KEY)");
  kv->add_option("--transport", f->transport,
                 "auto, rdma, shm or tcp (default: MEMKV_TRANSPORT, else auto; rdma: MEMKV_RDMA_PROVIDER, MEMKV_RDMA_ADDRESS)");

  auto* put = kv->add_subcommand("put", "Store FILE (or standard input) under KEY");
  put->add_option("KEY", f->key, "The key")->required();
  put->add_option("FILE", f->file, "The value's file, - for standard input")->capture_default_str();
  put->callback([f, &exit_code] { exit_code = Put(*f); });

  auto* get = kv->add_subcommand("get", "Write KEY's value to FILE (or standard output)");
  get->add_option("KEY", f->key, "The key")->required();
  get->add_option("FILE", f->file, "Where to write it, - for standard output")
      ->capture_default_str();
  get->callback([f, &exit_code] { exit_code = Get(*f); });

  auto* exists =
      kv->add_subcommand("exists", "Print each KEY's size, or NotFound (exit 1 on a miss)");
  exists->add_option("KEY", f->keys, "Keys")->required();
  exists->callback([f, &exit_code] { exit_code = Exists(*f); });

  auto* rm = kv->add_subcommand("rm", "Remove keys (exit 1 if one was not there)");
  rm->add_option("KEY", f->keys, "Keys")->required();
  rm->callback([f, &exit_code] { exit_code = Remove(*f); });

  auto* ls = kv->add_subcommand(
      "ls", "Print every key that starts with PREFIX (all keys without one) and its size, in "
            "byte order over all servers");
  ls->add_option("PREFIX", f->prefix, "The keys' prefix");
  ls->callback([f, &exit_code] { exit_code = List(*f); });
}

}  // namespace memkv::cli
