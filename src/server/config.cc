#include "server/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <span>
#include <thread>

namespace memkv::server {
namespace {

constexpr uint64_t kPage = 4 * kKiB;
// A config file is a page or two; anything far larger is the wrong file.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

std::string Quote(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// Throws a ConfigError "PATH: PROBLEM" pointing at `at` in the text, if it
// came from one.
[[noreturn]] void Fail(const std::string& path, const std::string& problem,
                       const YAML::Node* at = nullptr) {
  int line = 0, column = 0;
  if (at != nullptr) {
    const YAML::Mark mark = at->Mark();
    if (!mark.is_null()) {
      line = mark.line + 1;
      column = mark.column + 1;
    }
  }
  throw ConfigError(path.empty() ? problem : path + ": " + problem, line, column);
}

std::string KindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return Quote(n.Scalar());
    default: return "nothing";
  }
}

// ---- Values -------------------------------------------------------------

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the second byte's range
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (n >= s.size() - i) return false;  // cut off at the end
    for (size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

// The text of a value. A key with nothing after it is refused, except where
// `null_is_empty` (optional strings: "tls_cert:" means none).
std::string Text(const YAML::Node& n, const std::string& path, bool null_is_empty = false) {
  if (n.IsNull() && null_is_empty) return {};
  if (n.IsNull()) Fail(path, "no value (leave the field out to get its default)", &n);
  if (!n.IsScalar()) Fail(path, "expected a value, got " + KindOf(n), &n);
  // YAML is Unicode text: a stray byte would come back from ToYaml (what
  // `memkv setup` prints) as U+FFFD, naming another file.
  if (!IsUtf8(n.Scalar())) Fail(path, "not valid UTF-8 (save the file as UTF-8)", &n);
  return n.Scalar();
}

std::string OptionalText(const YAML::Node& n, const std::string& path) {
  return Text(n, path, /*null_is_empty=*/true);
}

uint64_t Size(const YAML::Node& n, const std::string& path) {
  const std::string text = Text(n, path);
  const Result<uint64_t> bytes = ParseSize(text);
  if (!bytes) Fail(path, Quote(text) + ": " + bytes.error().message(), &n);
  return *bytes;
}

uint32_t Count(const YAML::Node& n, const std::string& path) {
  const std::string text = Text(n, path);
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size())
    Fail(path, Quote(text) + ": expected a whole number", &n);
  if (ec == std::errc::result_out_of_range || v > std::numeric_limits<uint32_t>::max())
    Fail(path, Quote(text) + ": too large (at most 4294967295)", &n);
  return static_cast<uint32_t>(v);
}

// A duration: "2s", "500ms", or a whole number of seconds; in milliseconds.
uint32_t Millis(const YAML::Node& n, const std::string& path) {
  const std::string text = Text(n, path);
  std::string_view digits = text;
  uint64_t scale = 1000;
  if (digits.ends_with("ms")) {
    digits.remove_suffix(2);
    scale = 1;
  } else if (digits.ends_with("s")) {
    digits.remove_suffix(1);
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec == std::errc::invalid_argument || end != digits.data() + digits.size())
    Fail(path, Quote(text) + ": expected a duration such as \"2s\" or \"500ms\"", &n);
  if (ec == std::errc::result_out_of_range || v > std::numeric_limits<uint32_t>::max() / scale)
    Fail(path, Quote(text) + ": too long", &n);
  return static_cast<uint32_t>(v * scale);
}

std::string MillisText(uint32_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

double Fraction(const YAML::Node& n, const std::string& path) {
  const std::string text = Text(n, path);
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    Fail(path, Quote(text) + ": expected a fraction between 0 and 1, like 0.9", &n);
  return v;
}

bool Bool(const YAML::Node& n, const std::string& path) {
  const std::string text = Text(n, path);
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  Fail(path, Quote(text) + ": expected true or false", &n);
}

store::Mode ParseMode(const YAML::Node& n, const std::string& path) {
  const std::string text = Text(n, path);
  for (store::Mode m : {store::Mode::kDirect, store::Mode::kFile, store::Mode::kMemory})
    if (text == ModeName(m)) return m;
  Fail(path, Quote(text) + ": expected direct, file or memory", &n);
}

// ---- Sections -----------------------------------------------------------
// Each section is a table of its fields; reading a map looks every key up in
// its section's table, so a key that is not there is an unknown field.

template <class T>
struct Field {
  std::string_view name;
  void (*read)(T& out, const YAML::Node& value, const std::string& path);
};

template <class T, size_t N>
std::string FieldNames(const Field<T> (&fields)[N]) {
  std::string out;
  for (const Field<T>& f : fields) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

template <class T, size_t N>
void ReadFields(T& out, const YAML::Node& node, const std::string& path,
                const Field<T> (&fields)[N]) {
  if (node.IsNull()) return;  // "network:" with nothing under it
  if (!node.IsMap()) {
    Fail(path,
         (path.empty() ? "a config is a map with the sections " : "expected a map with the fields ") +
             FieldNames(fields) + "; got " + KindOf(node),
         &node);
  }
  std::set<std::string> seen;
  for (const auto& entry : node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) Fail(path, "a field name must be a plain word, got " + KindOf(key), &key);
    const std::string sub = Join(path, key.Scalar());
    if (!seen.insert(key.Scalar()).second) Fail(sub, "given twice", &key);
    const Field<T>* field = nullptr;
    for (const Field<T>& f : fields)
      if (f.name == key.Scalar()) field = &f;
    if (field == nullptr) {
      Fail(sub,
           "unknown field (" +
               (path.empty() ? "the sections are " : path + " has ") + FieldNames(fields) + ")",
           &key);
    }
    field->read(out, entry.second, sub);
  }
}

using YN = YAML::Node;
using Str = std::string;

const Field<NetworkConfig> kNetworkFields[] = {
    {"address", [](NetworkConfig& c, const YN& n, const Str& p) { c.address = Text(n, p); }},
    {"tls_cert", [](NetworkConfig& c, const YN& n, const Str& p) { c.tls_cert = OptionalText(n, p); }},
    {"tls_key", [](NetworkConfig& c, const YN& n, const Str& p) { c.tls_key = OptionalText(n, p); }},
    {"auth_key", [](NetworkConfig& c, const YN& n, const Str& p) { c.auth_key = OptionalText(n, p); }},
    {"unix_socket",
     [](NetworkConfig& c, const YN& n, const Str& p) { c.unix_socket = OptionalText(n, p); }},
    {"allow_unauthenticated",
     [](NetworkConfig& c, const YN& n, const Str& p) { c.allow_unauthenticated = Bool(n, p); }},
};

const Field<MemoryConfig> kMemoryFields[] = {
    {"block_size", [](MemoryConfig& c, const YN& n, const Str& p) { c.block_size = Size(n, p); }},
    {"max_size", [](MemoryConfig& c, const YN& n, const Str& p) { c.max_size = Size(n, p); }},
};

const Field<RdmaConfig> kRdmaFields[] = {
    {"provider", [](RdmaConfig& c, const YN& n, const Str& p) { c.provider = OptionalText(n, p); }},
    {"ofi_provider", [](RdmaConfig& c, const YN& n, const Str& p) { c.ofi_provider = Text(n, p); }},
    {"device", [](RdmaConfig& c, const YN& n, const Str& p) { c.device = OptionalText(n, p); }},
    {"address", [](RdmaConfig& c, const YN& n, const Str& p) { c.address = OptionalText(n, p); }},
    {"max_inflight_per_peer",
     [](RdmaConfig& c, const YN& n, const Str& p) { c.max_inflight_per_peer = Count(n, p); }},
    {"transfer_timeout",
     [](RdmaConfig& c, const YN& n, const Str& p) { c.transfer_timeout_ms = Millis(n, p); }},
};

const Field<DriveConfig> kDriveFields[] = {
    {"media", [](DriveConfig& c, const YN& n, const Str& p) { c.media = Text(n, p); }},
};

const Field<EvictionConfig> kEvictionFields[] = {
    {"high_watermark",
     [](EvictionConfig& c, const YN& n, const Str& p) { c.high_watermark = Fraction(n, p); }},
    {"low_watermark",
     [](EvictionConfig& c, const YN& n, const Str& p) { c.low_watermark = Fraction(n, p); }},
};

void ReadDrives(std::vector<DriveConfig>& out, const YAML::Node& n, const std::string& path) {
  out.clear();
  if (n.IsNull()) return;
  if (!n.IsSequence()) Fail(path, "expected a list of {media: PATH}, got " + KindOf(n), &n);
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) Fail(item_path, "expected {media: PATH}, got " + KindOf(item), &item);
    DriveConfig drive;
    ReadFields(drive, item, item_path, kDriveFields);
    if (!item["media"]) Fail(item_path + ".media", "missing", &item);
    out.push_back(std::move(drive));
  }
}

