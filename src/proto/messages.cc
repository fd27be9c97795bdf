#include "proto/messages.h"

#include <algorithm>
#include <cstring>

#include "common/checksum.h"

namespace memkv::proto {
namespace {

constexpr uint32_t kKnownRails = kRailTcp | kRailShm | kRailRdma;

// Smallest encoding of one entry of each kind: a bound on how many entries a
// payload can hold, checked before anything is reserved for them.
constexpr size_t kMinKeyBytes = 2;  // the length alone: an empty key must reach its own error
constexpr size_t kMinReadEntry = kMinKeyBytes + 8 + 8 + 8 + 1;
constexpr size_t kMinWriteEntry = kMinKeyBytes + 8 + 8 + 4 + 1;
constexpr size_t kMinRenameEntry = 2 * kMinKeyBytes;

constexpr size_t kExistsResultBytes = 1 + 8 + 8;
constexpr size_t kListEntryBytes = kMinKeyBytes + 8 + 8;

Status ToStatus(errc e) {
  if (e == errc::ok) return {};
  return e;
}

void PutHead(Writer& w, const BatchHead& b) {
  w.U32(b.total);
  w.U32(b.first);
  w.U32(b.count);
}

// Reads a batch head and checks that `count` entries of at least
// `min_entry` bytes can be in what is left.
errc GetHead(Reader& r, BatchHead& b, size_t min_entry, const DecodeLimits& limits) {
  b.total = r.U32();
  b.first = r.U32();
  b.count = r.U32();
  if (!r.ok()) return r.error();
  if (b.total > limits.max_batch_entries || b.count > limits.max_batch_entries)
    return errc::too_many_entries;
  if (uint64_t{b.first} + b.count > b.total) return errc::bad_batch_range;
  if (uint64_t{b.count} * min_entry > r.remaining()) return errc::truncated;
  return errc::ok;
}

void PutKey(Writer& w, std::string_view key) { w.Str16(key); }

std::string_view GetKey(Reader& r) {
  const std::string_view key = r.Str16();
  if (!r.ok()) return key;
  if (key.empty()) r.Fail(errc::empty_key);
  else if (key.size() > kMaxKeySize) r.Fail(errc::key_too_long);
  return key;
}

std::string_view GetName(Reader& r, size_t limit) {
  const std::string_view s = r.Str16();
  if (r.ok() && s.size() > limit) r.Fail(errc::string_too_long);
  return s;
}

void PutLocation(Writer& w, const Location& l) {
  w.U8(static_cast<uint8_t>(l.kind));
  if (l.kind == LocationKind::kShm || l.kind == LocationKind::kRdma) {
    w.U32(l.region);
    w.U64(l.address);
    w.U64(l.capacity);
  }
}

Location GetLocation(Reader& r) {
  Location l;
  const uint8_t kind = r.U8();
  if (!r.ok()) return l;
  if (kind > kMaxLocationKind) {
    r.Fail(errc::bad_location);
    return l;
  }
  l.kind = static_cast<LocationKind>(kind);
  if (l.kind == LocationKind::kShm || l.kind == LocationKind::kRdma) {
    l.region = r.U32();
    l.address = r.U64();
    l.capacity = r.U64();
  }
  return l;
}

StatusCode GetStatus(Reader& r) {
  const uint8_t s = r.U8();
  if (r.ok() && s > kMaxStatus) r.Fail(errc::bad_status);
  return static_cast<StatusCode>(s);
}

void PutReplyHead(Writer& w, const ReplyHead& h) {
  w.U8(static_cast<uint8_t>(h.status));
  w.Str16(h.message.substr(0, kMaxMessageSize));
}

// Decodes the head of a reply. Returns false when the body is to be skipped
// (an error reply has none, or the head itself is bad).
bool GetReplyHead(Reader& r, ReplyHead& h) {
  h.status = GetStatus(r);
  h.message = GetName(r, kMaxMessageSize);
  return r.ok() && h.status == StatusCode::kOk;
}

void PutNonce(Writer& w, const Nonce& n) { w.Raw(n.data(), n.size()); }

void GetNonce(Reader& r, Nonce& n) {
  Bytes b = r.Raw(n.size());
  if (r.ok()) std::memcpy(n.data(), b.data(), b.size());
}

}  // namespace

Tag AttachProof(const AuthKey& session_key, const ClientId& client_id) {
  static constexpr char kDomain[] = "memkv-attach-v2";
  Buffer msg;
  Writer w(msg);
  w.Raw(kDomain, sizeof kDomain - 1);
  w.Raw(client_id.data(), client_id.size());
  return session_key.Hmac(msg, {});
}

uint64_t PieceSumAt(Bytes sums, size_t i) {
  uint64_t v = 0;
  for (size_t b = 0; b < 8; ++b) v |= uint64_t{std::to_integer<uint8_t>(sums[8 * i + b])} << (8 * b);
  return v;
}

std::vector<uint64_t> PieceSumsOf(Bytes sums) {
  std::vector<uint64_t> out(sums.size() / 8);
  for (size_t i = 0; i < out.size(); ++i) out[i] = PieceSumAt(sums, i);
  return out;
}

uint64_t ReadResult::page_sum(size_t i) const { return PieceSumAt(page_sums, i); }

size_t EncodedSize(const ReadResult& r) { return kReadResultSize + r.page_sums.size(); }

namespace {
bool SumsMatch(uint64_t checksum, Bytes sums, Bytes bytes) {
  const size_t pieces = sums.size() / 8;
  if (pieces == 0) return Xxh3(bytes.data(), bytes.size()) == checksum;
  if (pieces != (bytes.size() + kPageSize - 1) / kPageSize) return false;
  for (size_t i = 0; i < pieces; ++i) {
    const Bytes page = bytes.subspan(i * kPageSize, std::min(kPageSize, bytes.size() - i * kPageSize));
    if (Xxh3(page.data(), page.size()) != PieceSumAt(sums, i)) return false;
  }
  return true;
}
}  // namespace

void PieceCheck::Landed(size_t filled) {
  while (ok_ && verified_ < filled && (filled - verified_ >= kPageSize || filled == len_)) {
    const size_t n = std::min<size_t>(kPageSize, len_ - verified_);
    ok_ = Xxh3(p_ + verified_, n) == PieceSumAt(sums_, verified_ / kPageSize);
    verified_ += n;
  }
}

bool ChecksumsMatch(const ReadResult& r, Bytes delivered) {
  return delivered.size() == r.length && SumsMatch(r.checksum, r.page_sums, delivered);
}

bool ChecksumsMatch(const WriteEntry& e, Bytes value) {
  return value.size() == e.value_len && SumsMatch(e.checksum, e.piece_sums, value);
}

// ---- Hello ----

void Encode(const Hello& m, Buffer& out) {
  Writer w(out);
  w.U16(m.max_version);
  PutNonce(w, m.nonce);
}

Status Decode(Bytes control, Hello& m) {
  Reader r(control);
  m.max_version = r.U16();
  if (r.ok() && m.max_version == 0) r.Fail(errc::bad_version);
  GetNonce(r, m.nonce);
  return ToStatus(r.Finish());
}

void Encode(const HelloReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  w.U16(m.version);
  PutNonce(w, m.nonce);
}

Status Decode(Bytes control, HelloReply& m) {
  Reader r(control);
  if (GetReplyHead(r, m.head)) {
    m.version = r.U16();
    if (r.ok() && m.version == 0) r.Fail(errc::bad_version);
    GetNonce(r, m.nonce);
  }
  return ToStatus(r.Finish());
}

Status CheckKey(std::string_view key) {
  if (key.empty()) return errc::empty_key;
  if (key.size() > kMaxKeySize) return errc::key_too_long;
  return {};
}

// ---- Attach ----

void Encode(const AttachRequest& m, Buffer& out) {
  Writer w(out);
  w.Raw(m.client_id.data(), m.client_id.size());
  w.U32(m.rails);
  w.Str16(m.host_id);
  w.Str16(m.rdma_endpoint);
  w.Raw(m.proof.data(), m.proof.size());
}

Status Decode(Bytes control, AttachRequest& m) {
  Reader r(control);
  Bytes id = r.Raw(m.client_id.size());
  if (r.ok()) std::memcpy(m.client_id.data(), id.data(), id.size());
  m.rails = r.U32();
  if (r.ok() && (m.rails & ~kKnownRails)) r.Fail(errc::bad_flags);
  m.host_id = GetName(r, kMaxNameSize);
  m.rdma_endpoint = GetName(r, kMaxNameSize);
  Bytes proof = r.Raw(m.proof.size());
  if (r.ok()) std::memcpy(m.proof.data(), proof.data(), proof.size());
  return ToStatus(r.Finish());
}

void Encode(const AttachReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  w.U16(m.version);
  w.U64(m.session_id);
  w.U32(m.rails);
  w.Str16(m.host_id);
  w.Str16(m.unix_socket);
  w.U64(m.max_value_size);
  w.U32(m.max_batch_entries);
  w.U32(m.max_inflight);
  w.U32(m.features);
  w.Str16(m.rdma_endpoint);
}

Status Decode(Bytes control, AttachReply& m) {
  Reader r(control);
  if (GetReplyHead(r, m.head)) {
    m.version = r.U16();
    if (r.ok() && m.version == 0) r.Fail(errc::bad_version);
    m.session_id = r.U64();
    m.rails = r.U32();
    if (r.ok() && (m.rails & ~kKnownRails)) r.Fail(errc::bad_flags);
    m.host_id = GetName(r, kMaxNameSize);
    m.unix_socket = GetName(r, kMaxNameSize);
    m.max_value_size = r.U64();
    m.max_batch_entries = r.U32();
    m.max_inflight = r.U32();
    m.features = r.U32();
    m.rdma_endpoint = GetName(r, kMaxNameSize);
  }
  return ToStatus(r.Finish());
}

// ---- BatchRead ----

size_t EncodedSize(const ReadEntry& e) {
  const bool addressed = e.dest.kind == LocationKind::kShm || e.dest.kind == LocationKind::kRdma;
  return 2 + e.key.size() + 8 + 8 + 8 + 1 + (addressed ? 20 : 0);
}

void Encode(const BatchReadRequest& m, Buffer& out) {
  Writer w(out);
  PutHead(w, m.batch);
  for (const ReadEntry& e : m.entries) {
    PutKey(w, e.key);
    w.U64(e.offset);
    w.U64(e.length);
    w.U64(e.version);
    PutLocation(w, e.dest);
  }
}

Status Decode(Bytes control, Bytes data, BatchReadRequest& m, const DecodeLimits& limits) {
  Reader r(control);
  if (errc e = GetHead(r, m.batch, kMinReadEntry, limits); e != errc::ok) return e;
  m.entries.clear();
  m.entries.reserve(m.batch.count);
  for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) {
    ReadEntry& e = m.entries.emplace_back();
    e.key = GetKey(r);
    e.offset = r.U64();
    e.length = r.U64();
    e.version = r.U64();
    e.dest = GetLocation(r);
    // The server decides how bytes travel back; a client names only where.
    if (r.ok() && (e.dest.kind == LocationKind::kStream || e.dest.kind == LocationKind::kOpenStream))
      r.Fail(errc::bad_location);
    if (r.ok() && e.dest.kind != LocationKind::kInline && e.dest.capacity == 0)
      r.Fail(errc::length_mismatch);
  }
  if (r.ok() && !data.empty()) return errc::length_mismatch;  // a read request carries no data
  return ToStatus(r.Finish());
}

