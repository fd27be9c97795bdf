#include "client/process_fabric.h"

#include <pthread.h>

#include <atomic>
#include <future>
#include <map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace memkv::client {
namespace {

// The process's fabrics by "<provider>|<node>|<device>".
Mutex g_mu;
using FabricMap = std::map<std::string, std::weak_ptr<ProcessFabric>>;
FabricMap* g_fabrics GUARDED_BY(g_mu) = new FabricMap;  // never freed: used until exit
std::atomic<size_t> g_open{0};

// After fork the child opens its own endpoint (the parent's is the
// parent's): the map is forgotten (leaked), as the links are.
void ForgetFabricsInChild() NO_THREAD_SAFETY_ANALYSIS {
  new (&g_mu) Mutex();
  g_fabrics = new FabricMap;
  g_open.store(0);
}
[[maybe_unused]] const int g_fork_handler = pthread_atfork(nullptr, nullptr, ForgetFabricsInChild);

}  // namespace

Result<std::shared_ptr<ProcessFabric>> ProcessFabric::Acquire(
    const std::string& provider, const std::string& node, const std::string& device,
    const std::shared_ptr<IoThreads>& threads, std::string* why) {
  const std::string id = provider + "|" + node + "|" + device;
  MutexLock lock(g_mu);  // held while opening: concurrent first callers share one endpoint
  std::weak_ptr<ProcessFabric>& slot = (*g_fabrics)[id];
  if (auto f = slot.lock()) return f;
  rdma::FabricOptions o;
  o.provider = provider == "verbs" ? rdma::ProviderKind::kVerbs : rdma::ProviderKind::kOfi;
  if (o.provider == rdma::ProviderKind::kOfi) o.ofi_provider = provider;
  o.node = node;
  o.domain = device;
  auto fab = rdma::Fabric::Open(o, boost::asio::any_io_executor(threads->context(0).get_executor()),
                                why);
  if (!fab) {
    g_fabrics->erase(id);
    return fab.error();
  }
  std::shared_ptr<ProcessFabric> f(new ProcessFabric(std::move(*fab), threads));
  slot = f;
  return f;
}

size_t ProcessFabric::Open() { return g_open.load(); }

ProcessFabric::ProcessFabric(std::unique_ptr<rdma::Fabric> fabric,
                             std::shared_ptr<IoThreads> threads)
    : fabric_(std::move(fabric)),
      threads_(std::move(threads)),
      endpoint_(fabric_->provider_name() + "|" + fabric_->address()),
      registrar_(std::make_shared<rdma::FabricRegistrar>(*fabric_, rdma::access::kAll)),
      bounce_(rdma::BufferPool::Create(registrar_, {})) {
  g_open.fetch_add(1);
}

// The fabric goes on its loop (I/O thread 0): from off the pool this waits
// for it; on a pool thread it is posted there, holding the pool.
ProcessFabric::~ProcessFabric() {
  g_open.fetch_sub(1);
  std::shared_ptr<rdma::Fabric> f(std::move(fabric_));
  auto& loop = threads_->context(0);
  if (threads_->InPool()) {
    boost::asio::post(loop, [f = std::move(f), threads = threads_]() mutable { f.reset(); });
    return;
  }
  std::promise<void> gone;
  boost::asio::post(loop, [&gone, f = std::move(f)]() mutable {
    f.reset();
    gone.set_value();
  });
  gone.get_future().wait();
}

}  // namespace memkv::client