const Field<StorageConfig> kStorageFields[] = {
    {"mode", [](StorageConfig& c, const YN& n, const Str& p) { c.mode = ParseMode(n, p); }},
    {"block_size", [](StorageConfig& c, const YN& n, const Str& p) { c.block_size = Size(n, p); }},
    {"drives", [](StorageConfig& c, const YN& n, const Str& p) { ReadDrives(c.drives, n, p); }},
    {"eviction",
     [](StorageConfig& c, const YN& n, const Str& p) { ReadFields(c.eviction, n, p, kEvictionFields); }},
};

const Field<ServerConfig> kServerFields[] = {
    {"threads", [](ServerConfig& c, const YN& n, const Str& p) { c.threads = Count(n, p); }},
    {"io_backend", [](ServerConfig& c, const YN& n, const Str& p) { c.io_backend = Text(n, p); }},
};

const Field<LimitsConfig> kLimitsFields[] = {
    {"max_value_size",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.max_value_size = Size(n, p); }},
    {"max_batch_entries",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.max_batch_entries = Count(n, p); }},
    {"max_inflight_per_connection",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.max_inflight_per_connection = Count(n, p); }},
    {"max_buffered_bytes_per_connection",
     [](LimitsConfig& c, const YN& n, const Str& p) {
       c.max_buffered_bytes_per_connection = Size(n, p);
     }},
    {"max_sessions", [](LimitsConfig& c, const YN& n, const Str& p) { c.max_sessions = Count(n, p); }},
    {"max_regions_per_session",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.max_regions_per_session = Count(n, p); }},
    {"stream_idle_seconds",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.stream_idle_seconds = Count(n, p); }},
    {"max_open_streams_per_session",
     [](LimitsConfig& c, const YN& n, const Str& p) {
       c.max_open_streams_per_session = Count(n, p);
     }},
    {"attach_timeout",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.attach_timeout_ms = Millis(n, p); }},
    {"max_unattached_connections",
     [](LimitsConfig& c, const YN& n, const Str& p) { c.max_unattached_connections = Count(n, p); }},
};

