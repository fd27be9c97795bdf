#pragma once
// The byte primitives of the wire format, with proto's errors.

#include "common/bytes.h"
#include "proto/error.h"

namespace memkv::proto {

using memkv::Buffer;
using memkv::Bytes;
using memkv::Writer;
using Reader = ByteReader<errc>;

}  // namespace memkv::proto
