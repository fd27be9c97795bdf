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
typedef struct memkv_put_stream memkv_put_stream_t;  /* memkv_put_stream_open */

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
  const char* transport;        /* "auto" (default), "rdma", "shm", "tcp" */
  uint32_t timeout_ms;          /* deadline of every call (default 30000) */
  uint32_t connect_timeout_ms;  /* connect + attach (default 5000) */
  uint32_t io_threads;          /* library I/O threads (default 1) */
  int immutable_keys;           /* non-zero: fall back along the HRW ranking */
  const char* rdma_provider;    /* libfabric provider of the rdma rail, or NULL (docs/rdma.md) */
  const char* rdma_address;     /* local address of its endpoint, or NULL */
  const char* rdma_device;      /* the NIC ("mlx5_0"; required with rdma_provider "verbs"), or NULL */
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
 * stay valid until memkv_unregister_memory. CUDA device memory is accepted
 * and staged through host memory by each call that names it (see
 * Engine::RegisterMemory). */
MEMKV_API int memkv_register_memory(memkv_engine_t* engine, void* ptr, size_t len,
                                    memkv_memory_t** out);
MEMKV_API void memkv_unregister_memory(memkv_engine_t* engine, memkv_memory_t* memory);

/* Zeroed shared memory (a sealed memfd) that moves over the shm rail to
 * servers on this host. Free it with memkv_free_shared. */
MEMKV_API int memkv_allocate_shared(memkv_engine_t* engine, size_t size, memkv_shared_t** out);
MEMKV_API void* memkv_shared_data(const memkv_shared_t* shared);
MEMKV_API size_t memkv_shared_size(const memkv_shared_t* shared);
MEMKV_API void memkv_free_shared(memkv_shared_t* shared);

/* ---- listing, capacity, renaming ---- */

typedef struct memkv_list_entry {
  const void* key;  /* valid until memkv_list_page_free */
  size_t key_len;
  uint64_t size;    /* the value's size */
  uint64_t version; /* the value's version */
} memkv_list_entry_t;

/* One page of keys in byte order, merged over every server. Filled by
 * memkv_list; free it with memkv_list_page_free. */
typedef struct memkv_list_page {
  memkv_list_entry_t* entries;
  size_t count;
  const void* cursor; /* pass to the next memkv_list; cursor_len 0: no more keys */
  size_t cursor_len;
  void* internal;     /* the library's */
} memkv_list_page_t;

/* Keys that start with prefix (prefix_len 0: every key), after cursor
 * (cursor_len 0: from the first), at most limit (>= 1) of them. Every
 * server must offer List (MEMKV_ERR_UNSUPPORTED otherwise). On failure
 * *page is empty (count 0) and needs no free. */
MEMKV_API int memkv_list(memkv_engine_t* engine, const void* prefix, size_t prefix_len,
                         const void* cursor, size_t cursor_len, size_t limit,
                         memkv_list_page_t* page);
/* Frees what memkv_list put in *page and zeroes it; a zeroed page is fine. */
MEMKV_API void memkv_list_page_free(memkv_list_page_t* page);

typedef struct memkv_capacity {
  uint64_t total_bytes;    /* usable bytes, summed over servers */
  uint64_t used_bytes;
  uint64_t keys;
  uint64_t max_value_size; /* the smallest of the servers' */
} memkv_capacity_t;

/* On a failure of one server, *out sums those that answered. */
MEMKV_API int memkv_capacity(memkv_engine_t* engine, memkv_capacity_t* out);

/* Moves the value of `from` to `to` (replacing it): in place when both keys
 * live on one server that can, else copied and then deleted.
 * MEMKV_ERR_NOT_FOUND when `from` does not exist. */
MEMKV_API int memkv_rename(memkv_engine_t* engine, const void* from, size_t from_len,
                           const void* to, size_t to_len);

/* ---- puts of unknown length ---- */

/* Opens a streamed put of `key`: its bytes go to the server as they are
 * written and the value appears whole at memkv_put_stream_finish. window:
 * bytes queued and not yet sent before a write blocks (0: 16 MiB). The
 * key's server must offer open streams (MEMKV_ERR_UNSUPPORTED otherwise).
 * One thread at a time per stream. */
MEMKV_API int memkv_put_stream_open(memkv_engine_t* engine, const void* key, size_t key_len,
                                    size_t window, memkv_put_stream_t** out);
/* Appends bytes (copied). An error is final: the stream is then aborted. */
MEMKV_API int memkv_put_stream_write(memkv_put_stream_t* stream, const void* data, size_t size);
/* Ends the value and frees the stream: the server's answer
 * (MEMKV_ERR_INVALID_ARGUMENT when no byte was written). */
MEMKV_API int memkv_put_stream_finish(memkv_put_stream_t* stream);
/* Drops an unfinished value (nothing of it becomes visible) and frees the
 * stream; NULL is allowed. */
MEMKV_API void memkv_put_stream_abort(memkv_put_stream_t* stream);

#ifdef __cplusplus
}
#endif

#endif /* MEMKV_MEMKV_H_ */
