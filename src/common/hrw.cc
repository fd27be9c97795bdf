#include "common/hrw.h"

#include <algorithm>
#include <numeric>

#include "common/checksum.h"

namespace memkv {
namespace {

// SplitMix64's finalizer: a bijection with full avalanche.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t kServerSeed = 0x6d656d6b762d6872ull;  // "memkv-hr"

}  // namespace

uint64_t HrwScore(uint64_t key_hash, uint64_t server_hash) {
  // Mixing the server hash in before the finalizer keeps scores of the same
  // key on different servers independent.
  return Mix(key_hash ^ Mix(server_hash));
}

uint64_t HrwKeyHash(std::string_view key) { return Xxh3(key); }
uint64_t HrwBlockHash(uint64_t block) { return Mix(block + 0x9e3779b97f4a7c15ull); }

Rendezvous::Rendezvous(std::vector<std::string> servers) : servers_(std::move(servers)) {
  server_hashes_.reserve(servers_.size());
  for (const std::string& s : servers_) server_hashes_.push_back(Xxh3(s, kServerSeed));
}

size_t Rendezvous::Pick(uint64_t key_hash) const {
  size_t best = 0;
  uint64_t best_score = 0;
  for (size_t i = 0; i < server_hashes_.size(); ++i) {
    const uint64_t score = HrwScore(key_hash, server_hashes_[i]);
    // Ties (astronomically rare) go to the lower index, the same everywhere.
    if (i == 0 || score > best_score) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

void Rendezvous::Rank(uint64_t key_hash, std::span<size_t> out) const {
  std::iota(out.begin(), out.end(), size_t{0});
  std::stable_sort(out.begin(), out.end(), [&](size_t a, size_t b) {
    return HrwScore(key_hash, server_hashes_[a]) > HrwScore(key_hash, server_hashes_[b]);
  });
}

}  // namespace memkv
