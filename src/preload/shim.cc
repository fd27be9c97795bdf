// libmemkv_preload.so: the shim's state and the descriptor calls (read,
// write, lseek, fstat, dup, fcntl, mmap, ...). See docs/preload.md.
#include "preload/shim.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace memkv::preload {
namespace {

constexpr int kMaxFd = 1 << 20;

struct Globals {
  Prefixes prefixes;
  FsOptions options;
  std::mutex fs_mu;
  Fs* fs = nullptr;  // leaked on purpose: usable until the process ends
  std::mutex table_mu;
  std::unordered_map<int, std::shared_ptr<OpenDesc>> table;
  std::mutex cwd_mu;
  std::string cwd;  // a directory of ours after chdir into it; "" otherwise
  std::atomic<bool> has_cwd{false};
  std::atomic<pid_t> pid{0};  // this process's (a vfork child's differs)
};

// Made once at load, never destroyed (other libraries' destructors may
// still call into the shim).
Globals* g = nullptr;
std::atomic<uint8_t> g_ours[kMaxFd];
thread_local bool t_inside = false;

size_t SizeFromEnv(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (end && (*end == 'K' || *end == 'k')) n <<= 10;
  else if (end && (*end == 'M' || *end == 'm')) n <<= 20;
  else if (end && (*end == 'G' || *end == 'g')) n <<= 30;
  return n >= 4096 ? static_cast<size_t>(n) : fallback;
}

void BeforeFork() {
  if (!g) return;
  g->fs_mu.lock();
  g->table_mu.lock();
}
void AfterForkParent() {
  if (!g) return;
  g->table_mu.unlock();
  g->fs_mu.unlock();
}
void AfterForkChild() {
  if (!g) return;
  // The engine's I/O threads did not fork: the child makes its own engine
  // on first use, and never touches the parent's.
  new (&g->table_mu) std::mutex();
  new (&g->fs_mu) std::mutex();
  new (&g->cwd_mu) std::mutex();
  g->pid.store(getpid());
  g->fs = nullptr;
  for (auto& [fd, desc] : g->table)
    if (desc->file) desc->file->ForkedChild();
}

// A process that ends without closing a file it wrote (C programs that
// exit with stdio streams open) still stores it: stdio is flushed into the
// shim first, then every written file settles.
int AdoptBypassed(int fd, File& file, Fs& fs);

void SettleAtExit() {
  if (!g || g->prefixes.empty()) return;
  std::fflush(nullptr);
  std::vector<int> fds;
  {
    std::lock_guard lock(g->table_mu);
    for (auto& [fd, desc] : g->table) fds.push_back(fd);
  }
  for (int fd : fds) {
    std::shared_ptr<OpenDesc> desc = Lookup(fd);  // opens inherited files
    if (!desc || !desc->file || desc->file->parents()) continue;
    Fs* fs = GetFs();
    if (!fs) return;
    InsideScope inside;
    int e = AdoptBypassed(desc->keeper >= 0 ? desc->keeper : fd, *desc->file, *fs);
    if (e == 0) e = desc->file->Sync(*fs);
    if (e) std::fprintf(stderr, "memkv preload: %s: not stored at exit: %s\n", desc->path.c_str(), std::strerror(e));
  }
}

void TakeInherited();

__attribute__((constructor)) void Load() {
  const char* spec = std::getenv("MEMKV_PRELOAD_PREFIX");
  g = new Globals();
  if (spec) g->prefixes = Prefixes::Parse(spec);
  if (g->prefixes.empty()) return;
  g->options.window = SizeFromEnv("MEMKV_PRELOAD_WINDOW", g->options.window);
  g->options.read_ahead = std::min(g->options.read_ahead, g->options.window);
  const char* log = std::getenv("MEMKV_PRELOAD_LOG");
  g->options.log = log && *log && std::strcmp(log, "0") != 0;
  g->pid.store(getpid());
  pthread_atfork(BeforeFork, AfterForkParent, AfterForkChild);
  TakeInherited();
}

__attribute__((destructor)) void Unload() { SettleAtExit(); }

int NewDescriptor(int flags) {
  return static_cast<int>(syscall(SYS_memfd_create, "memkv-preload",
                                  (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0u));
}

void Register(int fd, std::shared_ptr<OpenDesc> desc) {
  if (fd >= 0 && fd <= 2 && desc->keeper < 0) {
    struct stat st;
    if (MEMKV_REAL(fstat)(fd, &st) == 0) {
      desc->inode = st.st_ino;
      desc->keeper = MEMKV_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 100);
    }
  }
  std::lock_guard lock(g->table_mu);
  ++desc->refs;
  g->table[fd] = std::move(desc);
  if (fd >= 0 && fd < kMaxFd) g_ours[fd].store(1, std::memory_order_release);
}

// Removes fd from the table; returns its description when fd was the last
// descriptor naming it (then the caller closes the file).
std::shared_ptr<OpenDesc> Unregister(int fd, bool& found) {
  std::lock_guard lock(g->table_mu);
  auto it = g->table.find(fd);
  found = it != g->table.end();
  if (!found) return nullptr;
  std::shared_ptr<OpenDesc> desc = std::move(it->second);
  g->table.erase(it);
  if (fd >= 0 && fd < kMaxFd) g_ours[fd].store(0, std::memory_order_release);
  return --desc->refs == 0 ? desc : nullptr;
}

void DropStale(int fd);

uint64_t InodeOf(const std::string& key) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h | 1;
}

}  // namespace

