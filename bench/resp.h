#pragma once
// RESP2, the Redis protocol, as far as memkv-bench's Redis baseline needs it:
// commands are encoded as arrays of bulk strings, and replies are parsed from
// a byte buffer without copying (a bulk reply is a view into the buffer).
// Pure functions and a plain parser: no sockets (redis_client.h has those).

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace memkv::bench::resp {

// Appends `*N\r\n` then `$len\r\narg\r\n` for each argument.
void AppendCommand(std::string& out, std::span<const std::string_view> args);
void AppendCommand(std::string& out, std::initializer_list<std::string_view> args);

enum class Type : uint8_t {
  kSimple,   // +OK
  kError,    // -ERR ...
  kInteger,  // :42
  kBulk,     // $3\r\nabc
  kNull,     // $-1 or *-1
  kArray,    // *N ...
};

// One reply. Views point into the buffer given to Parse: valid while it is.
struct Value {
  Type type = Type::kNull;
  std::string_view text;  // kSimple, kError, kBulk
  int64_t integer = 0;    // kInteger
  std::vector<Value> elements;  // kArray
};

enum class ParseStatus : uint8_t {
  kOk,          // `out` holds a reply, `consumed` bytes of the buffer made it
  kIncomplete,  // the buffer holds only the start of a reply: read more
  kError,       // not RESP
};

// Parses the reply at the start of `in`. Nesting deeper than 32 arrays and
// lengths over 1 GiB are errors.
ParseStatus Parse(std::string_view in, Value& out, size_t& consumed);

// Encodes a reply (tests, and a fake server if one is ever needed).
void AppendValue(std::string& out, const Value& v);

}  // namespace memkv::bench::resp