void Encode(const BatchReadReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  PutHead(w, m.batch);
  for (const ReadResult& res : m.results) {
    w.U8(static_cast<uint8_t>(res.status));
    w.U8(static_cast<uint8_t>(res.delivery));
    w.U64(res.value_size);
    w.U64(res.length);
    w.U64(res.version);
    w.U64(res.checksum);
    w.U32(static_cast<uint32_t>(res.pages()));
    w.Raw(res.page_sums.data(), res.page_sums.size());
  }
}

Status Decode(Bytes control, Bytes data, BatchReadReply& m, const DecodeLimits& limits) {
  MEMKV_TRY(Decode(control, uint64_t{data.size()}, m, limits));
  m.data = data;
  return {};
}

Status Decode(Bytes control, uint64_t data_len, BatchReadReply& m, const DecodeLimits& limits) {
  Reader r(control);
  m.results.clear();
  m.data = {};
  if (!GetReplyHead(r, m.head)) {
    if (r.ok() && data_len != 0) return errc::length_mismatch;
    return ToStatus(r.Finish());
  }
  if (errc e = GetHead(r, m.batch, kReadResultSize, limits); e != errc::ok) return e;
  m.results.reserve(m.batch.count);
  uint64_t inline_bytes = 0;
  for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) {
    ReadResult& res = m.results.emplace_back();
    res.status = GetStatus(r);
    const uint8_t d = r.U8();
    res.value_size = r.U64();
    res.length = r.U64();
    res.version = r.U64();
    res.checksum = r.U64();
    const uint32_t pages = r.U32();
    if (!r.ok()) break;
    // Page sums, when given, cover the delivered bytes 4 KiB at a time.
    if (pages != 0 && pages != (res.length + kPageSize - 1) / kPageSize) {
      r.Fail(errc::length_mismatch);
      break;
    }
    res.page_sums = r.Raw(size_t{pages} * 8);
    if (!r.ok()) break;
    if (d > kMaxDelivery) {
      r.Fail(errc::bad_location);
      break;
    }
    res.delivery = static_cast<Delivery>(d);
    if ((res.status == StatusCode::kOk) == (res.delivery == Delivery::kNone)) {
      r.Fail(errc::bad_location);
      break;
    }
    if (res.length > res.value_size) r.Fail(errc::length_mismatch);
    // Placed in steps: each step is checked against the page sums as it comes.
    if (res.delivery == Delivery::kPlacedInSteps && pages == 0) {
      r.Fail(errc::length_mismatch);
      break;
    }
    if (res.delivery == Delivery::kInline) {
      if (res.length > data_len - std::min<uint64_t>(inline_bytes, data_len)) {
        r.Fail(errc::length_mismatch);
        break;
      }
      inline_bytes += res.length;
    }
  }
  if (r.ok() && inline_bytes != data_len) return errc::length_mismatch;
  return ToStatus(r.Finish());
}