bool Enabled() { return g && !g->prefixes.empty(); }
bool InVforkChild() { return g && getpid() != g->pid.load(std::memory_order_relaxed); }
bool Inside() { return t_inside; }
InsideScope::InsideScope() : was_(t_inside) { t_inside = true; }
InsideScope::~InsideScope() { t_inside = was_; }

Fs* GetFs() {
  std::lock_guard lock(g->fs_mu);
  if (g->fs) return g->fs;
  InsideScope inside;
  Expected<Engine> e = Engine::FromEnvironment();
  if (!e) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      std::fprintf(stderr, "memkv preload: no client (every path under the prefix fails with EIO): %s\n",
                   e.error().message.c_str());
    errno = EIO;
    return nullptr;
  }
  g->fs = new Fs(std::move(*e), g->options);
  return g->fs;
}

bool MaybeOurs(int fd) {
  if (!Enabled() || t_inside) return false;
  if (fd >= 0 && fd < kMaxFd) return g_ours[fd].load(std::memory_order_acquire) != 0;
  return fd >= kMaxFd;
}

std::shared_ptr<OpenDesc> Lookup(int fd) {
  if (!MaybeOurs(fd)) return nullptr;
  std::shared_ptr<OpenDesc> d;
  {
    std::lock_guard lock(g->table_mu);
    auto it = g->table.find(fd);
    if (it == g->table.end()) return nullptr;
    d = it->second;
  }
  if (d->pending.load(std::memory_order_acquire)) {
    // A descriptor inherited across exec: the file is opened again here.
    std::lock_guard lock(d->open_mu);
    if (d->pending.load()) {
      if (Fs* fs = GetFs()) {
        InsideScope inside;
        const int flags = d->inherited_flags & ~(O_CREAT | O_EXCL | O_TRUNC);
        if (File::Open(*fs, d->key, flags, d->file) == 0) {
          d->file->Seek(static_cast<int64_t>(d->inherited_offset), SEEK_SET);
        } else {
          d->file.reset();
        }
      }
      d->pending.store(false, std::memory_order_release);
    }
  }
  if (fd <= 2 && d->keeper >= 0) {
    struct stat st;
    if (MEMKV_REAL(fstat)(fd, &st) != 0 || st.st_ino != d->inode) {
      // Closed by stdio behind the shim's back (and maybe reused): no
      // longer ours; what was written is stored through the keeper.
      DropStale(fd);
      return nullptr;
    }
  }
  return d;
}

namespace {

std::string Hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string Unhex(std::string_view s) {
  std::string out;
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < s.size(); i += 2) out += static_cast<char>(v(s[i]) * 16 + v(s[i + 1]));
  return out;
}

constexpr const char* kInheritVar = "MEMKV_PRELOAD_INHERIT";
constexpr const char* kCwdVar = "MEMKV_PRELOAD_CWD";

