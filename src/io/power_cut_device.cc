#include "io/power_cut_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/error.h"
#include "io/posted_handler.h"

namespace memkv::io {

namespace {

constexpr size_t kRunBytes = 1 << 20;  // a flush writes runs of up to this many bytes

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<std::byte, FreeDeleter>;

AlignedBytes AllocAligned(size_t align, size_t size) {
  return AlignedBytes(static_cast<std::byte*>(std::aligned_alloc(align, size)));
}

}  // namespace

namespace asio = boost::asio;

PowerCutDevice::PowerCutDevice(std::shared_ptr<BlockDevice> stable) : stable_(std::move(stable)) {}

PowerCutDevice::~PowerCutDevice() = default;

// Holds the flush turn for its scope.
class PowerCutDevice::FlushTurn {
 public:
  explicit FlushTurn(PowerCutDevice& device) : device_(device) {}
  ~FlushTurn() { device_.EndFlushTurn(); }
  FlushTurn(const FlushTurn&) = delete;
  FlushTurn& operator=(const FlushTurn&) = delete;

 private:
  PowerCutDevice& device_;
};

Awaitable<void> PowerCutDevice::WaitFlushTurn() {
  {
    std::lock_guard lock(mu_);
    if (!flush_busy_) {
      flush_busy_ = true;
      co_return;
    }
  }
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [this](auto handler) {
        detail::PostedHandler<> waiter(std::move(handler));
        std::unique_lock lock(mu_);
        if (!flush_busy_) {  // the turn ended between the check and here
          flush_busy_ = true;
          lock.unlock();
          waiter.Post();
        } else {
          flush_waiters_.push_back(std::move(waiter));
        }
      },
      asio::use_awaitable);
}

// Hands the turn to the oldest waiting flush, or frees it.
void PowerCutDevice::EndFlushTurn() {
  std::unique_lock lock(mu_);
  if (flush_waiters_.empty()) {
    flush_busy_ = false;
    return;
  }
  auto next = std::move(flush_waiters_.front());
  flush_waiters_.pop_front();
  lock.unlock();
  next.Post();
}

void PowerCutDevice::CutPower() {
  std::lock_guard lock(mu_);
  if (keep_ > 0) {
    std::bernoulli_distribution keep(keep_);
    // The flush in progress is older than pending_: pending_ overrides it.
    if (flushing_)
      for (const auto& [index, bytes] : *flushing_)
        if (keep(keep_rng_)) survivors_[index] = bytes;
    for (const auto& [index, bytes] : pending_)
      if (keep(keep_rng_)) survivors_[index] = bytes;
  }
  pending_.clear();
  flushing_.reset();
  ++epoch_;
  ++cuts_;
}

void PowerCutDevice::KeepAtCut(double probability, uint64_t seed) {
  std::lock_guard lock(mu_);
  keep_ = probability;
  keep_rng_.seed(seed);
}

Awaitable<Status> PowerCutDevice::LandSurvivors() {
  Layer survivors;
  {
    std::lock_guard lock(mu_);
    survivors.swap(survivors_);
  }
  const uint64_t bs = block_size();
  AlignedBytes block = AllocAligned(bs, bs);
  for (const auto& [index, bytes] : survivors) {
    if (bytes) {
      std::memcpy(block.get(), bytes.get(), bs);
    } else {
      std::memset(block.get(), 0, bs);
    }
    MEMKV_CO_TRY(co_await stable_->Write(index * bs, {block.get(), bs}));
  }
  co_return co_await stable_->Flush();
}

uint64_t PowerCutDevice::unflushed_bytes() const {
  std::lock_guard lock(mu_);
  uint64_t blocks = pending_.size();
  if (flushing_) blocks += flushing_->size();
  return blocks * block_size();
}

uint64_t PowerCutDevice::cuts() const {
  std::lock_guard lock(mu_);
  return cuts_;
}

