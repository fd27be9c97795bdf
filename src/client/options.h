#pragma once
// Client settings as a program outside the library gives them: server
// addresses and the auth key as text (flags, MEMKV_SERVERS,
// MEMKV_AUTH_KEY), turned into ConnectionOptions.

#include <string>
#include <string_view>
#include <vector>

#include "client/connection.h"

namespace memkv::client {

// Splits "host:port,host:port" (spaces allowed) into addresses.
std::vector<std::string> SplitServers(std::string_view list);

// Options for one server; `auth_key_hex` empty for none, else 64 hex
// characters (client::errc::bad_argument otherwise).
Result<ConnectionOptions> MakeConnectionOptions(std::string address, std::string_view auth_key_hex);

}  // namespace memkv::client
