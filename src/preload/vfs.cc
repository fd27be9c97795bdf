#include "preload/vfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace memkv::preload {
namespace {

constexpr char kMarkerByte = 'd';  // the 1-byte value of a directory or empty-file marker

int AccessMode(int flags) { return flags & O_ACCMODE; }

}  // namespace

int ErrnoOf(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kNoSpace: return ENOSPC;
    case Code::kTooLarge: return EFBIG;
    case Code::kUnauthorized: return EACCES;
    default: return EIO;
  }
}

// ---- Fs ----

namespace {
constexpr size_t kIdleWindows = 2;  // kept for the next file written
}  // namespace

void Window::append(const std::byte* p, size_t n) {
  std::memcpy(data_ + size_, p, n);
  size_ += n;
}

void Window::Privatize() {
  if (!shared_) return;
  auto copy = std::unique_ptr<std::byte[]>(new (std::nothrow) std::byte[capacity_]);
  if (copy) std::memcpy(copy.get(), data_, size_);
  new SharedBuffer(std::move(shared_));  // the parent's: left alone
  shared_ = SharedBuffer();
  heap_ = std::move(copy);
  data_ = heap_.get();
  if (!data_) capacity_ = size_ = 0;
}

Window Fs::AcquireWindow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_windows_.empty()) {
      Window w = std::move(idle_windows_.back());
      idle_windows_.pop_back();
      w.clear();
      return w;
    }
  }
  Window w;
  if (Expected<SharedBuffer> shared = engine_.AllocateShared(options_.window)) {
    w.shared_ = std::move(*shared);
    w.data_ = static_cast<std::byte*>(w.shared_.data());
  } else {
    w.heap_.reset(new (std::nothrow) std::byte[options_.window]);
    w.data_ = w.heap_.get();
  }
  w.capacity_ = w.data_ ? options_.window : 0;
  return w;
}

bool Fs::SharedMemoryTo(std::string_view key) {
  const size_t server = engine_.RouteKey(key);
  const std::vector<ServerState> servers = engine_.Servers();
  return server < servers.size() && servers[server].shm;
}

void Fs::ReleaseWindow(Window w) {
  if (!w) return;
  std::lock_guard lock(mu_);
  if (idle_windows_.size() < kIdleWindows) idle_windows_.push_back(std::move(w));
}

Fs::Fs(Engine engine, FsOptions options) : engine_(std::move(engine)), options_(options) {
  options_.read_ahead = std::max<size_t>(4096, std::min(options_.read_ahead, options_.window));
}

void Fs::Fail(std::string_view op, std::string_view key, const Outcome& why) {
  if (!options_.log) return;
  std::string id = std::string(op) + ' ' + std::string(key);
  {
    std::lock_guard lock(mu_);
    if (std::find(logged_.begin(), logged_.end(), id) != logged_.end()) return;
    if (logged_.size() < 4096) logged_.push_back(id);
  }
  std::string shown(key);
  std::replace(shown.begin(), shown.end(), '\0', '?');
  std::fprintf(stderr, "memkv preload: %.*s %s: %s: %s\n", static_cast<int>(op.size()), op.data(),
               shown.c_str(), CodeName(why.code), why.message.c_str());
}

uint64_t Fs::MaxValueSize() {
  {
    std::lock_guard lock(mu_);
    if (max_value_size_ != 0) return max_value_size_;
  }
  CapacityInfo info = engine_.Capacity();
  const uint64_t v = info.outcome.ok() && info.max_value_size != 0 ? info.max_value_size : (1ull << 30);
  std::lock_guard lock(mu_);
  max_value_size_ = v;
  return v;
}

int Fs::Capacity(CapacityInfo& out) {
  out = engine_.Capacity();
  if (!out.outcome.ok()) {
    Fail("statvfs", "", out.outcome);
    return ErrnoOf(out.outcome.code);
  }
  return 0;
}

int Fs::StatDir(std::string_view key, bool& is_dir) {
  ListPage page = engine_.List(ChildPrefix(key), {}, 1);
  if (!page.outcome.ok()) {
    Fail("stat", key, page.outcome);
    return ErrnoOf(page.outcome.code);
  }
  is_dir = !page.entries.empty();
  return 0;
}

