// libmemkv_preload.so: the calls that take a path (open, stat, unlink,
// rename, mkdir, statvfs, ...). Paths outside the prefixes, and *at calls
// relative to a directory that is not ours, go to libc untouched.
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "preload/shim.h"

using namespace memkv::preload;

namespace {

int ModeArg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

int DoOpenAt(int dirfd, const char* path, int flags, mode_t mode) {
  if (std::optional<Target> t = Resolve(dirfd, path)) {
    if ((flags & O_TMPFILE) == O_TMPFILE) return Ret(EOPNOTSUPP);
    return OpenTarget(*t, flags);
  }
  return MEMKV_REAL(openat)(dirfd, Real(dirfd, path), flags, mode);
}

int StatTarget(const Target& t, struct stat* st) {
  Fs* fs = GetFs();
  if (!fs) return -1;
  InsideScope inside;
  Attr a;
  if (int e = fs->Stat(t.key, a)) return Ret(e);
  FillStat(t.key, a, st);
  return 0;
}

// An fd-relative stat with AT_EMPTY_PATH on a descriptor of ours.
bool EmptyPathOnOurs(int dirfd, const char* path, int flags) {
  return (flags & AT_EMPTY_PATH) && path && !*path && MaybeOurs(dirfd) && Lookup(dirfd);
}

// Something that exists (for calls the shim accepts without effect:
// chmod, chown, utimes).
int Exists(const Target& t) {
  Fs* fs = GetFs();
  if (!fs) return -1;
  InsideScope inside;
  Attr a;
  return Ret(fs->Stat(t.key, a));
}

void FillStatx(const struct stat& st, struct statx* sx) {
  std::memset(sx, 0, sizeof *sx);
  sx->stx_mask = STATX_BASIC_STATS;
  sx->stx_blksize = static_cast<uint32_t>(st.st_blksize);
  sx->stx_nlink = static_cast<uint32_t>(st.st_nlink);
  sx->stx_uid = st.st_uid;
  sx->stx_gid = st.st_gid;
  sx->stx_mode = static_cast<uint16_t>(st.st_mode);
  sx->stx_ino = st.st_ino;
  sx->stx_size = static_cast<uint64_t>(st.st_size);
  sx->stx_blocks = static_cast<uint64_t>(st.st_blocks);
  auto ts = [](const struct timespec& t) {
    struct statx_timestamp s{};
    s.tv_sec = t.tv_sec;
    s.tv_nsec = static_cast<uint32_t>(t.tv_nsec);
    return s;
  };
  sx->stx_atime = sx->stx_mtime = sx->stx_ctime = ts(st.st_mtim);
  sx->stx_dev_major = static_cast<uint32_t>(st.st_dev >> 8);
  sx->stx_dev_minor = static_cast<uint32_t>(st.st_dev & 0xff);
}

int CapacityOf(struct statvfs* out) {
  Fs* fs = GetFs();
  if (!fs) return -1;
  InsideScope inside;
  memkv::CapacityInfo c;
  if (int e = fs->Capacity(c)) return Ret(e);
  std::memset(out, 0, sizeof *out);
  out->f_bsize = 4096;
  out->f_frsize = 4096;
  out->f_blocks = c.total_bytes / 4096;
  const uint64_t free_bytes = c.total_bytes > c.used_bytes ? c.total_bytes - c.used_bytes : 0;
  out->f_bfree = out->f_bavail = free_bytes / 4096;
  out->f_files = c.keys + out->f_bfree;
  out->f_ffree = out->f_favail = out->f_bfree;
  out->f_fsid = 0x6d6b76;
  out->f_namemax = 255;
  return 0;
}

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

// ---- open ----

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = ModeArg(flags, ap);
  va_end(ap);
  return DoOpenAt(AT_FDCWD, path, flags, static_cast<mode_t>(mode));
}
int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = ModeArg(flags, ap);
  va_end(ap);
  return open(path, flags, mode);
}
int __open_2(const char* path, int flags) { return open(path, flags); }
int __open64_2(const char* path, int flags) { return open(path, flags); }
int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = ModeArg(flags, ap);
  va_end(ap);
  return DoOpenAt(dirfd, path, flags, static_cast<mode_t>(mode));
}
int openat64(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = ModeArg(flags, ap);
  va_end(ap);
  return DoOpenAt(dirfd, path, flags, static_cast<mode_t>(mode));
}
int __openat_2(int dirfd, const char* path, int flags) { return DoOpenAt(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char* path, int flags) { return DoOpenAt(dirfd, path, flags, 0); }
int creat(const char* path, mode_t mode) { return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode); }
int creat64(const char* path, mode_t mode) { return creat(path, mode); }