void ReadHostList(std::vector<std::string>& out, const YAML::Node& n, const std::string& path) {
  out.clear();
  if (n.IsNull()) return;
  if (!n.IsSequence()) Fail(path, "expected a list of host names, got " + KindOf(n), &n);
  for (size_t i = 0; i < n.size(); ++i)
    out.push_back(Text(n[i], path + "[" + std::to_string(i) + "]"));
}

const Field<AdminConfig> kAdminFields[] = {
    {"allowed_hosts",
     [](AdminConfig& c, const YN& n, const Str& p) { ReadHostList(c.allowed_hosts, n, p); }},
    {"max_connections",
     [](AdminConfig& c, const YN& n, const Str& p) { c.max_connections = Count(n, p); }},
    {"header_timeout_seconds",
     [](AdminConfig& c, const YN& n, const Str& p) { c.header_timeout_seconds = Count(n, p); }},
    {"max_header_size",
     [](AdminConfig& c, const YN& n, const Str& p) { c.max_header_size = Size(n, p); }},
    {"max_body_size",
     [](AdminConfig& c, const YN& n, const Str& p) { c.max_body_size = Size(n, p); }},
};

const Field<Config> kTopFields[] = {
    {"network", [](Config& c, const YN& n, const Str& p) { ReadFields(c.network, n, p, kNetworkFields); }},
    {"memory", [](Config& c, const YN& n, const Str& p) { ReadFields(c.memory, n, p, kMemoryFields); }},
    {"rdma", [](Config& c, const YN& n, const Str& p) { ReadFields(c.rdma, n, p, kRdmaFields); }},
    {"storage", [](Config& c, const YN& n, const Str& p) { ReadFields(c.storage, n, p, kStorageFields); }},
    {"server", [](Config& c, const YN& n, const Str& p) { ReadFields(c.server, n, p, kServerFields); }},
    {"limits", [](Config& c, const YN& n, const Str& p) { ReadFields(c.limits, n, p, kLimitsFields); }},
    {"admin", [](Config& c, const YN& n, const Str& p) { ReadFields(c.admin, n, p, kAdminFields); }},
};