// At load: descriptors the program before exec described (ExecEnvironment).
void TakeInherited() {
  if (const char* cwd = std::getenv(kCwdVar)) {
    // The program before exec was in a directory of ours; this one's
    // kernel working directory is where that one's was.
    if (g->prefixes.Find(Normalize(cwd))) SetVirtualCwd(Normalize(cwd));
    unsetenv(kCwdVar);
  }
  const char* spec = std::getenv(kInheritVar);
  if (!spec) return;
  std::string text = spec;
  unsetenv(kInheritVar);
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(';', i);
    if (j == std::string::npos) j = text.size();
    const std::string item = text.substr(i, j - i);
    i = j + 1;
    int fd = -1, flags = 0;
    unsigned long long offset = 0;
    char path[8200];
    if (std::sscanf(item.c_str(), "%d,%d,%llu,%8190s", &fd, &flags, &offset, path) != 4) continue;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) continue;
    const std::string abs = Unhex(path);
    std::optional<Prefixes::Match> m = g->prefixes.Find(abs);
    if (!m) continue;
    auto desc = std::make_shared<OpenDesc>();
    desc->path = abs;
    desc->key = m->key;
    desc->inherited_flags = flags;
    desc->inherited_offset = offset;
    desc->pending.store(true);
    Register(fd, std::move(desc));
  }
}

}  // namespace

std::vector<std::string> ExecEnvironment() {
  if (!Enabled()) return {};
  // A vfork child shares the parent's memory: it passes descriptors on but
  // stores nothing (the parent's files are the parent's).
  const bool vforked = InVforkChild();
  std::vector<std::pair<int, std::shared_ptr<OpenDesc>>> open;
  {
    std::lock_guard lock(g->table_mu);
    for (auto& [fd, desc] : g->table) open.emplace_back(fd, desc);
  }
  std::string spec;
  for (auto& [fd, stale] : open) {
    std::shared_ptr<OpenDesc> d = Lookup(fd);
    if (!d || d->directory || !d->file) continue;
    const int fdflags = MEMKV_REAL(fcntl)(fd, F_GETFD);
    if (fdflags < 0 || (fdflags & FD_CLOEXEC)) continue;
    if (Fs* fs = vforked ? nullptr : GetFs()) {
      InsideScope inside;
      if (int e = d->file->Sync(*fs))
        std::fprintf(stderr, "memkv preload: %s: not stored before exec: %s\n", d->path.c_str(),
                     std::strerror(e));
    }
    const int64_t offset = d->file->Seek(0, SEEK_CUR);
    spec += std::to_string(fd) + "," + std::to_string(d->file->flags()) + "," +
            std::to_string(offset < 0 ? 0 : offset) + "," + Hex(d->path) + ";";
  }
  std::vector<std::string> env;
  if (!spec.empty()) env.push_back(std::string(kInheritVar) + "=" + spec);
  const std::string cwd = VirtualCwd();
  if (!cwd.empty()) env.push_back(std::string(kCwdVar) + "=" + cwd);
  return env;
}

std::string VirtualCwd() {
  if (!g || !g->has_cwd.load(std::memory_order_acquire)) return {};
  std::lock_guard lock(g->cwd_mu);
  return g->cwd;
}

void SetVirtualCwd(std::string path) {
  if (!g) return;
  std::lock_guard lock(g->cwd_mu);
  g->has_cwd.store(!path.empty(), std::memory_order_release);
  g->cwd = std::move(path);
}

const char* Real(int dirfd, const char* path, int slot) {
  if (!g || !g->has_cwd.load(std::memory_order_acquire) || t_inside || dirfd != AT_FDCWD || !path ||
      path[0] == '/')
    return path;
  thread_local std::string storage[2];
  std::string cwd = VirtualCwd();
  if (cwd.empty()) return path;
  storage[slot & 1] = Join(cwd, path);
  return storage[slot & 1].c_str();
}

std::optional<Target> Resolve(int dirfd, const char* path) {
  if (!Enabled() || t_inside || !path || !*path) return std::nullopt;
  std::string abs;
  if (path[0] == '/') {
    abs = Normalize(path);
  } else if (dirfd == AT_FDCWD) {
    std::string cwd = VirtualCwd();
    if (cwd.empty()) {
      char buf[4096];
      if (!MEMKV_REAL(getcwd)(buf, sizeof buf)) return std::nullopt;
      cwd = buf;
    }
    abs = Join(cwd, path);
  } else {
    std::shared_ptr<OpenDesc> d = Lookup(dirfd);
    if (!d || !d->directory) return std::nullopt;
    abs = Join(d->path, path);
  }
  std::optional<Prefixes::Match> m = g->prefixes.Find(abs);
  if (!m) return std::nullopt;
  return Target{std::move(m->key), std::move(abs)};
}

