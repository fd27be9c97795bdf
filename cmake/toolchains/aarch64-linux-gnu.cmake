# Cross-compiling memkv for arm64 (docs/packaging.md, "arm64"): Debian's
# cross toolchain (g++-aarch64-linux-gnu) against a sysroot of Debian's arm64
# -dev packages that scripts/cross-sysroot.sh unpacks; binaries built for the
# build itself run under qemu-user in that sysroot.
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DMEMKV_SYSROOT=$(scripts/cross-sysroot.sh arm64 build/sysroot-arm64) ...
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# The sysroot: named once on the command line, then carried into
# try_compile's projects.
if(NOT MEMKV_SYSROOT AND DEFINED ENV{MEMKV_SYSROOT})
  set(MEMKV_SYSROOT "$ENV{MEMKV_SYSROOT}")
endif()
if(NOT MEMKV_SYSROOT OR NOT EXISTS "${MEMKV_SYSROOT}/usr/include/stdio.h")
  message(FATAL_ERROR "memkv: set MEMKV_SYSROOT to an arm64 sysroot "
                      "(scripts/cross-sysroot.sh arm64 DIR prints one)")
endif()
set(ENV{MEMKV_SYSROOT} "${MEMKV_SYSROOT}")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MEMKV_SYSROOT)
set(CMAKE_SYSROOT "${MEMKV_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${MEMKV_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${MEMKV_SYSROOT}")

# pkg-config reads the sysroot's .pc files and prefixes their paths.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${MEMKV_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${MEMKV_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${MEMKV_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Debian's multiarch library folder, as a native build on arm64 chooses
# (GNUInstallDirs picks it only when not cross-compiling).
set(CMAKE_INSTALL_LIBDIR "lib/${CMAKE_LIBRARY_ARCHITECTURE}" CACHE PATH "Object code libraries")
