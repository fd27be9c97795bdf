#pragma once
// server::Config: everything `memkv server` is told, read from YAML (field
// names as DESIGN.md lists them), changed by command-line overrides, then
// validated. Plain data: copy it, compare it, hand parts of it to the
// components that need them.
//
// Start-up order (the CLI's):
//   Config c = have_file ? LoadConfigFile(path) : Config::EmbeddedDefault();
//   for (each --set path=value or specific flag) ApplyOverride(c, path, value);
//   Validate(c);
// Parsing checks the form of each value (types, units, names, unknown
// fields), with the line and column; Validate checks ranges and what depends
// on several fields (TLS pairs, watermarks in order, the security default),
// on the finished config, so it runs once, after every override, and also
// covers a Config built in code.
//
// Errors: config is read at start-up only, so every function here reports a
// problem by throwing ConfigError, whose what() is the whole message for the
// user: the field's path, what is wrong, and where it helps the fix, e.g.
//   storage.drives[1].media: missing
//   memory.max_size: "12 parsecs": unknown unit (use B, KiB, MiB, ...)
//   network.bogus: unknown field

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/size.h"
#include "store/store.h"

namespace memkv::server {

// A bad config: what() is the full message. line()/column() (1-based) say
// where in the YAML text the bad value or key is, or are 0 when the problem is
// not at one place in a text (overrides, Validate).
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& message, int line = 0, int column = 0)
      : std::runtime_error(message), line_(line), column_(column) {}
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  int line_;
  int column_;
};

// The size of each drive file the embedded default creates when missing.
inline constexpr uint64_t kEmbeddedDriveSize = kGiB;

// server.threads: one loop per core by default (never 0, even when
// hardware_concurrency does not know), at most kMaxThreads.
uint32_t DefaultThreadCount();
inline constexpr uint32_t kMaxThreads = 1024;

struct NetworkConfig {
  // Control plane host:port; the admin HTTP listens on port + 1. IPv6 hosts
  // in brackets: "[::1]:9900".
  std::string address = "127.0.0.1:9900";
  std::string tls_cert;  // PEM files for HTTPS on the admin port; both or neither
  std::string tls_key;
  std::string auth_key;  // 64 hex chars (a 256-bit secret); empty: none
  // Same-host clients; empty: no Unix socket.
  std::string unix_socket = "./var/memkv/memkv.sock";
  // Listening beyond loopback without an auth key needs this set to true.
  bool allow_unauthenticated = false;
  bool operator==(const NetworkConfig&) const = default;
};

struct MemoryConfig {
  uint64_t block_size = 2 * kMiB;  // the staging chunk: the most one I/O stages
  uint64_t max_size = 256 * kMiB;  // the DRAM pool: staging + cache, or the store
  bool operator==(const MemoryConfig&) const = default;
};

// The rdma rail (docs/rdma.md): off while `provider` is empty.
struct RdmaConfig {
  std::string provider;                    // "" (off), "ofi" (libfabric) or "verbs"
  std::string ofi_provider = "tcp;ofi_rxm";  // the libfabric provider, pinned
  std::string device;   // the NIC: libfabric's domain ("mlx5_0", "lo"); empty: the provider's first
  std::string address;  // the local address the fabric endpoint listens on; empty: network.address's host
  uint32_t max_inflight_per_peer = 64;     // transfers posted to one client at once
  uint32_t transfer_timeout_ms = 30000;    // none of a session's transfers completes this long: closed
  bool operator==(const RdmaConfig&) const = default;
};

struct DriveConfig {
  std::string media;  // a block device (direct) or a regular file (file)
  bool operator==(const DriveConfig&) const = default;
};

struct EvictionConfig {
  double high_watermark = 0.90;  // start evicting above this fill
  double low_watermark = 0.80;   // evict down to this fill
  bool operator==(const EvictionConfig&) const = default;
};

struct StorageConfig {
  store::Mode mode = store::Mode::kFile;
  uint64_t block_size = 4 * kMiB;  // extent and stripe unit, used when formatting
  std::vector<DriveConfig> drives;  // needed by file and direct; memory ignores them
  EvictionConfig eviction;
  bool operator==(const StorageConfig&) const = default;
};

struct ServerConfig {
  uint32_t threads = DefaultThreadCount();  // event loops; at most kMaxThreads
  // Drive I/O: "auto" (io_uring, or system calls on helper threads where
  // io_uring cannot be set up), "io_uring" (or fail) or "threads".
  std::string io_backend = "auto";
  bool operator==(const ServerConfig&) const = default;
};

