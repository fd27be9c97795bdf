// The `ofi` provider: one libfabric reliable-datagram endpoint (FI_EP_RDM)
// per Fabric, with one completion queue (FI_WAIT_FD) awaited on the loop and
// one address vector (FI_AV_TABLE).
//
// Progress: providers such as tcp progress manually: bytes move, also those
// of the peers' READs and WRITEs of our memory, only while someone reads the
// CQ. So the loop waits on the CQ's wait fd for as long as the fabric is
// open; each wake-up drains the CQ (which is the progress call), retries the
// posts the provider refused for now, and re-arms after fi_trywait says that
// sleeping is safe. A post from another thread asks the loop for one drain
// too, so that a new operation starts moving at once.
//
// Locking: mu_ guards the peers, their queues and the counters; the provider
// is opened FI_THREAD_SAFE, so fi_write/fi_read (under mu_, from any thread)
// and fi_cq_read (the loop, outside mu_) may run at once.

#include "rdma/ofi.h"

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/intrusive/list.hpp>

#include "common/cuda.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "rdma/error.h"
#include "rdma/libfabric.h"
#include "rdma/posted_handler.h"
#include "rdma/transfer_queue.h"

namespace memkv::rdma {

const LibfabricApi& Libfabric() {
  static const LibfabricApi lib = [] {
    LibfabricApi l;
    void* h = ::dlopen("libfabric.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = ::dlerror();
      l.error = std::string("libfabric.so.1 cannot be loaded (") + (e ? e : "not found") +
                "); install libfabric (Debian: libfabric1) to use the rdma rail";
      return l;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      if (!fn && l.error.empty()) l.error = std::string("libfabric.so.1 has no ") + name;
    };
    sym(l.getinfo, "fi_getinfo");
    sym(l.freeinfo, "fi_freeinfo");
    sym(l.dupinfo, "fi_dupinfo");
    sym(l.fabric, "fi_fabric");
    sym(l.strerror, "fi_strerror");
    return l;
  }();
  return lib;
}

const char* FiStrerror(int err) {
  const LibfabricApi& l = Libfabric();
  return l.strerror ? l.strerror(err) : "libfabric error";
}

}  // namespace memkv::rdma

namespace memkv::rdma::detail {
namespace {
const LibfabricApi& Lib() { return Libfabric(); }
}  // namespace
}  // namespace memkv::rdma::detail

namespace memkv::rdma {
// Here, not in error.cc: only the provider links libfabric (the client's
// registration cache, and so libmemkv.so, need not).
const boost::system::error_category& ofi_category() {
  static const EnumCategory cat("libfabric", [](int ev) { return FiStrerror(ev); });
  return cat;
}
}  // namespace memkv::rdma

namespace memkv::rdma::detail {

namespace asio = boost::asio;

static_assert(std::is_same_v<Awaitable<int>, asio::awaitable<int>>);

namespace {

// The libfabric API this code is written against (mr_mode bits, fi_context2).
constexpr uint32_t kApiVersion = FI_VERSION(1, 11);
// Completions read per fi_cq_read call.
constexpr size_t kCqBatch = 64;
// Backoff of the retries of posts the provider refused for now (-FI_EAGAIN:
// its transmit queue is full, or it is still connecting to the peer).
constexpr std::chrono::microseconds kRetryFirst{20};
constexpr std::chrono::microseconds kRetryMax{2000};

struct InfoDeleter {
  void operator()(fi_info* i) const { Lib().freeinfo(i); }
};
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

void CloseFid(fid_t f, const char* what) {
  if (f == nullptr) return;
  if (int rc = fi_close(f); rc != 0)
    spdlog::warn("rdma ofi: closing the {} failed: {}", what, FiStrerror(-rc));
}

// The fabric and domain, shared by the Fabric and every region registered in
// it: a region may outlive its Fabric, and libfabric refuses to close a
// domain that still has registrations.
struct Domain {
  fid_fabric* fabric = nullptr;
  fid_domain* domain = nullptr;
  ~Domain() {
    CloseFid(domain ? &domain->fid : nullptr, "domain");
    CloseFid(fabric ? &fabric->fid : nullptr, "fabric");
  }
};

class OfiRegion final : public MemoryRegion {
 public:
  OfiRegion(std::shared_ptr<Domain> domain, fid_mr* mr, const MemoryDescriptor& memory,
            uint32_t access, bool virtual_addressing)
      : MemoryRegion(memory, access, fi_mr_key(mr), virtual_addressing),
        domain_(std::move(domain)),
        mr_(mr),
        desc_(fi_mr_desc(mr)) {}
  ~OfiRegion() override { CloseFid(&mr_->fid, "memory registration"); }

