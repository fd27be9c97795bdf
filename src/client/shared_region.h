#pragma once
// SharedRegion: a memfd mapped into this process, sealed against shrinking
// (F_SEAL_SHRINK), for the shm rail. Registered on a Unix-socket connection
// (Connection::RegisterRegion), its descriptor goes to the server once; the
// server maps it and copies values straight between its store and this
// memory. Owned through a shared_ptr: a connection keeps a registered region
// alive, and so does every request that names it, until its reply (or the
// connection's end), even after the caller's deadline has fired.
//
// Thread-safe: constant after construction; callers synchronize the bytes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/result.h"

namespace memkv::client {

class SharedRegion {
 public:
  // A zero-filled region of `size` bytes (> 0). `name` shows in
  // /proc/<pid>/fd. Errors are the system's (errno).
  static Result<std::shared_ptr<SharedRegion>> Create(uint64_t size,
                                                      const std::string& name = "memkv-region");
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  // Unique in this process: the same id names the region on every
  // connection it is registered on.
  uint32_t id() const { return id_; }
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  std::byte* data() const { return data_; }
  std::span<std::byte> span() const { return {data_, static_cast<size_t>(size_)}; }

 private:
  SharedRegion(uint32_t id, int fd, uint64_t size, std::byte* data)
      : id_(id), fd_(fd), size_(size), data_(data) {}

  const uint32_t id_;
  const int fd_;
  const uint64_t size_;
  std::byte* const data_;
};

}  // namespace memkv::client