// ---- BatchWrite ----

size_t EncodedSize(const WriteEntry& e) {
  const bool addressed = e.src.kind == LocationKind::kShm || e.src.kind == LocationKind::kRdma;
  return 2 + e.key.size() + 8 + 8 + 4 + e.piece_sums.size() + 1 + (addressed ? 20 : 0);
}

void Encode(const BatchWriteRequest& m, Buffer& out) {
  Writer w(out);
  PutHead(w, m.batch);
  for (const WriteEntry& e : m.entries) {
    PutKey(w, e.key);
    w.U64(e.value_len);
    w.U64(e.checksum);
    w.U32(static_cast<uint32_t>(e.piece_sums.size() / 8));
    w.Raw(e.piece_sums.data(), e.piece_sums.size());
    PutLocation(w, e.src);
  }
}

Status Decode(Bytes control, Bytes data, BatchWriteRequest& m, const DecodeLimits& limits) {
  MEMKV_TRY(Decode(control, uint64_t{data.size()}, m, limits));
  m.data = data;
  return {};
}

Status Decode(Bytes control, uint64_t data_len, BatchWriteRequest& m, const DecodeLimits& limits) {
  Reader r(control);
  if (errc e = GetHead(r, m.batch, kMinWriteEntry, limits); e != errc::ok) return e;
  m.entries.clear();
  m.entries.reserve(m.batch.count);
  m.data = {};
  uint64_t inline_bytes = 0;
  for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) {
    WriteEntry& e = m.entries.emplace_back();
    e.key = GetKey(r);
    e.value_len = r.U64();
    e.checksum = r.U64();
    const uint32_t pieces = r.U32();
    if (!r.ok()) break;
    // Piece sums, when given, cover the value 4 KiB at a time.
    if (pieces != 0 && pieces != (e.value_len + kPageSize - 1) / kPageSize) {
      r.Fail(errc::length_mismatch);
      break;
    }
    e.piece_sums = r.Raw(size_t{pieces} * 8);
    e.src = GetLocation(r);
    if (!r.ok()) break;
    if (e.src.kind == LocationKind::kOpenStream) {
      // Its length and checksum come with its last chunk.
      if (e.value_len != 0 || e.checksum != 0) r.Fail(errc::length_mismatch);
    } else if (e.value_len == 0) {
      r.Fail(errc::zero_length_value);
    } else if (e.src.kind == LocationKind::kInline) {
      // Inline bytes must be in this frame: bounded by what the frame holds.
      if (e.value_len > data_len - std::min<uint64_t>(inline_bytes, data_len)) {
        r.Fail(errc::length_mismatch);
      } else {
        inline_bytes += e.value_len;
      }
    } else if (e.src.kind != LocationKind::kStream && e.src.capacity < e.value_len) {
      r.Fail(errc::length_mismatch);
    }
  }
  if (r.ok() && inline_bytes != data_len) return errc::length_mismatch;
  return ToStatus(r.Finish());
}

