# Every external dependency, from Debian's -dev packages. conan/conanfile.py
# declares the same set; tests/layout/conan_sync_test.cc keeps the two in step.

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# A portable build (MEMKV_PORTABLE, cmake/MemkvPortable.cmake) links static
# archives: Boost's and OpenSSL's find modules pick them; fmt, spdlog,
# yaml-cpp and simdjson are defined there instead of found here.
if(MEMKV_PORTABLE)
  set(Boost_USE_STATIC_LIBS ON)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
endif()
find_package(Boost 1.81.0 EXACT CONFIG REQUIRED COMPONENTS system json url)
find_package(OpenSSL 3 REQUIRED)
if(NOT MEMKV_PORTABLE)
  find_package(fmt REQUIRED)
  find_package(spdlog REQUIRED)
  find_package(yaml-cpp REQUIRED)
  find_package(simdjson REQUIRED)
endif()
find_package(CLI11 REQUIRED)

pkg_check_modules(xxhash REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(liburing REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(ibverbs REQUIRED IMPORTED_TARGET libibverbs)
pkg_check_modules(rdmacm REQUIRED IMPORTED_TARGET librdmacm)
# libfabric (the rdma rail's `ofi` provider; its tcp provider runs the tests).
pkg_check_modules(libfabric REQUIRED IMPORTED_TARGET libfabric)
pkg_check_modules(jemalloc REQUIRED IMPORTED_TARGET jemalloc)
include(MemkvPortable)

if(MEMKV_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(MEMKV_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