// Reads a document onto `config`: the fields it names change, the rest stay.
void ReadDocument(Config& config, const YAML::Node& root) {
  try {
    ReadFields(config, root, "", kTopFields);
  } catch (const YAML::Exception& e) {
    // Node access does not throw for the documents we walk; this keeps a
    // surprise from escaping as anything but a ConfigError.
    throw ConfigError("bad config: " + e.msg, e.mark.line + 1, e.mark.column + 1);
  }
}

// ---- Output -------------------------------------------------------------

// "2 MiB" when that reads back exactly, else the byte count.
std::string SizeText(uint64_t bytes) {
  const std::string human = FormatSize(bytes);
  const Result<uint64_t> back = ParseSize(human);
  return back && *back == bytes ? human : std::to_string(bytes);
}

// The shortest text that reads back as the same double.
std::string FractionText(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// "a, b,c" -> {"a", "b", "c"}; "" -> {}.
std::vector<std::string_view> SplitList(std::string_view text) {
  std::vector<std::string_view> out;
  if (text.empty()) return out;
  for (size_t from = 0;;) {
    const size_t comma = text.find(',', from);
    std::string_view item = text.substr(from, comma == std::string_view::npos ? comma : comma - from);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    out.push_back(item);
    if (comma == std::string_view::npos) return out;
    from = comma + 1;
  }
}

// storage.drives from the command line: PATH,PATH,... as [{media: PATH}, ...].
YAML::Node DriveList(std::string_view paths) {
  YAML::Node list(YAML::NodeType::Sequence);
  for (std::string_view media : SplitList(paths)) {
    YAML::Node drive(YAML::NodeType::Map);
    drive["media"] = std::string(media);
    list.push_back(drive);
  }
  return list;
}

// admin.allowed_hosts from the command line: NAME,NAME,... as a list.
YAML::Node NameList(std::string_view names) {
  YAML::Node list(YAML::NodeType::Sequence);
  for (std::string_view name : SplitList(names)) list.push_back(std::string(name));
  return list;
}

// {parts[0]: {parts[1]: ... leaf}}, built fresh (yaml-cpp assignment to an
// existing node rebinds shared data, so no node is assigned twice).
YAML::Node Nest(std::span<const std::string> parts, const YAML::Node& leaf) {
  if (parts.empty()) return leaf;
  YAML::Node map(YAML::NodeType::Map);
  map[parts.front()] = Nest(parts.subspan(1), leaf);
  return map;
}

}  // namespace

// ---- Defaults -----------------------------------------------------------

uint32_t DefaultThreadCount() {
  const unsigned n = std::thread::hardware_concurrency();
  if (n == 0) return 1;
  return n > kMaxThreads ? kMaxThreads : static_cast<uint32_t>(n);
}

const char* const kEmbeddedDefaultYaml =
    R"(# memkv's embedded default: what `memkv server` runs without --config.
# Every field left out takes its documented default.
network:
  address: 127.0.0.1:9900        # control plane; port + 1 is kept for the admin API
  unix_socket: ./var/memkv/memkv.sock
memory:
  block_size: 2 MiB              # staging chunk
  max_size: 256 MiB              # DRAM pool: staging + cache of clean blocks
storage:
  mode: file
  block_size: 4 MiB              # extent and stripe unit
  drives:                        # 1 GiB sparse files, created when missing
    - media: ./var/memkv/drive0.img
    - media: ./var/memkv/drive1.img
)";

Config Config::EmbeddedDefault() {
  Config c;
  c.network.address = "127.0.0.1:9900";
  c.network.unix_socket = "./var/memkv/memkv.sock";
  c.memory.block_size = 2 * kMiB;
  c.memory.max_size = 256 * kMiB;
  c.storage.mode = store::Mode::kFile;
  c.storage.block_size = 4 * kMiB;
  c.storage.drives = {{"./var/memkv/drive0.img"}, {"./var/memkv/drive1.img"}};
  return c;
}