int OpenTarget(const Target& t, int flags) {
  Fs* fs = GetFs();
  if (!fs) return -1;
  InsideScope inside;
  auto desc = std::make_shared<OpenDesc>();
  desc->path = t.path;
  desc->key = t.key;
  Attr a;
  const int se = fs->Stat(t.key, a);
  if (se == 0 && a.directory) {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT)) return Ret(EISDIR);
    desc->directory = true;
  } else if (flags & O_DIRECTORY) {
    return Ret(se == 0 ? ENOTDIR : se);
  } else {
    if (se != 0 && se != ENOENT) return Ret(se);
    if (int e = File::Open(*fs, t.key, flags, desc->file)) return Ret(e);
  }
  const int fd = NewDescriptor(flags);
  if (fd < 0) return -1;
  Register(fd, std::move(desc));
  return fd;
}

namespace {

// Bytes that reached the descriptor's memfd without the shim: glibc's stdio
// writes stdout and stderr through internal calls, so a shell's
// `echo hello > /memkv/f` (the file dup2'ed onto 1) lands in the memfd.
// They are the file's bytes: appended with O_APPEND, else from offset 0.
int AdoptBypassed(int fd, File& file, Fs& fs) {
  if ((file.flags() & O_ACCMODE) == O_RDONLY) return 0;
  struct stat st;
  if (MEMKV_REAL(fstat)(fd, &st) != 0 || st.st_size <= 0) return 0;
  Attr a;
  file.Fstat(a);
  uint64_t at = (file.flags() & O_APPEND) ? a.size : 0;
  std::vector<char> buf(std::min<size_t>(static_cast<size_t>(st.st_size), 4u << 20));
  for (off_t done = 0; done < st.st_size;) {
    const ssize_t r = MEMKV_REAL(pread64)(fd, buf.data(), buf.size(), done);
    if (r <= 0) return EIO;
    const ssize_t w = file.PWrite(fs, buf.data(), static_cast<size_t>(r), at);
    if (w < 0) return static_cast<int>(-w);
    at += static_cast<uint64_t>(r);
    done += r;
  }
  return 0;
}

}  // namespace

namespace {
void DropStale(int fd) {
  bool found = false;
  std::shared_ptr<OpenDesc> last = Unregister(fd, found);
  if (!last || !last->file || last->pending) return;
  Fs* fs = GetFs();
  if (!fs) return;
  InsideScope inside;
  int e = AdoptBypassed(last->keeper >= 0 ? last->keeper : -1, *last->file, *fs);
  if (last->keeper >= 0) MEMKV_REAL(close)(last->keeper);
  if (e == 0) e = last->file->Close(*fs);
  if (e) std::fprintf(stderr, "memkv preload: %s: not stored: %s\n", last->path.c_str(), std::strerror(e));
}
}  // namespace

int CloseOurs(int fd) {
  bool found = false;
  std::shared_ptr<OpenDesc> last = Unregister(fd, found);
  if (!last || !last->file || last->pending) return MEMKV_REAL(close)(fd);
  Fs* fs = GetFs();
  if (!fs) {
    MEMKV_REAL(close)(fd);
    return -1;
  }
  InsideScope inside;
  const int adopted = AdoptBypassed(last->keeper >= 0 ? last->keeper : fd, *last->file, *fs);
  const int rc = MEMKV_REAL(close)(fd);
  if (last->keeper >= 0) MEMKV_REAL(close)(last->keeper);
  const int e = last->file->Close(*fs);
  if (adopted) return Ret(adopted);
  if (e) return Ret(e);
  return rc;
}

void FillStat(const std::string& key, const Attr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  static const struct timespec loaded = [] {
    struct timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
  }();
  st->st_dev = 0x6d6b76;  // "mkv"
  st->st_ino = InodeOf(key);
  st->st_mode = a.directory ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  st->st_nlink = a.directory ? 2 : 1;
  st->st_uid = geteuid();
  st->st_gid = getegid();
  st->st_size = static_cast<off_t>(a.directory ? 4096 : a.size);
  st->st_blksize = 1 << 20;
  st->st_blocks = static_cast<blkcnt_t>((st->st_size + 511) / 512);
  st->st_atim = st->st_mtim = st->st_ctim = loaded;
}

ssize_t AnyRead(int fd, void* buf, size_t n, const off64_t* at) {
  if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
    if (!d->file) return Ret(d->directory ? EISDIR : EIO);
    Fs* fs = GetFs();
    if (!fs) return -1;
    InsideScope inside;
    const ssize_t r = at ? d->file->PRead(*fs, buf, n, static_cast<uint64_t>(*at)) : d->file->Read(*fs, buf, n);
    return r < 0 ? Ret(static_cast<int>(-r)) : r;
  }
  return at ? MEMKV_REAL(pread64)(fd, buf, n, *at) : MEMKV_REAL(read)(fd, buf, n);
}

