#pragma once
// Errors of the io module. Failures reported by the kernel keep their errno
// (boost::system::system_category); these are the ones io itself decides.

#include "common/error.h"

namespace memkv::io {

enum class errc {
  ok = 0,
  stopped,           // the ring or pool is stopping; the operation did not run or was cancelled
  overloaded,        // too many callers already waiting for a slot
  no_ring,           // the calling loop has no io::Ring attached
  short_read,        // the device returned fewer bytes than asked (end of device, or a fault)
  short_write,       // the device accepted no bytes of a write
  misaligned,        // offset, length or buffer address not a multiple of the block size
  out_of_range,      // the range runs past the end of the device
  device_in_use,     // another process (or open) holds the device's exclusive lock
  not_block_device,  // direct mode needs a block device
  not_regular_file,  // file mode needs a regular file
  pool_exhausted,    // every buffer of the pool is in use
  injected_fault,    // a fault-injecting test device failed the operation on purpose
  power_cut,         // the power-cut test device lost power during the operation
  bad_option,        // an option out of its range (zero depth, unaligned chunk size, ...)
  ring_attached,     // the loop already has an io::Ring
};

const char* Describe(errc e);
const boost::system::error_category& category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

}  // namespace memkv::io

template <>
struct boost::system::is_error_code_enum<memkv::io::errc> : std::true_type {};
