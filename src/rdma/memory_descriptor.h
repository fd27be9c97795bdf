#pragma once
// MemoryDescriptor: a range to register and what memory it is, classified
// once (common::Cuda::Classify) by whoever registers it first, the
// registration cache, and handed to the provider so that it registers
// device memory the device's way (verbs: dma-buf, else peer memory; ofi:
// FI_HMEM_CUDA) without asking the driver again. A plain value.

#include <cstddef>
#include <cstdint>

#include "common/cuda.h"

namespace memkv::rdma {

struct MemoryDescriptor {
  std::byte* base = nullptr;
  size_t size = 0;
  // Host, or the device ordinal, the allocation's buffer id and the
  // allocation's range (cuMemGetAddressRange) for device memory.
  common::PointerInfo info;

  static MemoryDescriptor Host(void* p, size_t n) {
    return MemoryDescriptor{static_cast<std::byte*>(p), n, {}};
  }

  bool is_device() const { return info.is_device(); }
  common::MemoryKind kind() const { return info.kind; }
  int device() const { return info.device; }
  uint64_t buffer_id() const { return info.buffer_id; }
};

// "host memory" or "CUDA device memory", for messages.
inline const char* MemoryKindName(common::MemoryKind kind) {
  return kind == common::MemoryKind::kDevice ? "CUDA device memory" : "host memory";
}

}  // namespace memkv::rdma