ssize_t AnyWrite(int fd, const void* buf, size_t n, const off64_t* at) {
  if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
    if (!d->file) return Ret(d->directory ? EISDIR : EIO);
    Fs* fs = GetFs();
    if (!fs) return -1;
    InsideScope inside;
    const ssize_t r = at ? d->file->PWrite(*fs, buf, n, static_cast<uint64_t>(*at)) : d->file->Write(*fs, buf, n);
    return r < 0 ? Ret(static_cast<int>(-r)) : r;
  }
  return at ? MEMKV_REAL(pwrite64)(fd, buf, n, *at) : MEMKV_REAL(write)(fd, buf, n);
}

namespace {

// Runs fn(file, fs) for a file descriptor of ours; returns nullopt when fd
// is not ours.
template <class Fn>
auto WithFile(int fd, Fn fn) -> std::optional<decltype(fn(std::declval<File&>(), std::declval<Fs&>()))> {
  std::shared_ptr<OpenDesc> d = Lookup(fd);
  if (!d) return std::nullopt;
  using R = decltype(fn(std::declval<File&>(), std::declval<Fs&>()));
  if (!d->file) {
    errno = d->directory ? EISDIR : EIO;
    return static_cast<R>(-1);
  }
  Fs* fs = GetFs();
  if (!fs) return static_cast<R>(-1);
  InsideScope inside;
  return fn(*d->file, *fs);
}

ssize_t Count(ssize_t r) { return r < 0 ? Ret(static_cast<int>(-r)) : r; }

template <class IoFn>
ssize_t Vectored(const struct iovec* iov, int n, IoFn io) {
  ssize_t total = 0;
  for (int i = 0; i < n; ++i) {
    if (iov[i].iov_len == 0) continue;
    const ssize_t r = io(iov[i].iov_base, iov[i].iov_len, total);
    if (r < 0) return total > 0 ? total : r;
    total += r;
    if (static_cast<size_t>(r) < iov[i].iov_len) break;
  }
  return total;
}

// A file of ours on standard input (a shell's `cmd < /memkv/f`): glibc's
// stdio reads stdin through internal calls that only see the memfd, so the
// file's bytes are copied into it (held in memory while it is open).
void MaterializeForStdio(int fd, OpenDesc& desc) {
  if (fd != STDIN_FILENO || !desc.file || (desc.file->flags() & O_ACCMODE) == O_WRONLY) return;
  Fs* fs = GetFs();
  if (!fs) return;
  InsideScope inside;
  struct stat st;
  if (MEMKV_REAL(fstat)(fd, &st) != 0 || st.st_size > 0) return;  // already there
  Attr a;
  desc.file->Fstat(a);
  std::vector<char> buf(std::min<uint64_t>(a.size, 4u << 20));
  for (uint64_t at = 0; at < a.size;) {
    const ssize_t r = desc.file->PRead(*fs, buf.data(), buf.size(), at);
    if (r <= 0 || MEMKV_REAL(pwrite64)(fd, buf.data(), static_cast<size_t>(r), static_cast<off64_t>(at)) != r)
      return;
    at += static_cast<uint64_t>(r);
  }
  const int64_t offset = desc.file->Seek(0, SEEK_CUR);
  MEMKV_REAL(lseek64)(fd, offset < 0 ? 0 : offset, SEEK_SET);
}

int DupOurs(int newfd, const std::shared_ptr<OpenDesc>& desc) {
  if (newfd < 0) return newfd;
  Register(newfd, desc);
  MaterializeForStdio(newfd, *desc);
  return newfd;
}

int StatFd(int fd, struct stat* st) {
  std::shared_ptr<OpenDesc> d = Lookup(fd);
  Attr a;
  if (d->file) {
    d->file->Fstat(a);
  } else if (d->directory) {
    a.directory = true;
  } else {
    return Ret(EIO);
  }
  FillStat(d->key, a, st);
  return 0;
}

}  // namespace
}  // namespace memkv::preload

using namespace memkv::preload;

#pragma GCC visibility push(default)
extern "C" {

// ---- read and write ----

ssize_t read(int fd, void* buf, size_t n) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) { return Count(f.Read(fs, buf, n)); })) return *r;
  }
  return MEMKV_REAL(read)(fd, buf, n);
}
ssize_t __read_chk(int fd, void* buf, size_t n, size_t) { return read(fd, buf, n); }