// ---- stat ----

int stat(const char* path, struct stat* st) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return StatTarget(*t, st);
  return MEMKV_REAL(stat)(Real(AT_FDCWD, path), st);
}
int lstat(const char* path, struct stat* st) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return StatTarget(*t, st);
  return MEMKV_REAL(lstat)(Real(AT_FDCWD, path), st);
}
int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  if (EmptyPathOnOurs(dirfd, path, flags)) return fstat(dirfd, st);
  if (std::optional<Target> t = Resolve(dirfd, path)) return StatTarget(*t, st);
  return MEMKV_REAL(fstatat)(dirfd, Real(dirfd, path), st, flags);
}
int stat64(const char* path, struct stat64* st) { return stat(path, reinterpret_cast<struct stat*>(st)); }
int lstat64(const char* path, struct stat64* st) { return lstat(path, reinterpret_cast<struct stat*>(st)); }
int fstatat64(int dirfd, const char* path, struct stat64* st, int flags) {
  return fstatat(dirfd, path, reinterpret_cast<struct stat*>(st), flags);
}

// The glibc < 2.33 names, which programs built then still call.
int __xstat(int ver, const char* path, struct stat* st) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return StatTarget(*t, st);
  using Fn = int (*)(int, const char*, struct stat*);
  static const Fn real = Next<Fn>("__xstat");
  return real ? real(ver, Real(AT_FDCWD, path), st) : MEMKV_REAL(stat)(Real(AT_FDCWD, path), st);
}
int __lxstat(int ver, const char* path, struct stat* st) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return StatTarget(*t, st);
  using Fn = int (*)(int, const char*, struct stat*);
  static const Fn real = Next<Fn>("__lxstat");
  return real ? real(ver, Real(AT_FDCWD, path), st) : MEMKV_REAL(lstat)(Real(AT_FDCWD, path), st);
}
int __fxstatat(int ver, int dirfd, const char* path, struct stat* st, int flags) {
  if (EmptyPathOnOurs(dirfd, path, flags)) return fstat(dirfd, st);
  if (std::optional<Target> t = Resolve(dirfd, path)) return StatTarget(*t, st);
  using Fn = int (*)(int, int, const char*, struct stat*, int);
  static const Fn real = Next<Fn>("__fxstatat");
  return real ? real(ver, dirfd, Real(dirfd, path), st, flags) : MEMKV_REAL(fstatat)(dirfd, Real(dirfd, path), st, flags);
}
int __xstat64(int ver, const char* path, struct stat64* st) {
  return __xstat(ver, path, reinterpret_cast<struct stat*>(st));
}
int __lxstat64(int ver, const char* path, struct stat64* st) {
  return __lxstat(ver, path, reinterpret_cast<struct stat*>(st));
}
int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* st, int flags) {
  return __fxstatat(ver, dirfd, path, reinterpret_cast<struct stat*>(st), flags);
}

int statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* sx) {
  struct stat st;
  if (EmptyPathOnOurs(dirfd, path, flags)) {
    if (fstat(dirfd, &st) != 0) return -1;
    FillStatx(st, sx);
    return 0;
  }
  if (std::optional<Target> t = Resolve(dirfd, path)) {
    if (StatTarget(*t, &st) != 0) return -1;
    FillStatx(st, sx);
    return 0;
  }
  return MEMKV_REAL(statx)(dirfd, Real(dirfd, path), flags, mask, sx);
}

