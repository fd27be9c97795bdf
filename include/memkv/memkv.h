/* memkv.h: the C ABI of the memkv client library (libmemkv.so).
 *
 *   memkv_engine_t* e;
 *   if (memkv_engine_create_from_env(&e) != MEMKV_OK) {
 *     fprintf(stderr, "memkv: %s\n", memkv_last_error());
 *     return 1;
 *   }
 *   memkv_put_entry_t put = {"key", 3, data, size};
 *   int status;
 *   int rc = memkv_batch_put(e, &put, 1, &status);
 *   memkv_engine_destroy(e);
 *
 * Every function that can fail returns an int code (MEMKV_OK = 0, else one
 * of MEMKV_ERR_*); memkv_strerror(code) names it and memkv_last_error()
 * gives the message of the last failing call on the calling thread. Batch
 * functions fill one status per entry; their return value is MEMKV_OK when
 * every entry succeeded, else the call's own error or the first failing
 * entry's code.
 *
 * Thread-safe: one engine may be used by any number of threads. Blocking:
 * every call waits for its result (at most the engine's timeout). Buffers
 * named in a call belong to the library until it returns (and, for shared
 * memory, until the server's reply when the deadline fired first).
 */
#ifndef MEMKV_MEMKV_H_
#define MEMKV_MEMKV_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MEMKV_API __attribute__((visibility("default")))
#else
#define MEMKV_API
#endif

/* Codes: the same values as memkv::Code of memkv/engine.h. */
enum {
  MEMKV_OK = 0,
  MEMKV_ERR_NOT_FOUND = 1,
  MEMKV_ERR_INVALID_ARGUMENT = 2,
  MEMKV_ERR_TOO_LARGE = 3,
  MEMKV_ERR_TOO_MANY_ENTRIES = 4,
  MEMKV_ERR_BUSY = 5,
  MEMKV_ERR_NO_SPACE = 6,
  MEMKV_ERR_CHECKSUM_MISMATCH = 7,
  MEMKV_ERR_UNAVAILABLE = 8,
  MEMKV_ERR_TIMEOUT = 9,
  MEMKV_ERR_UNAUTHORIZED = 10,
  MEMKV_ERR_UNSUPPORTED = 11,
  MEMKV_ERR_BUFFER_TOO_SMALL = 12,
  MEMKV_ERR_RANGE_OUT_OF_BOUNDS = 13,
  MEMKV_ERR_INTERNAL = 14,
  MEMKV_ERR_NO_MEMORY = 15
};

typedef struct memkv_engine memkv_engine_t;    /* an Engine */
typedef struct memkv_memory memkv_memory_t;    /* a registered range */
typedef struct memkv_shared memkv_shared_t;    /* memory from memkv_allocate_shared */

/* "NotFound", ...; never NULL. */
MEMKV_API const char* memkv_strerror(int code);
/* The message of the last failing call on this thread ("" if none). Valid
 * until the next call on this thread. */
MEMKV_API const char* memkv_last_error(void);

/* Explicit settings; fields left 0/NULL take the defaults of the client
 * config (docs/client-api.md). */
typedef struct memkv_options {
  const char* servers;          /* "host:port,host:port" or Unix socket paths (required) */
  const char* auth_key;         /* 64 hex characters, or NULL */
  const char* transport;        /* "auto" (default), "shm", "tcp"; "rdma" is refused */
  uint32_t timeout_ms;          /* deadline of every call (default 30000) */
  uint32_t connect_timeout_ms;  /* connect + attach (default 5000) */
  uint32_t io_threads;          /* library I/O threads (default 1) */
  int immutable_keys;           /* non-zero: fall back along the HRW ranking */
} memkv_options_t;

/* Zeroes *options (all defaults). */
MEMKV_API void memkv_options_init(memkv_options_t* options);

MEMKV_API int memkv_engine_create(const memkv_options_t* options, memkv_engine_t** out);
/* MEMKV_CONFIG, then MEMKV_SERVERS, MEMKV_AUTH_KEY, MEMKV_TRANSPORT. */
MEMKV_API int memkv_engine_create_from_env(memkv_engine_t** out);
/* Waits for the engine's own requests; NULL is allowed. */
MEMKV_API void memkv_engine_destroy(memkv_engine_t* engine);

MEMKV_API size_t memkv_server_count(const memkv_engine_t* engine);
/* The address of server i, or NULL. */
MEMKV_API const char* memkv_server_address(const memkv_engine_t* engine, size_t i);
/* The index of the server `key` goes to (rendezvous hashing). */
MEMKV_API size_t memkv_route_key(const memkv_engine_t* engine, const void* key, size_t key_len);
MEMKV_API size_t memkv_route_block(const memkv_engine_t* engine, uint64_t block);

typedef struct memkv_key {
  const void* key;
  size_t key_len;  /* 1 to 1024 */
} memkv_key_t;

typedef struct memkv_put_entry {
  const void* key;
  size_t key_len;
  const void* data;
  size_t size;  /* >= 1 */
} memkv_put_entry_t;

typedef struct memkv_get_entry {
  const void* key;
  size_t key_len;
  void* buffer;
  size_t capacity;      /* room in buffer */
  uint64_t offset;      /* first byte of the value to read */
  uint64_t length;      /* bytes to read; 0: to the end of the value */
  /* Filled by the call: */
  int status;           /* MEMKV_OK, MEMKV_ERR_NOT_FOUND, ... */
  uint64_t value_size;  /* the whole value's size */
  uint64_t bytes;       /* bytes written into buffer */
} memkv_get_entry_t;

/* statuses: n ints (may be NULL). */
MEMKV_API int memkv_batch_put(memkv_engine_t* engine, const memkv_put_entry_t* entries, size_t n,
                              int* statuses);
MEMKV_API int memkv_batch_get(memkv_engine_t* engine, memkv_get_entry_t* entries, size_t n);
/* statuses and sizes: n each (either may be NULL). A miss is
 * MEMKV_ERR_NOT_FOUND in its status. */
MEMKV_API int memkv_batch_exists(memkv_engine_t* engine, const memkv_key_t* keys, size_t n,
                                 int* statuses, uint64_t* sizes);
MEMKV_API int memkv_batch_delete(memkv_engine_t* engine, const memkv_key_t* keys, size_t n,
                                 int* statuses);

/* Registers [ptr, ptr + len): puts from it are not copied. The range must
 * stay valid until memkv_unregister_memory. */
MEMKV_API int memkv_register_memory(memkv_engine_t* engine, void* ptr, size_t len,
                                    memkv_memory_t** out);
MEMKV_API void memkv_unregister_memory(memkv_engine_t* engine, memkv_memory_t* memory);

/* Zeroed shared memory (a sealed memfd) that moves over the shm rail to
 * servers on this host. Free it with memkv_free_shared. */
MEMKV_API int memkv_allocate_shared(memkv_engine_t* engine, size_t size, memkv_shared_t** out);
MEMKV_API void* memkv_shared_data(const memkv_shared_t* shared);
MEMKV_API size_t memkv_shared_size(const memkv_shared_t* shared);
MEMKV_API void memkv_free_shared(memkv_shared_t* shared);

#ifdef __cplusplus
}
#endif

#endif /* MEMKV_MEMKV_H_ */
