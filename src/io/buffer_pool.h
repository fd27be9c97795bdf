#pragma once
// io::BufferPool: fixed-size, 4 KiB-aligned buffers (the staging chunks of
// memory.block_size, 2 MiB by default) carved from one mapping, huge pages
// when the system has them reserved (otherwise ordinary pages, said once in
// an info line). The count is fixed at creation: the pool never grows.
//
// Owner: the server (or a test); the pool must outlive every Buffer.
// Thread-safe: guarded by an internal mutex, so buffers are taken and
// returned on any loop or thread.
//
// When every buffer is in use, TryAcquire fails at once with
// errc::pool_exhausted, and Acquire waits (suspended, its loop free) until a
// buffer is returned; returned buffers go to waiting callers first, oldest
// first. More than max_waiting waiting callers get errc::overloaded.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/result.h"
#include "io/asio_fwd.h"

namespace memkv::io {

class BufferPool;

// One buffer of a pool; returns itself to the pool when destroyed or
// released. Move-only. Not synchronized: one owner at a time.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer() { Release(); }

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_, size_}; }
  explicit operator bool() const { return pool_ != nullptr; }

  // Gives the buffer back now; this becomes empty.
  void Release();

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, uint32_t index, std::byte* data, size_t size)
      : pool_(pool), index_(index), data_(data), size_(size) {}

  BufferPool* pool_ = nullptr;
  uint32_t index_ = 0;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

struct BufferPoolOptions {
  size_t chunk_size = 2 * 1024 * 1024;  // memory.block_size; a multiple of 4 KiB
  uint32_t count = 128;                 // buffers in the pool
  bool huge_pages = true;               // try MAP_HUGETLB first
  uint32_t max_waiting = 1024;          // callers Acquire lets wait
};

class BufferPool {
 public:
  // errc::bad_option for a zero count or a chunk size that is zero or not a
  // multiple of 4 KiB; the kernel's errno if even ordinary pages fail.
  static Result<std::unique_ptr<BufferPool>> Create(const BufferPoolOptions& options = {});
  // Aborts if a Buffer is still out (it would point into unmapped memory).
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  Result<Buffer> TryAcquire();
  Awaitable<Result<Buffer>> Acquire();

  size_t chunk_size() const;
  size_t capacity() const;
  size_t in_use() const;   // buffers handed out (and not yet returned)
  size_t waiting() const;  // callers waiting in Acquire
  bool huge_pages() const;
  // The whole mapping (for memory registration with RDMA).
  std::span<std::byte> region() const;

 private:
  friend class Buffer;
  class Impl;
  explicit BufferPool(std::unique_ptr<Impl> impl);
  void Return(uint32_t index);

  std::unique_ptr<Impl> impl_;
};

}  // namespace memkv::io