int access(const char* path, int mode) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) {
    struct stat st;
    if (StatTarget(*t, &st) != 0) return -1;
    if ((mode & X_OK) && !S_ISDIR(st.st_mode)) return Ret(EACCES);
    return 0;
  }
  return MEMKV_REAL(access)(Real(AT_FDCWD, path), mode);
}
int faccessat(int dirfd, const char* path, int mode, int flags) {
  if (std::optional<Target> t = Resolve(dirfd, path)) {
    struct stat st;
    if (StatTarget(*t, &st) != 0) return -1;
    if ((mode & X_OK) && !S_ISDIR(st.st_mode)) return Ret(EACCES);
    return 0;
  }
  return MEMKV_REAL(faccessat)(dirfd, Real(dirfd, path), mode, flags);
}
int euidaccess(const char* path, int mode) {
  if (Resolve(AT_FDCWD, path)) return access(path, mode);
  return MEMKV_REAL(euidaccess)(Real(AT_FDCWD, path), mode);
}
int eaccess(const char* path, int mode) { return euidaccess(path, mode); }

// ---- unlink, rename, mkdir, rmdir ----

static int UnlinkTarget(const Target& t, bool directory) {
  Fs* fs = GetFs();
  if (!fs) return -1;
  InsideScope inside;
  return Ret(directory ? fs->Rmdir(t.key) : fs->Unlink(t.key));
}

int unlink(const char* path) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return UnlinkTarget(*t, false);
  return MEMKV_REAL(unlink)(Real(AT_FDCWD, path));
}
int unlinkat(int dirfd, const char* path, int flags) {
  if (std::optional<Target> t = Resolve(dirfd, path)) return UnlinkTarget(*t, flags & AT_REMOVEDIR);
  return MEMKV_REAL(unlinkat)(dirfd, Real(dirfd, path), flags);
}
int rmdir(const char* path) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return UnlinkTarget(*t, true);
  return MEMKV_REAL(rmdir)(Real(AT_FDCWD, path));
}
int remove(const char* path) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) {
    Fs* fs = GetFs();
    if (!fs) return -1;
    InsideScope inside;
    const int e = fs->Unlink(t->key);
    return Ret(e == EISDIR ? fs->Rmdir(t->key) : e);
  }
  return MEMKV_REAL(remove)(Real(AT_FDCWD, path));
}

int renameat2(int olddirfd, const char* from, int newdirfd, const char* to, unsigned flags) {
  std::optional<Target> a = Resolve(olddirfd, from);
  std::optional<Target> b = Resolve(newdirfd, to);
  if (!a && !b) {
    using Fn = int (*)(int, const char*, int, const char*, unsigned);
    static const Fn real = Next<Fn>("renameat2");
    return real(olddirfd, Real(olddirfd, from), newdirfd, Real(newdirfd, to, 1), flags);
  }
  if (!a || !b) return Ret(EXDEV);  // between memkv and a disk: a copy (mv does it)
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return Ret(EINVAL);
  Fs* fs = GetFs();
  if (!fs) return -1;
  InsideScope inside;
  if (flags & RENAME_NOREPLACE) {
    Attr attr;
    const int e = fs->Stat(b->key, attr);
    if (e == 0) return Ret(EEXIST);
    if (e != ENOENT) return Ret(e);
  }
  return Ret(fs->Rename(a->key, b->key));
}
int renameat(int olddirfd, const char* from, int newdirfd, const char* to) {
  return renameat2(olddirfd, from, newdirfd, to, 0);
}
int rename(const char* from, const char* to) { return renameat2(AT_FDCWD, from, AT_FDCWD, to, 0); }

int mkdirat(int dirfd, const char* path, mode_t mode) {
  if (std::optional<Target> t = Resolve(dirfd, path)) {
    Fs* fs = GetFs();
    if (!fs) return -1;
    InsideScope inside;
    return Ret(fs->Mkdir(t->key));
  }
  return MEMKV_REAL(mkdirat)(dirfd, Real(dirfd, path), mode);
}
int mkdir(const char* path, mode_t mode) { return mkdirat(AT_FDCWD, path, mode); }

