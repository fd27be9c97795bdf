# Compiler flags shared by every target of the project.

find_program(MEMKV_CCACHE ccache)
if(MEMKV_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${MEMKV_CCACHE}")
  set(CMAKE_C_COMPILER_LAUNCHER "${MEMKV_CCACHE}")
endif()

add_compile_options(-Wall -Wextra -Wno-unused-parameter)

# clang checks every GUARDED_BY/REQUIRES of common/thread_annotations.h; an
# access to guarded state without its lock fails the build. GCC has no such
# analysis (the macros are empty there).
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_compile_options(-Wthread-safety -Werror=thread-safety)
endif()

# MEMKV_SANITIZE: OFF, address (ASan + UBSan, the asan preset; ON is the same)
# or thread (TSan, the tsan preset). The two cannot share a build.
string(TOLOWER "${MEMKV_SANITIZE}" _memkv_sanitize)
set(MEMKV_SANITIZE_ADDRESS OFF)
set(MEMKV_SANITIZE_THREAD OFF)
if(_memkv_sanitize STREQUAL "address" OR _memkv_sanitize STREQUAL "on")
  set(MEMKV_SANITIZE_ADDRESS ON)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(_memkv_sanitize STREQUAL "thread")
  set(MEMKV_SANITIZE_THREAD ON)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(MEMKV_SANITIZE)
  message(FATAL_ERROR "MEMKV_SANITIZE=${MEMKV_SANITIZE}: use OFF, address or thread")
endif()

if(MEMKV_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MEMKV_BUILD_FUZZ needs clang (libFuzzer); use the asan preset")
  endif()
  # Instrument everything for coverage; only the fuzz targets link the driver.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
