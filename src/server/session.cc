#include "server/session.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

namespace memkv::server {
namespace {
std::atomic<uint64_t> g_mapped{0};

error_code Errno(int e) { return {e, boost::system::system_category()}; }
}  // namespace

std::optional<uint64_t> SessionRegistry::Add(SessionInfo info) {
  MutexLock lock(mu_);
  if (sessions_.size() >= max_) return std::nullopt;
  info.id = next_id_++;
  const uint64_t id = info.id;
  sessions_.emplace(id, std::move(info));
  return id;
}

void SessionRegistry::Remove(uint64_t id) {
  MutexLock lock(mu_);
  sessions_.erase(id);
}

void SessionRegistry::Update(uint64_t id, uint32_t regions, uint64_t requests) {
  MutexLock lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    it->second.regions = regions;
    it->second.requests = requests;
  }
}

size_t SessionRegistry::size() const {
  MutexLock lock(mu_);
  return sessions_.size();
}

std::vector<SessionInfo> SessionRegistry::List() const {
  MutexLock lock(mu_);
  std::vector<SessionInfo> out;
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

Result<std::shared_ptr<Region>> Region::Map(int fd, uint64_t size) {
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Errno(errno);  // not a memfd (EINVAL)
  if (!(seals & F_SEAL_SHRINK)) return Errno(EPERM);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno(errno);
  if (size == 0 || static_cast<uint64_t>(st.st_size) < size) return Errno(ERANGE);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Errno(errno);
  g_mapped.fetch_add(1);
  return std::shared_ptr<Region>(new Region(static_cast<std::byte*>(p), size));
}

Region::~Region() {
  ::munmap(base_, size_);
  g_mapped.fetch_sub(1);
}

std::optional<std::span<std::byte>> Region::Slice(uint64_t offset, uint64_t len) const {
  if (offset > size_ || len > size_ - offset) return std::nullopt;
  return std::span<std::byte>(base_ + offset, len);
}

uint64_t Region::mapped_now() { return g_mapped.load(); }

}  // namespace memkv::server
