#include "common/low_water.h"

#include <sys/socket.h>

#include <algorithm>

namespace memkv {

ReceiveLowWater::ReceiveLowWater(int fd, bool tcp) : fd_(fd) {
  if (!tcp) return;
  int rcvbuf = 0;
  socklen_t len = sizeof rcvbuf;
  if (::getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) == 0) cap_ = std::max(1, rcvbuf / 4);
}

ReceiveLowWater::~ReceiveLowWater() { Want(1); }

void ReceiveLowWater::Want(uint64_t bytes) {
  const int v = static_cast<int>(std::clamp<uint64_t>(bytes, 1, static_cast<uint64_t>(cap_)));
  if (v == now_) return;
  now_ = v;
  // A failure leaves the mark where it was: only wake-ups are at stake.
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v);
}

}  // namespace memkv
