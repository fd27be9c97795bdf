#pragma once
// The awaitable forms of the Connection API, for callers on an Asio loop:
//   auto conn = co_await client::co::Connect(options);
//   auto infos = co_await client::co::Exists(*conn, {"a", "b"});
// Each resumes the awaiting coroutine on its own executor (never on the
// connection's I/O thread), and keeps that executor's io_context from
// running out of work while the request is in flight. Including this header
// brings in Asio: link memkv::boost_asio too.

#include <boost/asio/awaitable.hpp>

#include "client/connection.h"

namespace memkv::client::co {

namespace asio = boost::asio;

asio::awaitable<Result<Connection>> Connect(ConnectionOptions options,
                                            std::shared_ptr<IoThreads> threads = nullptr);
asio::awaitable<Status> Ping(Connection& conn, Duration timeout = Duration{0});
asio::awaitable<Result<std::vector<KeyInfo>>> Exists(Connection& conn, std::vector<std::string> keys,
                                                     Duration timeout = Duration{0});
asio::awaitable<Result<std::vector<proto::StatusCode>>> Delete(Connection& conn,
                                                               std::vector<std::string> keys,
                                                               Duration timeout = Duration{0});
asio::awaitable<Result<std::vector<proto::StatusCode>>> Put(Connection& conn, PutBatch batch,
                                                            Duration timeout = Duration{0});
asio::awaitable<Result<std::vector<GetResult>>> Get(Connection& conn, std::vector<GetEntry> entries,
                                                    Duration timeout = Duration{0});
asio::awaitable<Status> RegisterRegion(Connection& conn, std::shared_ptr<SharedRegion> region,
                                       Duration timeout = Duration{0});
asio::awaitable<Status> ReleaseRegion(Connection& conn, std::shared_ptr<SharedRegion> region,
                                      Duration timeout = Duration{0});
asio::awaitable<Result<std::vector<proto::StatusCode>>> PutShm(Connection& conn, ShmPutBatch batch,
                                                               Duration timeout = Duration{0});
asio::awaitable<Result<std::vector<GetResult>>> GetShm(Connection& conn, ShmGetBatch batch,
                                                       Duration timeout = Duration{0});

}  // namespace memkv::client::co