ssize_t write(int fd, const void* buf, size_t n) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) { return Count(f.Write(fs, buf, n)); })) return *r;
  }
  return MEMKV_REAL(write)(fd, buf, n);
}

ssize_t pread(int fd, void* buf, size_t n, off_t at) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) {
          return at < 0 ? Ret(EINVAL) : Count(f.PRead(fs, buf, n, static_cast<uint64_t>(at)));
        }))
      return *r;
  }
  return MEMKV_REAL(pread)(fd, buf, n, at);
}
ssize_t pread64(int fd, void* buf, size_t n, off64_t at) { return pread(fd, buf, n, at); }
ssize_t __pread_chk(int fd, void* buf, size_t n, off_t at, size_t) { return pread(fd, buf, n, at); }
ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t at, size_t) { return pread(fd, buf, n, at); }

ssize_t pwrite(int fd, const void* buf, size_t n, off_t at) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) {
          return at < 0 ? Ret(EINVAL) : Count(f.PWrite(fs, buf, n, static_cast<uint64_t>(at)));
        }))
      return *r;
  }
  return MEMKV_REAL(pwrite)(fd, buf, n, at);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t at) { return pwrite(fd, buf, n, at); }

ssize_t readv(int fd, const struct iovec* iov, int n) {
  if (MaybeOurs(fd) && Lookup(fd))
    return Vectored(iov, n, [&](void* b, size_t len, ssize_t) { return read(fd, b, len); });
  return MEMKV_REAL(readv)(fd, iov, n);
}
ssize_t writev(int fd, const struct iovec* iov, int n) {
  if (MaybeOurs(fd) && Lookup(fd))
    return Vectored(iov, n, [&](void* b, size_t len, ssize_t) { return write(fd, b, len); });
  return MEMKV_REAL(writev)(fd, iov, n);
}
ssize_t preadv(int fd, const struct iovec* iov, int n, off_t at) {
  if (MaybeOurs(fd) && Lookup(fd))
    return Vectored(iov, n, [&](void* b, size_t len, ssize_t done) { return pread(fd, b, len, at + done); });
  return MEMKV_REAL(preadv)(fd, iov, n, at);
}
ssize_t preadv64(int fd, const struct iovec* iov, int n, off64_t at) { return preadv(fd, iov, n, at); }
ssize_t pwritev(int fd, const struct iovec* iov, int n, off_t at) {
  if (MaybeOurs(fd) && Lookup(fd))
    return Vectored(iov, n, [&](void* b, size_t len, ssize_t done) { return pwrite(fd, b, len, at + done); });
  return MEMKV_REAL(pwritev)(fd, iov, n, at);
}
ssize_t pwritev64(int fd, const struct iovec* iov, int n, off64_t at) { return pwritev(fd, iov, n, at); }

off_t lseek(int fd, off_t offset, int whence) {
  if (MaybeOurs(fd)) {
    if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
      if (d->directory) return 0;  // a directory stream's position: not kept
      if (!d->file) return Ret(EIO);
      const int64_t r = d->file->Seek(offset, whence);
      return r < 0 ? Ret(static_cast<int>(-r)) : r;
    }
  }
  return MEMKV_REAL(lseek)(fd, offset, whence);
}
off64_t lseek64(int fd, off64_t offset, int whence) { return lseek(fd, offset, whence); }

// ---- size, sync, space ----

int ftruncate(int fd, off_t size) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) {
          return size < 0 ? Ret(EINVAL) : Ret(f.Truncate(fs, static_cast<uint64_t>(size)));
        }))
      return *r;
  }
  return MEMKV_REAL(ftruncate)(fd, size);
}
int ftruncate64(int fd, off64_t size) { return ftruncate(fd, size); }

int fsync(int fd) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) { return Ret(f.Sync(fs)); })) return *r;
  }
  return MEMKV_REAL(fsync)(fd);
}
int fdatasync(int fd) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) { return Ret(f.Sync(fs)); })) return *r;
  }
  return MEMKV_REAL(fdatasync)(fd);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
  if (MaybeOurs(fd)) {
    if (auto r = WithFile(fd, [&](File& f, Fs& fs) {
          if (offset < 0 || len <= 0) return Ret(EINVAL);
          if (mode == FALLOC_FL_KEEP_SIZE) return 0;
          if (mode != 0) return Ret(EOPNOTSUPP);
          Attr a;
          f.Fstat(a);
          const uint64_t end = static_cast<uint64_t>(offset) + static_cast<uint64_t>(len);
          return end > a.size ? Ret(f.Truncate(fs, end)) : 0;
        }))
      return *r;
  }
  return MEMKV_REAL(fallocate)(fd, mode, offset, len);
}
int fallocate64(int fd, int mode, off64_t offset, off64_t len) { return fallocate(fd, mode, offset, len); }