int Fs::Stat(std::string_view key, Attr& out) {
  out = Attr{};
  if (key.empty()) {
    out.directory = true;
    return 0;
  }
  const std::string marker = EmptyMarker(key);
  const std::string_view keys[] = {key, marker};
  ExistsResults r = engine_.Exists(keys);
  if (!r.outcome.ok()) {
    Fail("stat", key, r.outcome);
    return ErrnoOf(r.outcome.code);
  }
  for (size_t i = 0; i < 2; ++i) {
    if (r.entries[i].status == Code::kOk) {
      out.size = i == 0 ? r.entries[i].size : 0;
      out.version = r.entries[i].version;
      out.empty_marker = i == 1;
      return 0;
    }
    if (r.entries[i].status != Code::kNotFound) {
      Fail("stat", key, {r.entries[i].status, "exists"});
      return ErrnoOf(r.entries[i].status);
    }
  }
  bool dir = false;
  if (int e = StatDir(key, dir)) return e;
  if (!dir) return ENOENT;
  out.directory = true;
  return 0;
}

int Fs::Mkdir(std::string_view key) {
  Attr a;
  int e = Stat(key, a);
  if (e == 0) return EEXIST;
  if (e != ENOENT) return e;
  const std::string parent = ParentKey(key);
  if (int pe = Stat(parent, a)) return pe;
  if (!a.directory) return ENOTDIR;
  const std::string marker = DirMarker(key);
  const PutEntry put{marker, &kMarkerByte, 1};
  PutResults r = engine_.BatchPut({&put, 1});
  if (!r.ok()) {
    const Code c = r.outcome.ok() ? r.entries[0] : r.outcome.code;
    Fail("mkdir", key, r.outcome.ok() ? Outcome{c, "put"} : r.outcome);
    return ErrnoOf(c);
  }
  return 0;
}

int Fs::Rmdir(std::string_view key) {
  if (key.empty()) return EBUSY;
  Attr a;
  if (int e = Stat(key, a)) return e;
  if (!a.directory) return ENOTDIR;
  const std::string prefix = ChildPrefix(key);
  ListPage page = engine_.List(prefix, {}, 2);
  if (!page.outcome.ok()) {
    Fail("rmdir", key, page.outcome);
    return ErrnoOf(page.outcome.code);
  }
  for (const ListEntry& le : page.entries)
    if (le.key != prefix) return ENOTEMPTY;
  const std::string_view keys[] = {prefix};
  DeleteResults d = engine_.Delete(keys);
  if (!d.outcome.ok()) return ErrnoOf(d.outcome.code);
  if (d.entries[0] != Code::kOk && d.entries[0] != Code::kNotFound) return ErrnoOf(d.entries[0]);
  return 0;
}

int Fs::Unlink(std::string_view key) {
  if (key.empty()) return EISDIR;
  const std::string marker = EmptyMarker(key);
  const std::string_view keys[] = {key, marker};
  DeleteResults d = engine_.Delete(keys);
  if (!d.outcome.ok()) {
    Fail("unlink", key, d.outcome);
    return ErrnoOf(d.outcome.code);
  }
  bool found = false;
  for (Code c : d.entries) {
    if (c == Code::kOk) found = true;
    else if (c != Code::kNotFound) {
      Fail("unlink", key, {c, "delete"});
      return ErrnoOf(c);
    }
  }
  if (found) return 0;
  bool dir = false;
  if (int e = StatDir(key, dir)) return e;
  return dir ? EISDIR : ENOENT;
}

