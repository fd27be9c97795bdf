#pragma once

#include <string>

namespace memkv::cli {

// The git revision the binary was built from, "" outside a git checkout.
const char* GitRevision();

// "memkv 0.1.0 (rev 1a2b3c4d5e6f)" or "memkv 0.1.0".
std::string VersionLine();

}  // namespace memkv::cli
