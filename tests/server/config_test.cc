#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace memkv::server {

// Failures print the whole config.
void PrintTo(const Config& c, std::ostream* os) { *os << "\n" << ToYaml(c); }

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kKey64(64, 'a');

// The message ParseConfig throws for `yaml`, or "" when it parses.
std::string ParseError(const std::string& yaml) {
  try {
    ParseConfig(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The message Validate throws for `c`, or "" when it is valid.
std::string ValidateError(const Config& c) {
  try {
    Validate(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string OverrideError(std::string_view path, std::string_view value) {
  Config c = Config::EmbeddedDefault();
  try {
    ApplyOverride(c, path, value);
  } catch (const ConfigError& e) {
    EXPECT_EQ(c, Config::EmbeddedDefault()) << "a refused override changed the config";
    return e.what();
  }
  return "";
}

Config WithAddress(const std::string& address) {
  Config c = Config::EmbeddedDefault();
  c.network.address = address;
  return c;
}

// ---- Defaults -------------------------------------------------------------

TEST(Config, DefaultsAreTheDocumentedOnes) {
  const Config c;
  EXPECT_EQ(c.network.address, "127.0.0.1:9900");
  EXPECT_EQ(c.network.tls_cert, "");
  EXPECT_EQ(c.network.tls_key, "");
  EXPECT_EQ(c.network.auth_key, "");
  EXPECT_EQ(c.network.unix_socket, "./var/memkv/memkv.sock");
  EXPECT_FALSE(c.network.allow_unauthenticated);
  EXPECT_EQ(c.memory.block_size, 2 * kMiB);
  EXPECT_EQ(c.memory.max_size, 256 * kMiB);
  EXPECT_EQ(c.rdma.device, "");
  EXPECT_EQ(c.storage.mode, store::Mode::kFile);
  EXPECT_EQ(c.storage.block_size, 4 * kMiB);
  EXPECT_TRUE(c.storage.drives.empty());
  EXPECT_DOUBLE_EQ(c.storage.eviction.high_watermark, 0.90);
  EXPECT_DOUBLE_EQ(c.storage.eviction.low_watermark, 0.80);
  EXPECT_GE(c.server.threads, 1u);
  EXPECT_EQ(c.server.threads, DefaultThreadCount());
  EXPECT_EQ(c.limits.max_value_size, kGiB);
  EXPECT_EQ(c.limits.max_batch_entries, 65536u);
  EXPECT_EQ(c.limits.max_inflight_per_connection, 4096u);
  EXPECT_EQ(c.limits.max_buffered_bytes_per_connection, 64 * kMiB);
  EXPECT_EQ(c.limits.max_sessions, 1024u);
  EXPECT_EQ(c.limits.max_regions_per_session, 64u);
  EXPECT_EQ(c.limits.stream_idle_seconds, 30u);
  EXPECT_EQ(c.limits.max_open_streams_per_session, 16u);
  EXPECT_TRUE(c.admin.allowed_hosts.empty());
  EXPECT_EQ(c.admin.max_connections, 64u);
  EXPECT_EQ(c.admin.header_timeout_seconds, 10u);
  EXPECT_EQ(c.admin.max_header_size, 16 * kKiB);
  EXPECT_EQ(c.admin.max_body_size, kMiB);
}

TEST(Config, AnEmptyDocumentGivesTheDefaults) {
  EXPECT_EQ(ParseConfig(""), Config{});
  EXPECT_EQ(ParseConfig("# nothing but a comment\n"), Config{});
  EXPECT_EQ(ParseConfig("network:\nmemory:\n"), Config{});
}

TEST(Config, EmbeddedDefaultIsTwoFileDrivesOnLoopback) {
  const Config c = Config::EmbeddedDefault();
  EXPECT_EQ(c.storage.mode, store::Mode::kFile);
  ASSERT_EQ(c.storage.drives.size(), 2u);
  EXPECT_EQ(c.storage.drives[0].media, "./var/memkv/drive0.img");
  EXPECT_EQ(c.storage.drives[1].media, "./var/memkv/drive1.img");
  EXPECT_EQ(c.memory.max_size, 256 * kMiB);
  EXPECT_EQ(c.network.address, "127.0.0.1:9900");
  EXPECT_EQ(c.network.unix_socket, "./var/memkv/memkv.sock");
  EXPECT_EQ(AdminAddress(c).ToString(), "127.0.0.1:9901");
  EXPECT_EQ(kEmbeddedDriveSize, kGiB);
  EXPECT_NO_THROW(Validate(c));
}

TEST(Config, EmbeddedDefaultYamlParsesToEmbeddedDefault) {
  const Config parsed = ParseConfig(kEmbeddedDefaultYaml);
  EXPECT_EQ(parsed, Config::EmbeddedDefault());
}

// ---- Parsing every field ----------------------------------------------------

TEST(Config, ParsesEveryField) {
  const std::string yaml = R"(
network:
  address: 0.0.0.0:7000
  tls_cert: /etc/memkv/cert.pem
  tls_key: /etc/memkv/key.pem
  auth_key: 00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF
  unix_socket: /run/memkv.sock
  allow_unauthenticated: true
memory:
  block_size: 1 MiB
  max_size: 8GiB
rdma:
  provider: ofi
  ofi_provider: verbs;ofi_rxm
  device: mlx5_0
  address: 10.0.0.5
  max_inflight_per_peer: 32
  transfer_timeout: 1500ms
storage:
  mode: direct
  block_size: 8 MiB
  drives:
    - media: /dev/nvme0n1
    - media: /dev/nvme1n1
  eviction:
    high_watermark: 0.95
    low_watermark: 0.5
server:
  threads: 12
limits:
  max_value_size: 512 MiB
  max_batch_entries: 100
  max_inflight_per_connection: 200
  max_buffered_bytes_per_connection: 1048576
  max_sessions: 300
  max_regions_per_session: 7
  stream_idle_seconds: 5
  max_open_streams_per_session: 3
admin:
  allowed_hosts: [memkv-01.example.com, dashboard.local]
  max_connections: 8
  header_timeout_seconds: 3
  max_header_size: 8 KiB
  max_body_size: 64 KiB
)";
  const Config c = ParseConfig(yaml);
  EXPECT_EQ(c.network.address, "0.0.0.0:7000");
  EXPECT_EQ(c.network.tls_cert, "/etc/memkv/cert.pem");
  EXPECT_EQ(c.network.tls_key, "/etc/memkv/key.pem");
  EXPECT_EQ(c.network.auth_key,
            "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF");
  EXPECT_EQ(c.network.unix_socket, "/run/memkv.sock");
  EXPECT_TRUE(c.network.allow_unauthenticated);
  EXPECT_EQ(c.memory.block_size, kMiB);
  EXPECT_EQ(c.memory.max_size, 8 * kGiB);
  EXPECT_EQ(c.rdma.device, "mlx5_0");
  EXPECT_EQ(c.rdma.provider, "ofi");
  EXPECT_EQ(c.rdma.ofi_provider, "verbs;ofi_rxm");
  EXPECT_EQ(c.rdma.address, "10.0.0.5");
  EXPECT_EQ(c.rdma.max_inflight_per_peer, 32u);
  EXPECT_EQ(c.rdma.transfer_timeout_ms, 1500u);
  EXPECT_EQ(c.storage.mode, store::Mode::kDirect);
  EXPECT_EQ(c.storage.block_size, 8 * kMiB);
  ASSERT_EQ(c.storage.drives.size(), 2u);
  EXPECT_EQ(c.storage.drives[0].media, "/dev/nvme0n1");
  EXPECT_EQ(c.storage.drives[1].media, "/dev/nvme1n1");
  EXPECT_DOUBLE_EQ(c.storage.eviction.high_watermark, 0.95);
  EXPECT_DOUBLE_EQ(c.storage.eviction.low_watermark, 0.5);
  EXPECT_EQ(c.server.threads, 12u);
  EXPECT_EQ(c.limits.max_value_size, 512 * kMiB);
  EXPECT_EQ(c.limits.max_batch_entries, 100u);
  EXPECT_EQ(c.limits.max_inflight_per_connection, 200u);
  EXPECT_EQ(c.limits.max_buffered_bytes_per_connection, kMiB);
  EXPECT_EQ(c.limits.max_sessions, 300u);
  EXPECT_EQ(c.limits.max_regions_per_session, 7u);
  EXPECT_EQ(c.limits.stream_idle_seconds, 5u);
  EXPECT_EQ(c.limits.max_open_streams_per_session, 3u);
  EXPECT_EQ(c.admin.allowed_hosts,
            (std::vector<std::string>{"memkv-01.example.com", "dashboard.local"}));
  EXPECT_EQ(c.admin.max_connections, 8u);
  EXPECT_EQ(c.admin.header_timeout_seconds, 3u);
  EXPECT_EQ(c.admin.max_header_size, 8 * kKiB);
  EXPECT_EQ(c.admin.max_body_size, 64 * kKiB);
  EXPECT_NO_THROW(Validate(c));
}

TEST(Config, FieldsLeftOutKeepTheirDefaults) {
  const Config c = ParseConfig("memory:\n  max_size: 1 GiB\nstorage:\n  mode: memory\n");
  Config expected;
  expected.memory.max_size = kGiB;
  expected.storage.mode = store::Mode::kMemory;
  EXPECT_EQ(c, expected);
}

TEST(Config, ModesAndOptionalEmptyStrings) {
  EXPECT_EQ(ParseConfig("storage: {mode: file}").storage.mode, store::Mode::kFile);
  EXPECT_EQ(ParseConfig("storage: {mode: memory}").storage.mode, store::Mode::kMemory);
  EXPECT_EQ(ParseConfig("storage: {mode: direct}").storage.mode, store::Mode::kDirect);
  // A key with nothing after it means "none" for the optional strings.
  const Config c = ParseConfig("network:\n  tls_cert:\n  tls_key:\n  auth_key:\nrdma:\n  device:\n");
  EXPECT_EQ(c.network.tls_cert, "");
  EXPECT_EQ(c.rdma.device, "");
  EXPECT_EQ(ParseConfig("network: {unix_socket: \"\"}").network.unix_socket, "");
  EXPECT_FALSE(ParseConfig("network: {allow_unauthenticated: false}").network.allow_unauthenticated);
}

// ---- Parse errors: each names the field's path --------------------------------

TEST(ConfigErrors, UnknownFieldAtTopLevel) {
  EXPECT_THAT(ParseError("bogus: 1\n"), StartsWith("bogus: unknown field"));
  EXPECT_THAT(ParseError("bogus: 1\n"), HasSubstr("network, memory, rdma, storage, server, limits"));
}

TEST(ConfigErrors, UnknownFieldNested) {
  EXPECT_THAT(ParseError("network:\n  bogus: 1\n"), StartsWith("network.bogus: unknown field"));
  EXPECT_THAT(ParseError("storage:\n  eviction:\n    middle_watermark: 0.5\n"),
              StartsWith("storage.eviction.middle_watermark: unknown field"));
  EXPECT_THAT(ParseError("storage:\n  drives:\n    - media: /a\n      size: 1 GiB\n"),
              StartsWith("storage.drives[0].size: unknown field"));
}

TEST(ConfigErrors, CarryTheLineAndColumn) {
  try {
    ParseConfig("network:\n  address: 127.0.0.1:1\n  bogus: 1\n");
    FAIL() << "parsed";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), 3);
  }
}

TEST(ConfigErrors, BadSizeAndBadUnit) {
  EXPECT_THAT(ParseError("memory:\n  max_size: 12 parsecs\n"),
              StartsWith("memory.max_size: \"12 parsecs\": unknown unit (use B, KiB"));
  EXPECT_EQ(ParseError("memory:\n  block_size: lots\n"),
            "memory.block_size: \"lots\": not a number");
  EXPECT_EQ(ParseError("limits:\n  max_value_size: -1\n"),
            "limits.max_value_size: \"-1\": not a number");
  EXPECT_THAT(ParseError("storage:\n  block_size: [1, 2]\n"),
              StartsWith("storage.block_size: expected a value, got a list"));
  EXPECT_THAT(ParseError("memory:\n  max_size:\n"), StartsWith("memory.max_size: no value"));
}

TEST(ConfigErrors, BadNumbersFractionsAndBools) {
  EXPECT_EQ(ParseError("server:\n  threads: many\n"),
            "server.threads: \"many\": expected a whole number");
  EXPECT_EQ(ParseError("server:\n  threads: -3\n"),
            "server.threads: \"-3\": expected a whole number");
  EXPECT_THAT(ParseError("limits:\n  max_sessions: 99999999999\n"),
              StartsWith("limits.max_sessions: \"99999999999\": too large"));
  EXPECT_THAT(ParseError("storage:\n  eviction:\n    high_watermark: high\n"),
              StartsWith("storage.eviction.high_watermark: \"high\": expected a fraction"));
  EXPECT_EQ(ParseError("network:\n  allow_unauthenticated: maybe\n"),
            "network.allow_unauthenticated: \"maybe\": expected true or false");
}

TEST(ConfigErrors, BadMode) {
  EXPECT_EQ(ParseError("storage:\n  mode: disk\n"),
            "storage.mode: \"disk\": expected direct, file or memory");
}

TEST(ConfigErrors, DriveWithoutMedia) {
  EXPECT_EQ(ParseError("storage:\n  drives:\n    - media: /a\n    - {}\n"),
            "storage.drives[1].media: missing");
  EXPECT_THAT(ParseError("storage:\n  drives:\n    - /dev/nvme0n1\n"),
              StartsWith("storage.drives[0]: expected {media: PATH}"));
  EXPECT_THAT(ParseError("storage:\n  drives: /dev/nvme0n1\n"),
              StartsWith("storage.drives: expected a list"));
}

TEST(ConfigErrors, SectionsMustBeMaps) {
  EXPECT_THAT(ParseError("network: 127.0.0.1:9900\n"),
              StartsWith("network: expected a map with the fields address, tls_cert"));
  EXPECT_THAT(ParseError("- a\n- b\n"), StartsWith("a config is a map with the sections network, memory"));
}

// Found by config_fuzz: a lone byte came back from ToYaml as U+FFFD, so a
// printed config named another file.
TEST(ConfigErrors, TextThatIsNotUtf8IsRefused) {
  EXPECT_THAT(ParseError("storage:\n  drives:\n    - media: ./dri\xbd.img\n"),
              StartsWith("storage.drives[0].media: not valid UTF-8"));
  EXPECT_THAT(ParseError("network: {auth_key: \"\xc3\"}"), StartsWith("network.auth_key: not valid UTF-8"));
  EXPECT_THAT(ParseError("rdma: {device: \"\xed\xa0\x80\"}"), HasSubstr("not valid UTF-8"));  // a surrogate
  EXPECT_THAT(ParseError("rdma: {device: \"\xc0\xaf\"}"), HasSubstr("not valid UTF-8"));  // overlong
  const Config c = ParseConfig("storage:\n  drives:\n    - media: /d\xc3\xa9v/\xe2\x82\xac\xf0\x9f\x98\x80\n");
  EXPECT_EQ(c.storage.drives.at(0).media, "/d\xc3\xa9v/\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(ParseConfig(ToYaml(c)), c);
}

TEST(ConfigErrors, FieldGivenTwice) {
  EXPECT_THAT(ParseError("memory:\n  max_size: 1 GiB\n  max_size: 2 GiB\n"),
              StartsWith("memory.max_size: given twice"));
}

TEST(ConfigErrors, NotYaml) {
  try {
    ParseConfig("network:\n  address: [unclosed\n");
    FAIL() << "parsed";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), StartsWith("not valid YAML: "));
    EXPECT_GT(e.line(), 0);
  }
}

// ---- Validation ---------------------------------------------------------------

TEST(ConfigValidate, TlsNeedsBothFiles) {
  Config c = Config::EmbeddedDefault();
  c.network.tls_cert = "/etc/cert.pem";
  EXPECT_THAT(ValidateError(c), StartsWith("network.tls_cert: set without network.tls_key"));
  c.network.tls_cert.clear();
  c.network.tls_key = "/etc/key.pem";
  EXPECT_THAT(ValidateError(c), StartsWith("network.tls_key: set without network.tls_cert"));
  c.network.tls_cert = "/etc/cert.pem";
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigValidate, AuthKeyIs64Hex) {
  Config c = Config::EmbeddedDefault();
  c.network.auth_key = "abc123";
  EXPECT_THAT(ValidateError(c), StartsWith("network.auth_key: must be 64 hex characters, got 6"));
  c.network.auth_key = std::string(63, 'a') + "g";
  EXPECT_THAT(ValidateError(c), StartsWith("network.auth_key: character 64 is not a hex digit"));
  c.network.auth_key = std::string(65, 'a');
  EXPECT_THAT(ValidateError(c), StartsWith("network.auth_key: must be 64 hex characters, got 65"));
  c.network.auth_key = kKey64;
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigValidate, AuthKeyIsNeverEchoed) {
  Config c = Config::EmbeddedDefault();
  c.network.auth_key = "supersecretvalue";
  EXPECT_THAT(ValidateError(c), ::testing::Not(HasSubstr("supersecret")));
}

TEST(ConfigValidate, WatermarksInOrderAndInRange) {
  Config c = Config::EmbeddedDefault();
  c.storage.eviction.low_watermark = 0.95;
  EXPECT_EQ(ValidateError(c),
            "storage.eviction.low_watermark: 0.95 must be below "
            "storage.eviction.high_watermark (0.9)");
  c.storage.eviction.low_watermark = 0.9;
  EXPECT_THAT(ValidateError(c), StartsWith("storage.eviction.low_watermark: 0.9 must be below"));
  c.storage.eviction.low_watermark = 0.5;
  c.storage.eviction.high_watermark = 1.5;
  EXPECT_THAT(ValidateError(c), StartsWith("storage.eviction.high_watermark: 1.5: must be a fraction"));
  c.storage.eviction.high_watermark = 0.9;
  c.storage.eviction.low_watermark = -0.1;
  EXPECT_THAT(ValidateError(c), StartsWith("storage.eviction.low_watermark: -0.1: must be a fraction"));
  c.storage.eviction.low_watermark = 0;
  c.storage.eviction.high_watermark = 1;
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigValidate, ThreadsAtLeastOne) {
  Config c = Config::EmbeddedDefault();
  c.server.threads = 0;
  EXPECT_EQ(ValidateError(c), "server.threads: must be at least 1");
  c.server.threads = kMaxThreads + 1;
  EXPECT_THAT(ValidateError(c), StartsWith("server.threads: 1025: at most 1024"));
  c.server.threads = 1;
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigValidate, DrivesForFileAndDirectMode) {
  Config c = Config::EmbeddedDefault();
  c.storage.drives.clear();
  EXPECT_THAT(ValidateError(c), StartsWith("storage.drives: storage.mode file needs at least one drive"));
  c.storage.mode = store::Mode::kDirect;
  EXPECT_THAT(ValidateError(c), StartsWith("storage.drives: storage.mode direct needs"));
  c.storage.mode = store::Mode::kMemory;
  EXPECT_EQ(ValidateError(c), "");
  // Memory mode ignores drives, so `--set storage.mode=memory` works on any config.
  c.storage.drives = {{"/a"}, {"/b"}};
  EXPECT_EQ(ValidateError(c), "");

  c = Config::EmbeddedDefault();
  c.storage.drives[1].media = "";
  EXPECT_EQ(ValidateError(c), "storage.drives[1].media: empty");
  c.storage.drives[1].media = c.storage.drives[0].media;
  EXPECT_EQ(ValidateError(c),
            "storage.drives[1].media: \"./var/memkv/drive0.img\" is already storage.drives[0]");
}

TEST(ConfigValidate, SizesFitTogether) {
  Config c = Config::EmbeddedDefault();
  c.storage.block_size = 4 * kMiB + 512;
  EXPECT_THAT(ValidateError(c), StartsWith("storage.block_size: 4194816: must be a non-zero multiple of 4 KiB"));
  c = Config::EmbeddedDefault();
  c.memory.block_size = 0;
  EXPECT_THAT(ValidateError(c), StartsWith("memory.block_size: 0 B: must be a non-zero multiple"));
  c = Config::EmbeddedDefault();
  c.memory.max_size = kMiB;
  EXPECT_EQ(ValidateError(c), "memory.max_size: 1 MiB is smaller than memory.block_size (2 MiB)");
  c = Config::EmbeddedDefault();
  c.limits.max_batch_entries = 0;
  EXPECT_EQ(ValidateError(c), "limits.max_batch_entries: must be at least 1");
}

TEST(ConfigValidate, UnixSocketPathMustFit) {
  Config c = Config::EmbeddedDefault();
  c.network.unix_socket = "/" + std::string(120, 'x');
  EXPECT_THAT(ValidateError(c), StartsWith("network.unix_socket: path is 121 bytes, longer than"));
  c.network.unix_socket = "";  // no Unix socket
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigValidate, RdmaProviderIsOffOfiOrVerbsWithADevice) {
  Config c = Config::EmbeddedDefault();
  EXPECT_EQ(c.rdma.provider, "");  // no rdma rail by default
  EXPECT_EQ(c.rdma.ofi_provider, "tcp;ofi_rxm");
  c.rdma.provider = "ofi";
  EXPECT_EQ(ValidateError(c), "");
  c.rdma.provider = "infiniband";
  EXPECT_THAT(ValidateError(c), StartsWith("rdma.provider: 'infiniband': must be empty"));
  c.rdma.provider = "verbs";
  c.rdma.device = "";
  EXPECT_THAT(ValidateError(c), StartsWith("rdma.device: must name the RDMA device (HCA) for "
                                           "rdma.provider: verbs"));
  c.rdma.device = "mlx5_0";
  EXPECT_EQ(ValidateError(c), "");
  c.rdma.provider = "ofi";
  c.rdma.max_inflight_per_peer = 0;
  EXPECT_THAT(ValidateError(c), StartsWith("rdma.max_inflight_per_peer: must be 1 to 65536"));
  c.rdma.max_inflight_per_peer = 64;
  c.rdma.transfer_timeout_ms = 0;
  EXPECT_THAT(ValidateError(c), StartsWith("rdma.transfer_timeout: must be at least 1"));
  EXPECT_EQ(OverrideError("rdma.provider", "ofi"), "");
}

// ---- Addresses and the security default -----------------------------------------

TEST(ConfigAddress, LoopbackNeedsNoKey) {
  for (const char* a : {"127.0.0.1:9900", "127.8.9.10:9900", "localhost:9900", "LOCALHOST:1",
                        "[::1]:9900", "[::ffff:127.0.0.1]:9900"}) {
    EXPECT_EQ(ValidateError(WithAddress(a)), "") << a;
  }
}

TEST(ConfigAddress, NonLoopbackWithoutKeyIsRefused) {
  for (const char* a : {"0.0.0.0:9900", "10.1.2.3:9900", "[::]:9900", "[fe80::1]:9900",
                        "memkv-host:9900", "128.0.0.1:9900"}) {
    const std::string msg = ValidateError(WithAddress(a));
    EXPECT_THAT(msg, StartsWith("network.address: ")) << a;
    EXPECT_THAT(msg, HasSubstr("is not a loopback address")) << a;
    EXPECT_THAT(msg, HasSubstr("network.auth_key")) << a;
    EXPECT_THAT(msg, HasSubstr("network.allow_unauthenticated: true")) << a;
  }
  EXPECT_THAT(ValidateError(WithAddress("[::]:9900")), StartsWith("network.address: [::]:9900 is"));
}

TEST(ConfigAddress, NonLoopbackWithKeyOrExplicitOptOutIsAccepted) {
  Config c = WithAddress("0.0.0.0:9900");
  c.network.auth_key = kKey64;
  EXPECT_EQ(ValidateError(c), "");
  c = WithAddress("0.0.0.0:9900");
  c.network.allow_unauthenticated = true;
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigAddress, ParsesHostAndPort) {
  EXPECT_EQ(ParseHostPort("127.0.0.1:9900"), (HostPort{"127.0.0.1", 9900}));
  EXPECT_EQ(ParseHostPort("[::1]:9900"), (HostPort{"::1", 9900}));
  EXPECT_EQ(ParseHostPort("0.0.0.0:1"), (HostPort{"0.0.0.0", 1}));
  EXPECT_EQ(ParseHostPort("db-7.example:65534"), (HostPort{"db-7.example", 65534}));
  EXPECT_EQ(HostPort({"::1", 9900}).ToString(), "[::1]:9900");
  EXPECT_EQ(HostPort({"10.0.0.1", 9900}).ToString(), "10.0.0.1:9900");

  const Config v6 = WithAddress("[::1]:9900");
  EXPECT_EQ(DataAddress(v6), (HostPort{"::1", 9900}));
  EXPECT_EQ(AdminAddress(v6), (HostPort{"::1", 9901}));
  EXPECT_EQ(AdminAddress(v6).ToString(), "[::1]:9901");
}

TEST(ConfigAddress, BadAddressesNameTheField) {
  const auto error = [](const char* a) { return ValidateError(WithAddress(a)); };
  EXPECT_THAT(error("127.0.0.1"), StartsWith("network.address: \"127.0.0.1\": expected host:port"));
  EXPECT_THAT(error("::1:9900"), HasSubstr("in brackets"));
  EXPECT_THAT(error("[::1:9900"), HasSubstr("missing ']'"));
  EXPECT_THAT(error("[nothost]:9900"), HasSubstr("not an IPv6 address"));
  EXPECT_THAT(error(":9900"), HasSubstr("missing host"));
  EXPECT_THAT(error("a b:9900"), HasSubstr("not a host name or address"));
  for (const char* a : {"127.0.0.1:0", "127.0.0.1:65535", "127.0.0.1:http", "127.0.0.1:", "127.0.0.1:99999"})
    EXPECT_THAT(error(a), HasSubstr("port must be a number from 1 to 65534")) << a;
}

TEST(ConfigAddress, IsLoopbackHost) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.255.255.254"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("0:0:0:0:0:0:0:1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("192.168.1.1"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
}

// ---- Overrides ------------------------------------------------------------------

TEST(ConfigOverride, SetsFieldsWithTheFileRules) {
  Config c = Config::EmbeddedDefault();
  ApplyOverride(c, "network.address", "[::1]:7000");
  ApplyOverride(c, "memory.max_size", "512 MiB");
  ApplyOverride(c, "server.threads", "3");
  ApplyOverride(c, "storage.mode", "memory");
  ApplyOverride(c, "network.allow_unauthenticated", "true");
  ApplyOverride(c, "storage.eviction.low_watermark", "0.25");
  ApplyOverride(c, "limits.max_value_size", "4096");
  ApplyOverride(c, "network.tls_cert", "");
  EXPECT_EQ(c.network.address, "[::1]:7000");
  EXPECT_EQ(c.memory.max_size, 512 * kMiB);
  EXPECT_EQ(c.server.threads, 3u);
  EXPECT_EQ(c.storage.mode, store::Mode::kMemory);
  EXPECT_TRUE(c.network.allow_unauthenticated);
  EXPECT_DOUBLE_EQ(c.storage.eviction.low_watermark, 0.25);
  EXPECT_EQ(c.limits.max_value_size, 4096u);
  // Untouched fields keep their values.
  EXPECT_EQ(c.storage.drives, Config::EmbeddedDefault().storage.drives);
  EXPECT_EQ(c.network.unix_socket, "./var/memkv/memkv.sock");
  EXPECT_NO_THROW(Validate(c));
}

TEST(ConfigOverride, DrivesTakeACommaSeparatedList) {
  Config c = Config::EmbeddedDefault();
  ApplyOverride(c, "storage.drives", "/dev/nvme0n1, /dev/nvme1n1,/dev/nvme2n1");
  ASSERT_EQ(c.storage.drives.size(), 3u);
  EXPECT_EQ(c.storage.drives[0].media, "/dev/nvme0n1");
  EXPECT_EQ(c.storage.drives[1].media, "/dev/nvme1n1");
  EXPECT_EQ(c.storage.drives[2].media, "/dev/nvme2n1");
  ApplyOverride(c, "storage.drives", "");
  EXPECT_TRUE(c.storage.drives.empty());
  EXPECT_THAT(OverrideError("storage.drives", "/a,,/b"), StartsWith("storage.drives: \"/a,,/b\": an empty path"));
}

TEST(ConfigOverride, ErrorsMatchTheFileAndLeaveTheConfigAlone) {
  EXPECT_THAT(OverrideError("memory.max_size", "12 parsecs"),
              StartsWith("memory.max_size: \"12 parsecs\": unknown unit"));
  EXPECT_THAT(OverrideError("network.bogus", "1"), StartsWith("network.bogus: unknown field"));
  EXPECT_THAT(OverrideError("bogus", "1"), StartsWith("bogus: unknown field"));
  EXPECT_THAT(OverrideError("storage.mode", "disk"), StartsWith("storage.mode: \"disk\""));
  EXPECT_THAT(OverrideError("server.threads", "lots"), StartsWith("server.threads: \"lots\""));
  EXPECT_THAT(OverrideError("storage.eviction", "0.5"),
              StartsWith("storage.eviction: expected a map with the fields high_watermark, low_watermark"));
  EXPECT_THAT(OverrideError("memory..max_size", "1"), HasSubstr("not a field path"));
  EXPECT_THAT(OverrideError("", "1"), HasSubstr("not a field path"));
  EXPECT_THAT(OverrideError("memory.max_size.x", "1"), StartsWith("memory.max_size: expected a value, got a map"));
}

TEST(ConfigOverride, ValidationRunsAfterOverrides) {
  // An override may pass through an invalid state; Validate judges the end.
  Config c = Config::EmbeddedDefault();
  ApplyOverride(c, "network.address", "0.0.0.0:9900");
  EXPECT_THAT(ValidateError(c), HasSubstr("not a loopback address"));
  ApplyOverride(c, "network.auth_key", kKey64);
  EXPECT_EQ(ValidateError(c), "");
}

TEST(ConfigOverride, AllowedHostsTakeACommaSeparatedList) {
  Config c = Config::EmbeddedDefault();
  ApplyOverride(c, "admin.allowed_hosts", "memkv-01.example.com, dashboard.local");
  EXPECT_EQ(c.admin.allowed_hosts,
            (std::vector<std::string>{"memkv-01.example.com", "dashboard.local"}));
  ApplyOverride(c, "admin.allowed_hosts", "");
  EXPECT_TRUE(c.admin.allowed_hosts.empty());
  EXPECT_THAT(OverrideError("admin.allowed_hosts", "a,,b"),
              StartsWith("admin.allowed_hosts: \"a,,b\": an empty name"));
  ApplyOverride(c, "admin.max_connections", "5");
  EXPECT_EQ(c.admin.max_connections, 5u);
}

// ---- The admin section ---------------------------------------------------------

TEST(ConfigAdmin, AllowedHostsAreAListOfNames) {
  EXPECT_THAT(ParseError("admin: {allowed_hosts: memkv.example}"),
              StartsWith("admin.allowed_hosts: expected a list of host names"));
  EXPECT_THAT(ParseError("admin: {allowed_hosts: [[a]]}"),
              StartsWith("admin.allowed_hosts[0]: expected a value, got a list"));
  EXPECT_THAT(ParseError("admin: {bogus: 1}"), StartsWith("admin.bogus: unknown field"));
  EXPECT_TRUE(ParseConfig("admin: {allowed_hosts: }").admin.allowed_hosts.empty());
}

TEST(ConfigAdmin, ValidateNamesTheBadEntry) {
  const auto with_hosts = [](std::vector<std::string> hosts) {
    Config c = Config::EmbeddedDefault();
    c.admin.allowed_hosts = std::move(hosts);
    return ValidateError(c);
  };
  EXPECT_EQ(with_hosts({"memkv-01.example.com", "node_7.lan", "localhost"}), "");
  EXPECT_THAT(with_hosts({"ok.example", "evil.example:9901"}),
              StartsWith("admin.allowed_hosts[1]: \"evil.example:9901\": not a host name"));
  EXPECT_THAT(with_hosts({"http://x.example"}), StartsWith("admin.allowed_hosts[0]:"));
  EXPECT_THAT(with_hosts({"*.example.com"}), StartsWith("admin.allowed_hosts[0]:"));
  EXPECT_THAT(with_hosts({""}), StartsWith("admin.allowed_hosts[0]: empty"));
  EXPECT_THAT(with_hosts({std::string(254, 'a')}), StartsWith("admin.allowed_hosts[0]: longer"));
}

TEST(ConfigAdmin, LimitsInRange) {
  const auto with = [](auto set) {
    Config c = Config::EmbeddedDefault();
    set(c.admin);
    return ValidateError(c);
  };
  EXPECT_THAT(with([](AdminConfig& a) { a.max_connections = 0; }),
              StartsWith("admin.max_connections: must be at least 1"));
  EXPECT_THAT(with([](AdminConfig& a) { a.header_timeout_seconds = 0; }),
              StartsWith("admin.header_timeout_seconds: must be at least 1"));
  EXPECT_THAT(with([](AdminConfig& a) { a.max_header_size = 100; }),
              StartsWith("admin.max_header_size: 100 B: must be from 1 KiB to 1 MiB"));
  EXPECT_THAT(with([](AdminConfig& a) { a.max_header_size = 2 * kMiB; }),
              StartsWith("admin.max_header_size:"));
  EXPECT_THAT(with([](AdminConfig& a) { a.max_body_size = 0; }),
              StartsWith("admin.max_body_size:"));
  EXPECT_THAT(with([](AdminConfig& a) { a.max_body_size = 2 * kGiB; }),
              StartsWith("admin.max_body_size:"));
  EXPECT_EQ(with([](AdminConfig& a) {
              a.max_connections = 1;
              a.max_header_size = kKiB;
              a.max_body_size = kGiB;
            }),
            "");
}

// ---- Output and derived values ------------------------------------------------------

TEST(ConfigYaml, RoundTripsTheEmbeddedDefault) {
  const Config c = Config::EmbeddedDefault();
  EXPECT_EQ(ParseConfig(ToYaml(c)), c) << ToYaml(c);
}

TEST(ConfigYaml, RoundTripsEveryField) {
  Config c;
  c.network.address = "[::1]:7000";
  c.network.tls_cert = "/etc/memkv cert.pem";
  c.network.tls_key = "key: with colon.pem";
  c.network.auth_key = "0123456789012345678901234567890123456789012345678901234567890123";
  c.network.unix_socket = "";
  c.network.allow_unauthenticated = true;
  c.memory.block_size = 3 * kMiB + 4096;  // not a whole number of MiB
  c.memory.max_size = kGiB + kGiB / 2;    // "1.50 GiB" reads back exactly
  c.rdma.device = "mlx5_1";
  c.storage.mode = store::Mode::kDirect;
  c.storage.block_size = 16 * kMiB;
  c.storage.drives = {{"/dev/nvme0n1"}, {"#not a comment"}, {"- dash"}};
  c.storage.eviction = {0.123456789, 0.1};
  c.server.threads = 77;
  c.limits = {kGiB - 1, 1, 2, 12345, 3, 4};
  c.admin.allowed_hosts = {"a.example", "null", "true", "-x"};
  c.admin.max_connections = 3;
  c.admin.header_timeout_seconds = 99;
  c.admin.max_header_size = 5000;
  c.admin.max_body_size = 2 * kGiB;
  const std::string yaml = ToYaml(c);
  EXPECT_EQ(ParseConfig(yaml), c) << yaml;
}

TEST(ConfigDerived, StoreOptionsComeFromTheirFields) {
  Config c = Config::EmbeddedDefault();
  c.storage.mode = store::Mode::kMemory;
  c.memory.max_size = 3 * kGiB;
  c.memory.block_size = 1 * kMiB;
  c.limits.max_value_size = 10 * kMiB;
  c.storage.eviction = {0.7, 0.6};
  c.storage.block_size = 8 * kMiB;
  const store::StoreOptions o = ToStoreOptions(c);
  EXPECT_EQ(o.mode, store::Mode::kMemory);
  EXPECT_EQ(o.memory_max_size, 3 * kGiB);
  EXPECT_EQ(o.staging_chunk, kMiB);
  EXPECT_EQ(o.max_value_size, 10 * kMiB);
  EXPECT_DOUBLE_EQ(o.high_watermark, 0.7);
  EXPECT_DOUBLE_EQ(o.low_watermark, 0.6);
  EXPECT_EQ(ToFormatOptions(c).stripe_unit, 8 * kMiB);
  EXPECT_STREQ(ModeName(store::Mode::kFile), "file");
}

// ---- Files ---------------------------------------------------------------------

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("memkv_config_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::string LoadError(const std::string& path) {
    try {
      LoadConfigFile(path);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFile, LoadsAFile) {
  const std::string path = Write("ok.yaml", kEmbeddedDefaultYaml);
  EXPECT_EQ(LoadConfigFile(path), Config::EmbeddedDefault());
}

TEST_F(ConfigFile, ErrorsNameThePathAndLine) {
  const std::string missing = (dir_ / "nope.yaml").string();
  EXPECT_EQ(LoadError(missing), missing + ": cannot open: No such file or directory");
  EXPECT_THAT(LoadError(dir_.string()), StartsWith(dir_.string() + ": cannot read: "));

  const std::string bad_field = Write("field.yaml", "memory:\n  max_size: 12 parsecs\n");
  EXPECT_THAT(LoadError(bad_field),
              StartsWith(bad_field + ":2:13: memory.max_size: \"12 parsecs\": unknown unit"));

  const std::string not_yaml = Write("bad.yaml", "network:\n  address: [oops\nmemory: {\n");
  EXPECT_THAT(LoadError(not_yaml), StartsWith(not_yaml + ":"));
  EXPECT_THAT(LoadError(not_yaml), HasSubstr("not valid YAML: "));
}

}  // namespace
}  // namespace memkv::server