int Fs::Rename(std::string_view from, std::string_view to) {
  if (from.empty() || to.empty()) return EBUSY;
  if (from == to) return 0;
  Attr src, dst;
  if (int e = Stat(from, src)) return e;
  const int de = Stat(to, dst);
  if (de != 0 && de != ENOENT) return de;
  Attr parent;
  if (int pe = Stat(ParentKey(to), parent)) return pe;
  if (!parent.directory) return ENOTDIR;
  auto rename_key = [&](const std::string& a, const std::string& b) -> int {
    Outcome o = engine_.Rename(a, b);
    if (!o.ok()) {
      Fail("rename", a, o);
      return ErrnoOf(o.code);
    }
    return 0;
  };
  auto drop = [&](const std::string& k) {
    const std::string_view keys[] = {k};
    (void)engine_.Delete(keys);
  };
  if (!src.directory) {
    if (de == 0 && dst.directory) return EISDIR;
    const std::string a = src.empty_marker ? EmptyMarker(from) : std::string(from);
    const std::string b = src.empty_marker ? EmptyMarker(to) : std::string(to);
    if (int e = rename_key(a, b)) return e;
    // The other form of `to` (an empty file replaced by bytes, or the reverse).
    if (de == 0 && dst.empty_marker != src.empty_marker)
      drop(dst.empty_marker ? EmptyMarker(to) : std::string(to));
    return 0;
  }
  // A directory: every key below it moves.
  if (de == 0 && !dst.directory) return ENOTDIR;
  const std::string from_prefix = ChildPrefix(from);
  const std::string to_prefix = ChildPrefix(to);
  if (to_prefix.compare(0, from_prefix.size(), from_prefix) == 0) return EINVAL;
  if (de == 0) {
    ListPage page = engine_.List(to_prefix, {}, 2);
    if (!page.outcome.ok()) return ErrnoOf(page.outcome.code);
    for (const ListEntry& le : page.entries)
      if (le.key != to_prefix) return ENOTEMPTY;
  }
  std::string cursor;
  for (;;) {
    ListPage page = engine_.List(from_prefix, cursor, 1000);
    if (!page.outcome.ok()) {
      Fail("rename", from, page.outcome);
      return ErrnoOf(page.outcome.code);
    }
    for (const ListEntry& le : page.entries) {
      if (int e = rename_key(le.key, to_prefix + le.key.substr(from_prefix.size()))) return e;
    }
    if (page.cursor.empty()) break;
    cursor = page.cursor;
  }
  return 0;
}

int Fs::ListDir(std::string_view key, std::vector<Child>& out) {
  out.clear();
  const std::string prefix = ChildPrefix(key);
  std::string cursor;
  for (;;) {
    ListPage page = engine_.List(prefix, cursor, 1000);
    if (!page.outcome.ok()) {
      Fail("readdir", key, page.outcome);
      return ErrnoOf(page.outcome.code);
    }
    bool skipped = false;
    for (const ListEntry& le : page.entries) {
      cursor = le.key;
      std::optional<Child> c = ChildOf(prefix, le.key);
      if (!c) continue;
      if (!out.empty() && out.back().name == c->name) {
        out.back().directory = out.back().directory || c->directory;
      } else {
        out.push_back(*c);
      }
      if (c->directory) {
        // Everything below this subdirectory: skipped in one step.
        cursor = SkipPast(prefix + c->name + "/");
        skipped = true;
        break;
      }
    }
    if (!skipped && page.cursor.empty()) break;
  }
  return 0;
}

// ---- File ----

int File::Open(Fs& fs, std::string key, int flags, std::shared_ptr<File>& out) {
  Attr a;
  const int se = fs.Stat(key, a);
  if (se != 0 && se != ENOENT) return se;
  const bool exists = se == 0;
  const bool writing = AccessMode(flags) != O_RDONLY;
  if (exists && a.directory) {
    if (writing || (flags & O_CREAT)) return EISDIR;
  }
  if (!exists && !(flags & O_CREAT)) return ENOENT;
  if (exists && (flags & O_CREAT) && (flags & O_EXCL)) return EEXIST;
  if ((flags & O_DIRECTORY) && !(exists && a.directory)) return exists ? ENOTDIR : ENOENT;
  if (!exists) {
    Attr parent;
    if (int pe = fs.Stat(ParentKey(key), parent)) return pe;
    if (!parent.directory) return ENOTDIR;
  }
  auto f = std::shared_ptr<File>(new File(std::move(key), flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)));
  if (exists) {
    f->base_exists_ = !a.directory;
    f->base_empty_marker_ = a.empty_marker;
    f->base_size_ = a.size;
    f->base_version_ = a.version;
    f->base_valid_ = a.size;
    f->size_ = a.size;
  }
  if (!exists || (writing && (flags & O_TRUNC))) {
    // A new or truncated file: it exists (empty) at close even if never written.
    f->dirty_ = true;
    f->size_ = 0;
    f->base_valid_ = 0;
  }
  out = std::move(f);
  return 0;
}

int File::flags() const {
  return flags_;
}

void File::set_flags(int flags) {
  std::lock_guard lock(mu_);
  const int settable = O_APPEND | O_NONBLOCK;
  flags_ = (flags_ & ~settable) | (flags & settable);
}

