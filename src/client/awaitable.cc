#include "client/awaitable.h"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace memkv::client::co {

namespace {

// Starts a callback-form request and suspends until its callback, which is
// posted back to the awaiting coroutine's executor (holding work on it).
template <class T, class Start>
asio::awaitable<Result<T>> Await(Start start) {
  // Only a pointer travels through async_initiate: gcc 12 destroys
  // non-trivial arguments of use_awaitable's initiation twice.
  Start* p = &start;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<T>)>(
      [](auto handler, Start* start) {
        auto work = asio::prefer(asio::get_associated_executor(handler),
                                 asio::execution::outstanding_work.tracked);
        (*start)(Callback<T>([h = std::move(handler), work = std::move(work)](Result<T> r) mutable {
          asio::post(asio::append(std::move(h), std::move(r)));
        }));
      },
      asio::use_awaitable, p);
}

}  // namespace

asio::awaitable<Result<Connection>> Connect(ConnectionOptions options,
                                            std::shared_ptr<IoThreads> threads) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [options = std::move(options), threads = std::move(threads)](Callback<Connection> cb) mutable {
        Connection::AsyncConnect(options, std::move(threads), std::move(cb));
      };
  co_return co_await Await<Connection>(std::move(start));
}

asio::awaitable<Status> Ping(Connection& conn, Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout](Callback<void> cb) {
    conn.AsyncPing(timeout, std::move(cb));
  };
  co_return co_await Await<void>(std::move(start));
}

asio::awaitable<Result<std::vector<KeyInfo>>> Exists(Connection& conn, std::vector<std::string> keys,
                                                     Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, keys = std::move(keys)](Callback<std::vector<KeyInfo>> cb) mutable {
        conn.AsyncExists(std::move(keys), timeout, std::move(cb));
      };
  co_return co_await Await<std::vector<KeyInfo>>(std::move(start));
}

asio::awaitable<Result<std::vector<proto::StatusCode>>> Delete(Connection& conn,
                                                               std::vector<std::string> keys,
                                                               Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, keys = std::move(keys)](Callback<std::vector<proto::StatusCode>> cb) mutable {
        conn.AsyncDelete(std::move(keys), timeout, std::move(cb));
      };
  co_return co_await Await<std::vector<proto::StatusCode>>(std::move(start));
}

asio::awaitable<Result<std::vector<proto::StatusCode>>> Put(Connection& conn, PutBatch batch,
                                                            Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, batch = std::move(batch)](Callback<std::vector<proto::StatusCode>> cb) mutable {
        conn.AsyncPut(std::move(batch), timeout, std::move(cb));
      };
  co_return co_await Await<std::vector<proto::StatusCode>>(std::move(start));
}

asio::awaitable<Result<std::vector<GetResult>>> Get(Connection& conn, std::vector<GetEntry> entries,
                                                    Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, entries = std::move(entries)](Callback<std::vector<GetResult>> cb) mutable {
        conn.AsyncGet(std::move(entries), timeout, std::move(cb));
      };
  co_return co_await Await<std::vector<GetResult>>(std::move(start));
}

asio::awaitable<Status> RegisterRegion(Connection& conn, std::shared_ptr<SharedRegion> region,
                                       Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, region = std::move(region)](Callback<void> cb) mutable {
    conn.AsyncRegisterRegion(std::move(region), timeout, std::move(cb));
  };
  co_return co_await Await<void>(std::move(start));
}

asio::awaitable<Status> ReleaseRegion(Connection& conn, std::shared_ptr<SharedRegion> region,
                                      Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, region = std::move(region)](Callback<void> cb) mutable {
    conn.AsyncReleaseRegion(std::move(region), timeout, std::move(cb));
  };
  co_return co_await Await<void>(std::move(start));
}

asio::awaitable<Result<std::vector<proto::StatusCode>>> PutShm(Connection& conn, ShmPutBatch batch,
                                                               Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, batch = std::move(batch)](Callback<std::vector<proto::StatusCode>> cb) mutable {
        conn.AsyncPutShm(std::move(batch), timeout, std::move(cb));
      };
  co_return co_await Await<std::vector<proto::StatusCode>>(std::move(start));
}

asio::awaitable<Result<std::vector<GetResult>>> GetShm(Connection& conn, ShmGetBatch batch,
                                                       Duration timeout) {
  // A named lambda, not a temporary: gcc 12 destroys temporaries of a co_await
  // expression twice.
  auto start = [&conn, timeout, batch = std::move(batch)](Callback<std::vector<GetResult>> cb) mutable {
        conn.AsyncGetShm(std::move(batch), timeout, std::move(cb));
      };
  co_return co_await Await<std::vector<GetResult>>(std::move(start));
}

}  // namespace memkv::client::co
