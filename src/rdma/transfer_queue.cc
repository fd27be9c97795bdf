#include "rdma/transfer_queue.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace memkv::rdma::detail {

namespace asio = boost::asio;

Awaitable<Status> TransferQueue::AwaitTransfer(std::shared_ptr<TransferQueue> queue,
                                               Transfer* op) {
  const auto [ec] = co_await asio::async_initiate<
      const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(error_code)>(
      [&](auto handler) {
        op->handler = PostedHandler<error_code>(std::move(handler));
        queue->Start(op);
      },
      asio::as_tuple(asio::use_awaitable));
  if (ec) co_return ec;
  co_return Status{};
}

Awaitable<Status> TransferQueue::AwaitRemovePeer(std::shared_ptr<TransferQueue> queue,
                                                 PeerId peer) {
  const auto [ec] = co_await asio::async_initiate<
      const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(error_code)>(
      [&](auto handler) { queue->RemovePeer(peer, PostedHandler<error_code>(std::move(handler))); },
      asio::as_tuple(asio::use_awaitable));
  if (ec) co_return ec;
  co_return Status{};
}

Awaitable<void> TransferQueue::AwaitStop(std::shared_ptr<TransferQueue> queue) {
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&](auto handler) { queue->Stop(PostedHandler<>(std::move(handler))); },
      asio::use_awaitable);
}

TransferQueue::TransferQueue(uint32_t max_inflight_per_peer, uint32_t max_waiting_per_peer,
                             uint32_t max_peers, uint32_t max_inflight_total)
    : max_inflight_(std::max<uint32_t>(1, max_inflight_per_peer)),
      max_waiting_(max_waiting_per_peer),
      max_peers_(max_peers),
      max_total_(max_inflight_total) {}

bool TransferQueue::CanLaunch(const TransferPeer& p) const {
  return p.in_flight < max_inflight_ && (max_total_ == 0 || posted_.size() < max_total_);
}

// Derived classes release their peers (ReleaseAllPeersLocked) and finish
// their posted operations before this runs; what is left only goes.
TransferQueue::~TransferQueue() = default;

Result<PeerId> TransferQueue::AddPeer(std::unique_ptr<TransferPeer> peer) {
  MutexLock lock(mu_);
  if (stopping_) return errc::stopped;
  if (peers_.size() >= max_peers_) return errc::overloaded;
  peer->id = next_peer_id_++;
  const PeerId id = peer->id;
  peers_.emplace(id, std::move(peer));
  stats_.peers = static_cast<uint32_t>(peers_.size());
  return id;
}

TransferPeer* TransferQueue::FindPeerLocked(PeerId id) {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}

void TransferQueue::Start(Transfer* op) {
  MutexLock lock(mu_);
  if (stopping_) return Reject(op, errc::stopped);
  TransferPeer* p = FindPeerLocked(op->peer_id);
  if (p == nullptr || p->removing) return Reject(op, errc::unknown_peer);
  op->peer = p;
  if (CanLaunch(*p) && p->waiting.empty()) {
    Launch(op);
  } else if (p->waiting.size() >= max_waiting_) {
    Reject(op, errc::overloaded);
  } else {
    if (p->in_flight < max_inflight_ && p->waiting.empty()) starved_.push_back(p->id);
    p->waiting.push_back(op);
  }
}

void TransferQueue::RemovePeer(PeerId id, PostedHandler<error_code> done) {
  MutexLock lock(mu_);
  TransferPeer* p = FindPeerLocked(id);
  if (p == nullptr || p->removing) {
    done.Post(errc::unknown_peer);
    return;
  }
  p->removing = true;
  p->removal_waiters.push_back(std::move(done));
  FailWaiting(*p, errc::peer_removed);
  if (p->in_flight > 0) RemovingLocked(*p);
  MaybeFinishRemoval(*p);
}

void TransferQueue::Stop(PostedHandler<> done) {
  MutexLock lock(mu_);
  BeginStopLocked();
  stop_waiters_.push_back(std::move(done));
  MaybeStopped();
}

