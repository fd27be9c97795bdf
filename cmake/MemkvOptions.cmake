# Compiler flags shared by every target of the project.

find_program(MEMKV_CCACHE ccache)
if(MEMKV_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${MEMKV_CCACHE}")
  set(CMAKE_C_COMPILER_LAUNCHER "${MEMKV_CCACHE}")
endif()

add_compile_options(-Wall -Wextra -Wno-unused-parameter)

if(MEMKV_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(MEMKV_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MEMKV_BUILD_FUZZ needs clang (libFuzzer); use the asan preset")
  endif()
  # Instrument everything for coverage; only the fuzz targets link the driver.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
