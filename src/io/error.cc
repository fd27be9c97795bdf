#include "io/error.h"

namespace memkv::io {

const char* Describe(errc e) {
  switch (e) {
    case errc::ok:
      return "success";
    case errc::stopped:
      return "stopped: the I/O ring or helper pool is shutting down";
    case errc::overloaded:
      return "overloaded: too many operations already waiting";
    case errc::no_ring:
      return "no io_uring ring is attached to the calling loop";
    case errc::short_read:
      return "short read: the device returned fewer bytes than asked";
    case errc::short_write:
      return "short write: the device accepted no bytes";
    case errc::misaligned:
      return "misaligned: offset, length and buffer address must be multiples of the device's "
             "block size";
    case errc::out_of_range:
      return "range runs past the end of the device";
    case errc::device_in_use:
      return "device is in use: another process holds its exclusive lock (another memkv on "
             "it?); stop that process or choose another drive";
    case errc::not_block_device:
      return "not a block device (storage.mode direct needs one; use storage.mode file for a "
             "regular file)";
    case errc::not_regular_file:
      return "not a regular file (storage.mode file needs one; use storage.mode direct for a "
             "block device)";
    case errc::pool_exhausted:
      return "buffer pool exhausted: every buffer is in use";
    case errc::injected_fault:
      return "injected fault (test device)";
    case errc::power_cut:
      return "power cut (test device)";
    case errc::bad_option:
      return "option out of range";
    case errc::ring_attached:
      return "this loop already has an io_uring ring";
  }
  return "unknown io error";
}

const boost::system::error_category& category() {
  static const EnumCategory cat("memkv.io", [](int ev) { return Describe(static_cast<errc>(ev)); });
  return cat;
}

}  // namespace memkv::io