void File::ForkedChild() {
  new (&mu_) std::mutex();  // a thread that did not fork may have held it
  tail_.Privatize();
  if (dirty_) {
    // Written by the parent and not yet stored: the parent stores it; the
    // child neither writes it on nor stores it when it closes its copy.
    parents_ = true;
    error_ = EIO;
  }
  if (stream_) {
    // The parent's: never touched (nor aborted) here, so leaked.
    new PutStream(std::move(*stream_));
    stream_.reset();
    error_ = EIO;
  }
}

int File::ReadBase(Fs& fs, std::byte* buf, size_t n, uint64_t offset) {
  // Base bytes where the base still holds them; zeros past that.
  size_t from_base = 0;
  if (offset < base_valid_) from_base = static_cast<size_t>(std::min<uint64_t>(n, base_valid_ - offset));
  if (from_base > 0) {
    GetEntry g{};
    g.key = base_empty_marker_ ? std::string_view() : std::string_view(key_);
    g.buffer = buf;
    g.capacity = from_base;
    g.offset = offset;
    g.length = from_base;
    g.version = base_version_;
    GetResults r = fs.engine().BatchGet({&g, 1});
    const Code c = r.outcome.ok() ? r.entries[0].status : r.outcome.code;
    if (c != Code::kOk || r.entries[0].length != from_base) {
      const Code shown = c == Code::kOk ? Code::kInternal : c;
      fs.Fail("read", key_, {shown, c == Code::kNotFound ? "the file changed or went since it was opened"
                                                       : (r.outcome.ok() ? "read" : r.outcome.message)});
      return c == Code::kNotFound ? EIO : (c == Code::kOk ? EIO : ErrnoOf(c));
    }
  }
  if (from_base < n) std::memset(buf + from_base, 0, n - from_base);
  return 0;
}

ssize_t File::PReadLocked(Fs& fs, void* out, size_t n, uint64_t offset) {
  if (AccessMode(flags_) == O_WRONLY) return -EBADF;
  if (dirty_) {
    if (int e = SettleLocked(fs)) return -e;
  }
  if (!base_exists_ || offset >= base_size_ || n == 0) return 0;
  n = static_cast<size_t>(std::min<uint64_t>(n, base_size_ - offset));
  auto* buf = static_cast<std::byte*>(out);
  const size_t ra = fs.options().read_ahead;
  if (n >= ra) {
    if (fs.SharedMemoryTo(key_)) {
      // Through a shared window: the server writes it over the shm rail,
      // and one copy lands it in the caller's buffer.
      Window w = fs.AcquireWindow();
      if (w && w.shared()) {
        int e = 0;
        for (size_t done = 0; done < n && e == 0;) {
          const size_t k = std::min(n - done, w.capacity());
          e = ReadBase(fs, w.data(), k, offset + done);
          if (e == 0) std::memcpy(buf + done, w.data(), k);
          done += k;
        }
        fs.ReleaseWindow(std::move(w));
        if (e) return -e;
        return static_cast<ssize_t>(n);
      }
      fs.ReleaseWindow(std::move(w));
    }
    if (int e = ReadBase(fs, buf, n, offset)) return -e;
    return static_cast<ssize_t>(n);
  }
  size_t done = 0;
  while (done < n) {
    const uint64_t at = offset + done;
    if (!(ra_ && at >= ra_offset_ && at < ra_offset_ + ra_len_)) {
      if (!ra_) ra_.reset(new (std::nothrow) std::byte[ra]);
      if (!ra_) return -ENOMEM;
      ra_len_ = 0;
      const size_t len = static_cast<size_t>(std::min<uint64_t>(ra, base_size_ - at));
      if (int e = ReadBase(fs, ra_.get(), len, at)) return -e;
      ra_offset_ = at;
      ra_len_ = len;
    }
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n - done, ra_offset_ + ra_len_ - at));
    std::memcpy(buf + done, ra_.get() + (at - ra_offset_), k);
    done += k;
  }
  return static_cast<ssize_t>(n);
}

ssize_t File::Read(Fs& fs, void* buf, size_t n) {
  std::lock_guard lock(mu_);
  const ssize_t r = PReadLocked(fs, buf, n, offset_);
  if (r > 0) offset_ += static_cast<uint64_t>(r);
  return r;
}

ssize_t File::PRead(Fs& fs, void* buf, size_t n, uint64_t offset) {
  std::lock_guard lock(mu_);
  return PReadLocked(fs, buf, n, offset);
}

