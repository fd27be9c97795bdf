#pragma once
// (Named fabric_api.h, not fabric.h: with includes rooted at src/, a
// src/rdma/fabric.h would hide libfabric's own <rdma/fabric.h>, which every
// libfabric header includes. No file here may take a name of /usr/include/rdma.)
//
// rdma::Fabric: one-sided transfers (RDMA WRITE and READ) between registered
// memory of this process and a peer's, with completions on an Asio loop.
// Used by both sides: the server WRITEs blocks into a client's registered
// buffers on reads and READs them on writes; the client only registers and
// hands out (address, key).
//
// Owner: one Fabric per (process, provider), shared by every thread: one
// endpoint, one completion queue, one address vector; nothing per thread.
// Open it with the loop its completions run on (`loop`): that loop waits on
// the provider's wait object (libfabric's CQ wait fd) for as long as the
// fabric is open, because some providers (libfabric tcp) only move bytes,
// also those of the peers' operations on our memory, while the queue is read.
// So the loop's io_context does not run out of work until Stop() completes.
//
// Threads: every member may be called from any thread, except the
// destructor (see there). Write and Read complete on the caller's executor:
// the awaiting coroutine resumes there, never inside the drain.
//
// Bounds: at most `max_inflight_per_peer` operations are posted to one peer
// at once; further ones wait in FIFO order, at most `max_waiting_per_peer`,
// beyond which they fail at once with errc::overloaded.
//
// Providers: `ofi` (libfabric, with a pinned libfabric provider: "tcp;ofi_rxm"
// here and in the tests, "efa" on AWS, "verbs;ofi_rxm" on InfiniBand/RoCE)
// and `verbs` (rdma-core RC queue pairs, verbs_fabric.h; never run on
// hardware yet, see docs/rdma.md).
//
// Peers: ofi has one address per endpoint, so a peer is inserted by the
// address its Fabric::address() gave. verbs RC connects one queue pair per
// peer and needs both ends' addresses, so peers are made in an exchange:
// the client OfferPeer()s and sends the offer's address at Attach, the
// server AcceptPeer()s it and answers with the address AcceptPeer gave, and
// the client CompletePeer()s with that answer. The defaults below reduce
// the exchange to address() and InsertPeer for ofi.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "rdma/memory_descriptor.h"

namespace boost::asio {
class any_io_executor;
template <typename T, typename Executor>
class awaitable;
}  // namespace boost::asio

namespace memkv::rdma {

// Exactly boost::asio::awaitable<T> (see io/asio_fwd.h for why it is spelled out).
template <class T>
using Awaitable = boost::asio::awaitable<T, boost::asio::any_io_executor>;

enum class ProviderKind {
  kOfi,    // libfabric
  kVerbs,  // rdma-core (verbs_fabric.h)
};

// "ofi" or "verbs" (config's `rdma.provider`); common::errc::bad_name otherwise.
Result<ProviderKind> ParseProviderKind(std::string_view name);
std::string_view ProviderKindName(ProviderKind kind);

struct FabricOptions {
  ProviderKind provider = ProviderKind::kOfi;
  // The libfabric provider, pinned: fi_getinfo is asked for this one and no
  // other, never for its first choice. "tcp" selects "tcp;ofi_rxm" (the
  // reliable-datagram layer over tcp); a name like "tcp;ofi_rxm" or "efa" is
  // taken as it is.
  std::string ofi_provider = "tcp;ofi_rxm";
  // The local address the endpoint listens on (an IP address for tcp), or
  // empty for the provider's choice.
  std::string node;
  // The libfabric domain (a NIC or interface: "lo", "mlx5_0"), or empty for
  // the first the provider offers for `node`.
  std::string domain;
  // Operations posted to one peer at once (capped by the provider's transmit
  // queue), and operations waiting behind them.
  uint32_t max_inflight_per_peer = 64;
  uint32_t max_waiting_per_peer = 4096;
  // Peers in the address vector at once.
  uint32_t max_peers = 4096;
};

// How registered memory may be used (a bit set).
namespace access {
inline constexpr uint32_t kWriteFrom = 1u;    // the source of this side's WRITEs
inline constexpr uint32_t kReadInto = 2u;     // the destination of this side's READs
inline constexpr uint32_t kRemoteRead = 4u;   // peers READ from it
inline constexpr uint32_t kRemoteWrite = 8u;  // peers WRITE into it
inline constexpr uint32_t kAll = 15u;
}  // namespace access

// A registration of [base, base + size) with the provider (host memory, or
// a CUDA device's where the provider registers device memory). Deregistered when
// destroyed; it may outlive its Fabric (it keeps the provider's domain open).
// Immutable after registration, so any thread may use it. Destroying it
// while an operation uses it fails that operation (or the peer's).
class MemoryRegion {
 public:
  virtual ~MemoryRegion() = default;
  MemoryRegion(const MemoryRegion&) = delete;
  MemoryRegion& operator=(const MemoryRegion&) = delete;

  std::byte* base() const { return base_; }
  size_t size() const { return size_; }
  uint32_t access() const { return access_; }
  // What memory it is: host, or device memory of device().
  common::MemoryKind kind() const { return kind_; }
  int device() const { return device_; }
  // The key a peer names this region by.
  uint64_t key() const { return key_; }
  // The address a peer names `p` (inside this region) by: p itself where the
  // provider addresses remote memory virtually (FI_MR_VIRT_ADDR), its offset
  // from base() where it does not.
  uint64_t RemoteAddress(const void* p) const {
    const auto* b = static_cast<const std::byte*>(p);
    return virtual_addressing_ ? reinterpret_cast<uintptr_t>(b) : static_cast<uint64_t>(b - base_);
  }
  bool Covers(const void* p, size_t n) const {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base_ && n <= size_ && static_cast<size_t>(b - base_) <= size_ - n;
  }

