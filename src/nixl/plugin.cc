// libplugin_MEMKV.so's entry points: what NIXL's plugin manager looks up
// (nixl_plugin_init, nixl_plugin_fini), and the plugin's own queries.
//
// NIXL's manager checks only the plugin API version, not the C++ ABI of the
// classes a backend derives from; a plugin built for another NIXL would
// load and then misbehave. So the plugin records the NIXL it was built
// against (MEMKV_NIXL_VERSION, read by CMake from that NIXL's
// libnixl_common.so) and, at init, reads the version of the
// libnixl_common.so loaded in the process the same way; when both are known
// and differ it refuses to load, naming both.

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/backend_plugin.h"
#include "nixl/memkv_backend.h"

#ifndef MEMKV_NIXL_VERSION
#error "MEMKV_NIXL_VERSION: the NIXL version this plugin is built against (src/nixl/CMakeLists.txt)"
#endif

namespace memkv::nixl {
namespace {

constexpr const char* kName = "MEMKV";

// The path of the loaded object whose name contains `stem`, or "".
std::string LoadedPath(const char* stem) {
  struct Find {
    const char* stem;
    std::string path;
  } find{stem, {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* f = static_cast<Find*>(data);
        if (info->dlpi_name && std::strstr(info->dlpi_name, f->stem)) {
          f->path = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &find);
  return find.path;
}

// "1.4.0": three dot-separated runs of digits.
bool IsVersion(const std::string& s) {
  int dots = 0;
  bool digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' && digit) {
      ++dots;
      digit = false;
    } else {
      return false;
    }
  }
  return dots == 2 && digit;
}

// NIXL compiles its version into libnixl_common.so as one string
// ("1.4.0"); the first NUL-delimited string of the file that is a dotted
// version is it (CMake reads the same string at configure time).
std::string VersionInFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string found;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      const char* p = static_cast<const char*>(m);
      const size_t n = static_cast<size_t>(st.st_size);
      for (size_t i = 0; i < n && found.empty();) {
        size_t j = i;
        while (j < n && p[j] != '\0' && j - i < 32) ++j;
        if (j < n && p[j] == '\0' && j > i && (i == 0 || p[i - 1] == '\0')) {
          std::string s(p + i, j - i);
          if (IsVersion(s)) found = s;
        }
        i = j + 1;
      }
      ::munmap(m, n);
    }
  }
  ::close(fd);
  return found;
}

// The version of the NIXL that loaded us: MEMKV_NIXL_RUNTIME_VERSION when
// set (tests), else read from the process's libnixl_common.so.
std::string RuntimeVersion() {
  if (const char* v = std::getenv("MEMKV_NIXL_RUNTIME_VERSION"); v && *v) return v;
  const std::string path = LoadedPath("libnixl_common.so");
  return path.empty() ? std::string() : VersionInFile(path);
}

nixlBackendEngine* Create(const nixlBackendInitParams* init) {
  try {
    return new MemkvBackend(init);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "memkv nixl: cannot create the backend: %s\n", e.what());
    return nullptr;
  }
}
void Destroy(nixlBackendEngine* engine) { delete engine; }
const char* Name() { return kName; }
const char* Version() { return MEMKV_NIXL_PLUGIN_VERSION; }
nixl_b_params_t Options() { return MemkvBackend::DefaultOptions(); }
nixl_mem_list_t Mems() { return MemkvBackend::SupportedMems(); }

nixlBackendPlugin g_plugin = {
    NIXL_PLUGIN_API_VERSION, Create, Destroy, Name, Version, Options, Mems};

}  // namespace
}  // namespace memkv::nixl

extern "C" {

NIXL_PLUGIN_EXPORT nixlBackendPlugin* nixl_plugin_init() {
  const std::string runtime = memkv::nixl::RuntimeVersion();
  if (runtime.empty()) {
    std::fprintf(stderr,
                 "memkv nixl: warning: cannot tell which NIXL loaded libplugin_MEMKV.so "
                 "(built for NIXL %s); loading\n",
                 MEMKV_NIXL_VERSION);
  } else if (runtime != MEMKV_NIXL_VERSION) {
    std::fprintf(stderr,
                 "memkv nixl: libplugin_MEMKV.so was built for NIXL %s but this process runs "
                 "NIXL %s; refusing to load (rebuild memkv with -DNIXL_ROOT pointing at NIXL %s)\n",
                 MEMKV_NIXL_VERSION, runtime.c_str(), runtime.c_str());
    return nullptr;
  }
  return &memkv::nixl::g_plugin;
}

NIXL_PLUGIN_EXPORT void nixl_plugin_fini() {}

// The plugin's query (tests, benchmarks): wire operations sent and the
// bytes they moved, over every MEMKV backend of the process.
NIXL_PLUGIN_EXPORT uint64_t memkv_nixl_wire_ops() { return memkv::nixl::Counters().ops.load(); }
NIXL_PLUGIN_EXPORT uint64_t memkv_nixl_wire_bytes() { return memkv::nixl::Counters().bytes.load(); }

}  // extern "C"
