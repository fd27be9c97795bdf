#include "common/low_water.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace memkv {
namespace {

int Mark(int fd) {
  int v = -1;
  socklen_t len = sizeof v;
  EXPECT_EQ(::getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
  return v;
}

// A connected loopback TCP pair.
struct TcpPair {
  TcpPair() {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(l, 1), 0);
    EXPECT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    server = ::accept(l, nullptr, nullptr);
    ::close(l);
  }
  ~TcpPair() {
    ::close(client);
    ::close(server);
  }
  int client = -1, server = -1;
};

// The mark follows what the reader asks for, never above a quarter of the
// receive buffer (a mark the sender's window cannot reach would leave both
// sides waiting), and is back at 1 byte when the section is in.
TEST(ReceiveLowWater, TheMarkStaysWithinAQuarterOfTheReceiveBufferAndGoesBackToOne) {
  TcpPair p;
  int rcvbuf = 0;
  socklen_t len = sizeof rcvbuf;
  ASSERT_EQ(::getsockopt(p.client, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len), 0);
  ASSERT_GT(rcvbuf, 8);
  EXPECT_EQ(Mark(p.client), 1);
  {
    ReceiveLowWater mark(p.client, true);
    mark.Want(4096);
    EXPECT_EQ(Mark(p.client), 4096);
    mark.Want(uint64_t{1} << 40);
    EXPECT_EQ(Mark(p.client), rcvbuf / 4);
    mark.Want(0);
    EXPECT_EQ(Mark(p.client), 1);
    mark.Want(100);
    EXPECT_EQ(Mark(p.client), 100);
  }
  EXPECT_EQ(Mark(p.client), 1);
}

// A Unix socket's poll ignores the mark: it is left alone there.
TEST(ReceiveLowWater, AUnixSocketIsLeftAlone) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  {
    ReceiveLowWater mark(sv[0], false);
    mark.Want(65536);
    EXPECT_EQ(Mark(sv[0]), 1);
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace
}  // namespace memkv
