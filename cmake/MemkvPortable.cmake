# Binaries for other distributions than the one that builds them
# (docs/packaging.md, "Portability"): what the Python wheel's libmemkv.so
# always does (python/CMakeLists.txt), and what MEMKV_PORTABLE=ON does for
# every binary (scripts/package.sh sets it): each dependency but glibc and the
# host's fabric libraries (libfabric, libibverbs, librdmacm) linked in from a
# static archive with its symbols hidden, libstdc++ and libgcc too, and the
# newest GLIBC_ symbol version needed held at MEMKV_PORTABLE_GLIBC, which
# scripts/portable-check.sh checks.
set(MEMKV_PORTABLE_GLIBC 2.34)
set(_memkv_portable_dir "${PROJECT_SOURCE_DIR}/packaging/portable")

# memkv_static_archive(VAR NAME): the path of Debian's libNAME.a, or an error
# naming what to install.
function(memkv_static_archive var name)
  find_library(${var} NAMES lib${name}.a)
  if(NOT ${var})
    message(FATAL_ERROR "memkv: a portable build needs lib${name}.a (its Debian -dev package)")
  endif()
endfunction()

# The compiled parts of fmt and spdlog (Debian ships neither as an archive),
# from Debian's headers: packaging/portable/fmt_spdlog.cc.
add_library(memkv_fmt_spdlog STATIC EXCLUDE_FROM_ALL "${_memkv_portable_dir}/fmt_spdlog.cc")
target_compile_definitions(memkv_fmt_spdlog PUBLIC SPDLOG_COMPILED_LIB SPDLOG_FMT_EXTERNAL)
set_target_properties(memkv_fmt_spdlog PROPERTIES
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_link_libraries(memkv_fmt_spdlog PUBLIC Threads::Threads)
# Their headers' warnings are not ours.
target_compile_options(memkv_fmt_spdlog PRIVATE -w)

# The glibc functions newer than MEMKV_PORTABLE_GLIBC that the static
# libstdc++ and libgcc call, defined hidden: packaging/portable/glibc_compat.cc.
add_library(memkv_glibc_compat OBJECT EXCLUDE_FROM_ALL "${_memkv_portable_dir}/glibc_compat.cc")
set_target_properties(memkv_glibc_compat PROPERTIES
  C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

# The archives whose symbols a portable binary hides (--exclude-libs): all it
# links but memkv's client library, whose API libmemkv.map exports, and
# jemalloc, whose malloc must stay visible to replace glibc's in the whole
# process (an executable exports it because libc.so defines it too).
set(MEMKV_PORTABLE_HIDDEN_ARCHIVES
  libmemkv_common.a libmemkv_proto.a libmemkv_rdma.a libmemkv_rdma_verbs.a libmemkv_boost_asio.a
  libmemkv_boost_asio_ssl.a libmemkv_io.a libmemkv_store.a libmemkv_http.a libmemkv_server.a
  libmemkv_preload_paths.a libmemkv_fmt_spdlog.a libmemkv_simdjson.a
  libcrypto.a libssl.a libxxhash.a liburing.a libyaml-cpp.a libboost_json.a libboost_url.a
  libstdc++.a libgcc.a libgcc_eh.a)

# memkv_link_portable(TARGET): the link of a portable binary: libstdc++ and
# libgcc static, the glibc functions above, every archive's symbols hidden.
function(memkv_link_portable target)
  string(REPLACE ";" ":" hidden "${MEMKV_PORTABLE_HIDDEN_ARCHIVES}")
  target_sources(${target} PRIVATE $<TARGET_OBJECTS:memkv_glibc_compat>)
  target_link_libraries(${target} PRIVATE -static-libstdc++ -static-libgcc
    "-Wl,--exclude-libs,${hidden}" -Wl,--as-needed)
endfunction()

if(NOT MEMKV_PORTABLE)
  return()
endif()
if(MEMKV_SANITIZE_ADDRESS OR MEMKV_SANITIZE_THREAD)
  message(FATAL_ERROR "memkv: MEMKV_PORTABLE is for release builds, not with MEMKV_SANITIZE")
endif()

# fmt and spdlog: the archive above stands for Debian's shared libraries
# (MemkvDependencies.cmake does not look for them in a portable build).
add_library(fmt::fmt ALIAS memkv_fmt_spdlog)
add_library(spdlog::spdlog ALIAS memkv_fmt_spdlog)

# simdjson: Debian ships only libsimdjson.so; its source package's
# singleheader/simdjson.cpp, at the version of the installed simdjson.h,
# compiled here (scripts/debian-source.sh fetches it unless
# MEMKV_SIMDJSON_SOURCE names an unpacked one).
set(MEMKV_SIMDJSON_SOURCE "" CACHE PATH
    "Debian's simdjson source package, unpacked (portable builds; fetched when empty)")
if(NOT MEMKV_SIMDJSON_SOURCE)
  execute_process(
    COMMAND "${PROJECT_SOURCE_DIR}/scripts/debian-source.sh" libsimdjson-dev
            "${PROJECT_BINARY_DIR}/debian-source"
    OUTPUT_VARIABLE _memkv_simdjson_dir OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _memkv_rc)
  if(NOT _memkv_rc EQUAL 0)
    message(FATAL_ERROR "memkv: could not fetch Debian's simdjson source (scripts/debian-source.sh); "
                        "set MEMKV_SIMDJSON_SOURCE to an unpacked one")
  endif()
  set(MEMKV_SIMDJSON_SOURCE "${_memkv_simdjson_dir}" CACHE PATH "" FORCE)
endif()
find_path(_memkv_simdjson_header simdjson.h REQUIRED)
file(SHA256 "${_memkv_simdjson_header}/simdjson.h" _memkv_installed)
file(SHA256 "${MEMKV_SIMDJSON_SOURCE}/singleheader/simdjson.h" _memkv_source)
if(NOT _memkv_installed STREQUAL _memkv_source)
  message(FATAL_ERROR "memkv: ${MEMKV_SIMDJSON_SOURCE} is not the source of the installed simdjson.h")
endif()
add_library(memkv_simdjson STATIC "${MEMKV_SIMDJSON_SOURCE}/singleheader/simdjson.cpp")
target_include_directories(memkv_simdjson PRIVATE "${MEMKV_SIMDJSON_SOURCE}/singleheader")
target_compile_options(memkv_simdjson PRIVATE -w)
add_library(simdjson::simdjson ALIAS memkv_simdjson)

# yaml-cpp: Debian's archive is built position-independent for executables
# (-fPIE, its compiler's default: no absolute relocations), not for shared
# objects; only the server, in the executables, reads YAML with it.
memkv_static_archive(MEMKV_yaml_cpp_A yaml-cpp)
add_library(yaml-cpp STATIC IMPORTED)
set_target_properties(yaml-cpp PROPERTIES IMPORTED_LOCATION "${MEMKV_yaml_cpp_A}")

# The pkg-config ones: their imported targets name the shared libraries.
memkv_static_archive(MEMKV_xxhash_A xxhash)
set_property(TARGET PkgConfig::xxhash PROPERTY INTERFACE_LINK_LIBRARIES "${MEMKV_xxhash_A}")
memkv_static_archive(MEMKV_uring_A uring)
set_property(TARGET PkgConfig::liburing PROPERTY INTERFACE_LINK_LIBRARIES "${MEMKV_uring_A}")
memkv_static_archive(MEMKV_jemalloc_A jemalloc)
set_property(TARGET PkgConfig::jemalloc PROPERTY INTERFACE_LINK_LIBRARIES
  "${MEMKV_jemalloc_A}" Threads::Threads ${CMAKE_DL_LIBS} m)

# Boost.JSON/URL and OpenSSL come as archives through Boost_USE_STATIC_LIBS
# and OPENSSL_USE_STATIC_LIBS (MemkvDependencies.cmake); say so if not.
foreach(t Boost::json Boost::url OpenSSL::Crypto OpenSSL::SSL)
  get_target_property(_memkv_location ${t} LOCATION)
  if(NOT _memkv_location MATCHES "\\.a$")
    message(FATAL_ERROR "memkv: ${t} is ${_memkv_location}, not an archive, in a portable build")
  endif()
endforeach()
message(STATUS "memkv: portable build (static dependencies, glibc <= ${MEMKV_PORTABLE_GLIBC})")
