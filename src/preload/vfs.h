#pragma once
// The file system the preload shim shows under its prefixes, on the client
// library's Engine. Every call returns 0 or an errno value; nothing here
// knows about descriptors or libc (shim.cc maps those onto it).
//
// A file is one value (paths.h has the key scheme). An open file reads the
// version it saw at open, in ranges on demand (a bounded read-ahead), and
// writes through a window: the bytes written go into a buffer of at most
// `window` bytes, and whenever it fills they stream to the server (a put of
// unknown length, Engine::OpenPutStream). Close, fsync and any read of
// what was written end the put ("settle"): from then on the value is
// visible, whole, to every client. A write behind what has already streamed
// settles first and then streams the file again from its start, so it is
// correct but slow: programs that patch files out of order pay for it.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memkv/engine.h"
#include "preload/paths.h"

namespace memkv::preload {

// ENOENT for a miss, ENOSPC, EFBIG, EACCES; EIO for the rest.
int ErrnoOf(Code code);

struct FsOptions {
  size_t window = 64u << 20;     // MEMKV_PRELOAD_WINDOW: per open file
  size_t read_ahead = 4u << 20;  // at most the window
  bool log = false;              // MEMKV_PRELOAD_LOG: failures to stderr
};

// The bytes an open file keeps before they stream: one buffer of the
// window's size, from the Fs's pool. Shared memory where the engine can
// make it, so that a server on this host takes the bytes over the shm rail
// (no copy through a socket).
class Window {
 public:
  std::byte* data() { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }
  void resize(size_t n) { size_ = n; }  // n <= capacity(); new bytes unspecified
  void append(const std::byte* p, size_t n);
  void clear() { size_ = 0; }
  explicit operator bool() const { return data_ != nullptr; }
  bool shared() const { return static_cast<bool>(shared_); }
  // After fork, in the child: shared memory would be shared with the
  // parent's buffer too; the child takes a private copy (and never touches
  // the parent's engine to free the shared one).
  void Privatize();

 private:
  friend class Fs;
  SharedBuffer shared_;
  std::unique_ptr<std::byte[]> heap_;
  std::byte* data_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

struct Attr {
  bool directory = false;
  bool empty_marker = false;  // an empty file, kept as its marker key
  uint64_t size = 0;
  uint64_t version = 0;
};

class Fs {
 public:
  Fs(Engine engine, FsOptions options);
  Engine& engine() { return engine_; }
  const FsOptions& options() const { return options_; }

  int Stat(std::string_view key, Attr& out);
  int Mkdir(std::string_view key);
  int Rmdir(std::string_view key);
  int Unlink(std::string_view key);
  int Rename(std::string_view from, std::string_view to);
  int ListDir(std::string_view key, std::vector<Child>& out);
  int Capacity(CapacityInfo& out);
  // The servers' limits.max_value_size (asked once).
  uint64_t MaxValueSize();

  // A window's buffer (nullptr-backed when memory ran out), and back.
  Window AcquireWindow();
  void ReleaseWindow(Window w);
  // Whether shared memory reaches the server of `key` over the shm rail.
  bool SharedMemoryTo(std::string_view key);

  // Logs a failure once per (operation, key) when options().log.
  void Fail(std::string_view op, std::string_view key, const Outcome& why);

 private:
  int StatDir(std::string_view key, bool& is_dir);

  Engine engine_;
  FsOptions options_;
  std::mutex mu_;
  uint64_t max_value_size_ = 0;
  std::vector<std::string> logged_;
  std::vector<Window> idle_windows_;  // at most kIdleWindows
};

// One open file description: shared by every descriptor dup'ed from it,
// with one offset. Thread-safe (its own lock).
class File {
 public:
  // flags: open(2)'s. Checks existence, O_CREAT/O_EXCL/O_TRUNC, the parent
  // directory of a new file.
  static int Open(Fs& fs, std::string key, int flags, std::shared_ptr<File>& out);

  const std::string& key() const { return key_; }
  int flags() const;
  void set_flags(int flags);  // F_SETFL: O_APPEND, O_NONBLOCK

  // The results of read/write: a count, or -errno.
  ssize_t Read(Fs& fs, void* buf, size_t n);
  ssize_t PRead(Fs& fs, void* buf, size_t n, uint64_t offset);
  ssize_t Write(Fs& fs, const void* buf, size_t n);
  ssize_t PWrite(Fs& fs, const void* buf, size_t n, uint64_t offset);
  // lseek: the new offset or -errno (SEEK_DATA and SEEK_HOLE too).
  int64_t Seek(int64_t offset, int whence);
  int Truncate(Fs& fs, uint64_t size);
  int Sync(Fs& fs);        // fsync: settles
  int Close(Fs& fs);       // the last descriptor went: settles
  int Fstat(Attr& out);
  // After fork, in the child: a file with writes not yet stored (and a put
  // being streamed) is the parent's to store: the child's writes to it fail
  // with EIO, and its close stores nothing.
  void ForkedChild();
  bool parents() const { return parents_; }

 private:
  File(std::string key, int flags) : key_(std::move(key)), flags_(flags) {}
  ssize_t PReadLocked(Fs& fs, void* buf, size_t n, uint64_t offset);
  ssize_t PWriteLocked(Fs& fs, const std::byte* buf, size_t n, uint64_t offset);
  int SettleLocked(Fs& fs);
  int ReadBase(Fs& fs, std::byte* buf, size_t n, uint64_t offset);
  int FillTo(Fs& fs, uint64_t end);
  int Drain(Fs& fs);
  int StreamOut(Fs& fs, const std::byte* data, size_t n);
  int EnsureWindow(Fs& fs);
  uint64_t tail_end() const { return sent_ + tail_.size(); }

  std::mutex mu_;
  const std::string key_;
  int flags_;
  uint64_t offset_ = 0;
  // What the file held at open or at its last settle.
  bool base_exists_ = false;
  bool base_empty_marker_ = false;
  uint64_t base_size_ = 0;
  uint64_t base_version_ = 0;  // 0: the current one (after a settle)
  uint64_t base_valid_ = 0;    // base bytes past this were truncated away
  // Read-ahead.
  std::unique_ptr<std::byte[]> ra_;
  uint64_t ra_offset_ = 0;
  size_t ra_len_ = 0;
  // Writes not yet settled.
  bool dirty_ = false;
  uint64_t size_ = 0;  // the file's size as this description sees it
  std::optional<PutStream> stream_;
  uint64_t sent_ = 0;           // bytes [0, sent_) are in the stream
  Window tail_;                 // bytes [sent_, sent_ + tail_.size())
  int error_ = 0;               // a failed write: reported by every later write and close
  bool parents_ = false;        // forked with unstored writes: the parent's to store
};

}  // namespace memkv::preload
