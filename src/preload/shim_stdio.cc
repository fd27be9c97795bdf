// libmemkv_preload.so: stdio streams and directory streams on the shim's
// descriptors. glibc's stdio reads and writes through its own internal
// calls, which no preload can reach, so a FILE on a descriptor of ours is
// a cookie stream (fopencookie) over the shim's read, write and lseek; and
// fileno() still names its descriptor.
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "preload/shim.h"

using namespace memkv::preload;

namespace {

struct Cookie {
  int fd = -1;
};

std::mutex g_streams_mu;
std::unordered_map<FILE*, int>* g_streams = new std::unordered_map<FILE*, int>();
std::atomic<size_t> g_stream_count{0};

ssize_t CookieRead(void* c, char* buf, size_t n) { return read(static_cast<Cookie*>(c)->fd, buf, n); }

ssize_t CookieWrite(void* c, const char* buf, size_t n) {
  const ssize_t r = write(static_cast<Cookie*>(c)->fd, buf, n);
  return r < 0 ? -1 : r;
}

int CookieSeek(void* c, off64_t* pos, int whence) {
  const off_t r = lseek(static_cast<Cookie*>(c)->fd, *pos, whence);
  if (r < 0) return -1;
  *pos = r;
  return 0;
}

int CookieClose(void* c) {
  auto* cookie = static_cast<Cookie*>(c);
  const int r = close(cookie->fd);
  delete cookie;
  return r;
}

// A stream over a descriptor of ours; it owns the descriptor.
FILE* StreamOf(int fd, const char* mode) {
  auto* cookie = new Cookie{fd};
  cookie_io_functions_t io{CookieRead, CookieWrite, CookieSeek, CookieClose};
  FILE* f = fopencookie(cookie, mode, io);
  if (!f) {
    delete cookie;
    return nullptr;
  }
  setvbuf(f, nullptr, _IOFBF, 256u << 10);
  std::lock_guard lock(g_streams_mu);
  (*g_streams)[f] = fd;
  g_stream_count.fetch_add(1);
  return f;
}

int FlagsOf(const char* mode) {
  int flags = 0;
  switch (mode[0]) {
    case 'r': flags = O_RDONLY; break;
    case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: return -1;
  }
  for (const char* p = mode + 1; *p && *p != ','; ++p) {
    if (*p == '+') flags = (flags & ~O_ACCMODE) | O_RDWR;
    else if (*p == 'x') flags |= O_EXCL;
    else if (*p == 'e') flags |= O_CLOEXEC;
  }
  return flags;
}

// ---- directory streams ----

struct ShimDir {
  int fd = -1;
  std::string key;
  std::vector<Child> children;  // "." and ".." first
  size_t pos = 0;
  struct dirent64 entry {};
};

std::mutex g_dirs_mu;
std::unordered_map<void*, ShimDir*>* g_dirs = new std::unordered_map<void*, ShimDir*>();
std::atomic<size_t> g_dir_count{0};

ShimDir* FindDir(void* d) {
  if (g_dir_count.load() == 0) return nullptr;
  std::lock_guard lock(g_dirs_mu);
  auto it = g_dirs->find(d);
  return it == g_dirs->end() ? nullptr : it->second;
}

int List(ShimDir& d) {
  Fs* fs = GetFs();
  if (!fs) return errno;
  InsideScope inside;
  std::vector<Child> list;
  if (int e = fs->ListDir(d.key, list)) return e;
  d.children.clear();
  d.children.push_back({".", true, false});
  d.children.push_back({"..", true, false});
  d.children.insert(d.children.end(), list.begin(), list.end());
  d.pos = 0;
  return 0;
}

DIR* DirOf(int fd) {
  std::shared_ptr<OpenDesc> desc = Lookup(fd);
  if (!desc || !desc->directory) {
    errno = ENOTDIR;
    return nullptr;
  }
  auto* d = new ShimDir();
  d->fd = fd;
  d->key = desc->key;
  if (int e = List(*d)) {
    delete d;
    errno = e;
    return nullptr;
  }
  std::lock_guard lock(g_dirs_mu);
  (*g_dirs)[d] = d;
  g_dir_count.fetch_add(1);
  return reinterpret_cast<DIR*>(d);
}

uint64_t Hash(const std::string& a, const std::string& b) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : a) h = (h ^ c) * 1099511628211ull;
  h = (h ^ '/') * 1099511628211ull;
  for (unsigned char c : b) h = (h ^ c) * 1099511628211ull;
  return h | 1;
}

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

FILE* fopen(const char* path, const char* mode) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) {
    const int flags = FlagsOf(mode);
    if (flags < 0) return errno = EINVAL, nullptr;
    const int fd = OpenTarget(*t, flags);
    if (fd < 0) return nullptr;
    FILE* f = StreamOf(fd, mode);
    if (!f) close(fd);
    return f;
  }
  return MEMKV_REAL(fopen)(Real(AT_FDCWD, path), mode);
}
FILE* fopen64(const char* path, const char* mode) { return fopen(path, mode); }

FILE* fdopen(int fd, const char* mode) {
  if (MaybeOurs(fd)) {
    if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
      if (!d->file) return errno = d->directory ? EISDIR : EIO, nullptr;
      return StreamOf(fd, mode);
    }
  }
  return MEMKV_REAL(fdopen)(fd, mode);
}

