#include "common/size.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <limits>

namespace memkv {
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr std::array<Unit, 14> kUnits = {{
    {"b", 1},
    {"k", kKiB}, {"kib", kKiB}, {"kb", 1000},
    {"m", kMiB}, {"mib", kMiB}, {"mb", 1000 * 1000},
    {"g", kGiB}, {"gib", kGiB}, {"gb", 1000ull * 1000 * 1000},
    {"t", kTiB}, {"tib", kTiB}, {"tb", 1000ull * 1000 * 1000 * 1000},
    {"", 1},
}};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  if (text.empty()) return common::errc::empty_value;

  // Number: digits, optionally one '.' and more digits.
  size_t i = 0;
  uint64_t whole = 0;
  bool any_digit = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (whole > (std::numeric_limits<uint64_t>::max() - d) / 10) return common::errc::out_of_range;
    whole = whole * 10 + d;
    any_digit = true;
    ++i;
  }
  // Fraction kept as numerator/denominator to stay exact.
  uint64_t frac_num = 0, frac_den = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (frac_den < 1'000'000'000'000ull) {
        frac_num = frac_num * 10 + static_cast<uint64_t>(text[i] - '0');
        frac_den *= 10;
      }
      any_digit = true;
      ++i;
    }
  }
  if (!any_digit) return common::errc::bad_number;

  std::string_view rest = text.substr(i);
  while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
  std::string lower;
  for (char c : rest) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));

  for (const Unit& u : kUnits) {
    if (lower != u.name) continue;
    if (whole != 0 && u.factor > std::numeric_limits<uint64_t>::max() / whole)
      return common::errc::out_of_range;
    uint64_t bytes = whole * u.factor;
    if (frac_num != 0) {
      // frac_num / frac_den * factor must be whole bytes.
      const unsigned __int128 scaled = static_cast<unsigned __int128>(frac_num) * u.factor;
      if (scaled % frac_den != 0) return common::errc::bad_number;
      const unsigned __int128 add = scaled / frac_den;
      if (add > std::numeric_limits<uint64_t>::max() - bytes) return common::errc::out_of_range;
      bytes += static_cast<uint64_t>(add);
    }
    return bytes;
  }
  return common::errc::bad_unit;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<std::pair<uint64_t, const char*>, 4> kSteps = {{
      {kTiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"},
  }};
  char buf[48];
  for (const auto& [factor, name] : kSteps) {
    if (bytes < factor) continue;
    if (bytes % factor == 0) {
      std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(bytes / factor),
                    name);
    } else {
      // Two decimals mark a value that is not a whole number of the unit.
      std::snprintf(buf, sizeof buf, "%.2f %s",
                    static_cast<double>(bytes) / static_cast<double>(factor), name);
    }
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace memkv