const char* ModeName(store::Mode mode) {
  switch (mode) {
    case store::Mode::kDirect: return "direct";
    case store::Mode::kFile: return "file";
    case store::Mode::kMemory: return "memory";
  }
  return "unknown";
}

// ---- Reading ------------------------------------------------------------

Config ParseConfig(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw ConfigError("not valid YAML: " + e.msg, e.mark.line + 1, e.mark.column + 1);
  }
  Config config;
  ReadDocument(config, root);
  return config;
}

Config LoadConfigFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw ConfigError(path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      ::close(fd);
      throw ConfigError(path + ": larger than 1 MiB; not a memkv config file");
    }
  }
  ::close(fd);
  try {
    return ParseConfig(text);
  } catch (const ConfigError& e) {
    std::string where = path + ":";
    if (e.line() > 0) where += std::to_string(e.line()) + ":" + std::to_string(e.column()) + ":";
    throw ConfigError(where + " " + e.what(), e.line(), e.column());
  }
}

void ApplyOverride(Config& config, std::string_view dotted_path, std::string_view value) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = dotted_path.find('.', start);
    parts.emplace_back(dotted_path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (parts.back().empty()) {
      throw ConfigError(Quote(dotted_path) +
                        ": not a field path (write section.field, e.g. memory.max_size)");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  const bool drives = dotted_path == "storage.drives";
  const bool hosts = dotted_path == "admin.allowed_hosts";
  if (drives || hosts) {
    for (std::string_view item : SplitList(value)) {
      if (item.empty()) {
        throw ConfigError(std::string(dotted_path) + ": " + Quote(value) +
                          (drives ? ": an empty path (write PATH,PATH,...)"
                                  : ": an empty name (write NAME,NAME,...)"));
      }
    }
  }
  // The value as a file would hold it, nested under its path and read by the
  // same tables as a file: same checks, same messages.
  const YAML::Node leaf =
      drives ? DriveList(value) : hosts ? NameList(value) : YAML::Node(std::string(value));
  const YAML::Node doc = Nest(parts, leaf);
  Config changed = config;
  ReadDocument(changed, doc);
  config = std::move(changed);
}

// ---- Checking -----------------------------------------------------------

HostPort ParseHostPort(std::string_view text, std::string_view field) {
  const std::string f(field);
  const auto bad = [&](const std::string& why) -> ConfigError {
    return ConfigError(f + ": " + Quote(text) + ": " + why);
  };
  HostPort out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) throw bad("missing ']' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') throw bad("expected [IPv6]:port, e.g. [::1]:9900");
    port = rest.substr(1);
    in6_addr a6{};
    if (::inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) throw bad("not an IPv6 address in []");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      throw bad("expected host:port, e.g. 127.0.0.1:9900 or [::1]:9900");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos)
      throw bad("an IPv6 address goes in brackets, e.g. [::1]:9900");
    if (out.host.empty()) throw bad("missing host (0.0.0.0 listens on every interface)");
    for (char c : out.host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
      if (!ok) throw bad("not a host name or address");
    }
  }
  uint32_t p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65534)
    throw bad("the port must be a number from 1 to 65534 (the admin port is port + 1)");
  out.port = static_cast<uint16_t>(p);
  return out;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool IsLoopbackHost(std::string_view host) {
  std::string h(host);
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (h == "localhost") return true;
  in_addr a4{};
  if (::inet_pton(AF_INET, h.c_str(), &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return false;
}

void Validate(const Config& c) {
  const auto fail = [](const std::string& path, const std::string& why) {
    throw ConfigError(path + ": " + why);
  };

  // network
  const HostPort address = ParseHostPort(c.network.address);
  if (c.network.tls_cert.empty() != c.network.tls_key.empty()) {
    if (c.network.tls_key.empty())
      fail("network.tls_cert", "set without network.tls_key (HTTPS needs both; set both or neither)");
    fail("network.tls_key", "set without network.tls_cert (HTTPS needs both; set both or neither)");
  }
  if (!c.network.auth_key.empty()) {
    // Never echo the key: it is a secret, and messages go to logs.
    if (c.network.auth_key.size() != 64) {
      fail("network.auth_key", "must be 64 hex characters, got " +
                                   std::to_string(c.network.auth_key.size()) +
                                   " (`memkv setup` prints a config with a fresh one)");
    }
    for (size_t i = 0; i < c.network.auth_key.size(); ++i) {
      if (!IsHex(c.network.auth_key[i])) {
        fail("network.auth_key", "character " + std::to_string(i + 1) +
                                     " is not a hex digit (0-9, a-f); the key is 64 hex characters");
      }
    }
  }
  if (!IsLoopbackHost(address.host) && c.network.auth_key.empty() &&
      !c.network.allow_unauthenticated) {
    fail("network.address",
         address.ToString() +
             " is not a loopback address, so clients must authenticate: set network.auth_key "
             "(64 hex characters; `memkv setup` prints a config with one), or set "
             "network.allow_unauthenticated: true to accept anyone who can reach the port");
  }
  if (c.network.unix_socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    fail("network.unix_socket",
         "path is " + std::to_string(c.network.unix_socket.size()) +
             " bytes, longer than a Unix socket allows (" +
             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + "); pick a shorter path");
  }

  // memory
  if (!c.rdma.provider.empty() && c.rdma.provider != "ofi" && c.rdma.provider != "verbs")
    fail("rdma.provider", "'" + c.rdma.provider + "': must be empty (no rdma rail), ofi or verbs");
  // verbs opens the HCA rdma.device names (RC queue pairs through rdma-core).
  if (c.rdma.provider == "verbs" && c.rdma.device.empty())
    fail("rdma.device", "must name the RDMA device (HCA) for rdma.provider: verbs, e.g. mlx5_0 "
                        "(`ibv_devices` lists them)");
  if (c.rdma.ofi_provider.empty()) fail("rdma.ofi_provider", "must name a libfabric provider");
  if (c.rdma.max_inflight_per_peer == 0 || c.rdma.max_inflight_per_peer > 65536)
    fail("rdma.max_inflight_per_peer", "must be 1 to 65536");
  if (c.memory.block_size == 0 || c.memory.block_size % kPage != 0)
    fail("memory.block_size", SizeText(c.memory.block_size) + ": must be a non-zero multiple of 4 KiB");
  if (c.memory.max_size < c.memory.block_size) {
    fail("memory.max_size", SizeText(c.memory.max_size) + " is smaller than memory.block_size (" +
                                SizeText(c.memory.block_size) + ")");
  }

  // storage
  if (c.storage.block_size == 0 || c.storage.block_size % kPage != 0) {
    fail("storage.block_size",
         SizeText(c.storage.block_size) + ": must be a non-zero multiple of 4 KiB");
  }
  if (c.storage.mode != store::Mode::kMemory) {
    if (c.storage.drives.empty()) {
      fail("storage.drives", std::string("storage.mode ") + ModeName(c.storage.mode) +
                                 " needs at least one drive ({media: PATH}), or use "
                                 "storage.mode: memory");
    }
    for (size_t i = 0; i < c.storage.drives.size(); ++i) {
      const std::string path = "storage.drives[" + std::to_string(i) + "].media";
      if (c.storage.drives[i].media.empty()) fail(path, "empty");
      for (size_t j = 0; j < i; ++j) {
        if (c.storage.drives[j].media == c.storage.drives[i].media)
          fail(path, Quote(c.storage.drives[i].media) + " is already storage.drives[" +
                         std::to_string(j) + "]");
      }
    }
  }
  const EvictionConfig& ev = c.storage.eviction;
  if (!(ev.high_watermark > 0 && ev.high_watermark <= 1)) {
    fail("storage.eviction.high_watermark",
         FractionText(ev.high_watermark) + ": must be a fraction above 0 and at most 1");
  }
  if (!(ev.low_watermark >= 0 && ev.low_watermark <= 1)) {
    fail("storage.eviction.low_watermark",
         FractionText(ev.low_watermark) + ": must be a fraction from 0 to 1");
  }
  if (!(ev.low_watermark < ev.high_watermark)) {
    fail("storage.eviction.low_watermark",
         FractionText(ev.low_watermark) + " must be below storage.eviction.high_watermark (" +
             FractionText(ev.high_watermark) + ")");
  }

  // server
  if (c.server.threads == 0) fail("server.threads", "must be at least 1");
  if (c.server.io_backend != "auto" && c.server.io_backend != "io_uring" &&
      c.server.io_backend != "threads")
    fail("server.io_backend", "'" + c.server.io_backend + "': expected auto, io_uring or threads");
  if (c.server.threads > kMaxThreads)
    fail("server.threads", std::to_string(c.server.threads) + ": at most " +
                               std::to_string(kMaxThreads));

  // limits
  const auto positive = [&](const char* path, uint64_t v) {
    if (v == 0) fail(path, "must be at least 1");
  };
  positive("limits.max_value_size", c.limits.max_value_size);
  positive("limits.max_batch_entries", c.limits.max_batch_entries);
  positive("limits.max_inflight_per_connection", c.limits.max_inflight_per_connection);
  positive("limits.max_buffered_bytes_per_connection", c.limits.max_buffered_bytes_per_connection);
  positive("limits.max_sessions", c.limits.max_sessions);
  positive("limits.max_regions_per_session", c.limits.max_regions_per_session);
  positive("limits.stream_idle_seconds", c.limits.stream_idle_seconds);
  positive("limits.max_open_streams_per_session", c.limits.max_open_streams_per_session);
  positive("limits.attach_timeout", c.limits.attach_timeout_ms);
  positive("rdma.transfer_timeout", c.rdma.transfer_timeout_ms);
  positive("limits.max_unattached_connections", c.limits.max_unattached_connections);

  // admin
  for (size_t i = 0; i < c.admin.allowed_hosts.size(); ++i) {
    const std::string path = "admin.allowed_hosts[" + std::to_string(i) + "]";
    const std::string& name = c.admin.allowed_hosts[i];
    if (name.empty()) fail(path, "empty (list host names, e.g. memkv-01.example.com)");
    // Compared with the name part of a request's Host: no port, scheme,
    // path or wildcard can ever match one.
    for (char ch : name) {
      const bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' ||
                      ch == '_';
      if (!ok) {
        fail(path, Quote(name) +
                       ": not a host name (letters, digits, '.', '-'; no port, scheme or "
                       "wildcard; IP addresses and localhost are always answered)");
      }
    }
    if (name.size() > 253) fail(path, "longer than a host name can be (253 characters)");
  }
  positive("admin.max_connections", c.admin.max_connections);
  positive("admin.header_timeout_seconds", c.admin.header_timeout_seconds);
  if (c.admin.max_header_size < kKiB || c.admin.max_header_size > kMiB) {
    fail("admin.max_header_size",
         SizeText(c.admin.max_header_size) + ": must be from 1 KiB to 1 MiB");
  }
  if (c.admin.max_body_size < kKiB || c.admin.max_body_size > kGiB)
    fail("admin.max_body_size", SizeText(c.admin.max_body_size) + ": must be from 1 KiB to 1 GiB");
}

// ---- Writing and deriving ------------------------------------------------

std::string ToYaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;

  out << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "address" << YAML::Value << c.network.address;
  out << YAML::Key << "tls_cert" << YAML::Value << c.network.tls_cert;
  out << YAML::Key << "tls_key" << YAML::Value << c.network.tls_key;
  out << YAML::Key << "auth_key" << YAML::Value << c.network.auth_key;
  out << YAML::Key << "unix_socket" << YAML::Value << c.network.unix_socket;
  out << YAML::Key << "allow_unauthenticated" << YAML::Value
      << (c.network.allow_unauthenticated ? "true" : "false");
  out << YAML::EndMap;

  out << YAML::Key << "memory" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "block_size" << YAML::Value << SizeText(c.memory.block_size);
  out << YAML::Key << "max_size" << YAML::Value << SizeText(c.memory.max_size);
  out << YAML::EndMap;

  out << YAML::Key << "rdma" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "provider" << YAML::Value << c.rdma.provider;
  out << YAML::Key << "ofi_provider" << YAML::Value << c.rdma.ofi_provider;
  out << YAML::Key << "device" << YAML::Value << c.rdma.device;
  out << YAML::Key << "address" << YAML::Value << c.rdma.address;
  out << YAML::Key << "max_inflight_per_peer" << YAML::Value << c.rdma.max_inflight_per_peer;
  out << YAML::Key << "transfer_timeout" << YAML::Value << MillisText(c.rdma.transfer_timeout_ms);
  out << YAML::EndMap;

  out << YAML::Key << "storage" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "mode" << YAML::Value << ModeName(c.storage.mode);
  out << YAML::Key << "block_size" << YAML::Value << SizeText(c.storage.block_size);
  out << YAML::Key << "drives" << YAML::Value << YAML::BeginSeq;
  for (const DriveConfig& d : c.storage.drives)
    out << YAML::BeginMap << YAML::Key << "media" << YAML::Value << d.media << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::Key << "eviction" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "high_watermark" << YAML::Value
      << FractionText(c.storage.eviction.high_watermark);
  out << YAML::Key << "low_watermark" << YAML::Value
      << FractionText(c.storage.eviction.low_watermark);
  out << YAML::EndMap;
  out << YAML::EndMap;

  out << YAML::Key << "server" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "threads" << YAML::Value << std::to_string(c.server.threads);
  out << YAML::Key << "io_backend" << YAML::Value << c.server.io_backend;
  out << YAML::EndMap;

  const LimitsConfig& l = c.limits;
  out << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_value_size" << YAML::Value << SizeText(l.max_value_size);
  out << YAML::Key << "max_batch_entries" << YAML::Value << std::to_string(l.max_batch_entries);
  out << YAML::Key << "max_inflight_per_connection" << YAML::Value
      << std::to_string(l.max_inflight_per_connection);
  out << YAML::Key << "max_buffered_bytes_per_connection" << YAML::Value
      << SizeText(l.max_buffered_bytes_per_connection);
  out << YAML::Key << "max_sessions" << YAML::Value << std::to_string(l.max_sessions);
  out << YAML::Key << "max_regions_per_session" << YAML::Value
      << std::to_string(l.max_regions_per_session);
  out << YAML::Key << "stream_idle_seconds" << YAML::Value << std::to_string(l.stream_idle_seconds);
  out << YAML::Key << "max_open_streams_per_session" << YAML::Value
      << std::to_string(l.max_open_streams_per_session);
  out << YAML::Key << "attach_timeout" << YAML::Value << MillisText(l.attach_timeout_ms);
  out << YAML::Key << "max_unattached_connections" << YAML::Value
      << std::to_string(l.max_unattached_connections);
  out << YAML::EndMap;

  const AdminConfig& a = c.admin;
  out << YAML::Key << "admin" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "allowed_hosts" << YAML::Value << YAML::BeginSeq;
  for (const std::string& name : a.allowed_hosts) out << name;
  out << YAML::EndSeq;
  out << YAML::Key << "max_connections" << YAML::Value << std::to_string(a.max_connections);
  out << YAML::Key << "header_timeout_seconds" << YAML::Value
      << std::to_string(a.header_timeout_seconds);
  out << YAML::Key << "max_header_size" << YAML::Value << SizeText(a.max_header_size);
  out << YAML::Key << "max_body_size" << YAML::Value << SizeText(a.max_body_size);
  out << YAML::EndMap;

  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

HostPort DataAddress(const Config& config) { return ParseHostPort(config.network.address); }

HostPort AdminAddress(const Config& config) {
  HostPort admin = DataAddress(config);
  admin.port = static_cast<uint16_t>(admin.port + 1);
  return admin;
}

store::StoreOptions ToStoreOptions(const Config& c) {
  store::StoreOptions o;
  o.mode = c.storage.mode;
  o.memory_max_size = c.memory.max_size;
  o.staging_chunk = c.memory.block_size;
  o.max_value_size = c.limits.max_value_size;
  o.high_watermark = c.storage.eviction.high_watermark;
  o.low_watermark = c.storage.eviction.low_watermark;
  return o;
}

store::FormatOptions ToFormatOptions(const Config& c) {
  store::FormatOptions o;
  o.stripe_unit = c.storage.block_size;
  return o;
}

}  // namespace memkv::server