int fileno(FILE* f) {
  if (g_stream_count.load() != 0) {
    std::lock_guard lock(g_streams_mu);
    auto it = g_streams->find(f);
    if (it != g_streams->end()) return it->second;
  }
  return MEMKV_REAL(fileno)(f);
}
int fileno_unlocked(FILE* f) { return fileno(f); }

int fclose(FILE* f) {
  if (g_stream_count.load() != 0) {
    std::lock_guard lock(g_streams_mu);
    if (g_streams->erase(f)) g_stream_count.fetch_sub(1);
  }
  return MEMKV_REAL(fclose)(f);
}

// ---- directories ----

DIR* opendir(const char* path) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) {
    const int fd = OpenTarget(*t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    DIR* d = DirOf(fd);
    if (!d) {
      const int e = errno;
      close(fd);
      errno = e;
    }
    return d;
  }
  return MEMKV_REAL(opendir)(Real(AT_FDCWD, path));
}

DIR* fdopendir(int fd) {
  if (MaybeOurs(fd) && Lookup(fd)) return DirOf(fd);
  return MEMKV_REAL(fdopendir)(fd);
}

struct dirent64* readdir64(DIR* dir) {
  if (ShimDir* d = FindDir(dir)) {
    if (d->pos >= d->children.size()) return nullptr;
    const Child& c = d->children[d->pos++];
    d->entry.d_ino = Hash(d->key, c.name);
    d->entry.d_off = static_cast<off64_t>(d->pos);
    d->entry.d_reclen = sizeof(d->entry);
    d->entry.d_type = c.directory ? DT_DIR : DT_REG;
    const size_t n = std::min(c.name.size(), sizeof(d->entry.d_name) - 1);
    std::memcpy(d->entry.d_name, c.name.data(), n);
    d->entry.d_name[n] = '\0';
    return &d->entry;
  }
  return MEMKV_REAL(readdir64)(dir);
}
struct dirent* readdir(DIR* dir) {
  static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "LP64: one layout");
  if (FindDir(dir)) return reinterpret_cast<struct dirent*>(readdir64(dir));
  return MEMKV_REAL(readdir)(dir);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int readdir64_r(DIR* dir, struct dirent64* entry, struct dirent64** result) {
  if (FindDir(dir)) {
    struct dirent64* e = readdir64(dir);
    if (e) std::memcpy(entry, e, sizeof *entry);
    *result = e ? entry : nullptr;
    return 0;
  }
  return MEMKV_REAL(readdir64_r)(dir, entry, result);
}
int readdir_r(DIR* dir, struct dirent* entry, struct dirent** result) {
  if (FindDir(dir))
    return readdir64_r(dir, reinterpret_cast<struct dirent64*>(entry),
                       reinterpret_cast<struct dirent64**>(result));
  return MEMKV_REAL(readdir_r)(dir, entry, result);
}
#pragma GCC diagnostic pop

int closedir(DIR* dir) {
  if (ShimDir* d = FindDir(dir)) {
    {
      std::lock_guard lock(g_dirs_mu);
      g_dirs->erase(dir);
      g_dir_count.fetch_sub(1);
    }
    const int r = close(d->fd);
    delete d;
    return r;
  }
  return MEMKV_REAL(closedir)(dir);
}

int dirfd(DIR* dir) {
  if (ShimDir* d = FindDir(dir)) return d->fd;
  return MEMKV_REAL(dirfd)(dir);
}

void rewinddir(DIR* dir) {
  if (ShimDir* d = FindDir(dir)) {
    if (List(*d) != 0) d->pos = d->children.size();
    return;
  }
  MEMKV_REAL(rewinddir)(dir);
}
long telldir(DIR* dir) {
  if (ShimDir* d = FindDir(dir)) return static_cast<long>(d->pos);
  return MEMKV_REAL(telldir)(dir);
}
void seekdir(DIR* dir, long pos) {
  if (ShimDir* d = FindDir(dir)) {
    d->pos = std::min<size_t>(static_cast<size_t>(pos < 0 ? 0 : pos), d->children.size());
    return;
  }
  MEMKV_REAL(seekdir)(dir, pos);
}

// glob(3) reads directories through glibc's internal calls; given its
// GLOB_ALTDIRFUNC hooks (the shim's interposed functions, which pass other
// paths on to libc) it lists the prefixes too.
int glob(const char* pattern, int flags, int (*errfunc)(const char*, int), glob_t* out) {
  if (Enabled() && !Inside() && !(flags & GLOB_ALTDIRFUNC)) {
    out->gl_opendir = [](const char* p) -> void* { return opendir(p); };
    out->gl_readdir = [](void* d) { return readdir(static_cast<DIR*>(d)); };
    out->gl_closedir = [](void* d) { closedir(static_cast<DIR*>(d)); };
    out->gl_stat = [](const char* p, struct stat* st) { return stat(p, st); };
    out->gl_lstat = [](const char* p, struct stat* st) { return lstat(p, st); };
    flags |= GLOB_ALTDIRFUNC;
  }
  return MEMKV_REAL(glob)(pattern, flags, errfunc, out);
}
int glob64(const char* pattern, int flags, int (*errfunc)(const char*, int), glob64_t* out) {
  return glob(pattern, flags, errfunc, reinterpret_cast<glob_t*>(out));
}

}  // extern "C"
#pragma GCC visibility pop
