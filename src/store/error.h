#pragma once
// Errors of the storage engine.

#include "common/error.h"

namespace memkv::store {

enum class errc {
  ok = 0,
  truncated,         // a record shorter than its fields
  trailing_bytes,    // bytes after a record's fields where none may be
  bad_magic,         // not a memkv record (or an unformatted drive)
  bad_checksum,      // a record whose checksum does not match: torn or corrupt
  newer_format,      // written by a newer memkv: refused, never guessed at
  bad_record,        // a record whose fields contradict each other
  no_superblock,     // neither superblock copy is valid
  drive_too_small,
  bad_geometry,      // sizes that are not multiples of the page or stripe unit
  not_found,         // no such key
  no_space,          // full, and nothing can be evicted
  too_large,         // value over max_value_size
  empty_value,       // values are 1 byte and up
  bad_key,           // keys are 1 to 1024 bytes
  range_out_of_bounds,  // read range past the end of the value
  checksum_mismatch, // stored bytes do not match their checksum: the entry is dropped
  unavailable,       // a drive holding the value is out of service
  set_mismatch,      // drives of different sets, or a set with drives missing
  closed,            // the store is closing
  metadata_full,     // the index no longer fits a checkpoint slot
};

const char* Describe(errc e);
const boost::system::error_category& category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

}  // namespace memkv::store

template <>
struct boost::system::is_error_code_enum<memkv::store::errc> : std::true_type {};
