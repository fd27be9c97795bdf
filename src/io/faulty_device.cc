#include "io/faulty_device.h"

#include <algorithm>

#include <boost/asio/awaitable.hpp>

#include "io/error.h"

namespace memkv::io {

FaultyDevice::FaultyDevice(std::shared_ptr<BlockDevice> inner) : inner_(std::move(inner)) {}

void FaultyDevice::Arm(Kind kind, uint64_t& counter, uint64_t n, uint64_t bytes,
                       bool report_success) {
  if (n == 0) return;
  armed_.push_back({kind, counter + n, bytes, report_success});
}

void FaultyDevice::FailNthWrite(uint64_t n) {
  std::lock_guard lock(mu_);
  Arm(Kind::kFailWrite, writes_, n, 0, false);
}
void FaultyDevice::TearNthWrite(uint64_t n, uint64_t prefix, bool report_success) {
  std::lock_guard lock(mu_);
  Arm(Kind::kTearWrite, writes_, n, prefix, report_success);
}
void FaultyDevice::FailNthRead(uint64_t n) {
  std::lock_guard lock(mu_);
  Arm(Kind::kFailRead, reads_, n, 0, false);
}
void FaultyDevice::ShortNthRead(uint64_t n, uint64_t bytes) {
  std::lock_guard lock(mu_);
  Arm(Kind::kShortRead, reads_, n, bytes, false);
}
void FaultyDevice::FailNthFlush(uint64_t n) {
  std::lock_guard lock(mu_);
  Arm(Kind::kFailFlush, flushes_, n, 0, false);
}
void FaultyDevice::Clear() {
  std::lock_guard lock(mu_);
  armed_.clear();
}

uint64_t FaultyDevice::reads() const {
  std::lock_guard lock(mu_);
  return reads_;
}
uint64_t FaultyDevice::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}
uint64_t FaultyDevice::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}
uint64_t FaultyDevice::faults_injected() const {
  std::lock_guard lock(mu_);
  return injected_;
}

std::optional<FaultyDevice::Fault> FaultyDevice::Next(uint64_t& counter, Kind a, Kind b) {
  std::lock_guard lock(mu_);
  const uint64_t now = ++counter;
  auto it = std::find_if(armed_.begin(), armed_.end(), [&](const Fault& f) {
    return (f.kind == a || f.kind == b) && f.at == now;
  });
  if (it == armed_.end()) return std::nullopt;
  Fault f = *it;
  armed_.erase(it);
  ++injected_;
  return f;
}

Awaitable<Result<size_t>> FaultyDevice::Read(uint64_t offset, std::span<std::byte> out) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, out.size(), out.data()));
  const auto fault = Next(reads_, Kind::kFailRead, Kind::kShortRead);
  if (fault && fault->kind == Kind::kFailRead) co_return errc::injected_fault;
  if (fault) {
    const uint64_t bs = block_size();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(fault->bytes, out.size()) / bs * bs);
    auto got = co_await inner_->Read(offset, out.first(n));
    co_return got;
  }
  auto got = co_await inner_->Read(offset, out);
  co_return got;
}

Awaitable<Status> FaultyDevice::Write(uint64_t offset, std::span<const std::byte> data) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, data.size(), data.data()));
  const auto fault = Next(writes_, Kind::kFailWrite, Kind::kTearWrite);
  if (fault && fault->kind == Kind::kFailWrite) co_return errc::injected_fault;
  if (fault) {
    const uint64_t bs = block_size();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(fault->bytes, data.size()) / bs * bs);
    if (n > 0) {
      auto st = co_await inner_->Write(offset, data.first(n));
      MEMKV_CO_TRY(st);
    }
    if (fault->report_success) co_return Status{};
    co_return errc::injected_fault;
  }
  auto st = co_await inner_->Write(offset, data);
  co_return st;
}

Awaitable<Status> FaultyDevice::Flush() {
  if (Next(flushes_, Kind::kFailFlush, Kind::kFailFlush)) co_return errc::injected_fault;
  auto st = co_await inner_->Flush();
  co_return st;
}

Awaitable<Status> FaultyDevice::Discard(uint64_t offset, uint64_t len) {
  auto st = co_await inner_->Discard(offset, len);
  co_return st;
}

Awaitable<Status> FaultyDevice::ZeroFill(uint64_t offset, uint64_t len) {
  auto st = co_await inner_->ZeroFill(offset, len);
  co_return st;
}

}  // namespace memkv::io
