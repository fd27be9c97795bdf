#include "client/engine_awaitable.h"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace memkv::co {

namespace {

// Starts a callback-form call and suspends until its completion, which is
// posted back to the awaiting coroutine's executor (holding work on it).
template <class T, class Start>
asio::awaitable<T> Await(Start start) {
  // Only a pointer travels through async_initiate: gcc 12 destroys
  // non-trivial arguments of use_awaitable's initiation twice.
  Start* p = &start;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
      [](auto handler, Start* start) {
        auto work = asio::prefer(asio::get_associated_executor(handler),
                                 asio::execution::outstanding_work.tracked);
        (*start)(Completion<T>([h = std::move(handler), work = std::move(work)](T r) mutable {
          asio::post(asio::append(std::move(h), std::move(r)));
        }));
      },
      asio::use_awaitable, p);
}

}  // namespace

// Each start is a named lambda, not a temporary: gcc 12 destroys
// temporaries of a co_await expression twice.

asio::awaitable<ExistsResults> Exists(Engine& engine, std::span<const std::string_view> keys) {
  auto start = [&engine, keys](Completion<ExistsResults> cb) {
    engine.AsyncExists(keys, std::move(cb));
  };
  co_return co_await Await<ExistsResults>(std::move(start));
}

asio::awaitable<GetResults> BatchGet(Engine& engine, std::span<const GetEntry> entries) {
  auto start = [&engine, entries](Completion<GetResults> cb) {
    engine.AsyncBatchGet(entries, std::move(cb));
  };
  co_return co_await Await<GetResults>(std::move(start));
}

asio::awaitable<PutResults> BatchPut(Engine& engine, std::span<const PutEntry> entries) {
  auto start = [&engine, entries](Completion<PutResults> cb) {
    engine.AsyncBatchPut(entries, std::move(cb));
  };
  co_return co_await Await<PutResults>(std::move(start));
}

asio::awaitable<DeleteResults> Delete(Engine& engine, std::span<const std::string_view> keys) {
  auto start = [&engine, keys](Completion<DeleteResults> cb) {
    engine.AsyncDelete(keys, std::move(cb));
  };
  co_return co_await Await<DeleteResults>(std::move(start));
}

asio::awaitable<GetResults> BatchXferForServer(Engine& engine, size_t server, XferOp op,
                                               std::span<const XferEntry> entries) {
  auto start = [&engine, server, op, entries](Completion<GetResults> cb) {
    engine.AsyncBatchXferForServer(server, op, entries, std::move(cb));
  };
  co_return co_await Await<GetResults>(std::move(start));
}

}  // namespace memkv::co
