// Two functions of glibc newer than MEMKV_PORTABLE_GLIBC
// (cmake/MemkvPortable.cmake), defined here, hidden, so that the static
// libstdc++ and libgcc built on this Debian (glibc 2.36) bind to them instead
// of to the host's glibc: the wheel and the binaries of a portable build then
// load on glibc 2.34 (Ubuntu 22.04, EL9). Compiled into each of those objects
// (memkv_link_portable); exported by none.
//   arc4random (glibc 2.36): std::random_device's default token.
//   _dl_find_object (glibc 2.35): how libgcc's unwinder finds the frame
//   tables of the object a pc is in, when an exception is thrown. The same
//   answer comes from dl_iterate_phdr (glibc 2.2.4), more slowly.

#include <dlfcn.h>
#include <link.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

extern "C" {

uint32_t arc4random() noexcept {
  uint32_t v = 0;
  size_t got = 0;
  while (got < sizeof v) {
    const ssize_t n = getrandom(reinterpret_cast<char*>(&v) + got, sizeof v - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
    else if (n < 0 && errno != EINTR) abort();  // as glibc's: no failure return
  }
  return v;
}

int _dl_find_object(void* address, struct dl_find_object* result) noexcept {
  struct Search {
    uintptr_t pc;
    dl_find_object* out;
    bool found;
  } search{reinterpret_cast<uintptr_t>(address), result, false};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* arg) -> int {
        auto* s = static_cast<Search*>(arg);
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        void* eh_frame = nullptr;
        bool inside = false;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD) {
            if (start < lo) lo = start;
            if (start + ph.p_memsz > hi) hi = start + ph.p_memsz;
            if (s->pc >= start && s->pc < start + ph.p_memsz) inside = true;
          } else if (ph.p_type == DLFO_EH_SEGMENT_TYPE) {
            eh_frame = reinterpret_cast<void*>(start);
          }
        }
        if (!inside) return 0;
        s->out->dlfo_flags = 0;
        s->out->dlfo_map_start = reinterpret_cast<void*>(lo);
        s->out->dlfo_map_end = reinterpret_cast<void*>(hi);
        s->out->dlfo_link_map = nullptr;
        s->out->dlfo_eh_frame = eh_frame;
        s->found = true;
        return 1;
      },
      &search);
  return search.found ? 0 : -1;
}

}  // extern "C"
