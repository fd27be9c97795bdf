// memkv kv put|get|exists|rm: a small scripting client over the client
// library. One server for now (--servers or MEMKV_SERVERS); the exit status
// is non-zero on a miss or an error.

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
#include "client/connection.h"
#include "client/options.h"

namespace memkv::cli {
namespace {

struct KvFlags {
  std::string servers;
  std::string auth_key;
  std::string key;
  std::string file = "-";
  std::vector<std::string> keys;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "memkv kv: %s\n", what.c_str());
  return 1;
}

// The connection the command uses, or an exit status.
std::variant<client::Connection, int> Connect(const KvFlags& f) {
  std::string list = f.servers;
  if (list.empty()) {
    const char* env = std::getenv("MEMKV_SERVERS");
    list = env ? env : "127.0.0.1:9900";
  }
  const auto servers = client::SplitServers(list);
  if (servers.size() != 1)
    return Fail("--servers: give exactly one server (host:port or a Unix socket path); routing "
                "over several arrives with the client engine");
  std::string key = f.auth_key;
  if (key.empty()) {
    if (const char* env = std::getenv("MEMKV_AUTH_KEY")) key = env;
  }
  auto opt = client::MakeConnectionOptions(servers[0], key);
  if (!opt) return Fail("--auth-key / MEMKV_AUTH_KEY: must be 64 hex characters");
  auto conn = client::Connection::Connect(*opt);
  if (!conn) return Fail(servers[0] + ": " + conn.error().message());
  return std::move(*conn);
}

int Put(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  auto& conn = std::get<client::Connection>(c);
  auto value = std::make_shared<std::string>();
  if (f.file == "-") {
    value->assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(f.file, std::ios::binary);
    if (!in) return Fail(f.file + ": cannot read it");
    value->assign(std::istreambuf_iterator<char>(in), {});
  }
  if (value->empty()) return Fail("the value is empty (values are 1 byte and up)");
  client::PutBatch batch;
  batch.entries.push_back(
      {f.key, {reinterpret_cast<const std::byte*>(value->data()), value->size()}});
  batch.owner = value;
  auto r = conn.Put(std::move(batch));
  if (!r) return Fail(f.key + ": " + r.error().message());
  if ((*r)[0] != proto::StatusCode::kOk)
    return Fail(f.key + ": " + proto::StatusName((*r)[0]));
  return 0;
}

int Get(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  auto& conn = std::get<client::Connection>(c);
  auto info = conn.Exists({f.key});
  if (!info) return Fail(f.key + ": " + info.error().message());
  if ((*info)[0].status != proto::StatusCode::kOk) {
    std::fprintf(stderr, "memkv kv: %s: %s\n", f.key.c_str(), proto::StatusName((*info)[0].status));
    return 1;
  }
  std::string value((*info)[0].size, '\0');
  auto r = conn.Get({{f.key, 0, 0, {reinterpret_cast<std::byte*>(value.data()), value.size()}}});
  if (!r) return Fail(f.key + ": " + r.error().message());
  if ((*r)[0].status != proto::StatusCode::kOk)
    return Fail(f.key + ": " + proto::StatusName((*r)[0].status));
  value.resize((*r)[0].length);
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
  auto r = std::get<client::Connection>(c).Exists(f.keys);
  if (!r) return Fail(r.error().message());
  int missing = 0;
  for (size_t i = 0; i < f.keys.size(); ++i) {
    const auto& k = (*r)[i];
    if (k.status == proto::StatusCode::kOk) {
      std::printf("%s\t%llu\n", f.keys[i].c_str(), static_cast<unsigned long long>(k.size));
    } else {
      std::printf("%s\t%s\n", f.keys[i].c_str(), proto::StatusName(k.status));
      ++missing;
    }
  }
  return missing ? 1 : 0;
}

int Remove(const KvFlags& f) {
  auto c = Connect(f);
  if (auto* rc = std::get_if<int>(&c)) return *rc;
  auto r = std::get<client::Connection>(c).Delete(f.keys);
  if (!r) return Fail(r.error().message());
  int failed = 0;
  for (size_t i = 0; i < f.keys.size(); ++i) {
    if ((*r)[i] != proto::StatusCode::kOk) {
      std::fprintf(stderr, "memkv kv: %s: %s\n", f.keys[i].c_str(), proto::StatusName((*r)[i]));
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace

void AddKvCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<KvFlags>();
  auto* kv = app.add_subcommand("kv", "Put, get, check and remove keys on a server");
  kv->require_subcommand(1);
  kv->add_option("--servers", f->servers,
                 "The server: host:port or a Unix socket path (default: MEMKV_SERVERS, else "
                 "127.0.0.1:9900)");
  kv->add_option("--auth-key", f->auth_key, "64 hex characters (default: MEMKV_AUTH_KEY)");

  auto* put = kv->add_subcommand("put", "Store FILE (or standard input) under KEY");
  put->add_option("KEY", f->key, "The key")->required();
  put->add_option("FILE", f->file, "The value's file, - for standard input")->capture_default_str();
  put->callback([f, &exit_code] { exit_code = Put(*f); });

  auto* get = kv->add_subcommand("get", "Write KEY's value to FILE (or standard output)");
  get->add_option("KEY", f->key, "The key")->required();
  get->add_option("FILE", f->file, "Where to write it, - for standard output")->capture_default_str();
  get->callback([f, &exit_code] { exit_code = Get(*f); });

  auto* exists = kv->add_subcommand("exists", "Print each KEY's size, or NotFound (exit 1 on a miss)");
  exists->add_option("KEY", f->keys, "Keys")->required();
  exists->callback([f, &exit_code] { exit_code = Exists(*f); });

  auto* rm = kv->add_subcommand("rm", "Remove keys (exit 1 if one was not there)");
  rm->add_option("KEY", f->keys, "Keys")->required();
  rm->callback([f, &exit_code] { exit_code = Remove(*f); });
}

}  // namespace memkv::cli