  const Domain* domain() const { return domain_.get(); }
  void* desc() const { return desc_; }

 private:
  const std::shared_ptr<Domain> domain_;
  fid_mr* const mr_;
  void* const desc_;
};

uint64_t OfiAccess(uint32_t a) {
  uint64_t f = 0;
  if (a & access::kWriteFrom) f |= FI_WRITE | FI_SEND;
  if (a & access::kReadInto) f |= FI_READ | FI_RECV;
  if (a & access::kRemoteRead) f |= FI_REMOTE_READ;
  if (a & access::kRemoteWrite) f |= FI_REMOTE_WRITE;
  return f;
}

// What an error completion means to the caller.
error_code FromCompletion(int err) {
  switch (err) {
    case FI_EKEYREJECTED:
    case FI_EACCES:
    case FI_EPERM:
      return errc::remote_access;
    default:  // tcp reports a refused key as FI_ECANCELED: it drops the connection

      return OfiError(err);
  }
}

// The provider named, and nothing else: "tcp" also matches "tcp;ofi_rxm"
// (the RDM layer fi_getinfo puts over a connection-oriented provider).
bool IsPinnedProvider(const char* got, const std::string& wanted) {
  if (got == nullptr) return false;
  const std::string_view g(got);
  return g == wanted || (g.size() > wanted.size() && g.substr(0, wanted.size()) == wanted &&
                         g[wanted.size()] == ';');
}

std::string ModeNames(uint64_t mr_mode) {
  std::string s;
  auto add = [&](uint64_t bit, const char* name) {
    if (mr_mode & bit) s += (s.empty() ? "" : "|") + std::string(name);
  };
  add(FI_MR_LOCAL, "LOCAL");
  add(FI_MR_VIRT_ADDR, "VIRT_ADDR");
  add(FI_MR_ALLOCATED, "ALLOCATED");
  add(FI_MR_PROV_KEY, "PROV_KEY");
  add(FI_MR_ENDPOINT, "ENDPOINT");
  add(FI_MR_RAW, "RAW");
  add(FI_MR_HMEM, "HMEM");
  return s.empty() ? "none" : s;
}

}  // namespace

class OfiFabric;

// The state behind an OfiFabric. Shared only with weak references in the
// handlers posted to the loop, so that they find out that it is gone. The
// peers, the per-peer bound, the waiting queues, removal and stopping are
// the TransferQueue's (shared with verbs); this adds libfabric's calls and
// the operations the provider refused for now (-FI_EAGAIN), which count as
// posted and are posted again, in order, on the next progress.
class OfiImpl final : public TransferQueue {
 public:
  struct RetryTag;
  using RetryHook = boost::intrusive::list_base_hook<boost::intrusive::tag<RetryTag>>;
  // One WRITE or READ; in retry_ while the provider refuses it.
  struct Op : Transfer, RetryHook {
    // The provider's scratch space (FI_CONTEXT/FI_CONTEXT2 modes); its
    // address is the operation's context, the way back from a completion.
    struct Slot {
      fi_context2 ctx;
      Op* op;
    } slot{};
    void* desc = nullptr;
  };
  using RetryList = boost::intrusive::list<Op, boost::intrusive::base_hook<RetryHook>>;

  struct Peer : TransferPeer {
    fi_addr_t addr = FI_ADDR_UNSPEC;
    bool in_av = true;  // still in the address vector
  };

