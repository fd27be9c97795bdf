#pragma once
// Internal to src/rdma (included by the providers' .cc files: it pulls in
// Asio through posted_handler.h).
//
// TransferQueue: what every provider does above its raw calls. It keeps the
// peers, bounds the operations posted to each (max_inflight_per_peer; the
// rest wait in FIFO order, at most max_waiting_per_peer, beyond which they
// fail with errc::overloaded), completes each operation on its caller's
// executor, and carries out RemovePeer (waiting ones fail peer_removed, the
// call returns once the posted ones completed) and Stop (waiting ones fail
// stopped, it returns once the posted ones completed). A provider derives
// from it and supplies the raw part through the hooks below; it calls
// Completed() for each completion it reads from its queue.
//
// Locking: mu_ guards everything here; the hooks run under it. Any thread
// may call the public members.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "rdma/error.h"
#include "rdma/fabric_api.h"
#include "rdma/posted_handler.h"

namespace memkv::rdma::detail {

struct TransferPeer;

// One WRITE or READ, from Start until it completes (then it is deleted).
// Providers derive (ofi: the fi_context2 slot and the retry hook).
struct Transfer : boost::intrusive::list_base_hook<> {
  virtual ~Transfer() = default;
  bool write = true;
  void* buf = nullptr;
  size_t len = 0;
  const MemoryRegion* local = nullptr;
  uint64_t remote_address = 0;
  uint64_t remote_key = 0;
  PeerId peer_id = 0;
  TransferPeer* peer = nullptr;  // set by Start
  PostedHandler<error_code> handler;
};

// A peer; providers derive to keep their handle (ofi: fi_addr_t; verbs: the QP).
struct TransferPeer {
  virtual ~TransferPeer() = default;
  PeerId id = 0;
  uint32_t in_flight = 0;         // posted, not completed
  std::deque<Transfer*> waiting;  // FIFO behind the in-flight bound
  bool removing = false;
  std::vector<PostedHandler<error_code>> removal_waiters;
};

class TransferQueue {
 public:
  // max_inflight_total (0: none) bounds the operations posted to all peers
  // together (verbs: the CQ's depth); a peer held back by it waits its turn.
  TransferQueue(uint32_t max_inflight_per_peer, uint32_t max_waiting_per_peer, uint32_t max_peers,
                uint32_t max_inflight_total = 0);
  virtual ~TransferQueue();
  TransferQueue(const TransferQueue&) = delete;
  TransferQueue& operator=(const TransferQueue&) = delete;

  // Adds `peer` under a fresh id (never reused); errc::stopped or
  // errc::overloaded (max_peers) otherwise.
  Result<PeerId> AddPeer(std::unique_ptr<TransferPeer> peer) EXCLUDES(mu_);
  // Posts `op` now, or queues it behind its peer's bound, or fails it.
  void Start(Transfer* op) EXCLUDES(mu_);
  void RemovePeer(PeerId id, PostedHandler<error_code> done) EXCLUDES(mu_);
  void Stop(PostedHandler<> done) EXCLUDES(mu_);
  FabricStats stats() const EXCLUDES(mu_);
  size_t InFlight() const EXCLUDES(mu_);
  uint32_t max_inflight_per_peer() const { return max_inflight_; }

  // Start, RemovePeer and Stop as the Fabric interface awaits them, for the
  // providers' Fabric classes; `queue` stays alive until each completes.
  // `op` is filled in but for its handler.
  static Awaitable<Status> AwaitTransfer(std::shared_ptr<TransferQueue> queue, Transfer* op);
  static Awaitable<Status> AwaitRemovePeer(std::shared_ptr<TransferQueue> queue, PeerId peer);
  static Awaitable<void> AwaitStop(std::shared_ptr<TransferQueue> queue);