// ---- truncate ----

int truncate(const char* path, off_t size) {
  if (Resolve(AT_FDCWD, path)) {
    const int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    const int r = ftruncate(fd, size);
    const int e = errno;
    const int c = close(fd);
    if (r != 0) return Ret(e);
    return c;
  }
  return MEMKV_REAL(truncate)(Real(AT_FDCWD, path), size);
}
int truncate64(const char* path, off64_t size) { return truncate(path, size); }

// ---- statvfs ----

int statvfs(const char* path, struct statvfs* out) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) {
    if (Exists(*t) != 0) return -1;
    return CapacityOf(out);
  }
  return MEMKV_REAL(statvfs)(Real(AT_FDCWD, path), out);
}
int statvfs64(const char* path, struct statvfs64* out) {
  return statvfs(path, reinterpret_cast<struct statvfs*>(out));
}
int fstatvfs(int fd, struct statvfs* out) {
  if (MaybeOurs(fd) && Lookup(fd)) return CapacityOf(out);
  return MEMKV_REAL(fstatvfs)(fd, out);
}
int fstatvfs64(int fd, struct statvfs64* out) { return fstatvfs(fd, reinterpret_cast<struct statvfs*>(out)); }

// ---- accepted without effect: modes, owners, times ----

int chmod(const char* path, mode_t mode) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t);
  return MEMKV_REAL(chmod)(Real(AT_FDCWD, path), mode);
}
int fchmodat(int dirfd, const char* path, mode_t mode, int flags) {
  if (std::optional<Target> t = Resolve(dirfd, path)) return Exists(*t);
  return MEMKV_REAL(fchmodat)(dirfd, Real(dirfd, path), mode, flags);
}
int fchmod(int fd, mode_t mode) {
  if (MaybeOurs(fd) && Lookup(fd)) return 0;
  return MEMKV_REAL(fchmod)(fd, mode);
}
int chown(const char* path, uid_t uid, gid_t gid) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t);
  return MEMKV_REAL(chown)(Real(AT_FDCWD, path), uid, gid);
}
int lchown(const char* path, uid_t uid, gid_t gid) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t);
  return MEMKV_REAL(lchown)(Real(AT_FDCWD, path), uid, gid);
}
int fchownat(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) {
  if (EmptyPathOnOurs(dirfd, path, flags)) return 0;
  if (std::optional<Target> t = Resolve(dirfd, path)) return Exists(*t);
  return MEMKV_REAL(fchownat)(dirfd, Real(dirfd, path), uid, gid, flags);
}
int fchown(int fd, uid_t uid, gid_t gid) {
  if (MaybeOurs(fd) && Lookup(fd)) return 0;
  return MEMKV_REAL(fchown)(fd, uid, gid);
}
int utimensat(int dirfd, const char* path, const struct timespec times[2], int flags) {
  if (std::optional<Target> t = Resolve(dirfd, path)) return Exists(*t);
  return MEMKV_REAL(utimensat)(dirfd, Real(dirfd, path), times, flags);
}
int futimens(int fd, const struct timespec times[2]) {
  if (MaybeOurs(fd) && Lookup(fd)) return 0;
  return MEMKV_REAL(futimens)(fd, times);
}
int utimes(const char* path, const struct timeval times[2]) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t);
  return MEMKV_REAL(utimes)(Real(AT_FDCWD, path), times);
}
int utime(const char* path, const struct utimbuf* times) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t);
  return MEMKV_REAL(utime)(Real(AT_FDCWD, path), times);
}

// ---- the working directory: may be one of ours ----

int chdir(const char* path) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) {
    struct stat st;
    if (StatTarget(*t, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) return Ret(ENOTDIR);
    SetVirtualCwd(t->path);
    return 0;
  }
  const int r = MEMKV_REAL(chdir)(Real(AT_FDCWD, path));
  if (r == 0) SetVirtualCwd({});
  return r;
}