 protected:
  MemoryRegion(const MemoryDescriptor& memory, uint32_t access, uint64_t key,
               bool virtual_addressing)
      : base_(memory.base),
        size_(memory.size),
        access_(access),
        kind_(memory.kind()),
        device_(memory.device()),
        key_(key),
        virtual_addressing_(virtual_addressing) {}

 private:
  std::byte* const base_;
  const size_t size_;
  const uint32_t access_;
  const common::MemoryKind kind_;
  const int device_;
  const uint64_t key_;
  const bool virtual_addressing_;
};

// Where the bytes are on the peer: what its MemoryRegion's RemoteAddress and
// key() said (travels in a request entry).
struct RemoteBuffer {
  uint64_t address = 0;
  uint64_t key = 0;
};

// A peer in this fabric's address vector. Never reused within a Fabric, so a
// stale id fails with errc::unknown_peer instead of reaching another peer.
using PeerId = uint64_t;

struct FabricStats {
  uint64_t writes = 0;            // WRITEs completed (successfully or not)
  uint64_t reads = 0;             // READs completed
  uint64_t bytes_written = 0;     // by successful WRITEs
  uint64_t bytes_read = 0;        // by successful READs
  uint64_t errors = 0;            // operations completed with an error
  uint64_t wakeups = 0;           // wait-object wake-ups that drained the queue
  uint64_t provider_retries = 0;  // posts the provider refused for now (-FI_EAGAIN), retried
  uint32_t max_in_flight = 0;     // high-water mark of operations posted at once
  uint32_t peers = 0;             // peers now in the address vector
};

class Fabric {
 public:
  // Opens the provider `options` names, its completions awaited on `loop`.
  // On failure `why`, if given, says what failed, naming the config field
  // and the provider ("rdma.provider: libfabric provider 'tcp' not found
  // (fi_getinfo: ...)").
  static Result<std::unique_ptr<Fabric>> Open(const FabricOptions& options,
                                              const boost::asio::any_io_executor& loop,
                                              std::string* why = nullptr);

  // Destroy on the loop's thread, or while the loop does not run, after
  // co_await Stop() (otherwise it waits, blocking, for the operations still
  // posted, since the provider may write into their buffers until then).
  virtual ~Fabric() = default;

  // "ofi:tcp;ofi_rxm": the provider kind and the provider it runs.
  virtual const std::string& provider_name() const = 0;
  // This endpoint's address: opaque bytes (at most 255: it travels in
  // Attach's rdma_endpoint) that a peer passes to InsertPeer.
  virtual const std::string& address() const = 0;

  // Adds a peer by the address its Fabric::address() returned
  // (errc::exchange_required where the provider connects per peer: verbs).
  virtual Result<PeerId> InsertPeer(std::string_view address) = 0;

  // The address exchange (see the top of this file).
  struct PeerOffer {
    PeerId peer = 0;      // 0: no peer on this side (ofi's client needs none)
    std::string address;  // what to send the other side
  };
  // Server side: adds the peer that sent `address` and returns it with the
  // address to answer with. Default: InsertPeer, and address().
  virtual Result<PeerOffer> AcceptPeer(std::string_view address);
  // Client side: a peer not connected yet, and the address to send.
  // Default: no peer, and address(). Remove an offered peer that is never
  // completed with RemovePeer.
  virtual Result<PeerOffer> OfferPeer();
  // Client side: connects the offered peer to the address the server
  // answered. Default: nothing (ofi's client is never the initiator).
  virtual Status CompletePeer(PeerId offered, std::string_view address);
  // Removes a peer: its waiting operations fail with errc::peer_removed,
  // new ones with errc::unknown_peer; returns once those already posted
  // have completed and its address-vector entry is gone.
  virtual Awaitable<Status> RemovePeer(PeerId peer) = 0;

  // Registers `memory` (classified by the caller, once: see
  // RegistrationCache) for the uses in `access` (access::k*). Device memory
  // needs a provider that registers it (registers_device_memory());
  // elsewhere it fails errc::device_memory_unsupported, and `why` names the
  // provider.
  virtual Result<std::unique_ptr<MemoryRegion>> Register(const MemoryDescriptor& memory,
                                                         uint32_t access, std::string* why) = 0;
  // Registers the host memory [p, p + n) (the fabric's own staging buffers).
  Result<std::unique_ptr<MemoryRegion>> Register(void* p, size_t n, uint32_t access) {
    return Register(MemoryDescriptor::Host(p, n), access, nullptr);
  }
  // Whether Register takes CUDA device memory (ofi: the provider offered
  // FI_HMEM, asked for only where the process has a CUDA driver).
  virtual bool registers_device_memory() const = 0;

  // WRITEs [src, src + len) of `local` to the peer's `dst`; READs the peer's
  // `src` into [dst, dst + len) of `local`. The local bytes belong to the
  // operation until it completes. Errors: errc::not_registered,
  // errc::unknown_peer, errc::overloaded, errc::stopped, errc::remote_access
  // (the peer refused the key or range), or the provider's (ofi_category()).
  virtual Awaitable<Status> Write(const MemoryRegion& local, const void* src, size_t len,
                                  PeerId peer, RemoteBuffer dst) = 0;
  virtual Awaitable<Status> Read(const MemoryRegion& local, void* dst, size_t len, PeerId peer,
                                 RemoteBuffer src) = 0;

  // Refuses new operations (errc::stopped), fails those waiting, waits for
  // those posted to complete, then stops waiting on the loop. Idempotent.
  virtual Awaitable<void> Stop() = 0;

  virtual FabricStats stats() const = 0;

 protected:
  Fabric() = default;
};

}  // namespace memkv::rdma
