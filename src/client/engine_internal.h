#pragma once
// What the engine shares with its own tests and the C ABI, not with users.

#include <chrono>
#include <cstddef>

#include "common/result.h"
#include "memkv/engine.h"

namespace memkv::client {

// The public code of a client or server error.
Code CodeFromError(const error_code& ec);

// The wait before the next connect after `failures` failed ones in a row:
// `base`, doubling, at most `max`.
std::chrono::milliseconds BackoffAfter(int failures, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max);

// Server links (connection sets) alive in this process (tests).
size_t LiveServerLinks();

}  // namespace memkv::client
