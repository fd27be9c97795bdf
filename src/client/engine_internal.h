#pragma once
// What the engine shares with its own tests and the C ABI, not with users.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "memkv/engine.h"

namespace memkv::client {

// The public code of a client or server error.
Code CodeFromError(const error_code& ec);

// The wait before the next connect after `failures` failed ones in a row:
// `base`, doubling, at most `max`.
std::chrono::milliseconds BackoffAfter(int failures, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max);

// One server's answer to List.
struct ServerPage {
  std::vector<ListEntry> entries;
  std::string cursor;  // empty: the server has no more
};

// Engine::List's merge: the servers' entries after `cursor` in byte order
// (a key on several servers once), at most `limit` of them, and none past
// the last key of a server that may have more (so no key of it is skipped).
// The page's cursor is its last key when any server may have more (a
// server's cursor set, or entries left over), else empty.
ListPage MergePages(std::vector<ServerPage> pages, std::string_view cursor, size_t limit);

// Server links (connection sets) alive in this process (tests).
size_t LiveServerLinks();

}  // namespace memkv::client