int posix_fallocate(int fd, off_t offset, off_t len) {
  if (MaybeOurs(fd) && Lookup(fd)) return fallocate(fd, 0, offset, len) == 0 ? 0 : errno;
  return MEMKV_REAL(posix_fallocate)(fd, offset, len);
}
int posix_fallocate64(int fd, off64_t offset, off64_t len) { return posix_fallocate(fd, offset, len); }

int posix_fadvise(int fd, off_t offset, off_t len, int advice) {
  if (MaybeOurs(fd) && Lookup(fd)) return 0;
  return MEMKV_REAL(posix_fadvise)(fd, offset, len, advice);
}
int posix_fadvise64(int fd, off64_t offset, off64_t len, int advice) {
  return posix_fadvise(fd, offset, len, advice);
}

// ---- close, dup, fcntl ----

int close(int fd) {
  if (MaybeOurs(fd) && !InVforkChild() && Lookup(fd)) return CloseOurs(fd);
  return MEMKV_REAL(close)(fd);
}

// close_range(2) and closefrom(3) (Python's subprocess, daemons) close
// descriptors of ours too: each is closed (and its file settled) first, so
// no number the kernel hands out again is taken for one of ours.
static void CloseOursIn(unsigned first, unsigned last) {
  if (!Enabled() || InVforkChild()) return;
  std::vector<int> fds;
  {
    std::lock_guard lock(g->table_mu);
    for (auto& [fd, desc] : g->table)
      if (fd >= 0 && static_cast<unsigned>(fd) >= first && static_cast<unsigned>(fd) <= last)
        fds.push_back(fd);
  }
  for (int fd : fds) CloseOurs(fd);
}

int close_range(unsigned first, unsigned last, int flags) {
  if (!(flags & CLOSE_RANGE_CLOEXEC)) CloseOursIn(first, last);
  return MEMKV_REAL(close_range)(first, last, flags);
}

void closefrom(int lowfd) {
  CloseOursIn(static_cast<unsigned>(lowfd < 0 ? 0 : lowfd), ~0u);
  MEMKV_REAL(closefrom)(lowfd);
}

int dup(int fd) {
  if (MaybeOurs(fd)) {
    if (std::shared_ptr<OpenDesc> d = Lookup(fd)) return DupOurs(MEMKV_REAL(dup)(fd), d);
  }
  return MEMKV_REAL(dup)(fd);
}

int dup3(int oldfd, int newfd, int flags) {
  if (InVforkChild())  // shares the parent's memory: the shim's state is the parent's
    return flags ? MEMKV_REAL(dup3)(oldfd, newfd, flags) : MEMKV_REAL(dup2)(oldfd, newfd);
  std::shared_ptr<OpenDesc> d = MaybeOurs(oldfd) ? Lookup(oldfd) : nullptr;
  if (oldfd == newfd) return flags ? Ret(EINVAL) : newfd;
  if (MaybeOurs(newfd) && Lookup(newfd)) {
    if (CloseOurs(newfd) != 0 && errno != EBADF) {
      // The file closed by the dup has failed to store: POSIX dup2 has no
      // way to say so; it was logged (MEMKV_PRELOAD_LOG).
    }
  }
  const int r = flags ? MEMKV_REAL(dup3)(oldfd, newfd, flags) : MEMKV_REAL(dup2)(oldfd, newfd);
  if (r >= 0 && d) DupOurs(r, d);
  return r;
}
int dup2(int oldfd, int newfd) {
  if (oldfd == newfd) return fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
  return dup3(oldfd, newfd, 0);
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (MaybeOurs(fd)) {
    if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
      switch (cmd) {
        case F_DUPFD:
        case F_DUPFD_CLOEXEC:
          return DupOurs(MEMKV_REAL(fcntl)(fd, cmd, arg), d);
        case F_GETFL:
          if (!d->file) return d->directory ? (O_RDONLY | O_DIRECTORY | O_LARGEFILE) : Ret(EIO);
          return d->file->flags() | O_LARGEFILE;
        case F_SETFL:
          if (d->file) d->file->set_flags(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
          return 0;
        default:
          break;  // descriptor flags and locks: the memfd's own
      }
    }
  }
  return MEMKV_REAL(fcntl)(fd, cmd, arg);
}
int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl(fd, cmd, arg);
}