int File::StreamOut(Fs& fs, const std::byte* data, size_t n) {
  if (!stream_) {
    Expected<PutStream> s = fs.engine().OpenPutStream(key_, fs.options().window);
    if (!s) {
      fs.Fail("write", key_, s.error());
      return ErrnoOf(s.error().code);
    }
    stream_.emplace(std::move(*s));
  }
  Outcome o = stream_->Write(data, n);
  if (!o.ok()) {
    fs.Fail("write", key_, o);
    return ErrnoOf(o.code);
  }
  sent_ += n;
  return 0;
}

int File::EnsureWindow(Fs& fs) {
  if (tail_) return 0;
  tail_ = fs.AcquireWindow();
  return tail_ ? 0 : ENOMEM;
}

int File::Drain(Fs& fs) {
  if (tail_.empty()) return 0;
  if (int e = StreamOut(fs, tail_.data(), tail_.size())) return e;
  tail_.clear();
  return 0;
}

// Extends the buffered bytes to `end` with what the file holds there (the
// base's bytes, or zeros), streaming whenever the window fills.
int File::FillTo(Fs& fs, uint64_t end) {
  const size_t window = fs.options().window;
  if (tail_end() < end) {
    if (int e = EnsureWindow(fs)) return e;
  }
  while (tail_end() < end) {
    if (tail_.size() >= window) {
      if (int e = Drain(fs)) return e;
    }
    const size_t k = static_cast<size_t>(std::min<uint64_t>(end - tail_end(), window - tail_.size()));
    const uint64_t at = tail_end();
    const size_t old = tail_.size();
    tail_.resize(old + k);
    if (int e = ReadBase(fs, tail_.data() + old, k, at)) {
      tail_.resize(old);
      return e;
    }
  }
  return 0;
}

ssize_t File::PWriteLocked(Fs& fs, const std::byte* buf, size_t n, uint64_t offset) {
  if (AccessMode(flags_) == O_RDONLY) return -EBADF;
  if (error_) return -error_;
  if (n == 0) return 0;
  if (offset + n > fs.MaxValueSize()) return -EFBIG;
  if (offset < sent_) {
    // Behind what already streamed: end this put, then stream it all again.
    if (int e = SettleLocked(fs)) return -e;
  }
  const size_t window = fs.options().window;
  auto fail = [&](int e) {
    error_ = e;
    return -static_cast<ssize_t>(e);
  };
  if (int e = FillTo(fs, offset)) return fail(e);
  if (int e = EnsureWindow(fs)) return fail(e);
  dirty_ = true;
  ra_len_ = 0;
  size_t done = 0;
  // Over bytes already buffered.
  if (offset < tail_end()) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, tail_end() - offset));
    std::memcpy(tail_.data() + (offset - sent_), buf, k);
    done = k;
  }
  while (done < n) {
    if (tail_.size() >= window) {
      if (int e = Drain(fs)) return fail(e);
    }
    const size_t rest = n - done;
    if (tail_.empty() && rest >= window) {
      // A large write past everything buffered goes out as it is.
      if (int e = StreamOut(fs, buf + done, rest)) return fail(e);
      done = n;
      break;
    }
    const size_t k = std::min(rest, window - tail_.size());
    tail_.append(buf + done, k);
    done += k;
  }
  size_ = std::max<uint64_t>(size_, offset + n);
  return static_cast<ssize_t>(n);
}

ssize_t File::Write(Fs& fs, const void* buf, size_t n) {
  std::lock_guard lock(mu_);
  const uint64_t at = (flags_ & O_APPEND) ? size_ : offset_;
  const ssize_t r = PWriteLocked(fs, static_cast<const std::byte*>(buf), n, at);
  if (r > 0) offset_ = at + static_cast<uint64_t>(r);
  return r;
}

ssize_t File::PWrite(Fs& fs, const void* buf, size_t n, uint64_t offset) {
  std::lock_guard lock(mu_);
  // Linux: pwrite on an O_APPEND descriptor appends.
  const uint64_t at = (flags_ & O_APPEND) ? size_ : offset;
  return PWriteLocked(fs, static_cast<const std::byte*>(buf), n, at);
}

