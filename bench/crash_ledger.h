#pragma once
// The ledger of memkv-crash: for every key, what its last acknowledged put
// or delete left, the operation sent and not acknowledged when the server
// was killed, and the verdict on what the key reads back after the restart.
//
// A value is named by a seed: its size (CrashValueSize) and its bytes
// (verify.h's pattern of key number and seed) are functions of it, so the
// ledger keeps numbers, never values, however long the run.
//
// Pure: no I/O and no locks. The tool gives each writer thread its own keys,
// so a key's ledger is touched by one thread at a time (its writer during a
// cycle, the main thread between cycles).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace memkv::bench {

// The size of the value put with `seed`: log-uniform from 1 byte to
// `max_size` (sizes near every power of two, tiny values as often as large
// ones), so values of one partial page, many pages and (with a stripe
// unit below max_size) several stripes all occur.
inline uint64_t CrashValueSize(uint64_t seed, uint64_t max_size) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  int max_bits = 0;
  while (max_bits < 63 && (uint64_t{1} << (max_bits + 1)) <= max_size) ++max_bits;
  const int bits = static_cast<int>(z % static_cast<uint64_t>(max_bits + 1));
  const uint64_t low = uint64_t{1} << bits;
  const uint64_t size = low + ((z >> 8) % low);  // [2^bits, 2^(bits+1))
  return size < max_size ? size : max_size;
}

// What a key holds: nothing ever acknowledged, a value, or a delete.
struct KeyState {
  enum class Kind : uint8_t { kNever, kValue, kDeleted };
  Kind kind = Kind::kNever;
  uint64_t seed = 0;  // kValue only

  static KeyState Value(uint64_t seed) { return {Kind::kValue, seed}; }
  static KeyState Deleted() { return {Kind::kDeleted, 0}; }
  bool operator==(const KeyState&) const = default;
};

struct KeyLedger {
  KeyState acked;                  // left by the last acknowledged operation
  std::optional<KeyState> flight;  // sent, not acknowledged: its outcome unknown
  // Every seed ever put to this key and the cycle it was sent in, to tell
  // an older value that came back from bytes never given.
  struct Given {
    uint64_t seed;
    uint32_t cycle;
  };
  std::vector<Given> given;

  void BeginPut(uint64_t seed, uint32_t cycle) {
    flight = KeyState::Value(seed);
    given.push_back({seed, cycle});
  }
  void BeginDelete() { flight = KeyState::Deleted(); }
  // True when `acked` was not acknowledged but seen after a kill (an
  // operation in flight that landed): reads of it are not counted as
  // checks of an acknowledged operation.
  bool seen_only = false;

  // The operation in flight was acknowledged.
  void Ack() {
    acked = *flight;
    flight.reset();
    seen_only = false;
  }
};

enum class Verdict {
  kOk,
  kLost,         // an acknowledged put is missing, or an older value is back
  kWrong,        // bytes that were never put to this key
  kResurrected,  // a deleted key (or a put seen as not landed) has a value again
  kUnreadable,   // the read failed (checksum mismatch, I/O error, ...)
};

inline const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kLost:
      return "lost";
    case Verdict::kWrong:
      return "wrong";
    case Verdict::kResurrected:
      return "resurrected";
    case Verdict::kUnreadable:
      return "unreadable";
  }
  return "?";
}

// What a read after the restart found.
enum class ReadKind { kMiss, kValue, kError };

struct Judgement {
  Verdict verdict = Verdict::kOk;
  // What the key holds from now on (the in-flight operation resolved); the
  // ledger's acknowledged state when the verdict is not ok.
  KeyState now;
  // Which promise the read checked (for the counts): an acknowledged value
  // read back, an acknowledged delete read as a miss, an in-flight operation
  // whose outcome was seen.
  bool checked_acked_put = false;
  bool checked_acked_delete = false;
  bool resolved_flight = false;
  std::string expected, found;  // set when the verdict is not ok
};

inline std::string DescribeState(const KeyState& s, uint64_t max_size) {
  switch (s.kind) {
    case KeyState::Kind::kNever:
      return "a miss (never acknowledged a put)";
    case KeyState::Kind::kDeleted:
      return "a miss (deleted)";
    case KeyState::Kind::kValue:
      return "seed " + std::to_string(s.seed) + " (" +
             std::to_string(CrashValueSize(s.seed, max_size)) + " bytes)";
  }
  return "?";
}

// After an ok verdict: what the key holds from now on.
inline void Settle(KeyLedger& k, const Judgement& j) {
  if (k.flight && j.now == *k.flight) {
    k.acked = j.now;
    k.seen_only = true;
  }
  k.flight.reset();
}

// Judges a read of key `k`. For a value, `holds(seed)` says whether the
// bytes read are exactly the value of that seed (size and bytes); `size`
// and `error` describe what was read for the message.
inline Judgement Judge(const KeyLedger& k, ReadKind kind, uint64_t size, const std::string& error,
                       const std::function<bool(uint64_t)>& holds, uint64_t max_size) {
  using Kind = KeyState::Kind;
  Judgement j;
  j.now = k.acked;
  auto expect = [&] {
    std::string e = DescribeState(k.acked, max_size);
    if (k.flight) e += " or, in flight at the kill, " + DescribeState(*k.flight, max_size);
    return e;
  };
  auto fail = [&](Verdict v, std::string found) {
    j.verdict = v;
    j.now = k.acked;
    j.expected = expect();
    j.found = std::move(found);
    j.checked_acked_put = j.checked_acked_delete = j.resolved_flight = false;
    return j;
  };
  if (kind == ReadKind::kError) return fail(Verdict::kUnreadable, "an error: " + error);

  if (kind == ReadKind::kMiss) {
    if (k.flight && k.flight->kind == Kind::kDeleted) {
      j.now = KeyState::Deleted();
      j.resolved_flight = true;
      return j;
    }
    if (k.acked.kind == Kind::kValue) return fail(Verdict::kLost, "a miss");
    // The put in flight (if any) did not land.
    j.resolved_flight = k.flight.has_value();
    j.checked_acked_delete = k.acked.kind == Kind::kDeleted && !k.flight && !k.seen_only;
    return j;
  }

  // A value: the acknowledged one, the one in flight, or a failure.
  if (k.acked.kind == Kind::kValue && holds(k.acked.seed)) {
    j.checked_acked_put = !k.flight && !k.seen_only;
    j.resolved_flight = k.flight.has_value();
    return j;
  }
  if (k.flight && k.flight->kind == Kind::kValue && holds(k.flight->seed)) {
    j.now = *k.flight;
    j.resolved_flight = true;
    return j;
  }
  for (auto it = k.given.rbegin(); it != k.given.rend(); ++it) {
    if (!holds(it->seed)) continue;
    const std::string found = "seed " + std::to_string(it->seed) + " (" + std::to_string(size) +
                              " bytes), put in cycle " + std::to_string(it->cycle);
    if (k.acked.kind == Kind::kValue) return fail(Verdict::kLost, "an older value: " + found);
    return fail(Verdict::kResurrected, found);
  }
  return fail(Verdict::kWrong, std::to_string(size) + " bytes matching no value put to this key");
}

}  // namespace memkv::bench