  OfiImpl(const asio::any_io_executor& loop, const FabricOptions& options)
      : TransferQueue(options.max_inflight_per_peer, options.max_waiting_per_peer,
                      options.max_peers),
        loop_(loop),
        max_peers_(options.max_peers),
        wait_fd_(loop),
        retry_timer_(loop) {}

  ~OfiImpl() override {
    {
      MutexLock lock(mu_);
      ReleaseAllPeersLocked();
    }
    CloseFid(ep_ ? &ep_->fid : nullptr, "endpoint");
    CloseFid(av_ ? &av_->fid : nullptr, "address vector");
    CloseFid(cq_ ? &cq_->fid : nullptr, "completion queue");
  }

  Status Init(const FabricOptions& options, std::string* why) {
    auto fail = [&](error_code ec, std::string msg) {
      if (why) *why = std::move(msg);
      return ec;
    };
    const std::string& prov = options.ofi_provider;
    if (prov.empty())
      return fail(errc::bad_option,
                  "rdma.ofi_provider: empty: name the libfabric provider (e.g. \"tcp;ofi_rxm\")");
    if (!Lib().ok()) return fail(errc::provider_not_found, "rdma.provider: ofi: " + Lib().error);
    const char* node = options.node.empty() ? nullptr : options.node.c_str();
    // fi_getinfo for the pinned provider, with or without FI_HMEM; 1 when
    // fi_allocinfo fails.
    auto query = [&](bool hmem, InfoPtr* out) -> int {
      InfoPtr hints(Lib().dupinfo(nullptr));
      if (!hints) return 1;
      hints->caps = FI_RMA | FI_MSG | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE |
                    (hmem ? FI_HMEM : 0);
      hints->mode = FI_CONTEXT | FI_CONTEXT2;
      hints->ep_attr->type = FI_EP_RDM;
      // What this code can honour; fi_getinfo clears the modes the provider
      // does not need. FI_MR_ENDPOINT is not offered: regions are not bound.
      // FI_MR_HMEM (device buffers registered before use) holds anyway:
      // every local buffer is registered.
      hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
                                    FI_MR_PROV_KEY | (hmem ? FI_MR_HMEM : 0);
      hints->domain_attr->threading = FI_THREAD_SAFE;
      hints->domain_attr->av_type = FI_AV_TABLE;
      hints->domain_attr->resource_mgmt = FI_RM_ENABLED;
      hints->fabric_attr->prov_name = strdup(prov.c_str());  // fi_freeinfo frees it
      if (!options.domain.empty()) hints->domain_attr->name = strdup(options.domain.c_str());
      fi_info* list = nullptr;
      const int rc =
          Lib().getinfo(kApiVersion, node, nullptr, node ? FI_SOURCE : 0, hints.get(), &list);
      out->reset(list);
      return rc;
    };
    auto pinned = [&](const InfoPtr& infos) -> const fi_info* {
      for (const fi_info* i = infos.get(); i != nullptr; i = i->next)
        if (IsPinnedProvider(i->fabric_attr->prov_name, prov)) return i;
      return nullptr;
    };

    // Device memory (FI_HMEM) is asked for only where this process has a
    // CUDA driver (no device memory can be registered elsewhere), and given
    // up where the provider does not offer it: the fabric then registers
    // host memory only, and says so when asked for device memory.
    InfoPtr infos;
    const fi_info* info = nullptr;
    int rc = 0;
    if (common::Cuda::Process().available()) {
      rc = query(true, &infos);
      if (rc == 0) info = pinned(infos);
      if (info != nullptr) {
        hmem_ = true;
      } else {
        spdlog::info(
            "rdma ofi: libfabric provider '{}' does not offer FI_HMEM ({}): CUDA "
            "device memory cannot be registered on this fabric",
            prov, rc == 0 ? "another provider offered it" : FiStrerror(-rc));
      }
    }
    if (info == nullptr) rc = query(false, &infos);
    if (rc == 1) return fail(errc::bad_option, "rdma: fi_allocinfo failed (out of memory)");
    const std::string where =
        (options.domain.empty() ? "" : " with domain '" + options.domain + "'") +
        (options.node.empty() ? "" : " on node '" + options.node + "'");
    if (rc != 0)
      return fail(errc::provider_not_found,
                  fmt::format("rdma.provider: libfabric provider '{}' not found{} with RMA on a "
                              "reliable datagram endpoint (fi_getinfo: {})",
                              prov, where, FiStrerror(-rc)));
    if (info == nullptr) info = pinned(infos);
    if (info == nullptr)
      return fail(errc::provider_not_found,
                  fmt::format("rdma.provider: libfabric offered '{}' when asked for '{}'{}; "
                              "refusing a provider that was not named",
                              infos->fabric_attr->prov_name, prov, where));
    provider_name_ = fmt::format("ofi:{}", info->fabric_attr->prov_name);
    mr_mode_ = info->domain_attr->mr_mode;
    max_msg_size_ = info->ep_attr->max_msg_size;
    LimitInflightPerPeer(static_cast<uint32_t>(
        std::min<size_t>(UINT32_MAX, std::max<size_t>(1, info->tx_attr->size))));

    domain_ = std::make_shared<Domain>();
    auto step = [&](int r, const char* call) -> Status {
      if (r == 0) return {};
      return fail(OfiError(r), fmt::format("rdma.provider: libfabric provider '{}': {} failed: {}",
                                           info->fabric_attr->prov_name, call, FiStrerror(-r)));
    };
    MEMKV_TRY(step(Lib().fabric(info->fabric_attr, &domain_->fabric, nullptr), "fi_fabric"));
    MEMKV_TRY(step(fi_domain(domain_->fabric, const_cast<fi_info*>(info), &domain_->domain,
                             nullptr),
                   "fi_domain"));
    fi_cq_attr cq_attr{};
    cq_attr.format = FI_CQ_FORMAT_CONTEXT;
    cq_attr.wait_obj = FI_WAIT_FD;
    cq_attr.size = info->tx_attr->size + info->rx_attr->size;
    MEMKV_TRY(step(fi_cq_open(domain_->domain, &cq_attr, &cq_, nullptr), "fi_cq_open"));
    fi_av_attr av_attr{};
    av_attr.type = FI_AV_TABLE;
    av_attr.count = max_peers_;
    MEMKV_TRY(step(fi_av_open(domain_->domain, &av_attr, &av_, nullptr), "fi_av_open"));
    MEMKV_TRY(step(fi_endpoint(domain_->domain, const_cast<fi_info*>(info), &ep_, nullptr),
                   "fi_endpoint"));
    MEMKV_TRY(step(fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)"));
    MEMKV_TRY(step(fi_ep_bind(ep_, &av_->fid, 0), "fi_ep_bind(av)"));
    MEMKV_TRY(step(fi_enable(ep_), "fi_enable"));

    char name[512];
    size_t name_len = sizeof name;
    MEMKV_TRY(step(fi_getname(&ep_->fid, name, &name_len), "fi_getname"));
    if (name_len > kMaxAddressSize)
      return fail(errc::address_too_long,
                  fmt::format("rdma.provider: libfabric provider '{}' has {}-byte endpoint "
                              "addresses; an Attach carries at most {}",
                              info->fabric_attr->prov_name, name_len, kMaxAddressSize));
    address_.assign(name, name_len);

    int fd = -1;
    MEMKV_TRY(step(fi_control(&cq_->fid, FI_GETWAIT, &fd), "fi_control(FI_GETWAIT)"));
    // Our own descriptor for Asio (which closes it); libfabric keeps its own.
    const int own = ::dup(fd);
    if (own < 0)
      return fail(error_code(errno, boost::system::system_category()), "rdma: dup of the CQ wait fd");
    boost::system::error_code ec;
    wait_fd_.assign(own, ec);
    if (ec) {
      ::close(own);
      return fail(ec, "rdma: registering the CQ wait fd with the loop: " + ec.message());
    }
    spdlog::info(
        "rdma: opened {} (domain {}, mr_mode {}, {}-byte addresses, up to {} in flight "
        "per peer, {})",
        provider_name_, info->domain_attr->name, ModeNames(mr_mode_), address_.size(),
        max_inflight_per_peer(), hmem_ ? "CUDA memory through FI_HMEM" : "host memory only");
    return {};
  }

  // Starts waiting on the loop.
  void Begin() { RequestProgress(); }

  // ---- peers ----

  Result<PeerId> InsertPeer(std::string_view address) {
    if (address.size() != address_.size()) return errc::bad_address;
    fi_addr_t addr = FI_ADDR_UNSPEC;
    {
      MutexLock lock(mu_);  // the address vector, as ReleasePeerLocked uses it
      if (stopping()) return errc::stopped;
      const int rc = fi_av_insert(av_, address.data(), 1, &addr, 0, nullptr);
      if (rc != 1) return errc::bad_address;
    }
    auto peer = std::make_unique<Peer>();
    peer->addr = addr;
    auto id = AddPeer(std::move(peer));
    if (!id) {
      MutexLock lock(mu_);
      fi_av_remove(av_, &addr, 1, 0);
    }
    return id;
  }

  // ---- stopping ----

  // The destructor's path (on the loop's thread, or with the loop not
  // running): operations still posted get a bounded moment to complete;
  // then the endpoint goes, after which the provider touches no buffer of
  // ours, and what is left fails with errc::stopped.
  void Shutdown() {
    {
      MutexLock lock(mu_);
      BeginStopLocked();
    }
    for (int i = 0; i < 2000 && InFlight() > 0; ++i) {
      DrainCq();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    Close();
    CloseFid(ep_ ? &ep_->fid : nullptr, "endpoint");
    ep_ = nullptr;
    MutexLock lock(mu_);
    if (const size_t left = InFlightLocked(); left > 0)
      spdlog::warn("rdma {}: closed with {} operations still posted; they fail", provider_name_,
                   left);
    retry_.clear();
    AbandonPostedLocked(errc::stopped);
  }

  // ---- the loop ----

  // Asks the loop for one drain (from any thread; one is queued at a time).
  void RequestProgress() {
    if (progress_posted_.exchange(true)) return;
    asio::post(loop_, [weak = self_] {
      if (auto self = weak.lock()) {
        self->progress_posted_.store(false);
        self->Progress();
      }
    });
  }

  void Progress() {
    DrainCq();
    {
      MutexLock lock(mu_);
      RetryLocked();
      if (!retry_.empty()) ScheduleRetry();
      else retry_backoff_ = kRetryFirst;
    }
    Arm();
  }

  // Waits for the CQ's fd, once fi_trywait says nothing is pending.
  void Arm() {
    if (armed_ || closed_) return;
    fid_t fids[1] = {&cq_->fid};
    const int rc = fi_trywait(domain_->fabric, fids, 1);
    if (rc == -FI_EAGAIN) {  // completions or progress pending: drain again (after other handlers)
      RequestProgress();
      return;
    }
    if (rc != 0 && !trywait_logged_) {
      trywait_logged_ = true;
      spdlog::warn("rdma {}: fi_trywait failed ({}); waiting on the fd anyway", provider_name_,
                   FiStrerror(-rc));
    }
    armed_ = true;
    wait_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                        [weak = self_](boost::system::error_code ec) {
                          if (auto self = weak.lock()) self->OnWake(ec);
                        });
  }

  void OnWake(boost::system::error_code ec) {
    armed_ = false;
    if (ec == asio::error::operation_aborted || closed_) return;
    if (ec) {
      spdlog::error("rdma {}: waiting on the CQ fd failed: {}", provider_name_, ec.message());
      return;
    }
    {
      MutexLock lock(mu_);
      ++stats_.wakeups;
    }
    Progress();
  }

  void ScheduleRetry() REQUIRES(mu_) {
    if (retry_timer_pending_) return;
    retry_timer_pending_ = true;
    const auto delay = retry_backoff_;
    retry_backoff_ = std::min(retry_backoff_ * 2, kRetryMax);
    // The timer belongs to the loop: set it there.
    asio::dispatch(loop_, [weak = self_, delay] {
      auto self = weak.lock();
      if (!self || self->closed_) return;
      self->retry_timer_.expires_after(delay);
      self->retry_timer_.async_wait([weak](boost::system::error_code ec) {
        auto self = weak.lock();
        if (!self) return;
        {
          MutexLock lock(self->mu_);
          self->retry_timer_pending_ = false;
        }
        if (!ec && !self->closed_) self->Progress();
      });
    });
  }

  // Reads every completion the CQ holds (this is also the provider's
  // progress call) and finishes their operations.
  void DrainCq() {
    fi_cq_entry entries[kCqBatch];
    for (;;) {
      const ssize_t n = fi_cq_read(cq_, entries, kCqBatch);
      if (n > 0) {
        MutexLock lock(mu_);
        for (ssize_t i = 0; i < n; ++i) Completed(OpOf(entries[i].op_context), {});
        continue;
      }
      if (n == -FI_EAGAIN) return;
      if (n == -FI_EAVAIL) {
        fi_cq_err_entry err{};
        const ssize_t r = fi_cq_readerr(cq_, &err, 0);
        if (r < 0) continue;  // taken by nobody else: read again
        if (err.op_context == nullptr) continue;
        spdlog::debug("rdma {}: operation failed: {} ({})", provider_name_, FiStrerror(err.err),
                      fi_cq_strerror(cq_, err.prov_errno, err.err_data, nullptr, 0));
        MutexLock lock(mu_);
        Completed(OpOf(err.op_context), FromCompletion(err.err));
        continue;
      }
      if (!cq_error_logged_) {
        cq_error_logged_ = true;
        spdlog::error("rdma {}: fi_cq_read failed: {}", provider_name_, FiStrerror(-n));
      }
      return;
    }
  }

  // Once stopped and idle: stops waiting on the loop.
  void Close() {
    closed_ = true;
    boost::system::error_code ignored;
    wait_fd_.cancel(ignored);
    retry_timer_.cancel();
  }

  static Op* OpOf(void* context) { return static_cast<Op::Slot*>(context)->op; }

  // ---- TransferQueue's hooks (under mu_) ----

  error_code PostLocked(Transfer& t) override REQUIRES(mu_) {
    Op* op = static_cast<Op*>(&t);
    if (!retry_.empty()) {  // keep the order: behind those already refused
      retry_.push_back(*op);
      return {};
    }
    const int rc = PostToProvider(op);
    if (rc == 0) {
      RequestProgress();
      return {};
    }
    if (rc == -FI_EAGAIN) {
      ++stats_.provider_retries;
      retry_.push_back(*op);
      RequestProgress();
      return {};
    }
    return OfiError(rc);
  }

  // Posts the provider has not taken yet will never run. Those it has taken
  // are taken back: removing the peer's address closes the provider's
  // connection to it (ofi_rxm), which completes them with an error on the
  // next drain. Waiting for them instead could wait forever: with the tcp
  // provider a WRITE completes only once the peer's process polls its own
  // fabric, and a stopped or wedged client never does.
  void RemovingLocked(TransferPeer& peer) override REQUIRES(mu_) {
    for (auto r = retry_.begin(); r != retry_.end();) {
      Op& op = *r;
      if (op.peer == &peer) {
        r = retry_.erase(r);
        FailPostedLocked(&op, errc::peer_removed);
      } else {
        ++r;
      }
    }
    if (peer.in_flight > 0) {
      RemoveFromAv(static_cast<Peer&>(peer));
      RequestProgress();
    }
  }

  void StoppingLocked() override REQUIRES(mu_) {
    while (!retry_.empty()) {
      Op& op = retry_.front();
      retry_.pop_front();
      FailPostedLocked(&op, errc::stopped);
    }
  }

  void ReleasePeerLocked(TransferPeer& peer) override REQUIRES(mu_) {
    RemoveFromAv(static_cast<Peer&>(peer));
  }

  void RemoveFromAv(Peer& peer) REQUIRES(mu_) {
    if (av_ == nullptr || !peer.in_av) return;
    peer.in_av = false;
    fi_addr_t addr = peer.addr;
    if (int rc = fi_av_remove(av_, &addr, 1, 0); rc != 0)
      spdlog::warn("rdma {}: fi_av_remove failed: {}", provider_name_, FiStrerror(-rc));
  }

  // Stop waiting on the loop first, then resume the callers.
  void StoppedLocked(std::vector<PostedHandler<>> waiters) override REQUIRES(mu_) {
    auto w = std::make_shared<std::vector<PostedHandler<>>>(std::move(waiters));
    asio::post(loop_, [weak = self_, w] {
      if (auto self = weak.lock()) self->Close();
      for (auto& h : *w) h.Post();
    });
  }

  // A WRITE completes only once its bytes are in the peer's memory
  // (FI_DELIVERY_COMPLETE; the default is only "sent", e.g. into a socket):
  // the caller replies on the control connection next, and the peer reads
  // its buffer on that reply. A READ completes with the bytes here.
  int PostToProvider(Op* op) REQUIRES(mu_) {
    op->slot.op = op;
    iovec iov{op->buf, op->len};
    void* desc = op->desc;
    fi_rma_iov rma{op->remote_address, op->len, op->remote_key};
    fi_msg_rma msg{};
    msg.msg_iov = &iov;
    msg.desc = &desc;
    msg.iov_count = 1;
    msg.addr = static_cast<Peer*>(op->peer)->addr;
    msg.rma_iov = &rma;
    msg.rma_iov_count = 1;
    msg.context = &op->slot.ctx;
    const ssize_t rc = op->write ? fi_writemsg(ep_, &msg, FI_COMPLETION | FI_DELIVERY_COMPLETE)
                                 : fi_readmsg(ep_, &msg, FI_COMPLETION);
    return static_cast<int>(rc);
  }

  // Posts the refused operations again, in order, until the provider refuses.
  void RetryLocked() REQUIRES(mu_) {
    while (!retry_.empty()) {
      Op& op = retry_.front();
      const int rc = PostToProvider(&op);
      if (rc == -FI_EAGAIN) {
        ++stats_.provider_retries;
        return;
      }
      retry_.pop_front();
      if (rc != 0) Completed(&op, OfiError(rc));
    }
  }

  static constexpr size_t kMaxAddressSize = 255;

  // Constant after Init.
  asio::any_io_executor loop_;
  std::weak_ptr<OfiImpl> self_;
  std::shared_ptr<Domain> domain_;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  fid_ep* ep_ = nullptr;
  std::string provider_name_;
  std::string address_;
  uint64_t mr_mode_ = 0;
  bool hmem_ = false;  // FI_HMEM granted: device memory registers with FI_HMEM_CUDA
  size_t max_msg_size_ = 0;
  const uint32_t max_peers_;  // the address vector's size
  std::atomic<uint64_t> next_key_{1};  // requested keys, where the provider does not pick them

  // Loop-confined.
  asio::posix::stream_descriptor wait_fd_;
  asio::steady_timer retry_timer_;
  bool armed_ = false;
  bool closed_ = false;
  bool trywait_logged_ = false;
  bool cq_error_logged_ = false;

  std::atomic<bool> progress_posted_{false};

  // mu_ (TransferQueue's) guards these too.
  RetryList retry_ GUARDED_BY(mu_);  // posted, refused by the provider for now
  bool retry_timer_pending_ GUARDED_BY(mu_) = false;
  std::chrono::microseconds retry_backoff_ GUARDED_BY(mu_) = kRetryFirst;
};

class OfiFabric final : public Fabric {
 public:
  explicit OfiFabric(std::shared_ptr<OfiImpl> impl) : impl_(std::move(impl)) {}
  ~OfiFabric() override { impl_->Shutdown(); }

