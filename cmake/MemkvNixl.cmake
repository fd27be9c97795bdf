# NIXL, optional: with -DNIXL_ROOT=PREFIX (or NIXL installed where CMake
# looks), src/nixl builds the backend plugin libplugin_MEMKV.so, and the
# `nixl` tests and benchmark are built. Without it nothing of NIXL is needed.
#
# Sets MEMKV_NIXL_FOUND, NIXL_INCLUDE_DIR, NIXL_COMMON_LIBRARY, NIXL_LIBRARY,
# NIXL_BUILD_LIBRARY, MEMKV_NIXL_VERSION (read from libnixl_common.so, which
# NIXL compiles its version into; the plugin compares it with the NIXL that
# loads it).
set(NIXL_ROOT "" CACHE PATH "NIXL's install prefix: builds the NIXL plugin (src/nixl)")
set(MEMKV_NIXL_FOUND OFF)
# A changed NIXL_ROOT searches again rather than keeping what the last one found.
if(DEFINED CACHE{MEMKV_NIXL_ROOT_SEARCHED} AND NOT MEMKV_NIXL_ROOT_SEARCHED STREQUAL NIXL_ROOT)
  unset(NIXL_INCLUDE_DIR CACHE)
  unset(NIXL_COMMON_LIBRARY CACHE)
  unset(NIXL_LIBRARY CACHE)
  unset(NIXL_BUILD_LIBRARY CACHE)
endif()
set(MEMKV_NIXL_ROOT_SEARCHED "${NIXL_ROOT}" CACHE INTERNAL "")
set(_nixl_hints "")
if(NIXL_ROOT)
  set(_nixl_hints HINTS "${NIXL_ROOT}")
endif()
find_path(NIXL_INCLUDE_DIR backend/backend_plugin.h ${_nixl_hints}
          PATH_SUFFIXES include PATHS /opt/nvidia/nvda_nixl)
find_library(NIXL_COMMON_LIBRARY nixl_common ${_nixl_hints}
             PATH_SUFFIXES lib/x86_64-linux-gnu lib64 lib PATHS /opt/nvidia/nvda_nixl)
find_library(NIXL_LIBRARY nixl ${_nixl_hints}
             PATH_SUFFIXES lib/x86_64-linux-gnu lib64 lib PATHS /opt/nvidia/nvda_nixl)
find_library(NIXL_BUILD_LIBRARY nixl_build ${_nixl_hints}
             PATH_SUFFIXES lib/x86_64-linux-gnu lib64 lib PATHS /opt/nvidia/nvda_nixl)
if(NIXL_INCLUDE_DIR AND NIXL_COMMON_LIBRARY AND NIXL_LIBRARY AND NIXL_BUILD_LIBRARY
   AND EXISTS "${NIXL_INCLUDE_DIR}/absl/log/log.h")
  file(STRINGS "${NIXL_COMMON_LIBRARY}" _nixl_version REGEX "^[0-9]+\\.[0-9]+\\.[0-9]+$"
       LIMIT_COUNT 1)
  if(NOT _nixl_version)
    set(_nixl_version "unknown")
  endif()
  set(MEMKV_NIXL_VERSION "${_nixl_version}")
  set(MEMKV_NIXL_FOUND ON)
  message(STATUS "memkv: NIXL ${MEMKV_NIXL_VERSION} in ${NIXL_INCLUDE_DIR}: building libplugin_MEMKV.so")
elseif(NIXL_ROOT)
  message(FATAL_ERROR "NIXL_ROOT=${NIXL_ROOT}: no NIXL there (wanted include/backend/backend_plugin.h, "
                      "include/absl/log/log.h, and libnixl, libnixl_build, libnixl_common under lib/)")
else()
  message(STATUS "memkv: no NIXL (-DNIXL_ROOT=PREFIX to build the NIXL plugin)")
endif()
