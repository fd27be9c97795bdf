#pragma once
// Rendezvous (highest random weight) hashing: every client ranks the servers
// for a key the same way with no shared state, and removing one of N servers
// moves only the keys that ranked it first.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace memkv {

// The weight of a server for a key. Both inputs are 64-bit hashes.
uint64_t HrwScore(uint64_t key_hash, uint64_t server_hash);

// The hash a key is routed by (XXH3 of its bytes).
uint64_t HrwKeyHash(std::string_view key);
// The hash a numeric block id is routed by (a 64-bit mix, no allocation).
uint64_t HrwBlockHash(uint64_t block);

// A fixed list of servers, identified by name ("host:port"). Constant after
// construction, so any number of threads may route through one instance.
class Rendezvous {
 public:
  explicit Rendezvous(std::vector<std::string> servers);

  size_t size() const { return servers_.size(); }
  const std::string& server(size_t i) const { return servers_[i]; }

  // Index of the top-ranked server for a key hash; size() must be > 0.
  size_t Pick(uint64_t key_hash) const;
  size_t PickKey(std::string_view key) const { return Pick(HrwKeyHash(key)); }

  // Writes the indices of all servers, best first, into `out`
  // (out.size() == size()): the order a client falls back through.
  void Rank(uint64_t key_hash, std::span<size_t> out) const;

 private:
  std::vector<std::string> servers_;
  std::vector<uint64_t> server_hashes_;
};

}  // namespace memkv
