#pragma once
// The shim's state: its prefixes, the descriptors it owns, the one Fs (on
// the process's one Engine, made at first use). shim.cc holds the state and
// the descriptor calls; shim_paths.cc the path calls; shim_stdio.cc stdio
// and directory streams. Everything here is thread-safe.

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "preload/paths.h"
#include "preload/vfs.h"

namespace memkv::preload {

// The next definition of a libc function (the real one), found once.
template <class F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}
#define MEMKV_REAL(fn)                                                    \
  ([]() {                                                                 \
    static const auto real = ::memkv::preload::Next<decltype(&::fn)>(#fn); \
    return real;                                                          \
  }())

// An open file description as descriptors share it.
struct OpenDesc {
  bool directory = false;
  // The file; null for a directory, and for a file inherited across exec
  // that could not be opened again (its calls fail with EIO).
  std::shared_ptr<File> file;
  std::string path;  // absolute, normalised
  std::string key;
  int refs = 0;  // descriptors naming it (under the table's lock)
  // Standard descriptors (0-2) only: a private duplicate of the memfd,
  // kept because stdio may close the standard descriptor behind the shim's
  // back (fclose(stdout) at exit) and what stdio wrote is in the memfd; and
  // the memfd's inode, to tell whether the standard descriptor still is it.
  int keeper = -1;
  uint64_t inode = 0;
  // Inherited across exec (see ExecEnvironment): opened at first use.
  std::atomic<bool> pending{false};
  int inherited_flags = 0;
  uint64_t inherited_offset = 0;
  std::mutex open_mu;
};

// Whether the shim is on (MEMKV_PRELOAD_PREFIX named a prefix).
bool Enabled();
// True in a vfork child (it shares the parent's memory, so it must leave
// the shim's state alone).
bool InVforkChild();
// True while this thread runs inside the shim or the library: libc calls
// made from there go straight to libc.
bool Inside();
class InsideScope {
 public:
  InsideScope();
  ~InsideScope();
  InsideScope(const InsideScope&) = delete;
  InsideScope& operator=(const InsideScope&) = delete;

 private:
  bool was_;
};

// The one Fs, made on first use; nullptr (errno set) when the engine could
// not be made.
Fs* GetFs();

// A path of ours: its key and absolute path.
struct Target {
  std::string key;
  std::string path;
};
// `path` relative to `dirfd` (AT_FDCWD, or a directory descriptor of ours).
std::optional<Target> Resolve(int dirfd, const char* path);

// The path libc should get for `path` relative to `dirfd`: itself, unless
// the working directory is one of ours (chdir into a prefix: the kernel's
// stays where it was), when a relative path is made absolute. `slot` 0 or 1
// (two paths in one call); valid until the next call with that slot on
// this thread.
const char* Real(int dirfd, const char* path, int slot = 0);

// The working directory when it is one of ours ("" when it is the
// kernel's).
std::string VirtualCwd();
void SetVirtualCwd(std::string path);

// The description behind one of our descriptors, or null.
std::shared_ptr<OpenDesc> Lookup(int fd);
// Quick test: might fd be ours? (No lock; exact for fds below 1 << 20.)
bool MaybeOurs(int fd);

// Opens a path of ours; returns the descriptor or -1 with errno.
int OpenTarget(const Target& t, int flags);
// Closes a descriptor of ours (settling its file when it was the last).
int CloseOurs(int fd);

// stat(2) results for our files and directories.
void FillStat(const std::string& key, const Attr& a, struct stat* st);

// Sets errno from a 0-or-errno result and returns 0 or -1.
inline int Ret(int e) {
  if (e == 0) return 0;
  errno = e;
  return -1;
}

// Before an exec: settles every file of ours that a descriptor without
// FD_CLOEXEC carries into the new program, and returns the environment
// entries for the shim there: MEMKV_PRELOAD_INHERIT (those descriptors, to
// take over) and MEMKV_PRELOAD_CWD (a working directory of ours).
std::vector<std::string> ExecEnvironment();

// Descriptor-level read/write of any descriptor (ours or real), for
// copy_file_range and sendfile.
ssize_t AnyRead(int fd, void* buf, size_t n, const off64_t* at);
ssize_t AnyWrite(int fd, const void* buf, size_t n, const off64_t* at);

}  // namespace memkv::preload
