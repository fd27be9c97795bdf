#include "store/error.h"

namespace memkv::store {

const char* Describe(errc e) {
  switch (e) {
    case errc::ok: return "success";
    case errc::truncated: return "record truncated";
    case errc::trailing_bytes: return "unexpected bytes after a record";
    case errc::bad_magic: return "not a memkv drive (no memkv magic)";
    case errc::bad_checksum: return "checksum mismatch: the record is torn or corrupt";
    case errc::newer_format:
      return "written by a newer memkv (format version above this build's); upgrade memkv";
    case errc::bad_record: return "record fields contradict each other";
    case errc::no_superblock: return "neither the primary nor the mirror superblock is valid";
    case errc::drive_too_small: return "drive too small for memkv (at least 16 MiB)";
    case errc::bad_geometry: return "sizes are not multiples of 4 KiB and the stripe unit";
    case errc::not_found: return "no such key";
    case errc::no_space: return "store full and nothing can be evicted";
    case errc::too_large: return "value over the size limit";
    case errc::empty_value: return "empty value (values are 1 byte and up)";
    case errc::bad_key: return "bad key (keys are 1 to 1024 bytes)";
    case errc::range_out_of_bounds: return "range past the end of the value";
    case errc::checksum_mismatch: return "stored data does not match its checksum";
    case errc::unavailable: return "a drive holding the value is out of service";
    case errc::set_mismatch: return "drives do not form one complete set";
    case errc::closed: return "store is closing";
    case errc::metadata_full: return "index too large for a checkpoint slot";
  }
  return "unknown store error";
}

const boost::system::error_category& category() {
  static const EnumCategory cat("memkv.store",
                                [](int ev) { return Describe(static_cast<errc>(ev)); });
  return cat;
}

}  // namespace memkv::store
