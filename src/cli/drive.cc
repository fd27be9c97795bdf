// memkv drive init|info|reset: one drive, offline.

#include <unistd.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/json_print.h"
#include "common/size.h"
#include "server/loops.h"
#include "store/drives.h"
#include "store/error.h"
#include "store/store.h"

namespace memkv::cli {
namespace {

std::string Hex(const store::Uuid& id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kDigits[std::to_integer<int>(id[i]) >> 4];
    s += kDigits[std::to_integer<int>(id[i]) & 15];
  }
  return s;
}

boost::json::object SuperblockJson(const std::string& path, const store::ChosenSuperblock& c) {
  const store::Superblock& sb = c.sb;
  const store::Layout& l = sb.layout;
  boost::json::object o;
  o["path"] = path;
  o["source"] = c.from_mirror ? "mirror" : "primary";
  if (c.from_mirror) o["primary_error"] = c.primary_error.message();
  o["format_version"] = sb.format_version;
  o["generation"] = sb.generation;
  o["set_id"] = Hex(sb.set_id);
  o["device_id"] = Hex(sb.device_id);
  o["set_size"] = sb.set_size;
  o["drive_index"] = sb.drive_index;
  o["drive_generation"] = sb.drive_generation;
  o["format_epoch"] = sb.format_epoch;
  o["stripe_unit"] = sb.stripe_unit;
  o["created_unix"] = sb.created_unix;
  o["reset_unix"] = sb.reset_unix;
  o["layout"] = {{"size", l.size},
                 {"journal_offset", l.journal_offset},
                 {"journal_size", l.journal_size},
                 {"slot_offsets", {l.slot_offset[0], l.slot_offset[1]}},
                 {"slot_size", l.slot_size},
                 {"data_offset", l.data_offset},
                 {"data_size", l.data_size},
                 {"mirror_offset", l.mirror_offset()}};
  o["checkpoint"] = {{"slot", sb.active_slot},
                     {"seq", sb.checkpoint_seq},
                     {"bytes", sb.checkpoint_bytes},
                     {"journal_head", sb.journal_head}};
  return o;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "memkv: %s\n", what.c_str());
  return 1;
}

std::unique_ptr<server::Loops> OneLoop() {
  auto loops = server::Loops::Create(1, 64);
  if (!loops) {
    std::fprintf(stderr, "memkv: cannot set up io_uring: %s\n", loops.error().message().c_str());
    std::exit(1);
  }
  return std::move(*loops);
}

int DriveInit(const std::string& path, const std::string& size_text) {
  auto size = ParseSize(size_text);
  if (!size) return Fail("--size: '" + size_text + "': " + size.error().message());
  if (*size < store::kMinDriveSize)
    return Fail("--size: " + FormatSize(*size) + " is below the minimum drive size of " +
                FormatSize(store::kMinDriveSize));
  auto st = store::CreateDriveFile(path, *size);
  if (!st) return Fail(path + ": " + st.error().message());
  std::fprintf(stderr, "created %s: a sparse file of %s\n", path.c_str(), FormatSize(*size).c_str());
  return 0;
}

int DriveInfo(const std::string& path) {
  auto loops = OneLoop();
  auto dev = store::OpenDrive(path, store::ModeOfPath(path), loops->helpers());
  if (!dev) return Fail(path + ": " + dev.error().message());
  Result<store::ChosenSuperblock> chosen = store::errc::no_superblock;
  auto st = loops->RunBlocking([&]() -> io::Awaitable<Status> {
    chosen = co_await store::ReadSuperblock(**dev);
    co_return Status{};
  });
  if (!chosen) return Fail(path + ": " + chosen.error().message());
  std::fputs(PrettyJson(SuperblockJson(path, *chosen)).c_str(), stdout);
  return 0;
}

int DriveReset(const std::string& path, bool secure) {
  auto loops = OneLoop();
  auto dev = store::OpenDrive(path, store::ModeOfPath(path), loops->helpers());
  if (!dev) return Fail(path + ": " + dev.error().message());
  const bool tty = ::isatty(STDERR_FILENO);
  int last_percent = -1;
  auto progress = [&](uint64_t done, uint64_t total) {
    const int percent = static_cast<int>(done * 100 / std::max<uint64_t>(total, 1));
    if (percent == last_percent) return;
    last_percent = percent;
    if (tty) {
      std::fprintf(stderr, "\rzero-filling %s: %3d%% (%s of %s)", path.c_str(), percent,
                   FormatSize(done).c_str(), FormatSize(total).c_str());
    } else if (percent % 10 == 0) {
      std::fprintf(stderr, "zero-filling %s: %d%%\n", path.c_str(), percent);
    }
  };
  auto st = loops->RunBlocking([&]() -> io::Awaitable<Status> {
    co_return co_await store::ResetDrive(**dev, secure, progress);
  });
  if (tty && secure) std::fputs("\n", stderr);
  if (!st) return Fail(path + ": reset failed: " + st.error().message());
  std::fprintf(stderr, "%s reset%s: metadata cleared, drive generation bumped\n", path.c_str(),
               secure ? " and zero-filled" : ", data discarded");
  return 0;
}

}  // namespace

void AddDriveCommands(CLI::App& app, int& exit_code) {
  CLI::App* drive = app.add_subcommand("drive", "Create, inspect and reset single drives (offline)");
  drive->require_subcommand(1);
  // Owned by the callbacks, which live as long as the app.
  struct Options {
    std::string path, size;
    bool secure = false;
  };
  auto o = std::make_shared<Options>();

  auto* init = drive->add_subcommand(
      "init", "Create a file-backed drive (a sparse file) for storage.mode: file");
  init->add_option("PATH", o->path, "The file to create")->required();
  init->add_option("--size", o->size, "Its size, e.g. \"64 GiB\"")->required();
  init->callback([o, &exit_code] { exit_code = DriveInit(o->path, o->size); });

  auto* info = drive->add_subcommand(
      "info", "Print a drive's superblock as JSON (from the mirror if the primary is damaged)");
  info->add_option("PATH", o->path, "The drive: a file or a block device")->required();
  info->callback([o, &exit_code] { exit_code = DriveInfo(o->path); });

  auto* reset = drive->add_subcommand(
      "reset",
      "Reset a drive no process holds: metadata zeroed, a fresh superblock keeping the device "
      "id and set, the data discarded (or zero-filled with --secure)");
  reset->add_option("PATH", o->path, "The drive: a file or a block device")->required();
  reset->add_flag("--secure", o->secure, "Zero-fill the data region instead of discarding it");
  reset->callback([o, &exit_code] { exit_code = DriveReset(o->path, o->secure); });
}

}  // namespace memkv::cli
