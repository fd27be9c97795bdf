#include "common/error.h"

namespace memkv::common {

const char* Describe(errc e) {
  switch (e) {
    case errc::ok: return "success";
    case errc::empty_value: return "empty value";
    case errc::bad_number: return "not a number";
    case errc::bad_unit: return "unknown unit (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)";
    case errc::out_of_range: return "value out of range";
    case errc::bad_name: return "not one of the accepted names";
    case errc::cuda_unavailable: return "no CUDA driver (libcuda.so.1) in this process";
    case errc::cuda_failed: return "CUDA driver call failed";
    case errc::not_device_memory: return "not CUDA device memory";
  }
  return "unknown common error";
}

const boost::system::error_category& category() {
  static const EnumCategory cat("memkv.common",
                                [](int ev) { return Describe(static_cast<errc>(ev)); });
  return cat;
}

}  // namespace memkv::common