  const std::string& provider_name() const override { return impl_->provider_name_; }
  const std::string& address() const override { return impl_->address_; }

  Result<PeerId> InsertPeer(std::string_view address) override {
    return impl_->InsertPeer(address);
  }

  Awaitable<Status> RemovePeer(PeerId peer) override {
    return TransferQueue::AwaitRemovePeer(impl_, peer);
  }

  using Fabric::Register;
  Result<std::unique_ptr<MemoryRegion>> Register(const MemoryDescriptor& memory, uint32_t access,
                                                 std::string* why) override {
    void* p = memory.base;
    const size_t n = memory.size;
    if (p == nullptr || n == 0) return errc::bad_argument;
    if (access == 0 || (access & ~access::kAll) != 0) return errc::bad_option;
    const uint64_t requested_key =
        (impl_->mr_mode_ & FI_MR_PROV_KEY) ? 0 : impl_->next_key_.fetch_add(1);
    fid_mr* mr = nullptr;
    int rc = 0;
    if (!memory.is_device()) {
      rc = fi_mr_reg(impl_->domain_->domain, p, n, OfiAccess(access), 0, requested_key, 0, &mr,
                     nullptr);
    } else {
      if (!impl_->hmem_) {
        if (why)
          *why = fmt::format(
              "provider {} cannot register CUDA memory (no FI_HMEM): {} + {} "
              "bytes on device {}",
              impl_->provider_name_.substr(4),  // past "ofi:"
              p, n, memory.device());
        return errc::device_memory_unsupported;
      }
      // libfabric's heterogeneous-memory interface: the same registration,
      // naming the CUDA device that owns the range.
      const iovec iov{p, n};
      fi_mr_attr attr{};
      attr.mr_iov = &iov;
      attr.iov_count = 1;
      attr.access = OfiAccess(access);
      attr.requested_key = requested_key;
      attr.iface = FI_HMEM_CUDA;
      attr.device.cuda = memory.device();
      rc = fi_mr_regattr(impl_->domain_->domain, &attr, 0, &mr);
    }
    if (rc != 0) {
      if (why)
        *why = fmt::format("{}: {}({} + {} bytes of {}) failed: {}", impl_->provider_name_,
                           memory.is_device() ? "fi_mr_regattr" : "fi_mr_reg", p, n,
                           MemoryKindName(memory.kind()), FiStrerror(-rc));
      return OfiError(rc);
    }
    return std::unique_ptr<MemoryRegion>(new OfiRegion(impl_->domain_, mr, memory, access,
                                                       (impl_->mr_mode_ & FI_MR_VIRT_ADDR) != 0));
  }

