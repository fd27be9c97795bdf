#pragma once
// Sizes in human units, as config files and command lines write them.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace memkv {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;
inline constexpr uint64_t kTiB = 1024 * kGiB;

// Parses "2 MiB", "247 GiB", "256MiB", "1.5 GiB", "4096" (bytes) into bytes.
// Binary units: KiB MiB GiB TiB, and the short K M G T. Decimal units: KB MB
// GB TB. B for bytes. Units are case-insensitive; space before the unit is
// optional. A fractional value must come out as a whole number of bytes.
Result<uint64_t> ParseSize(std::string_view text);

// Prints bytes in the largest binary unit not above it: "2 MiB", "512 B";
// a value that is not a whole number of that unit gets two decimals
// ("1.50 GiB", "4.00 KiB" for 4097 bytes).
std::string FormatSize(uint64_t bytes);

}  // namespace memkv
