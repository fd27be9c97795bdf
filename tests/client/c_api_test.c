/* The C ABI (memkv/memkv.h) from C11 through libmemkv.so, against a real
 * `memkv server` process on loopback (memory mode). Exit status 0 on
 * success; each failed check prints its line. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memkv/memkv.h"

static int failures = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, \
              __LINE__, #cond, memkv_last_error());                           \
      ++failures;                                                             \
    }                                                                         \
  } while (0)

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, (struct sockaddr*)&a, sizeof a);
  getsockname(s, (struct sockaddr*)&a, &len);
  close(s);
  return ntohs(a.sin_port);
}

/* A free port whose successor (the admin API's port) is free too. */
static int free_port_pair(void) {
  for (;;) {
    int p = free_port(), s = socket(AF_INET, SOCK_STREAM, 0), ok;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)(p + 1));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = p < 65535 && bind(s, (struct sockaddr*)&a, sizeof a) == 0;
    close(s);
    if (ok) return p;
  }
}

static int can_connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  int ok;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = connect(s, (struct sockaddr*)&a, sizeof a) == 0;
  close(s);
  return ok;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

int main(void) {
  char dir[] = "/tmp/memkv_c_api_XXXXXX";
  char address[64], sock[256];
  int port, i;
  pid_t pid;
  memkv_engine_t* engine = NULL;
  memkv_options_t options;

  if (!mkdtemp(dir)) return 2;
  port = free_port_pair();
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  snprintf(sock, sizeof sock, "%s/memkv.sock", dir);
  pid = fork();
  if (pid == 0) {
    if (chdir(dir) != 0) _exit(126);
    execl(MEMKV_BINARY, MEMKV_BINARY, "--log-level", "warn", "server", "--address", address,
          "--unix-socket", sock, "--mode", "memory", "--memory", "256MiB", "--threads", "1",
          (char*)NULL);
    _exit(127);
  }
  for (i = 0; i < 300 && !can_connect(port); ++i) sleep_ms(50);
  CHECK(can_connect(port));

  /* Bad settings are refused with a message naming the field. */
  memkv_options_init(&options);
  CHECK(memkv_engine_create(&options, &engine) == MEMKV_ERR_INVALID_ARGUMENT);
  CHECK(strstr(memkv_last_error(), "servers") != NULL);
  options.servers = address;
  options.transport = "rdma";
  options.rdma_provider = "no-such-provider";
  CHECK(memkv_engine_create(&options, &engine) == MEMKV_ERR_UNAVAILABLE);
  CHECK(strstr(memkv_last_error(), "no-such-provider") != NULL);
  options.rdma_provider = NULL;
  CHECK(strcmp(memkv_strerror(MEMKV_ERR_NOT_FOUND), "NotFound") == 0);

  /* From explicit fields. */
  options.transport = "auto";
  options.timeout_ms = 10000;
  CHECK(memkv_engine_create(&options, &engine) == MEMKV_OK);
  if (!engine) return 1;
  CHECK(memkv_server_count(engine) == 1);
  CHECK(strcmp(memkv_server_address(engine, 0), address) == 0);
  CHECK(memkv_route_key(engine, "k", 1) == 0);

  {
    const char* keys[3] = {"c/one", "c/two", "c/three"};
    const char* values[3] = {"first value", "2", "the third value, a little longer"};
    memkv_put_entry_t puts[3];
    memkv_get_entry_t gets[3];
    memkv_key_t k[4];
    char bufs[3][64];
    int statuses[4];
    uint64_t sizes[4];
    for (i = 0; i < 3; ++i) {
      puts[i].key = keys[i];
      puts[i].key_len = strlen(keys[i]);
      puts[i].data = values[i];
      puts[i].size = strlen(values[i]);
    }
    CHECK(memkv_batch_put(engine, puts, 3, statuses) == MEMKV_OK);
    for (i = 0; i < 3; ++i) CHECK(statuses[i] == MEMKV_OK);

    memset(gets, 0, sizeof gets);
    for (i = 0; i < 3; ++i) {
      gets[i].key = keys[i];
      gets[i].key_len = strlen(keys[i]);
      gets[i].buffer = bufs[i];
      gets[i].capacity = sizeof bufs[i];
    }
    gets[2].offset = 4; /* a byte range: "third" */
    gets[2].length = 5;
    CHECK(memkv_batch_get(engine, gets, 3) == MEMKV_OK);
    CHECK(gets[0].status == MEMKV_OK && gets[0].bytes == strlen(values[0]) &&
          memcmp(bufs[0], values[0], gets[0].bytes) == 0);
    CHECK(gets[1].bytes == 1 && bufs[1][0] == '2');
    CHECK(gets[2].bytes == 5 && memcmp(bufs[2], "third", 5) == 0);
    CHECK(gets[2].value_size == strlen(values[2]));

    for (i = 0; i < 3; ++i) {
      k[i].key = keys[i];
      k[i].key_len = strlen(keys[i]);
    }
    k[3].key = "c/missing";
    k[3].key_len = 9;
    CHECK(memkv_batch_exists(engine, k, 4, statuses, sizes) == MEMKV_ERR_NOT_FOUND);
    CHECK(statuses[0] == MEMKV_OK && sizes[0] == strlen(values[0]));
    CHECK(statuses[3] == MEMKV_ERR_NOT_FOUND);
    CHECK(strstr(memkv_last_error(), "1 of 4") != NULL);

    CHECK(memkv_batch_delete(engine, k, 1, statuses) == MEMKV_OK);
    CHECK(memkv_batch_exists(engine, k, 1, statuses, NULL) == MEMKV_ERR_NOT_FOUND);

    /* An empty key is refused before anything is sent. */
    puts[0].key_len = 0;
    CHECK(memkv_batch_put(engine, puts, 1, statuses) == MEMKV_ERR_INVALID_ARGUMENT);
    CHECK(strstr(memkv_last_error(), "entries[0].key") != NULL);
  }

  /* Registered memory and shared memory (the shm rail). */
  {
    static char region[1 << 16];
    memkv_memory_t* mem = NULL;
    memkv_shared_t* shared = NULL;
    memkv_put_entry_t put;
    memkv_get_entry_t get;
    char* p;
    memset(region, 'r', sizeof region);
    CHECK(memkv_register_memory(engine, region, sizeof region, &mem) == MEMKV_OK);
    put.key = "c/registered";
    put.key_len = 12;
    put.data = region + 100;
    put.size = 5000;
    CHECK(memkv_batch_put(engine, &put, 1, NULL) == MEMKV_OK);
    memkv_unregister_memory(engine, mem);

    CHECK(memkv_allocate_shared(engine, 1 << 20, &shared) == MEMKV_OK);
    if (shared) {
      p = (char*)memkv_shared_data(shared);
      CHECK(memkv_shared_size(shared) == 1 << 20);
      for (i = 0; i < 100000; ++i) p[i] = (char)(i * 7);
      put.key = "c/shared";
      put.key_len = 8;
      put.data = p;
      put.size = 100000;
      CHECK(memkv_batch_put(engine, &put, 1, NULL) == MEMKV_OK);
      memset(&get, 0, sizeof get);
      get.key = "c/shared";
      get.key_len = 8;
      get.buffer = p + 200000;
      get.capacity = 100000;
      CHECK(memkv_batch_get(engine, &get, 1) == MEMKV_OK);
      CHECK(get.bytes == 100000 && memcmp(p, p + 200000, 100000) == 0);
      memkv_free_shared(shared);
    }
  }
  /* Capacity, rename, listing and streamed puts. The server in this tree
   * may not offer List and open streams yet: then they are Unsupported, and
   * their results are checked once it does. */
  {
    memkv_capacity_t cap;
    memkv_list_page_t page;
    memkv_put_stream_t* stream = NULL;
    memkv_key_t k;
    char buf[64];
    memkv_get_entry_t get;
    int rc, status = -1;
    size_t n, total = 0;
    CHECK(memkv_capacity(engine, &cap) == MEMKV_OK);
    CHECK(cap.total_bytes > 0 && cap.keys >= 2 && cap.used_bytes > 0 && cap.max_value_size > 0);

    CHECK(memkv_rename(engine, "c/two", 5, "c/2", 3) == MEMKV_OK);
    k.key = "c/two";
    k.key_len = 5;
    CHECK(memkv_batch_exists(engine, &k, 1, &status, NULL) == MEMKV_ERR_NOT_FOUND);
    k.key = "c/2";
    k.key_len = 3;
    CHECK(memkv_batch_exists(engine, &k, 1, &status, NULL) == MEMKV_OK);
    CHECK(memkv_rename(engine, "c/two", 5, "c/2", 3) == MEMKV_ERR_NOT_FOUND);
    CHECK(memkv_rename(engine, "", 0, "c/2", 3) == MEMKV_ERR_INVALID_ARGUMENT);
    CHECK(memkv_rename(engine, "c/2", 3, "c/two", 5) == MEMKV_OK); /* back, for below */

    rc = memkv_list(engine, "c/", 2, NULL, 0, 1, &page);
    CHECK(rc == MEMKV_OK || rc == MEMKV_ERR_UNSUPPORTED);
    if (rc == MEMKV_OK) {
      /* One key a page: c/registered, c/shared, c/three, c/two. */
      for (n = 0; n < 10; ++n) {
        CHECK(page.count <= 1);
        total += page.count;
        if (page.cursor_len == 0) break;
        memcpy(buf, page.cursor, page.cursor_len);
        rc = (int)page.cursor_len;
        memkv_list_page_free(&page);
        CHECK(memkv_list(engine, "c/", 2, buf, (size_t)rc, 1, &page) == MEMKV_OK);
      }
      memkv_list_page_free(&page);
      CHECK(total == 4);
    }
    CHECK(memkv_list(engine, "c/", 2, NULL, 0, 0, &page) == MEMKV_ERR_INVALID_ARGUMENT);

    rc = memkv_put_stream_open(engine, "c/streamed", 10, 0, &stream);
    CHECK(rc == MEMKV_OK || rc == MEMKV_ERR_UNSUPPORTED);
    if (rc == MEMKV_OK) {
      CHECK(memkv_put_stream_write(stream, "streamed ", 9) == MEMKV_OK);
      CHECK(memkv_put_stream_write(stream, "value", 5) == MEMKV_OK);
      CHECK(memkv_put_stream_finish(stream) == MEMKV_OK);
      memset(&get, 0, sizeof get);
      get.key = "c/streamed";
      get.key_len = 10;
      get.buffer = buf;
      get.capacity = sizeof buf;
      CHECK(memkv_batch_get(engine, &get, 1) == MEMKV_OK);
      CHECK(get.bytes == 14 && memcmp(buf, "streamed value", 14) == 0);
      /* Empty: refused; aborted: never visible. */
      CHECK(memkv_put_stream_open(engine, "c/empty", 7, 0, &stream) == MEMKV_OK);
      CHECK(memkv_put_stream_finish(stream) == MEMKV_ERR_INVALID_ARGUMENT);
      CHECK(memkv_put_stream_open(engine, "c/aborted", 9, 4096, &stream) == MEMKV_OK);
      CHECK(memkv_put_stream_write(stream, buf, sizeof buf) == MEMKV_OK);
      memkv_put_stream_abort(stream);
      k.key = "c/aborted";
      k.key_len = 9;
      CHECK(memkv_batch_exists(engine, &k, 1, &status, NULL) == MEMKV_ERR_NOT_FOUND);
    }
  }
  memkv_engine_destroy(engine);

  /* From the environment. */
  setenv("MEMKV_SERVERS", address, 1);
  setenv("MEMKV_TRANSPORT", "tcp", 1);
  engine = NULL;
  CHECK(memkv_engine_create_from_env(&engine) == MEMKV_OK);
  if (engine) {
    memkv_key_t k;
    int status = -1;
    k.key = "c/two";
    k.key_len = 5;
    CHECK(memkv_batch_exists(engine, &k, 1, &status, NULL) == MEMKV_OK && status == MEMKV_OK);
    memkv_engine_destroy(engine);
  }
  setenv("MEMKV_TRANSPORT", "pigeon", 1);
  CHECK(memkv_engine_create_from_env(&engine) == MEMKV_ERR_INVALID_ARGUMENT);
  CHECK(strstr(memkv_last_error(), "MEMKV_TRANSPORT") != NULL);

  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  unlink(sock);
  rmdir(dir);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("c_api_test: all checks passed\n");
  return failures ? 1 : 0;
}
