#pragma once
// The one error scheme of memkv: functions that can fail return Result<T>,
// a boost::system::result carrying either a value or an error_code from a
// module's `errc` enum. Exceptions are reserved for start-up and config.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace memkv {

using boost::system::error_code;
template <class T>
using Result = boost::system::result<T, error_code>;
using Status = Result<void>;

// MEMKV_TRY(expr) returns the error of a Result from the enclosing function
// and otherwise goes on; the value stays in the Result the caller named:
//   auto size = ParseSize(text);
//   MEMKV_TRY(size);
//   Use(*size);
// MEMKV_CO_TRY is the same for coroutines.
#define MEMKV_TRY(expr)                       \
  do {                                        \
    if (auto&& memkv_try_r = (expr); !memkv_try_r) \
      return memkv_try_r.error();             \
  } while (0)
#define MEMKV_CO_TRY(expr)                    \
  do {                                        \
    if (auto&& memkv_try_r = (expr); !memkv_try_r) \
      co_return memkv_try_r.error();          \
  } while (0)

}  // namespace memkv