// Bounds on what one client can make the server hold.
struct LimitsConfig {
  uint64_t max_value_size = kGiB;
  uint32_t max_batch_entries = 65536;
  uint32_t max_inflight_per_connection = 4096;
  uint64_t max_buffered_bytes_per_connection = 64 * kMiB;
  // Sessions (one per client process, server and rail) at once. With the
  // buffering bound above, 1024 sessions can pin at most 64 GiB of request
  // buffers in the worst case; a cluster of 64 hosts x 8 engines x 2 rails
  // fits.
  uint32_t max_sessions = 1024;
  uint32_t max_regions_per_session = 64;  // registered memory regions (RDMA, shm)
  // A value streamed in chunks holds its whole allocation until its last
  // chunk: a stream with no chunk for this long is dropped (StreamTimeout).
  uint32_t stream_idle_seconds = 30;
  // Values of unknown length (open streams) being received at once per
  // session: each may grow to max_value_size before its last chunk.
  uint32_t max_open_streams_per_session = 16;
  // A connection must finish Hello and Attach within this (milliseconds;
  // written "2s" or "500ms"), or it is closed: nobody holds a connection
  // without proving the key.
  uint32_t attach_timeout_ms = 2000;
  // Connections not yet attached, at most; when full, the oldest of them is
  // closed to admit a new one (so a flood of idle connections cannot keep
  // real clients out, and memory stays bounded).
  uint32_t max_unattached_connections = 256;
  bool operator==(const LimitsConfig&) const = default;
};

// The admin HTTP API on network.address's port + 1 (docs/admin-api.md).
struct AdminConfig {
  // Host names the admin port answers to besides IP addresses and
  // `localhost` (the name in the browser's address bar when the dashboard is
  // opened by name). Any other Host is refused: no page on a foreign name
  // can reach the port through DNS rebinding.
  std::vector<std::string> allowed_hosts;
  // Connections at once. When all are taken, the one that has waited
  // longest for a whole request is closed to let a new one in.
  uint32_t max_connections = 64;
  // A request's headers arrive within this of the connection opening or of
  // the previous response (also the keep-alive idle time).
  uint32_t header_timeout_seconds = 10;
  uint64_t max_header_size = 16 * kKiB;  // request line and fields; more: 431
  uint64_t max_body_size = kMiB;         // more: 413
  bool operator==(const AdminConfig&) const = default;
};

struct Config {
  NetworkConfig network;
  MemoryConfig memory;
  RdmaConfig rdma;
  StorageConfig storage;
  ServerConfig server;
  LimitsConfig limits;
  AdminConfig admin;

  // What `memkv server` runs with no config file: two 1 GiB sparse file
  // drives ./var/memkv/drive{0,1}.img (created when missing), 256 MiB of
  // DRAM, 127.0.0.1:9900 (admin 9901), Unix socket ./var/memkv/memkv.sock.
  // The same as parsing kEmbeddedDefaultYaml.
  static Config EmbeddedDefault();

  bool operator==(const Config&) const = default;
};

// The embedded default as a config file a user can start from.
extern const char* const kEmbeddedDefaultYaml;

// Parses a YAML document. Fields not given keep Config{}'s defaults (no
// drives). Does not Validate. Throws ConfigError (with line and column).
Config ParseConfig(std::string_view yaml);

// Reads and parses a file; errors start with "PATH: " (and "LINE:COL: " for
// YAML syntax and field errors). Does not Validate. Throws ConfigError.
Config LoadConfigFile(const std::string& path);

// Sets one field from text, as `memkv server --set PATH=VALUE` does, with the
// same checks and messages as the file: "memory.max_size", "512 MiB";
// "network.allow_unauthenticated", "true". A section path is refused.
// `storage.drives` takes a comma-separated list of paths and replaces the
// list; so does `admin.allowed_hosts`, of names. Throws ConfigError; `config` is unchanged then.
void ApplyOverride(Config& config, std::string_view dotted_path, std::string_view value);

// Checks ranges and what depends on several fields: address and port, TLS
// pair, auth key (never echoed), Unix socket path length, block sizes (4 KiB
// multiples), max_size >= block_size, drives for file/direct mode (present,
// distinct), watermarks (0 <= low < high <= 1), threads 1..kMaxThreads,
// limits >= 1, admin limits in range and allowed_hosts plain host names,
// and the security default (beyond loopback needs
// network.auth_key or network.allow_unauthenticated: true). Stops at the
// first problem: throws ConfigError naming the field and the fix.
void Validate(const Config& config);

// Writes a config as YAML that ParseConfig reads back equal.
std::string ToYaml(const Config& config);

// A listening address split up. `host` has no brackets ("::1").
struct HostPort {
  std::string host;
  uint16_t port = 0;
  // "127.0.0.1:9900", "[::1]:9900".
  std::string ToString() const;
  bool operator==(const HostPort&) const = default;
};

// Splits "host:port" / "[v6]:port"; port 1..65534 (the admin port is one
// above). Throws ConfigError naming `field`.
HostPort ParseHostPort(std::string_view text, std::string_view field = "network.address");
// 127.0.0.0/8, ::1 (also v4-mapped 127/8), "localhost".
bool IsLoopbackHost(std::string_view host);

// network.address, and the admin HTTP address (same host, port + 1).
HostPort DataAddress(const Config& config);
HostPort AdminAddress(const Config& config);

// The parts of the config the storage engine takes.
store::StoreOptions ToStoreOptions(const Config& config);
store::FormatOptions ToFormatOptions(const Config& config);

// "direct", "file", "memory".
const char* ModeName(store::Mode mode);

}  // namespace memkv::server
