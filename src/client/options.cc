#include "client/options.h"

namespace memkv::client {

std::vector<std::string> SplitServers(std::string_view list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ' && c != '\t') {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

Result<ConnectionOptions> MakeConnectionOptions(std::string address, std::string_view auth_key_hex) {
  ConnectionOptions o;
  o.address = std::move(address);
  if (!auth_key_hex.empty()) {
    auto key = proto::AuthKey::FromHex(auth_key_hex);
    if (!key) return errc::bad_argument;
    o.auth_key = *key;
  }
  return o;
}

}  // namespace memkv::client