void Encode(const StatusReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  PutHead(w, m.batch);
  for (StatusCode s : m.statuses) w.U8(static_cast<uint8_t>(s));
}

Status Decode(Bytes control, StatusReply& m, const DecodeLimits& limits) {
  Reader r(control);
  m.statuses.clear();
  if (GetReplyHead(r, m.head)) {
    if (errc e = GetHead(r, m.batch, 1, limits); e != errc::ok) return e;
    m.statuses.reserve(m.batch.count);
    for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) m.statuses.push_back(GetStatus(r));
  }
  return ToStatus(r.Finish());
}

// ---- Exists / Delete ----

void Encode(const KeysRequest& m, Buffer& out) {
  Writer w(out);
  PutHead(w, m.batch);
  for (std::string_view k : m.keys) PutKey(w, k);
}

Status Decode(Bytes control, KeysRequest& m, const DecodeLimits& limits) {
  Reader r(control);
  if (errc e = GetHead(r, m.batch, kMinKeyBytes, limits); e != errc::ok) return e;
  m.keys.clear();
  m.keys.reserve(m.batch.count);
  for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) m.keys.push_back(GetKey(r));
  return ToStatus(r.Finish());
}

void Encode(const ExistsReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  PutHead(w, m.batch);
  for (const ExistsResult& res : m.results) {
    w.U8(static_cast<uint8_t>(res.status));
    w.U64(res.value_size);
    w.U64(res.version);
  }
}