bool TransferQueue::BeginStopLocked() {
  if (stopping_) return false;
  stopping_ = true;
  for (auto& [id, p] : peers_) FailWaiting(*p, errc::stopped);
  StoppingLocked();
  return true;
}

FabricStats TransferQueue::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

size_t TransferQueue::InFlight() const {
  MutexLock lock(mu_);
  return posted_.size();
}

void TransferQueue::Launch(Transfer* op) {
  ++op->peer->in_flight;
  posted_.push_back(*op);
  stats_.max_in_flight =
      std::max<uint32_t>(stats_.max_in_flight, static_cast<uint32_t>(posted_.size()));
  if (error_code ec = PostLocked(*op)) Finish(op, ec);
}

void TransferQueue::Completed(Transfer* op, error_code ec) {
  TransferPeer& p = *op->peer;
  Finish(op, ec);
  Refill(p);
  MaybeFinishRemoval(p);  // may delete p
  // Peers held back by the total bound, in the order they were.
  while (!starved_.empty() && !stopping_ && (max_total_ == 0 || posted_.size() < max_total_)) {
    TransferPeer* q = FindPeerLocked(starved_.front());
    starved_.pop_front();
    if (q != nullptr) Refill(*q);
  }
  MaybeStopped();
}

void TransferQueue::Refill(TransferPeer& p) {
  while (!stopping_ && !p.removing && !p.waiting.empty()) {
    if (!CanLaunch(p)) {
      // Held back by the total bound (not its own): it waits its turn.
      if (p.in_flight < max_inflight_ &&
          std::find(starved_.begin(), starved_.end(), p.id) == starved_.end())
        starved_.push_back(p.id);
      return;
    }
    Transfer* op = p.waiting.front();
    p.waiting.pop_front();
    Launch(op);
  }
}

void TransferQueue::Finish(Transfer* op, error_code ec) {
  --op->peer->in_flight;
  posted_.erase(posted_.iterator_to(*op));
  if (op->write) {
    ++stats_.writes;
    if (!ec) stats_.bytes_written += op->len;
  } else {
    ++stats_.reads;
    if (!ec) stats_.bytes_read += op->len;
  }
  if (ec) ++stats_.errors;
  Reject(op, ec);
}

void TransferQueue::Reject(Transfer* op, error_code ec) {
  auto handler = std::move(op->handler);
  delete op;
  handler.Post(ec);
}

void TransferQueue::FailWaiting(TransferPeer& p, error_code ec) {
  while (!p.waiting.empty()) {
    Transfer* op = p.waiting.front();
    p.waiting.pop_front();
    Reject(op, ec);
  }
}

void TransferQueue::MaybeFinishRemoval(TransferPeer& p) {
  if (!p.removing || p.in_flight > 0) return;
  ReleasePeerLocked(p);
  auto waiters = std::move(p.removal_waiters);
  peers_.erase(p.id);  // p is gone
  stats_.peers = static_cast<uint32_t>(peers_.size());
  for (auto& w : waiters) w.Post(error_code{});
}

void TransferQueue::MaybeStopped() {
  if (!stopping_ || !posted_.empty() || stop_waiters_.empty()) return;
  auto waiters = std::move(stop_waiters_);
  stop_waiters_.clear();
  StoppedLocked(std::move(waiters));
}

void TransferQueue::AbandonPostedLocked(error_code ec) {
  while (!posted_.empty()) {
    Transfer& op = posted_.front();
    TransferPeer& p = *op.peer;
    Finish(&op, ec);
    MaybeFinishRemoval(p);
  }
  for (auto& w : stop_waiters_) w.Post();
  stop_waiters_.clear();
}

void TransferQueue::ReleaseAllPeersLocked() {
  for (auto& [id, p] : peers_) {
    FailWaiting(*p, errc::stopped);
    ReleasePeerLocked(*p);
    for (auto& w : p->removal_waiters) w.Post(errc::stopped);
  }
  peers_.clear();
  stats_.peers = 0;
}

}  // namespace memkv::rdma::detail
