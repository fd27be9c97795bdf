#pragma once
// Sessions and their shared-memory regions.
//
// SessionRegistry: every attached session of the server, up to
// limits.max_sessions. Thread-safe (mu_); owned by the Server.
//
// Region: a client's memfd, mapped by the server. Owned by its session's
// connection and shared with every request that uses it, so it is unmapped
// only after the last of those requests has finished.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"

namespace memkv::server {

struct SessionInfo {
  uint64_t id = 0;
  std::string peer;     // address of the client
  std::string host_id;  // what the client says its host is
  std::string rail;     // "tcp" or "unix"
  uint64_t attached_unix = 0;
  uint32_t regions = 0;
  uint64_t requests = 0;
};

class SessionRegistry {
 public:
  explicit SessionRegistry(uint32_t max_sessions) : max_(max_sessions) {}

  // A new session id, or nullopt when max_sessions are attached.
  std::optional<uint64_t> Add(SessionInfo info);
  void Remove(uint64_t id);
  void Update(uint64_t id, uint32_t regions, uint64_t requests);
  size_t size() const;
  std::vector<SessionInfo> List() const;

 private:
  const uint32_t max_;  // constant after construction
  mutable Mutex mu_;
  std::map<uint64_t, SessionInfo> sessions_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
};

class Region {
 public:
  // Maps a client's memfd of at least `size` bytes. Refuses a descriptor that
  // is not sealed against shrinking (the client could truncate it under the
  // server and crash it with SIGBUS) or is smaller than `size`. Takes
  // ownership of `fd` (closed here in every case).
  static Result<std::shared_ptr<Region>> Map(int fd, uint64_t size);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  uint64_t size() const { return size_; }
  // [offset, offset + len) of the region, or nullopt if it runs outside.
  std::optional<std::span<std::byte>> Slice(uint64_t offset, uint64_t len) const;

  static uint64_t mapped_now();  // regions mapped in this process (for leak checks)

 private:
  Region(std::byte* base, uint64_t size) : base_(base), size_(size) {}
  std::byte* const base_;
  const uint64_t size_;
};

}  // namespace memkv::server