Status Decode(Bytes control, ExistsReply& m, const DecodeLimits& limits) {
  Reader r(control);
  m.results.clear();
  if (GetReplyHead(r, m.head)) {
    if (errc e = GetHead(r, m.batch, kExistsResultBytes, limits); e != errc::ok) return e;
    m.results.reserve(m.batch.count);
    for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) {
      ExistsResult& res = m.results.emplace_back();
      res.status = GetStatus(r);
      res.value_size = r.U64();
      res.version = r.U64();
    }
  }
  return ToStatus(r.Finish());
}

// ---- small messages ----

void Encode(const ReplyHead& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m);
}

Status Decode(Bytes control, ReplyHead& m) {
  Reader r(control);
  GetReplyHead(r, m);
  return ToStatus(r.Finish());
}

void Encode(const Ping& m, Buffer& out) { Writer(out).U64(m.token); }

Status Decode(Bytes control, Ping& m) {
  Reader r(control);
  m.token = r.U64();
  return ToStatus(r.Finish());
}

void Encode(const ChunkHeader& m, Buffer& out) {
  Writer w(out);
  w.U32(m.entry);
  w.U32(m.seq);
  w.U64(m.offset);
  w.U8(m.last ? 1 : 0);
  if (m.checksum) w.U64(*m.checksum);
}

Status Decode(Bytes control, Bytes data, ChunkHeader& m) {
  Reader r(control);
  m.entry = r.U32();
  m.seq = r.U32();
  m.offset = r.U64();
  const uint8_t last = r.U8();
  if (r.ok() && last > 1) r.Fail(errc::bad_flags);
  m.last = last == 1;
  m.checksum.reset();
  // The optional checksum, on the last chunk only.
  if (r.ok() && m.last && r.remaining() == 8) m.checksum = r.U64();
  if (r.ok() && data.empty()) r.Fail(errc::length_mismatch);  // a chunk carries bytes
  return ToStatus(r.Finish());
}

void Encode(const PlacedStep& m, Buffer& out) {
  Writer w(out);
  w.U32(m.entry);
  w.U32(m.seq);
  w.U64(m.offset);
  w.U64(m.length);
  w.U8(m.last ? 1 : 0);
}

Status Decode(Bytes control, PlacedStep& m) {
  Reader r(control);
  m.entry = r.U32();
  m.seq = r.U32();
  m.offset = r.U64();
  m.length = r.U64();
  const uint8_t last = r.U8();
  if (r.ok() && last > 1) r.Fail(errc::bad_flags);
  m.last = last == 1;
  if (r.ok() && m.length == 0) r.Fail(errc::length_mismatch);  // a step places bytes
  if (r.ok() && m.offset + m.length < m.offset) r.Fail(errc::length_mismatch);
  return ToStatus(r.Finish());
}