// ---- fstat, fstatvfs ----

int fstat(int fd, struct stat* st) {
  if (MaybeOurs(fd) && Lookup(fd)) return StatFd(fd, st);
  return MEMKV_REAL(fstat)(fd, st);
}
int fstat64(int fd, struct stat64* st) { return fstat(fd, reinterpret_cast<struct stat*>(st)); }
int __fxstat(int ver, int fd, struct stat* st) {
  if (MaybeOurs(fd) && Lookup(fd)) return StatFd(fd, st);
  using Fn = int (*)(int, int, struct stat*);
  static const Fn real = Next<Fn>("__fxstat");
  return real ? real(ver, fd, st) : MEMKV_REAL(fstat)(fd, st);
}
int __fxstat64(int ver, int fd, struct stat64* st) {
  return __fxstat(ver, fd, reinterpret_cast<struct stat*>(st));
}

int fstatvfs(int fd, struct statvfs* out);  // shim_paths.cc

// ---- mmap: a private copy of a file opened for reading ----

void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
  if (!(flags & MAP_ANONYMOUS) && MaybeOurs(fd)) {
    if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
      if (!d->file) return errno = d->directory ? ENODEV : EIO, MAP_FAILED;
      if ((flags & MAP_SHARED) && (prot & PROT_WRITE)) return errno = EACCES, MAP_FAILED;
      if (offset < 0 || len == 0) return errno = EINVAL, MAP_FAILED;
      const int anon = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE)) | MAP_PRIVATE | MAP_ANONYMOUS;
      void* p = MEMKV_REAL(mmap)(addr, len, PROT_READ | PROT_WRITE, anon, -1, 0);
      if (p == MAP_FAILED) return p;
      const ssize_t r = pread(fd, p, len, offset);
      if (r < 0) {
        const int e = errno;
        munmap(p, len);
        return errno = e, MAP_FAILED;
      }
      if (prot != (PROT_READ | PROT_WRITE) && mprotect(p, len, prot) != 0) {
        const int e = errno;
        munmap(p, len);
        return errno = e, MAP_FAILED;
      }
      return p;
    }
  }
  return MEMKV_REAL(mmap)(addr, len, prot, flags, fd, offset);
}
void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off64_t offset) {
  return mmap(addr, len, prot, flags, fd, offset);
}

// ---- copies between descriptors: done through read and write ----

static ssize_t CopyRange(int in, off64_t* in_at, int out, off64_t* out_at, size_t len) {
  const size_t chunk = std::min<size_t>(len, 4u << 20);
  std::vector<char> buf(chunk);
  const ssize_t r = AnyRead(in, buf.data(), chunk, in_at);
  if (r <= 0) return r;
  ssize_t done = 0;
  while (done < r) {
    off64_t at = out_at ? *out_at + done : 0;
    const ssize_t w = AnyWrite(out, buf.data() + done, static_cast<size_t>(r - done), out_at ? &at : nullptr);
    if (w < 0) return done > 0 ? done : w;
    done += w;
  }
  if (in_at) *in_at += r;
  if (out_at) *out_at += r;
  return r;
}

ssize_t copy_file_range(int in, off64_t* in_at, int out, off64_t* out_at, size_t len,
                        unsigned flags) {
  if ((MaybeOurs(in) && Lookup(in)) || (MaybeOurs(out) && Lookup(out))) {
    if (flags != 0) return Ret(EINVAL);
    return CopyRange(in, in_at, out, out_at, len);
  }
  return MEMKV_REAL(copy_file_range)(in, in_at, out, out_at, len, flags);
}

ssize_t sendfile(int out, int in, off_t* at, size_t count) {
  if ((MaybeOurs(in) && Lookup(in)) || (MaybeOurs(out) && Lookup(out))) {
    off64_t pos = at ? *at : 0;
    const ssize_t r = CopyRange(in, at ? &pos : nullptr, out, nullptr, count);
    if (r > 0 && at) *at = pos;
    return r;
  }
  return MEMKV_REAL(sendfile)(out, in, at, count);
}
ssize_t sendfile64(int out, int in, off64_t* at, size_t count) { return sendfile(out, in, at, count); }

}  // extern "C"
#pragma GCC visibility pop
