#pragma once
// Forward declarations of the few Asio names that io's headers mention, so
// that including an io header does not parse Asio (over 100k lines per file).
// A file that co_awaits io's operations includes <boost/asio/awaitable.hpp>
// itself (it needs the complete type to await anyway); ring.cc checks that
// these declarations agree with Asio's.

namespace boost::asio {
class any_io_executor;
class io_context;
template <typename T, typename Executor>
class awaitable;
}  // namespace boost::asio

namespace memkv::io {

// Exactly boost::asio::awaitable<T> (whose second parameter defaults to
// any_io_executor); spelled out because a forward declaration cannot repeat
// Asio's default argument.
template <class T>
using Awaitable = boost::asio::awaitable<T, boost::asio::any_io_executor>;

}  // namespace memkv::io
