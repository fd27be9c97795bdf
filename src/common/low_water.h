#pragma once
// SO_RCVLOWAT while a large data section comes in over TCP: the reader is
// woken once a stretch has come, not for every segment the sender's kernel
// hands over (on loopback each wake-up costs both sides a context switch and
// an inter-processor interrupt).

#include <cstdint>

namespace memkv {

class ReceiveLowWater {
 public:
  // `fd`: a connected stream socket; `tcp` false (a Unix socket, whose poll
  // ignores the mark) makes every call a no-op. Reads the socket's receive
  // buffer once: the mark stays at most a quarter of it, so that what waits
  // below the mark never closes the sender's window (which would leave
  // both sides waiting).
  ReceiveLowWater(int fd, bool tcp);
  // Back to 1 byte, the socket's default.
  ~ReceiveLowWater();
  ReceiveLowWater(const ReceiveLowWater&) = delete;
  ReceiveLowWater& operator=(const ReceiveLowWater&) = delete;

  // Wake the reader once `bytes` have come (clamped to [1, the cap]).
  void Want(uint64_t bytes);

 private:
  int fd_;
  int cap_ = 1;
  int now_ = 1;
};

}  // namespace memkv