 protected:
  // ---- hooks, called under mu_ ----
  // Hands `op` to the provider. An error fails it (Completed is not called).
  // A provider that cannot take it yet (ofi: -FI_EAGAIN) keeps it and
  // returns no error: it counts as posted until the provider calls
  // Completed for it (or FailPostedLocked, from the hooks below).
  virtual error_code PostLocked(Transfer& op) REQUIRES(mu_) = 0;
  // RemovePeer began; `peer` still has operations posted (verbs: move its QP
  // to ERR so that they flush). Default: nothing.
  virtual void RemovingLocked(TransferPeer& peer) REQUIRES(mu_) {}
  // Stopping began (waiting operations failed). Default: nothing.
  virtual void StoppingLocked() REQUIRES(mu_) {}
  // The peer has nothing posted any more and goes: release its handle.
  virtual void ReleasePeerLocked(TransferPeer& peer) REQUIRES(mu_) = 0;
  // Stopping, and nothing is posted: stop waiting on the loop, then post
  // each of `waiters`.
  virtual void StoppedLocked(std::vector<PostedHandler<>> waiters) REQUIRES(mu_) = 0;

  // ---- for the provider, under mu_ ----
  // A completion of a posted operation: finishes it, lets waiting ones of
  // its peer in, finishes a removal or a stop that waited for it.
  void Completed(Transfer* op, error_code ec) REQUIRES(mu_);
  // Finishes a posted operation the provider never handed over (ofi: one
  // still refused), from RemovingLocked or StoppingLocked: the caller of
  // those checks the removal and the stop afterwards.
  void FailPostedLocked(Transfer* op, error_code ec) REQUIRES(mu_) { Finish(op, ec); }
  // Lowers the per-peer bound (the provider's queue is smaller), before
  // any peer is added.
  void LimitInflightPerPeer(uint32_t n) { max_inflight_ = std::max<uint32_t>(1, std::min(max_inflight_, n)); }
  // Fails what waits, refuses new work; returns whether this was the first call.
  bool BeginStopLocked() REQUIRES(mu_);
  // Finishes every posted operation with `ec` (after the provider made sure
  // that none will complete any more) and answers the stop waiters.
  void AbandonPostedLocked(error_code ec) REQUIRES(mu_);
  // Releases every peer (the provider's destructor, before its own members go).
  void ReleaseAllPeersLocked() REQUIRES(mu_);
  bool stopping() const REQUIRES(mu_) { return stopping_; }
  size_t InFlightLocked() const REQUIRES(mu_) { return posted_.size(); }
  TransferPeer* FindPeerLocked(PeerId id) REQUIRES(mu_);

  mutable Mutex mu_;
  FabricStats stats_ GUARDED_BY(mu_);

 private:
  void Launch(Transfer* op) REQUIRES(mu_);
  void Finish(Transfer* op, error_code ec) REQUIRES(mu_);
  static void Reject(Transfer* op, error_code ec);
  void Refill(TransferPeer& p) REQUIRES(mu_);
  void FailWaiting(TransferPeer& p, error_code ec) REQUIRES(mu_);
  void MaybeFinishRemoval(TransferPeer& p) REQUIRES(mu_);
  void MaybeStopped() REQUIRES(mu_);

  using List = boost::intrusive::list<Transfer>;

  uint32_t max_inflight_;  // lowered only before peers exist
  const uint32_t max_waiting_;
  const uint32_t max_peers_;
  const uint32_t max_total_;
  bool CanLaunch(const TransferPeer& p) const REQUIRES(mu_);
  std::deque<PeerId> starved_ GUARDED_BY(mu_);  // peers held back by max_total_, in order
  std::unordered_map<PeerId, std::unique_ptr<TransferPeer>> peers_ GUARDED_BY(mu_);
  PeerId next_peer_id_ GUARDED_BY(mu_) = 1;
  List posted_ GUARDED_BY(mu_);  // launched, not completed
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<PostedHandler<>> stop_waiters_ GUARDED_BY(mu_);
};

}  // namespace memkv::rdma::detail
