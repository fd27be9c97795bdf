/* Two glibc functions newer than 2.34 that the static archives linked into
 * the wheel's libmemkv.so call, defined here (hidden) on older interfaces so
 * that the library needs glibc 2.34 at most (python/CMakeLists.txt):
 *  - _dl_find_object (2.35), which libgcc_eh's unwinder calls to find the
 *    exception tables of the object holding a pc: here by dl_iterate_phdr
 *    (2.2.5), the way libgcc found them before;
 *  - arc4random (2.36), which libstdc++'s std::random_device calls: here by
 *    getrandom (2.25). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

struct memkv_find {
  uintptr_t pc;
  struct dl_find_object* result;
  int found;
};

static int memkv_find_phdr(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct memkv_find* f = data;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  const ElfW(Phdr)* eh = NULL;
  int inside = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* p = &info->dlpi_phdr[i];
    if (p->p_type == PT_LOAD) {
      uintptr_t start = info->dlpi_addr + p->p_vaddr, end = start + p->p_memsz;
      if (f->pc >= start && f->pc < end) inside = 1;
      if (start < lo) lo = start;
      if (end > hi) hi = end;
    } else if (p->p_type == PT_GNU_EH_FRAME) {
      eh = p;
    }
  }
  if (!inside) return 0;
  memset(f->result, 0, sizeof *f->result);
  f->result->dlfo_map_start = (void*)lo;
  f->result->dlfo_map_end = (void*)hi;
  f->result->dlfo_eh_frame = eh ? (void*)(info->dlpi_addr + eh->p_vaddr) : NULL;
  f->found = 1;
  return 1;
}

__attribute__((visibility("hidden"))) int _dl_find_object(void* address,
                                                          struct dl_find_object* result) {
  struct memkv_find f = {(uintptr_t)address, result, 0};
  dl_iterate_phdr(memkv_find_phdr, &f);
  return f.found ? 0 : -1;
}

__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value;
  size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = getrandom((char*)&value + got, sizeof value - got, 0);
    if (n > 0) got += (size_t)n;
    else if (errno != EINTR) break; /* no source left: the bytes read so far */
  }
  return value;
}
