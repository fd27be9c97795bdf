#pragma once
// The awaitable forms of the Engine API, for callers on an Asio loop:
//   auto r = co_await memkv::co::BatchGet(engine, entries);
// Each resumes the awaiting coroutine on its own executor (never on the
// library's I/O threads) and keeps that executor's io_context from running
// out of work meanwhile. Entries (keys, buffers) are read when the call
// starts; buffers must stay valid until it completes. Brings in Asio: link
// memkv::boost_asio too.

#include <boost/asio/awaitable.hpp>

#include "memkv/engine.h"

namespace memkv::co {

namespace asio = boost::asio;

asio::awaitable<ExistsResults> Exists(Engine& engine, std::span<const std::string_view> keys);
asio::awaitable<GetResults> BatchGet(Engine& engine, std::span<const GetEntry> entries);
asio::awaitable<PutResults> BatchPut(Engine& engine, std::span<const PutEntry> entries);
asio::awaitable<DeleteResults> Delete(Engine& engine, std::span<const std::string_view> keys);
asio::awaitable<GetResults> BatchXferForServer(Engine& engine, size_t server, XferOp op,
                                               std::span<const XferEntry> entries);

}  // namespace memkv::co
