# Conan 2 recipe for memkv.
#
# It declares the same dependencies as cmake/MemkvDependencies.cmake, at the
# versions Debian 12 ships (which is what the project is built and tested
# with). Conan and its package index cannot be reached from the project's own
# machines, so this recipe is declared, not exercised there; the test
# tests/layout/conan_sync_test.cc keeps its `requires` in step with every
# find_package/pkg_check_modules of the CMake files.
#
#   conan install conan --output-folder=build/conan --build=missing
#   cmake --preset release -DCMAKE_TOOLCHAIN_FILE=build/conan/conan_toolchain.cmake

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.gnu import PkgConfigDeps


class MemkvConan(ConanFile):
    name = "memkv"
    version = "0.1.0"
    license = "Apache-2.0"
    description = "A fast, crash-safe store for the KV cache of LLM inference engines"
    settings = "os", "compiler", "build_type", "arch"
    exports_sources = "../CMakeLists.txt", "../CMakePresets.json", "../cmake/*", "../src/*", \
        "../include/*", "../tests/*", "../bench/*", "../docs/*"

    def requirements(self):
        self.requires("boost/1.81.0")          # system, json, url; Asio and Beast headers
        self.requires("openssl/3.0.13")        # HMAC-SHA256, TLS on the admin port
        self.requires("fmt/9.1.0")
        self.requires("spdlog/1.10.0")
        self.requires("cli11/2.1.2")
        self.requires("yaml-cpp/0.7.0")
        self.requires("simdjson/3.0.1")
        self.requires("xxhash/0.8.1")
        self.requires("liburing/2.3")
        self.requires("rdma-core/44.0")        # libibverbs and librdmacm
        self.requires("libfabric/1.21.0")      # the rdma rail's ofi provider (Debian 12: 1.17; 1.21 is Conan Center's)
        self.requires("jemalloc/5.3.0")

    def build_requirements(self):
        self.tool_requires("cmark/0.30.3")     # renders docs/ into the binary (find_program)
        self.test_requires("gtest/1.12.1")
        self.test_requires("benchmark/1.7.1")

    def layout(self):
        cmake_layout(self)

    def generate(self):
        CMakeToolchain(self).generate()
        CMakeDeps(self).generate()
        # liburing, rdma-core, libfabric, xxhash and jemalloc are found through pkg-config.
        PkgConfigDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()