  bool registers_device_memory() const override { return impl_->hmem_; }

  Awaitable<Status> Write(const MemoryRegion& local, const void* src, size_t len, PeerId peer,
                          RemoteBuffer dst) override {
    return Transfer(true, local, const_cast<void*>(src), len, peer, dst);
  }
  Awaitable<Status> Read(const MemoryRegion& local, void* dst, size_t len, PeerId peer,
                         RemoteBuffer src) override {
    return Transfer(false, local, dst, len, peer, src);
  }

  Awaitable<void> Stop() override { return TransferQueue::AwaitStop(impl_); }

  FabricStats stats() const override { return impl_->stats(); }

 private:
  Awaitable<Status> Transfer(bool write, const MemoryRegion& local, void* buf, size_t len,
                             PeerId peer, RemoteBuffer remote) {
    if (buf == nullptr || len == 0 || len > impl_->max_msg_size_) co_return errc::bad_argument;
    const auto* region = dynamic_cast<const OfiRegion*>(&local);
    if (region == nullptr || region->domain() != impl_->domain_.get() || !local.Covers(buf, len))
      co_return errc::not_registered;
    auto* op = new OfiImpl::Op;
    op->local = region;
    op->write = write;
    op->buf = buf;
    op->len = len;
    op->desc = region->desc();
    op->remote_address = remote.address;
    op->remote_key = remote.key;
    op->peer_id = peer;
    co_return co_await TransferQueue::AwaitTransfer(impl_, op);
  }

  std::shared_ptr<OfiImpl> impl_;
};

Result<std::unique_ptr<Fabric>> OpenOfi(const FabricOptions& options,
                                        const asio::any_io_executor& loop, std::string* why) {
  auto impl = std::make_shared<OfiImpl>(loop, options);
  impl->self_ = impl;
  MEMKV_TRY(impl->Init(options, why));
  impl->Begin();
  return std::unique_ptr<Fabric>(new OfiFabric(std::move(impl)));
}

}  // namespace memkv::rdma::detail
