/* Put and get one value through the installed C ABI (memkv/memkv.h),
 * built with `pkg-config memkv` by tests/packaging/install_test.sh. */
#include <stdio.h>
#include <string.h>

#include <memkv/memkv.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  memkv_options_t o;
  memkv_options_init(&o);
  o.servers = argv[1];
  o.transport = "tcp";
  memkv_engine_t* e = NULL;
  if (memkv_engine_create(&o, &e) != MEMKV_OK) {
    fprintf(stderr, "create: %s\n", memkv_last_error());
    return 1;
  }
  const char* value = "from pkg-config memkv";
  memkv_put_entry_t put = {"consumer/pc", 11, value, strlen(value)};
  int status = -1;
  if (memkv_batch_put(e, &put, 1, &status) != MEMKV_OK || status != MEMKV_OK) {
    fprintf(stderr, "put: %s\n", memkv_strerror(status));
    return 1;
  }
  char buf[64];
  memkv_get_entry_t get = {"consumer/pc", 11, buf, sizeof buf, 0, 0, 0, 0, 0};
  if (memkv_batch_get(e, &get, 1) != MEMKV_OK || get.status != MEMKV_OK ||
      get.bytes != strlen(value) || memcmp(buf, value, get.bytes) != 0) {
    fprintf(stderr, "get: %s\n", memkv_strerror(get.status));
    return 1;
  }
  memkv_engine_destroy(e);
  printf("pkg-config consumer: ok\n");
  return 0;
}
