#pragma once
// Sends a gather list whole on a stream socket: sendmsg with up to IOV_MAX
// buffers a call, waiting on the socket's loop while its send buffer is
// full. asio::async_write hands the kernel at most 16 buffers and 64 KiB a
// call: a 1 MiB value took 16 system calls, each followed by a trip through
// the loop, and a reply of 7,500 values of 4 KiB took 470.
//
// A peer that reads as fast as we send would keep the socket writable for a
// whole 60 MB reply: after each 1 MiB sent without waiting, the sender steps
// back through its loop, so that the loop's other connections get their turn.

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <span>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace memkv {

// An entry of a gather list for sending (sendmsg reads it, never writes).
inline iovec Iovec(std::span<const std::byte> b) {
  return {const_cast<std::byte*>(b.data()), b.size()};
}

// Sends every byte `iov` names, in order; `iov` is used up (its entries
// are advanced in place). Empty entries are allowed.
template <class Socket>
boost::asio::awaitable<boost::system::error_code> SendAll(Socket& socket, std::span<iovec> iov) {
  size_t k = 0;
  const auto skip_empty = [&] {
    while (k < iov.size() && iov[k].iov_len == 0) ++k;
  };
  skip_empty();
  constexpr size_t kSendSlice = 1 << 20;
  size_t unyielded = 0;  // bytes sent since the last trip through the loop
  while (k < iov.size()) {
    msghdr msg{};
    msg.msg_iov = iov.data() + k;
    msg.msg_iovlen = std::min<size_t>(iov.size() - k, IOV_MAX);
    const ssize_t n = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        co_return boost::system::error_code(errno, boost::system::system_category());
      auto [ec] = co_await socket.async_wait(Socket::wait_write,
                                             boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return ec;
      unyielded = 0;
      continue;
    }
    unyielded += static_cast<size_t>(n);
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      const size_t take = std::min(left, iov[k].iov_len);
      iov[k].iov_base = static_cast<std::byte*>(iov[k].iov_base) + take;
      iov[k].iov_len -= take;
      left -= take;
      if (iov[k].iov_len == 0) ++k;
    }
    skip_empty();
    if (unyielded >= kSendSlice && k < iov.size()) {
      unyielded = 0;
      const auto ex = socket.get_executor();
      co_await boost::asio::post(ex, boost::asio::use_awaitable);
    }
  }
  co_return boost::system::error_code{};
}

}  // namespace memkv