Awaitable<Result<size_t>> PowerCutDevice::Read(uint64_t offset, std::span<std::byte> out) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, out.size(), out.data()));
  const uint64_t bs = block_size();
  const uint64_t first = offset / bs;
  const uint64_t end = (offset + out.size()) / bs;
  // The volatile blocks of the range, oldest layer first, taken before the
  // medium is read: a flush that finishes meanwhile leaves them equal.
  std::vector<std::pair<uint64_t, std::shared_ptr<const std::byte[]>>> patches;
  {
    std::lock_guard lock(mu_);
    auto collect = [&](const Layer& layer) {
      for (auto it = layer.lower_bound(first); it != layer.end() && it->first < end; ++it)
        patches.emplace_back(it->first, it->second);
    };
    if (flushing_) collect(*flushing_);
    collect(pending_);
  }
  auto got = co_await stable_->Read(offset, out);
  MEMKV_CO_TRY(got);
  for (const auto& [index, bytes] : patches) {
    std::byte* dst = out.data() + (index - first) * bs;
    if (bytes) {
      std::memcpy(dst, bytes.get(), bs);
    } else {
      std::memset(dst, 0, bs);
    }
  }
  co_return out.size();
}

Awaitable<Status> PowerCutDevice::Write(uint64_t offset, std::span<const std::byte> data) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, data.size(), data.data()));
  const uint64_t bs = block_size();
  std::vector<std::pair<uint64_t, std::shared_ptr<const std::byte[]>>> blocks;
  blocks.reserve(data.size() / bs);
  for (uint64_t pos = 0; pos < data.size(); pos += bs) {
    std::shared_ptr<std::byte[]> copy(new std::byte[bs]);
    std::memcpy(copy.get(), data.data() + pos, bs);
    blocks.emplace_back((offset + pos) / bs, std::move(copy));
  }
  std::lock_guard lock(mu_);
  for (auto& [index, bytes] : blocks) pending_[index] = std::move(bytes);
  co_return Status{};
}

Awaitable<Status> PowerCutDevice::ZeroFill(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  const uint64_t bs = block_size();
  std::lock_guard lock(mu_);
  for (uint64_t index = offset / bs; index < (offset + len) / bs; ++index)
    pending_[index] = nullptr;
  co_return Status{};
}

Awaitable<Status> PowerCutDevice::Discard(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  co_return Status{};
}

Awaitable<Status> PowerCutDevice::Flush() {
  const uint64_t bs = block_size();
  co_await WaitFlushTurn();
  FlushTurn turn(*this);
  // Everything completed before this flush began is in pending_ now (or
  // already on the medium, moved by an earlier flush).
  auto layer = std::make_shared<Layer>();
  uint64_t epoch;
  {
    std::lock_guard lock(mu_);
    layer->swap(pending_);
    flushing_ = layer;
    epoch = epoch_;
  }
  auto cut = [&] {
    std::lock_guard lock(mu_);
    return epoch_ != epoch;
  };
  // Puts the layer's writes back in front of later ones after a failure, so
  // that they stay volatile rather than vanish.
  auto restore = [&] {
    std::lock_guard lock(mu_);
    if (epoch_ != epoch) return;
    flushing_.reset();
    for (auto& [index, bytes] : *layer) pending_.try_emplace(index, bytes);
  };

  // Consecutive blocks go to the medium as one write of up to kRunBytes.
  const size_t run_blocks = std::max<size_t>(1, kRunBytes / bs);
  AlignedBytes run = AllocAligned(bs, run_blocks * bs);
  auto it = layer->begin();
  while (it != layer->end()) {
    const uint64_t start = it->first;
    size_t n = 0;
    while (it != layer->end() && it->first == start + n && n < run_blocks) {
      if (it->second) {
        std::memcpy(run.get() + n * bs, it->second.get(), bs);
      } else {
        std::memset(run.get() + n * bs, 0, bs);
      }
      ++n;
      ++it;
    }
    auto st = co_await stable_->Write(start * bs, {run.get(), n * bs});
    if (cut()) co_return errc::power_cut;
    if (!st) {
      restore();
      co_return st.error();
    }
  }
  auto st = co_await stable_->Flush();
  if (cut()) co_return errc::power_cut;
  if (!st) {
    restore();
    co_return st.error();
  }
  {
    std::lock_guard lock(mu_);
    flushing_.reset();
  }
  co_return Status{};
}

}  // namespace memkv::io