int64_t File::Seek(int64_t offset, int whence) {
  std::lock_guard lock(mu_);
  int64_t base = 0;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = static_cast<int64_t>(offset_); break;
    case SEEK_END: base = static_cast<int64_t>(size_); break;
    case SEEK_DATA:
      if (offset < 0) return -EINVAL;
      if (static_cast<uint64_t>(offset) >= size_) return -ENXIO;
      offset_ = static_cast<uint64_t>(offset);
      return offset;
    case SEEK_HOLE:
      if (offset < 0) return -EINVAL;
      if (static_cast<uint64_t>(offset) >= size_) return -ENXIO;
      offset_ = size_;
      return static_cast<int64_t>(size_);
    default: return -EINVAL;
  }
  const int64_t to = base + offset;
  if (to < 0) return -EINVAL;
  offset_ = static_cast<uint64_t>(to);
  return to;
}

int File::Truncate(Fs& fs, uint64_t size) {
  std::lock_guard lock(mu_);
  if (AccessMode(flags_) == O_RDONLY) return EINVAL;  // ftruncate(2): not open for writing
  if (error_) return error_;
  if (size > fs.MaxValueSize()) return EFBIG;
  if (size == size_ && !dirty_) return 0;
  if (size < sent_) {
    if (int e = SettleLocked(fs)) return e;
  }
  if (size < tail_end()) tail_.resize(size - sent_);
  base_valid_ = std::min(base_valid_, size);
  size_ = size;
  dirty_ = true;
  ra_len_ = 0;
  return 0;
}

int File::SettleLocked(Fs& fs) {
  if (!dirty_) return 0;
  if (error_) return error_;
  auto fail = [&](int e) {
    error_ = e;
    if (stream_) stream_->Abort();
    stream_.reset();
    return e;
  };
  bool put_data = size_ > 0;
  if (size_ > 0) {
    if (!stream_ && size_ <= fs.options().window) {
      if (int e = FillTo(fs, size_)) return fail(e);
    }
    if (stream_ || tail_end() < size_) {
      if (int e = FillTo(fs, size_)) return fail(e);
      if (int e = Drain(fs)) return fail(e);
      Outcome o = stream_->Finish();
      stream_.reset();
      if (!o.ok()) {
        fs.Fail("close", key_, o);
        return fail(ErrnoOf(o.code));
      }
    } else {
      const PutEntry put{key_, tail_.data(), tail_.size()};
      PutResults r = fs.engine().BatchPut({&put, 1});
      if (!r.ok()) {
        const Outcome o = r.outcome.ok() ? Outcome{r.entries[0], "put"} : r.outcome;
        fs.Fail("close", key_, o);
        return fail(ErrnoOf(o.code));
      }
    }
  } else {
    const std::string marker = EmptyMarker(key_);
    const PutEntry put{marker, &kMarkerByte, 1};
    PutResults r = fs.engine().BatchPut({&put, 1});
    if (!r.ok()) {
      const Outcome o = r.outcome.ok() ? Outcome{r.entries[0], "put"} : r.outcome;
      fs.Fail("close", key_, o);
      return fail(ErrnoOf(o.code));
    }
  }
  // The other form of the file (bytes replacing an empty file, or the reverse).
  if (put_data ? (!base_exists_ || base_empty_marker_) : (base_exists_ && !base_empty_marker_)) {
    const std::string other = put_data ? EmptyMarker(key_) : key_;
    const std::string_view keys[] = {other};
    (void)fs.engine().Delete(keys);
  }
  base_exists_ = true;
  base_empty_marker_ = !put_data;
  base_size_ = size_;
  base_valid_ = size_;
  base_version_ = 0;
  dirty_ = false;
  sent_ = 0;
  tail_.clear();
  fs.ReleaseWindow(std::move(tail_));
  tail_ = Window();
  ra_len_ = 0;
  return 0;
}

int File::Sync(Fs& fs) {
  std::lock_guard lock(mu_);
  return SettleLocked(fs);
}

int File::Close(Fs& fs) {
  std::lock_guard lock(mu_);
  if (parents_) return 0;
  if (error_) {
    if (stream_) stream_->Abort();
    stream_.reset();
    return error_;
  }
  return SettleLocked(fs);
}

int File::Fstat(Attr& out) {
  std::lock_guard lock(mu_);
  out = Attr{};
  out.size = size_;
  out.version = base_version_;
  out.empty_marker = size_ == 0;
  return 0;
}


}  // namespace memkv::preload
