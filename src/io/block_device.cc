#include "io/block_device.h"

#include <boost/asio/awaitable.hpp>

#include "io/error.h"

namespace memkv::io {

Awaitable<Status> ReadFull(BlockDevice& device, uint64_t offset, std::span<std::byte> out) {
  auto n = co_await device.Read(offset, out);
  MEMKV_CO_TRY(n);
  if (*n != out.size()) co_return errc::short_read;
  co_return Status{};
}

Status CheckAccess(const BlockDevice& device, uint64_t offset, uint64_t len, const void* buffer) {
  const uint64_t bs = device.block_size();
  if (offset % bs != 0 || len % bs != 0) return errc::misaligned;
  if (buffer != nullptr && reinterpret_cast<uintptr_t>(buffer) % bs != 0) return errc::misaligned;
  if (offset > device.size() || len > device.size() - offset) return errc::out_of_range;
  return {};
}

}  // namespace memkv::io