void Encode(const RegisterRegion& m, Buffer& out) {
  Writer w(out);
  w.U32(m.region_id);
  w.U64(m.size);
}

Status Decode(Bytes control, RegisterRegion& m) {
  Reader r(control);
  m.region_id = r.U32();
  m.size = r.U64();
  if (r.ok() && m.size == 0) r.Fail(errc::length_mismatch);
  return ToStatus(r.Finish());
}

void Encode(const ReleaseRegion& m, Buffer& out) { Writer(out).U32(m.region_id); }

Status Decode(Bytes control, ReleaseRegion& m) {
  Reader r(control);
  m.region_id = r.U32();
  return ToStatus(r.Finish());
}

// ---- List / Capacity / Rename ----

void Encode(const ListRequest& m, Buffer& out) {
  Writer w(out);
  w.Str16(m.prefix);
  w.Str16(m.cursor);
  w.U32(m.limit);
}

Status Decode(Bytes control, ListRequest& m) {
  Reader r(control);
  m.prefix = GetName(r, kMaxKeySize);
  m.cursor = GetName(r, kMaxKeySize);
  m.limit = r.U32();
  if (r.ok() && m.limit == 0) r.Fail(errc::length_mismatch);
  return ToStatus(r.Finish());
}

void Encode(const ListReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  w.U32(static_cast<uint32_t>(m.entries.size()));
  for (const ListEntry& e : m.entries) {
    PutKey(w, e.key);
    w.U64(e.value_size);
    w.U64(e.version);
  }
  w.Str16(m.cursor);
}

Status Decode(Bytes control, ListReply& m) {
  Reader r(control);
  m.entries.clear();
  m.cursor = {};
  if (GetReplyHead(r, m.head)) {
    const uint32_t count = r.U32();
    if (r.ok() && uint64_t{count} * kListEntryBytes > r.remaining()) r.Fail(errc::truncated);
    if (r.ok()) m.entries.reserve(count);
    for (uint32_t i = 0; i < count && r.ok(); ++i) {
      ListEntry& e = m.entries.emplace_back();
      e.key = GetKey(r);
      e.value_size = r.U64();
      e.version = r.U64();
    }
    m.cursor = GetName(r, kMaxKeySize);
  }
  return ToStatus(r.Finish());
}

void Encode(const CapacityReply& m, Buffer& out) {
  Writer w(out);
  PutReplyHead(w, m.head);
  if (m.head.status != StatusCode::kOk) return;
  w.U64(m.total_bytes);
  w.U64(m.used_bytes);
  w.U64(m.keys);
  w.U64(m.max_value_size);
}

Status Decode(Bytes control, CapacityReply& m) {
  Reader r(control);
  if (GetReplyHead(r, m.head)) {
    m.total_bytes = r.U64();
    m.used_bytes = r.U64();
    m.keys = r.U64();
    m.max_value_size = r.U64();
  }
  return ToStatus(r.Finish());
}

void Encode(const RenameRequest& m, Buffer& out) {
  Writer w(out);
  PutHead(w, m.batch);
  for (const RenameEntry& e : m.entries) {
    PutKey(w, e.from);
    PutKey(w, e.to);
  }
}

Status Decode(Bytes control, RenameRequest& m, const DecodeLimits& limits) {
  Reader r(control);
  if (errc e = GetHead(r, m.batch, kMinRenameEntry, limits); e != errc::ok) return e;
  m.entries.clear();
  m.entries.reserve(m.batch.count);
  for (uint32_t i = 0; i < m.batch.count && r.ok(); ++i) {
    RenameEntry& e = m.entries.emplace_back();
    e.from = GetKey(r);
    e.to = GetKey(r);
  }
  return ToStatus(r.Finish());
}

// ---- planning ----

std::vector<Slice> PlanSlices(std::span<const uint64_t> cost, uint64_t overhead,
                              uint64_t max_payload) {
  std::vector<Slice> slices;
  Slice cur;
  uint64_t used = overhead;
  for (size_t i = 0; i < cost.size(); ++i) {
    if (cur.count > 0 && used + cost[i] > max_payload) {
      slices.push_back(cur);
      cur = Slice{static_cast<uint32_t>(i), 0};
      used = overhead;
    }
    used += cost[i];
    ++cur.count;
  }
  if (cur.count > 0) slices.push_back(cur);
  return slices;
}

}  // namespace memkv::proto
