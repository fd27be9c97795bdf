#pragma once
// Helpers shared by the io tests: running coroutines to completion on a
// test's io_context, and scratch files that clean up after themselves.

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace memkv::io::testing {

namespace asio = boost::asio;

// Starts `aw` on `ctx`; its result lands in `out`. An exception escapes
// from ctx.run() and fails the test.
template <class T>
void Spawn(asio::io_context& ctx, asio::awaitable<T> aw, std::optional<T>& out) {
  asio::co_spawn(ctx, std::move(aw), [&out](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(v));
  });
}
inline void Spawn(asio::io_context& ctx, asio::awaitable<void> aw, bool& done) {
  asio::co_spawn(ctx, std::move(aw), [&done](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    done = true;
  });
}

// Runs `aw` to completion (with whatever else is queued on ctx).
template <class T>
T RunSync(asio::io_context& ctx, asio::awaitable<T> aw) {
  std::optional<T> out;
  Spawn(ctx, std::move(aw), out);
  ctx.restart();
  ctx.run();
  return std::move(out.value());
}
inline void RunSync(asio::io_context& ctx, asio::awaitable<void> aw) {
  bool done = false;
  Spawn(ctx, std::move(aw), done);
  ctx.restart();
  ctx.run();
  if (!done) throw std::runtime_error("coroutine did not finish");
}

// A fresh directory under `parent`, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& parent = "/tmp") {
    std::string tmpl = parent + "/memkv_io_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An fd closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A page-aligned heap buffer (O_DIRECT and the block devices need one).
class AlignedBuf {
 public:
  explicit AlignedBuf(size_t size, size_t align = 4096) : size_(size) {
    data_ = static_cast<std::byte*>(std::aligned_alloc(align, (size + align - 1) / align * align));
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~AlignedBuf() { std::free(data_); }
  AlignedBuf(AlignedBuf&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuf& operator=(AlignedBuf&&) = delete;
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_, size_}; }
  void Fill(uint8_t seed) {
    for (size_t i = 0; i < size_; ++i)
      data_[i] = std::byte(static_cast<uint8_t>(seed + i * 131 + (i >> 12)));
  }
  bool AllZero() const {
    for (size_t i = 0; i < size_; ++i)
      if (data_[i] != std::byte{0}) return false;
    return true;
  }

 private:
  std::byte* data_;
  size_t size_;
};

}  // namespace memkv::io::testing
