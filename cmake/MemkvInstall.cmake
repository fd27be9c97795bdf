# What `cmake --install` puts where (docs/packaging.md), and the packages
# scripts/package.sh makes of it with CPack: the binaries, libmemkv.so with
# its headers, pkg-config file and CMake package, the preload shim, the
# wheels, the docs and the systemd unit.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS memkv RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
if(TARGET memkv-bench)
  install(TARGETS memkv-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
endif()

# libmemkv.so: the C ABI and the C++ Engine (docs/client-api.md), soname
# libmemkv.so.0 while the version is 0.x.
set_target_properties(memkv_shared PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR} EXPORT_NAME memkv)
install(TARGETS memkv_shared EXPORT memkvTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client NAMELINK_COMPONENT client
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/memkv/memkv.h include/memkv/engine.h include/memkv/batch_plan.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/memkv COMPONENT client)
install(TARGETS memkv_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/memkv COMPONENT client)
# The NIXL plugin, where the build found NIXL (docs/nixl.md); the package's
# postinst links it into /opt/nvidia/nvda_nixl/lib/plugins when that exists.
if(TARGET memkv_nixl_plugin)
  install(TARGETS memkv_nixl_plugin LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/memkv/nixl
    COMPONENT client)
endif()

# The CMake package (memkvConfig.cmake): the imported target memkv::memkv.
install(EXPORT memkvTargets NAMESPACE memkv:: FILE memkvTargets.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memkv COMPONENT client)
configure_package_config_file(packaging/memkvConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/memkvConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memkv)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/memkvConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/memkvConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/memkvConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/memkv COMPONENT client)
# pkg-config memkv, relocatable: its prefix is found from where it lies.
file(RELATIVE_PATH MEMKV_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" MEMKV_PC_TO_PREFIX "${MEMKV_PC_TO_PREFIX}")
configure_file(packaging/memkv.pc.in ${CMAKE_CURRENT_BINARY_DIR}/memkv.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/memkv.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT client)

if(TARGET memkv_wheels)
  install(DIRECTORY ${PROJECT_BINARY_DIR}/python/dist/ DESTINATION ${CMAKE_INSTALL_DATADIR}/memkv/wheels
    COMPONENT client FILES_MATCHING PATTERN "*.whl")
endif()

install(FILES packaging/memkv.service DESTINATION lib/systemd/system COMPONENT server)
install(FILES packaging/config.example.yaml DESTINATION ${CMAKE_INSTALL_DATADIR}/memkv COMPONENT server)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT server
  FILES_MATCHING PATTERN "*.md")
install(FILES packaging/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT server)
# Debian's changelog.gz (a native package's), compressed reproducibly.
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/packaging/changelog > ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/changelog VERBATIM)
add_custom_target(memkv_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR}
  COMPONENT server)

# ---- Packages (scripts/package.sh): one memkv package, .deb and .rpm ----
set(CPACK_PACKAGE_NAME memkv)
set(CPACK_PACKAGE_VENDOR "the memkv authors")
set(CPACK_PACKAGE_CONTACT "memkv maintainers <maintainers@memkv.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "store for the KV cache of LLM inference engines")
set(CPACK_PACKAGE_DESCRIPTION "memkv keeps the KV-cache blocks that inference engines
evict on NVMe and DRAM and streams them back by key over RDMA, shared memory
or TCP. This package holds the server (memkv), memkv-bench, the client
library libmemkv.so with its headers, pkg-config file and CMake package, the
LD_PRELOAD shim, the Python wheels and the systemd unit.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
# Debug info is kept apart by scripts/package.sh (a tarball by build id).
set(CPACK_GENERATOR DEB RPM)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_RPM_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libmemkv.so.0: a shlibs file and the ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/memkv/memkv")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
# A cross build (cmake/toolchains/) packs the target's architecture. The
# host's dpkg database has none of the target's libraries for
# dpkg-shlibdeps to look up: scripts/package.sh runs it against the
# sysroot's packages instead and hands cpack the Depends it found
# (cpack -D CPACK_DEBIAN_PACKAGE_DEPENDS=...).
if(CMAKE_CROSSCOMPILING)
  if(CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
  else()
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${CMAKE_SYSTEM_PROCESSOR})
  endif()
  set(CPACK_RPM_PACKAGE_ARCHITECTURE ${CMAKE_SYSTEM_PROCESSOR})
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
endif()
# The maintainer scripts, shared by both formats (they read deb's and rpm's
# arguments alike).
foreach(script postinst prerm postrm)
  configure_file(packaging/${script}.in ${PROJECT_BINARY_DIR}/packaging/${script} @ONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                     WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_BINARY_DIR}/packaging/postinst ${PROJECT_BINARY_DIR}/packaging/prerm
  ${PROJECT_BINARY_DIR}/packaging/postrm ${PROJECT_SOURCE_DIR}/packaging/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE Apache-2.0)
set(CPACK_RPM_PACKAGE_GROUP "Applications/Databases")
set(CPACK_RPM_PACKAGE_URL "https://github.com/memkv/memkv")
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${PROJECT_BINARY_DIR}/packaging/postinst)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${PROJECT_BINARY_DIR}/packaging/prerm)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${PROJECT_BINARY_DIR}/packaging/postrm)
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION /lib /lib/systemd /lib/systemd/system
  /usr/share/doc /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu
  /usr/lib/x86_64-linux-gnu/pkgconfig /usr/lib/aarch64-linux-gnu/pkgconfig
  /usr/lib/x86_64-linux-gnu/cmake /usr/lib/aarch64-linux-gnu/cmake /usr/lib/pkgconfig /usr/lib/cmake)
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none")
include(CPack)
