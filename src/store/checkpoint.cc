#include "store/checkpoint.h"

#include <algorithm>
#include <cstring>

#include "common/checksum.h"
#include "store/error.h"

namespace memkv::store {
namespace {

constexpr uint32_t kCheckpointMagic = 0x43564B4D;       // "MKVC" on disk
constexpr uint64_t kCheckpointSeed = 0x434B50544D4B56;  // checksum domain of checkpoints
constexpr size_t kChecksumOffset = kCheckpointHeaderSize - 8;
constexpr size_t kNodeHeaderSize = 16;
constexpr uint8_t kLeaf = 1;
constexpr uint8_t kInner = 2;
// Far more levels than any slot can hold (three items per page at least).
constexpr uint32_t kMaxHeight = 40;
// Bitmaps and trees beyond this are nonsense, and keep the sums below from
// overflowing.
constexpr uint64_t kMaxRegion = 1ull << 48;

using Reader = ByteReader<errc>;

uint64_t PagesFor(uint64_t bytes) { return (bytes + kPageSize - 1) / kPageSize; }
uint64_t RoundUp(uint64_t bytes) { return PagesFor(bytes) * kPageSize; }

std::string_view AsString(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

void EncodeEntry(Writer& w, std::string_view key, uint64_t value_size, uint64_t version,
                 uint16_t home, std::span<const Extent> extents,
                 std::span<const uint64_t> page_checksums) {
  // Key, version, size, extents and checksums as a journal put op lays them out.
  w.Str16(key);
  w.U64(version);
  w.U64(value_size);
  w.U16(static_cast<uint16_t>(extents.size()));
  for (const Extent& e : extents) {
    w.U16(e.drive);
    w.U64(e.drive_generation);
    w.U64(e.page);
    w.U32(e.pages);
    w.U16(e.table_pages);
    w.U64(e.table_checksum);
  }
  w.U16(static_cast<uint16_t>(page_checksums.size()));
  for (uint64_t c : page_checksums) w.U64(c);
  w.U16(home);
}

// False when the input is short or the entry is not one the writer takes
// (tombstones only from version 2 on).
bool DecodeEntry(Reader& r, CheckpointEntry& e, uint16_t version) {
  e.key = r.Str16();
  e.version = r.U64();
  e.value_size = r.U64();
  e.extents.resize(r.U16());
  for (Extent& x : e.extents) {
    x.drive = r.U16();
    x.drive_generation = r.U64();
    x.page = r.U64();
    x.pages = r.U32();
    x.table_pages = r.U16();
    x.table_checksum = r.U64();
  }
  e.page_checksums.resize(r.U16());
  for (uint64_t& c : e.page_checksums) c = r.U64();
  e.home = r.U16();
  if (!r.ok() || e.key.empty()) return false;
  if (e.tombstone()) return version >= 2 && e.page_checksums.empty();
  return e.value_size > 0 && !e.extents.empty();
}

// Where a node starts and the first key under it.
struct NodeRef {
  uint64_t offset;
  std::string_view first_key;
};

// Appends the nodes of one level holding `n` items, in order, to `out`:
// as many items per page as fit, an item too big for a page alone in a node
// of its own. Returns each node's offset and the index of its first item.
std::vector<std::pair<uint64_t, size_t>> AppendLevel(Buffer& out, uint8_t kind, uint8_t level,
                                                     size_t n,
                                                     const std::function<Bytes(size_t)>& item) {
  std::vector<std::pair<uint64_t, size_t>> nodes;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    uint64_t payload = 0;
    while (j < n) {
      const uint64_t size = item(j).size();
      if (j > i && kNodeHeaderSize + payload + size > kPageSize) break;
      payload += size;
      ++j;
      if (kNodeHeaderSize + payload > kPageSize) break;  // a lone big item
    }
    const uint64_t start = out.size();
    const uint64_t pages = PagesFor(kNodeHeaderSize + payload);
    Writer w(out);
    w.U8(kind);
    w.U8(level);
    w.U16(0);
    w.U32(static_cast<uint32_t>(pages));
    w.U32(static_cast<uint32_t>(j - i));
    w.U32(static_cast<uint32_t>(payload));
    for (size_t k = i; k < j; ++k) {
      const Bytes b = item(k);
      w.Raw(b.data(), b.size());
    }
    out.resize(start + pages * kPageSize, std::byte{0});
    nodes.emplace_back(start, i);
    i = j;
  }
  return nodes;
}

struct Header {
  uint16_t version = 0;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t entries = 0;
  uint64_t bitmap_offset = 0;
  uint64_t bitmap_length = 0;
  uint64_t tree_offset = 0;
  uint64_t tree_length = 0;
  uint64_t leaf_length = 0;
  uint64_t root_offset = 0;
  uint32_t height = 0;
  uint64_t checksum = 0;
  uint64_t end() const { return tree_offset + tree_length; }
};

// The header's fields, checked only as far as needed to know the image's
// extent: bad_magic, newer_format, truncated, or bad_record for an extent
// that cannot be.
Result<Header> ParseHeader(Bytes image) {
  if (image.size() < kCheckpointHeaderSize) return errc::truncated;
  Reader r(image.first(kCheckpointHeaderSize));
  if (r.U32() != kCheckpointMagic) return errc::bad_magic;
  Header h;
  h.version = r.U16();
  // A newer build may lay checkpoints out differently: say so before judging
  // the checksum by this build's rules.
  if (h.version > kCheckpointVersion) return errc::newer_format;
  if (h.version == 0) return errc::bad_record;
  r.U16();
  h.epoch = r.U64();
  h.seq = r.U64();
  h.entries = r.U64();
  h.bitmap_offset = r.U64();
  h.bitmap_length = r.U64();
  h.tree_offset = r.U64();
  h.tree_length = r.U64();
  h.leaf_length = r.U64();
  h.root_offset = r.U64();
  h.height = r.U32();
  r.U32();
  std::memcpy(&h.checksum, image.data() + kChecksumOffset, sizeof h.checksum);
  if (!r.ok()) return r.error();
  if (h.tree_offset < kCheckpointHeaderSize || h.tree_offset > kMaxRegion ||
      h.tree_length > kMaxRegion)
    return errc::bad_record;
  if (image.size() < h.end()) return errc::truncated;
  return h;
}

bool ChecksumMatches(Bytes image, const Header& h) {
  Xxh3Stream sum(kCheckpointSeed);
  sum.Update(image.data(), kChecksumOffset);
  sum.Update(image.data() + kCheckpointHeaderSize, h.end() - kCheckpointHeaderSize);
  return sum.Digest() == h.checksum;
}

// The fields agree with each other and with the layout the writer makes.
bool HeaderConsistent(const Header& h) {
  const bool empty = h.entries == 0;
  return h.bitmap_offset == kCheckpointHeaderSize && h.bitmap_length <= kMaxRegion &&
         h.tree_offset == kCheckpointHeaderSize + RoundUp(h.bitmap_length) &&
         h.tree_length % kPageSize == 0 && h.leaf_length % kPageSize == 0 &&
         h.leaf_length <= h.tree_length && h.height <= kMaxHeight && empty == (h.height == 0) &&
         empty == (h.tree_length == 0) && empty == (h.leaf_length == 0) &&
         (empty ? h.root_offset == 0
                : h.root_offset >= h.tree_offset && h.root_offset < h.end() &&
                      h.root_offset % kPageSize == 0) &&
         // One leaf is the root; more need inner levels.
         (h.height == 1) == (!empty && h.leaf_length == h.tree_length);
}

struct Node {
  uint8_t kind = 0;
  uint8_t level = 0;
  uint64_t bytes = 0;  // pages * 4 KiB
  uint32_t count = 0;
  Bytes payload;
};

// The node at `pos`, which must lie wholly before `limit` (<= image size).
std::optional<Node> ParseNode(Bytes image, uint64_t pos, uint64_t limit) {
  if (pos % kPageSize != 0 || pos >= limit || limit - pos < kNodeHeaderSize) return std::nullopt;
  Reader r(image.subspan(pos, kNodeHeaderSize));
  Node n;
  n.kind = r.U8();
  n.level = r.U8();
  r.U16();
  const uint32_t pages = r.U32();
  n.count = r.U32();
  const uint32_t payload = r.U32();
  if (!r.ok() || (n.kind != kLeaf && n.kind != kInner) || (n.kind == kLeaf) != (n.level == 0) ||
      n.count == 0 || pages == 0 || pages != PagesFor(kNodeHeaderSize + uint64_t{payload}) ||
      pages > (limit - pos) / kPageSize)
    return std::nullopt;
  n.bytes = uint64_t{pages} * kPageSize;
  n.payload = image.subspan(pos + kNodeHeaderSize, payload);
  return n;
}

// Walks the leaf level: every entry decodes, keys strictly ascend, the count
// matches the header. Calls `fn` (if any) per entry; appends each leaf to
// `leaves` (if any).
Status WalkLeaves(Bytes image, const Header& h,
                  const std::function<void(const CheckpointEntry&)>* fn,
                  std::vector<NodeRef>* leaves) {
  const uint64_t leaf_end = h.tree_offset + h.leaf_length;
  uint64_t pos = h.tree_offset;
  uint64_t count = 0;
  std::string_view prev;
  CheckpointEntry e;
  while (pos < leaf_end) {
    auto node = ParseNode(image, pos, leaf_end);
    if (!node || node->kind != kLeaf) return errc::bad_record;
    Reader r(node->payload);
    for (uint32_t i = 0; i < node->count; ++i) {
      if (!DecodeEntry(r, e, h.version)) return errc::bad_record;
      if (count > 0 && e.key <= prev) return errc::bad_record;
      if (i == 0 && leaves) leaves->push_back({pos, e.key});
      prev = e.key;
      ++count;
      if (fn) (*fn)(e);
    }
    if (r.Finish() != errc::ok) return errc::bad_record;
    pos += node->bytes;
  }
  if (count != h.entries) return errc::bad_record;
  return {};
}

// Checks that the inner levels are exactly those built over `leaves`: each
// level's items name the level below's nodes, in order, by first key and
// offset, up to a single root where the header says.
Status CheckInnerLevels(Bytes image, const Header& h, std::vector<NodeRef> level) {
  uint64_t pos = h.tree_offset + h.leaf_length;
  for (uint32_t height = 1; height < h.height; ++height) {
    if (level.size() < 2) return errc::bad_record;
    std::vector<NodeRef> next;
    size_t child = 0;
    while (child < level.size()) {
      auto node = ParseNode(image, pos, h.end());
      if (!node || node->kind != kInner || node->level != height) return errc::bad_record;
      next.push_back({pos, level[child].first_key});
      Reader r(node->payload);
      for (uint32_t i = 0; i < node->count; ++i) {
        const std::string_view key = r.Str16();
        const uint64_t offset = r.U64();
        if (!r.ok() || child == level.size() || key != level[child].first_key ||
            offset != level[child].offset)
          return errc::bad_record;
        ++child;
      }
      if (r.Finish() != errc::ok) return errc::bad_record;
      pos += node->bytes;
    }
    level = std::move(next);
  }
  if (level.size() != 1 || level[0].offset != h.root_offset || pos != h.end())
    return errc::bad_record;
  return {};
}

}  // namespace

void CheckpointWriter::Add(std::string_view key, uint64_t value_size, uint64_t version,
                           uint16_t home, std::span<const Extent> extents,
                           std::span<const uint64_t> page_checksums) {
  Item item{encoded_.size(), 0, static_cast<uint16_t>(key.size()), version};
  Writer w(encoded_);
  EncodeEntry(w, key, value_size, version, home, extents, page_checksums);
  item.size = static_cast<uint32_t>(encoded_.size() - item.offset);
  items_.push_back(item);
}

Buffer CheckpointWriter::Finish(uint64_t epoch, uint64_t seq, Bytes bitmap, CheckpointInfo* info) {
  const auto key_of = [this](const Item& it) {
    return AsString(Bytes(encoded_).subspan(it.offset + 2, it.key_size));
  };
  // Key order; a key added twice keeps its highest version, the later on a
  // tie (stable sort keeps equal keys in the order added).
  std::stable_sort(items_.begin(), items_.end(),
                   [&](const Item& a, const Item& b) { return key_of(a) < key_of(b); });
  std::vector<Item> items;
  items.reserve(items_.size());
  for (const Item& it : items_) {
    if (!items.empty() && key_of(items.back()) == key_of(it)) {
      if (it.version >= items.back().version) items.back() = it;
    } else {
      items.push_back(it);
    }
  }

  Buffer out(kCheckpointHeaderSize, std::byte{0});
  // Roughly the final size: entries plus node padding and the inner levels.
  out.reserve(kCheckpointHeaderSize + RoundUp(bitmap.size()) + encoded_.size() +
              encoded_.size() / 8 + kPageSize);
  out.insert(out.end(), bitmap.begin(), bitmap.end());
  out.resize(kCheckpointHeaderSize + RoundUp(bitmap.size()), std::byte{0});
  const uint64_t tree_offset = out.size();

  // Leaves, then inner levels until one node is left: the root.
  const auto leaves = AppendLevel(out, kLeaf, 0, items.size(), [&](size_t i) {
    return Bytes(encoded_).subspan(items[i].offset, items[i].size);
  });
  std::vector<NodeRef> level;
  for (const auto& [offset, first] : leaves) level.push_back({offset, key_of(items[first])});
  const uint64_t leaf_length = out.size() - tree_offset;
  uint32_t height = level.empty() ? 0 : 1;
  Buffer pairs;
  std::vector<size_t> pair_at;
  while (level.size() > 1) {
    pairs.clear();
    pair_at.clear();
    Writer w(pairs);
    for (const NodeRef& child : level) {
      pair_at.push_back(pairs.size());
      w.Str16(child.first_key);
      w.U64(child.offset);
    }
    pair_at.push_back(pairs.size());
    const auto nodes = AppendLevel(
        out, kInner, static_cast<uint8_t>(height), level.size(),
        [&](size_t i) { return Bytes(pairs).subspan(pair_at[i], pair_at[i + 1] - pair_at[i]); });
    std::vector<NodeRef> next;
    for (const auto& [offset, first] : nodes) next.push_back({offset, level[first].first_key});
    level = std::move(next);
    ++height;
  }
  const uint64_t root_offset = level.empty() ? 0 : level[0].offset;

  Buffer header;
  Writer w(header);
  w.U32(kCheckpointMagic);
  w.U16(kCheckpointVersion);
  w.U16(0);
  w.U64(epoch);
  w.U64(seq);
  w.U64(items.size());
  w.U64(kCheckpointHeaderSize);
  w.U64(bitmap.size());
  w.U64(tree_offset);
  w.U64(out.size() - tree_offset);
  w.U64(leaf_length);
  w.U64(root_offset);
  w.U32(height);
  w.U32(0);
  std::memcpy(out.data(), header.data(), header.size());
  Xxh3Stream sum(kCheckpointSeed);
  sum.Update(out.data(), kChecksumOffset);
  sum.Update(out.data() + kCheckpointHeaderSize, out.size() - kCheckpointHeaderSize);
  const uint64_t checksum = sum.Digest();
  std::memcpy(out.data() + kChecksumOffset, &checksum, sizeof checksum);

  if (info) *info = {seq, epoch, items.size(), out.size(), checksum};
  encoded_.clear();
  items_.clear();
  return out;
}

Status ReadCheckpoint(Bytes image, const std::function<void(const CheckpointEntry&)>& fn,
                      Bytes* bitmap_out, CheckpointInfo* info_out) {
  auto h = ParseHeader(image);
  MEMKV_TRY(h);
  if (!ChecksumMatches(image, *h)) return errc::bad_checksum;
  if (!HeaderConsistent(*h)) return errc::bad_record;
  // The whole tree is checked before `fn` sees anything.
  std::vector<NodeRef> leaves;
  MEMKV_TRY(WalkLeaves(image, *h, nullptr, &leaves));
  if (h->height > 0) MEMKV_TRY(CheckInnerLevels(image, *h, std::move(leaves)));
  if (fn) MEMKV_TRY(WalkLeaves(image, *h, &fn, nullptr));
  if (bitmap_out) *bitmap_out = image.subspan(h->bitmap_offset, h->bitmap_length);
  if (info_out) *info_out = {h->seq, h->epoch, h->entries, h->end(), h->checksum};
  return {};
}

std::optional<CheckpointEntry> LookupInCheckpoint(Bytes image, std::string_view key) {
  auto h = ParseHeader(image);
  if (!h || !HeaderConsistent(*h) || h->height == 0) return std::nullopt;
  uint64_t pos = h->root_offset;
  // Levels strictly descend, so a corrupt child offset cannot loop.
  for (uint32_t level = h->height - 1;; --level) {
    auto node = ParseNode(image, pos, h->end());
    if (!node || node->level != level || pos < h->tree_offset) return std::nullopt;
    Reader r(node->payload);
    if (level == 0) {
      CheckpointEntry e;
      for (uint32_t i = 0; i < node->count; ++i) {
        if (!DecodeEntry(r, e, h->version) || e.key > key) return std::nullopt;
        if (e.key == key) return e;
      }
      return std::nullopt;
    }
    // The last child whose first key is at most `key`.
    std::optional<uint64_t> child;
    for (uint32_t i = 0; i < node->count; ++i) {
      const std::string_view first = r.Str16();
      const uint64_t offset = r.U64();
      if (!r.ok()) return std::nullopt;
      if (first > key) break;
      child = offset;
    }
    if (!child) return std::nullopt;
    pos = *child;
  }
}

}  // namespace memkv::store
