// libFuzzer target for the verbs endpoint blob (rdma/verbs_endpoint.h), the
// bytes a peer sends at Attach. A blob that decodes must re-encode to the
// very same bytes (the encoding is canonical); one that does not must say
// why; either way no read leaves the input.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "rdma/verbs_endpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memkv::rdma;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  std::string why;
  auto ep = DecodeEndpoint(in, &why);
  if (!ep) {
    if (why.empty()) __builtin_trap();
    return 0;
  }
  auto again = EncodeEndpoint(*ep);
  if (!again || again->size() != size || !std::equal(again->begin(), again->end(), in.begin()))
    __builtin_trap();
  (void)DescribeEndpoint(*ep);
  return 0;
}
