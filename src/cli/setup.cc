// memkv setup --drives PATH... [--force]: formats drives as one set and
// prints a working config.yaml on stdout (logs on stderr).

#include <openssl/rand.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>

#include "cli/commands.h"
#include "common/size.h"
#include "server/loops.h"
#include "store/drives.h"
#include "store/error.h"
#include "store/store.h"

namespace memkv::cli {
namespace {

std::string NewAuthKey() {
  unsigned char key[32];
  if (RAND_bytes(key, sizeof key) != 1) return {};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : key) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return hex;
}

int Setup(const std::vector<std::string>& paths, bool force, const std::string& block_size) {
  auto stripe = ParseSize(block_size);
  if (!stripe || *stripe % store::kPageSize != 0 || *stripe == 0) {
    std::fprintf(stderr, "memkv: --block-size: '%s' is not a positive multiple of 4 KiB\n",
                 block_size.c_str());
    return 2;
  }
  auto loops = server::Loops::Create(1, 64);
  if (!loops) {
    std::fprintf(stderr, "memkv: cannot set up io_uring: %s\n", loops.error().message().c_str());
    return 1;
  }
  const store::Mode mode = store::ModeOfPath(paths[0]);
  std::vector<std::unique_ptr<io::BlockDevice>> devs;
  for (const std::string& p : paths) {
    if (store::ModeOfPath(p) != mode) {
      std::fprintf(stderr, "memkv: %s: mixes block devices and files; a set is all one kind\n",
                   p.c_str());
      return 1;
    }
    auto d = store::OpenDrive(p, mode, (*loops)->helpers());
    if (!d) {
      std::fprintf(stderr, "memkv: %s: %s\n", p.c_str(), d.error().message().c_str());
      return 1;
    }
    devs.push_back(std::move(*d));
  }
  // Refuse drives that hold memkv data, unless told.
  int refused = 0;
  for (size_t i = 0; i < devs.size(); ++i) {
    Result<store::ChosenSuperblock> sb = store::errc::no_superblock;
    (*loops)->RunBlocking([&]() -> io::Awaitable<Status> {
      sb = co_await store::ReadSuperblock(*devs[i]);
      co_return Status{};
    });
    if (sb && !force) {
      std::fprintf(stderr,
                   "memkv: %s holds memkv data (drive %u of a set of %u); --force formats it "
                   "anyway, losing that data\n",
                   paths[i].c_str(), sb->sb.drive_index, sb->sb.set_size);
      ++refused;
    }
  }
  if (refused) return 1;
  std::vector<io::BlockDevice*> raw;
  for (auto& d : devs) raw.push_back(d.get());
  auto st = (*loops)->RunBlocking([&]() -> io::Awaitable<Status> {
    co_return co_await store::FormatSet(raw, store::FormatOptions{*stripe});
  });
  if (!st) {
    std::fprintf(stderr, "memkv: formatting failed: %s\n", st.error().message().c_str());
    return 1;
  }
  uint64_t total = 0;
  for (auto& d : devs) total += d->size();
  std::fprintf(stderr, "formatted %zu drive%s (%s) as one set\n", devs.size(),
               devs.size() == 1 ? "" : "s", FormatSize(total).c_str());

  const std::string key = NewAuthKey();
  if (key.empty()) {
    std::fprintf(stderr, "memkv: OpenSSL could not generate an auth key\n");
    return 1;
  }
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  std::printf("# memkv config, written by `memkv setup` on %s.\n", date);
  std::printf("# The auth key is a secret: clients need it (MEMKV_AUTH_KEY).\n");
  std::printf("network:\n  address: 0.0.0.0:9900\n  auth_key: %s\n", key.c_str());
  std::printf("memory:\n  max_size: 256 MiB\n  block_size: 2 MiB\n");
  std::printf("storage:\n  mode: %s\n  block_size: %s\n  drives:\n",
              mode == store::Mode::kDirect ? "direct" : "file", FormatSize(*stripe).c_str());
  for (const std::string& p : paths) std::printf("    - media: %s\n", p.c_str());
  return 0;
}

}  // namespace

void AddSetupCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::vector<std::string> drives;
    bool force = false;
    std::string block_size = "4 MiB";
  };
  auto o = std::make_shared<Options>();
  auto* setup = app.add_subcommand(
      "setup",
      "Format drives as one set and print a working config.yaml on stdout (with a fresh "
      "auth_key)");
  setup->add_option("--drives", o->drives, "Block devices (direct mode) or files (file mode)")
      ->required()
      ->expected(1, -1);
  setup->add_flag("--force", o->force, "Format drives that hold memkv data, losing it");
  setup->add_option("--block-size", o->block_size, "Stripe unit (storage.block_size)")
      ->capture_default_str();
  setup->callback([o, &exit_code] { exit_code = Setup(o->drives, o->force, o->block_size); });
}

}  // namespace memkv::cli
