# memkv_add_library(NAME SOURCES a.cc b.cc PUBLIC_DEPS x y PRIVATE_DEPS z)
#
# One folder under src/ is one library `memkv_<NAME>`. Includes are rooted at
# src/ ("common/result.h"), so every library exports that one include root.
function(memkv_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(memkv_${name} STATIC ${ARG_SOURCES})
  add_library(memkv::${name} ALIAS memkv_${name})
  target_include_directories(memkv_${name} PUBLIC
    "${PROJECT_SOURCE_DIR}/src" "${PROJECT_SOURCE_DIR}/include")
  target_link_libraries(memkv_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# memkv_add_test(NAME SOURCES ... DEPS ... LABEL unit|integration|e2e
#                [RESOURCE_LOCK lock]): tests sharing a lock never run at once
# (the fan-in tests, which each hold about 17 GiB between client and server).
function(memkv_add_test name)
  cmake_parse_arguments(ARG "" "LABEL;RESOURCE_LOCK" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_LABEL IN_LIST MEMKV_TEST_LABELS)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    MEMKV_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MEMKV_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(lock "")
  if(ARG_RESOURCE_LOCK)
    set(lock RESOURCE_LOCK "${ARG_RESOURCE_LOCK}")
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABEL}" ${lock} DISCOVERY_TIMEOUT 60)
endfunction()
