#pragma once
// Error categories. Each module declares `enum class errc` with a
// `const char* Describe(errc)` function and gets its category from
// MakeCategory, so every module's errors print their own names.

#include <string>

#include "common/result.h"

namespace memkv {

// An error_category whose messages come from a plain function. Instances are
// function-local statics owned by each module's category() function.
class EnumCategory final : public boost::system::error_category {
 public:
  using DescribeFn = const char* (*)(int);
  EnumCategory(const char* name, DescribeFn describe) : name_(name), describe_(describe) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int ev) const override { return describe_(ev); }

 private:
  const char* name_;
  DescribeFn describe_;
};

namespace common {

// Errors of the common module (parsing of sizes and other small values).
enum class errc {
  ok = 0,
  empty_value,     // nothing to parse
  bad_number,      // not a number where one was expected
  bad_unit,        // unknown size unit
  out_of_range,    // does not fit the type, or negative
  bad_name,        // not one of the accepted names
  cuda_unavailable,   // no CUDA driver (libcuda.so.1) in this process
  cuda_failed,        // a CUDA driver call failed (the text names it and its CUresult)
  not_device_memory,  // a device-memory operation on host memory
};

const char* Describe(errc e);
const boost::system::error_category& category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

}  // namespace common
}  // namespace memkv

template <>
struct boost::system::is_error_code_enum<memkv::common::errc> : std::true_type {};
