#include "client/memory_registry.h"

namespace memkv::client {

namespace {

// Prepare, as the cache's registrar.
class FunctionRegistrar final : public rdma::Registrar {
 public:
  explicit FunctionRegistrar(MemoryRegistry::Prepare prepare) : prepare_(std::move(prepare)) {}
  Result<std::shared_ptr<const void>> Register(const rdma::MemoryDescriptor& memory,
                                               std::string*) override {
    return prepare_(memory.base, memory.size);
  }

 private:
  const MemoryRegistry::Prepare prepare_;
};

std::shared_ptr<rdma::Registrar> RegistrarOf(MemoryRegistry::Prepare prepare) {
  if (!prepare) return nullptr;
  return std::make_shared<FunctionRegistrar>(std::move(prepare));
}

class HostOnlyRegistrar final : public rdma::Registrar {
 public:
  explicit HostOnlyRegistrar(std::shared_ptr<rdma::Registrar> inner) : inner_(std::move(inner)) {}
  Result<std::shared_ptr<const void>> Register(const rdma::MemoryDescriptor& memory,
                                               std::string* why) override {
    if (memory.is_device() || !inner_) return std::shared_ptr<const void>();
    return inner_->Register(memory, why);
  }

 private:
  const std::shared_ptr<rdma::Registrar> inner_;
};

}  // namespace

std::shared_ptr<rdma::Registrar> HostMemoryOnly(std::shared_ptr<rdma::Registrar> inner) {
  return std::make_shared<HostOnlyRegistrar>(std::move(inner));
}

MemoryRegistry::MemoryRegistry(Prepare prepare) : cache_(RegistrarOf(std::move(prepare))) {}

}  // namespace memkv::client