int fchdir(int fd) {
  if (MaybeOurs(fd)) {
    if (std::shared_ptr<OpenDesc> d = Lookup(fd)) {
      if (!d->directory) return Ret(ENOTDIR);
      SetVirtualCwd(d->path);
      return 0;
    }
  }
  const int r = MEMKV_REAL(fchdir)(fd);
  if (r == 0) SetVirtualCwd({});
  return r;
}

char* getcwd(char* buf, size_t size) {
  std::string v = VirtualCwd();
  if (v.empty()) return MEMKV_REAL(getcwd)(buf, size);
  if (!buf) {
    buf = static_cast<char*>(std::malloc(size ? size : v.size() + 1));
    if (!buf) return nullptr;
    if (size == 0) size = v.size() + 1;
  }
  if (v.size() + 1 > size) return errno = ERANGE, nullptr;
  std::memcpy(buf, v.c_str(), v.size() + 1);
  return buf;
}

// ---- links and extended attributes: none here ----

ssize_t readlinkat(int dirfd, const char* path, char* buf, size_t n) {
  if (std::optional<Target> t = Resolve(dirfd, path)) return Exists(*t) == 0 ? Ret(EINVAL) : -1;
  return MEMKV_REAL(readlinkat)(dirfd, Real(dirfd, path), buf, n);
}
ssize_t readlink(const char* path, char* buf, size_t n) { return readlinkat(AT_FDCWD, path, buf, n); }
int symlink(const char* target, const char* path) {
  if (Resolve(AT_FDCWD, path)) return Ret(EPERM);
  return MEMKV_REAL(symlink)(target, Real(AT_FDCWD, path));
}
int symlinkat(const char* target, int dirfd, const char* path) {
  if (Resolve(dirfd, path)) return Ret(EPERM);
  return MEMKV_REAL(symlinkat)(target, dirfd, Real(dirfd, path));
}
int link(const char* from, const char* to) {
  if (Resolve(AT_FDCWD, from) || Resolve(AT_FDCWD, to)) return Ret(EPERM);
  return MEMKV_REAL(link)(Real(AT_FDCWD, from), Real(AT_FDCWD, to, 1));
}
int linkat(int olddirfd, const char* from, int newdirfd, const char* to, int flags) {
  if (Resolve(olddirfd, from) || Resolve(newdirfd, to)) return Ret(EPERM);
  return MEMKV_REAL(linkat)(olddirfd, Real(olddirfd, from), newdirfd, Real(newdirfd, to, 1), flags);
}

ssize_t getxattr(const char* path, const char* name, void* value, size_t size) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t) == 0 ? Ret(ENODATA) : -1;
  return MEMKV_REAL(getxattr)(Real(AT_FDCWD, path), name, value, size);
}
ssize_t lgetxattr(const char* path, const char* name, void* value, size_t size) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t) == 0 ? Ret(ENODATA) : -1;
  return MEMKV_REAL(lgetxattr)(Real(AT_FDCWD, path), name, value, size);
}
ssize_t fgetxattr(int fd, const char* name, void* value, size_t size) {
  if (MaybeOurs(fd) && Lookup(fd)) return Ret(ENODATA);
  return MEMKV_REAL(fgetxattr)(fd, name, value, size);
}
ssize_t listxattr(const char* path, char* list, size_t size) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t) == 0 ? 0 : -1;
  return MEMKV_REAL(listxattr)(Real(AT_FDCWD, path), list, size);
}
ssize_t llistxattr(const char* path, char* list, size_t size) {
  if (std::optional<Target> t = Resolve(AT_FDCWD, path)) return Exists(*t) == 0 ? 0 : -1;
  return MEMKV_REAL(llistxattr)(Real(AT_FDCWD, path), list, size);
}
ssize_t flistxattr(int fd, char* list, size_t size) {
  if (MaybeOurs(fd) && Lookup(fd)) return 0;
  return MEMKV_REAL(flistxattr)(fd, list, size);
}

}  // extern "C"
#pragma GCC visibility pop
