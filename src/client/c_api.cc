// The C ABI (include/memkv/memkv.h) over memkv::Engine. No exception leaves
// a function of this file.

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "client/options.h"
#include "memkv/engine.h"
#include "memkv/memkv.h"

struct memkv_engine {
  memkv::Engine engine;
};
struct memkv_memory {
  memkv::MemoryHandle handle;
};
struct memkv_shared {
  memkv::SharedBuffer buffer;
};
struct memkv_put_stream {
  memkv::PutStream stream;
};

namespace {

thread_local std::string t_last_error;

int Fail(const memkv::Outcome& o) {
  t_last_error = o.message.empty() ? memkv::CodeName(o.code) : o.message;
  return static_cast<int>(o.code);
}
int Fail(memkv::Code c, std::string message) { return Fail(memkv::Outcome{c, std::move(message)}); }

// The return value of a batch: the call's error, or the first failing entry's.
template <class R, class CodeOf>
int BatchReturn(const memkv::BatchResult<R>& r, CodeOf code_of) {
  if (!r.outcome.ok()) return Fail(r.outcome);
  size_t failed = 0;
  memkv::Code first = memkv::Code::kOk;
  size_t first_at = 0;
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const memkv::Code c = code_of(r.entries[i]);
    if (c == memkv::Code::kOk) continue;
    if (failed++ == 0) {
      first = c;
      first_at = i;
    }
  }
  if (failed == 0) return MEMKV_OK;
  return Fail(first, std::to_string(failed) + " of " + std::to_string(r.entries.size()) +
                         " entries failed; the first, entries[" + std::to_string(first_at) +
                         "]: " + memkv::CodeName(first));
}

template <class F>
int Guard(F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Fail(memkv::Code::kNoMemory, "out of memory");
  } catch (const std::exception& e) {
    return Fail(memkv::Code::kInternal, e.what());
  } catch (...) {
    return Fail(memkv::Code::kInternal, "unknown exception");
  }
}

int Make(memkv::Expected<memkv::Engine> e, memkv_engine_t** out) {
  if (!e) return Fail(e.error());
  *out = new memkv_engine{std::move(*e)};
  return MEMKV_OK;
}

std::string_view Key(const void* p, size_t n) {
  return p ? std::string_view(static_cast<const char*>(p), n) : std::string_view();
}

}  // namespace

extern "C" {

const char* memkv_strerror(int code) {
  if (code < 0 || code > memkv::kMaxCode) return "Unknown";
  return memkv::CodeName(static_cast<memkv::Code>(code));
}

const char* memkv_last_error(void) { return t_last_error.c_str(); }

void memkv_options_init(memkv_options_t* options) {
  if (options) std::memset(options, 0, sizeof *options);
}

int memkv_engine_create(const memkv_options_t* o, memkv_engine_t** out) {
  if (!o || !out) return Fail(memkv::Code::kInvalidArgument, "memkv_engine_create: null argument");
  *out = nullptr;
  return Guard([&]() -> int {
    memkv::EngineOptions opt;
    opt.servers = memkv::client::SplitServers(o->servers ? o->servers : "");
    if (o->auth_key) opt.auth_key = o->auth_key;
    if (o->transport && *o->transport) {
      const std::string t = o->transport;
      if (t == "auto")
        opt.transport = memkv::Transport::kAuto;
      else if (t == "shm")
        opt.transport = memkv::Transport::kShm;
      else if (t == "tcp")
        opt.transport = memkv::Transport::kTcp;
      else if (t == "rdma")
        opt.transport = memkv::Transport::kRdma;
      else
        return Fail(memkv::Code::kInvalidArgument,
                    "transport: '" + t + "' is not one of auto, rdma, shm, tcp");
    }
    if (o->timeout_ms) opt.timeout = std::chrono::milliseconds(o->timeout_ms);
    if (o->connect_timeout_ms)
      opt.connect_timeout = std::chrono::milliseconds(o->connect_timeout_ms);
    if (o->io_threads) opt.io_threads = o->io_threads;
    opt.immutable_keys = o->immutable_keys != 0;
    if (o->rdma_provider) opt.rdma_provider = o->rdma_provider;
    if (o->rdma_address) opt.rdma_address = o->rdma_address;
    if (o->rdma_device) opt.rdma_device = o->rdma_device;
    return Make(memkv::Engine::Create(std::move(opt)), out);
  });
}

int memkv_engine_create_from_env(memkv_engine_t** out) {
  if (!out)
    return Fail(memkv::Code::kInvalidArgument, "memkv_engine_create_from_env: null argument");
  *out = nullptr;
  return Guard([&]() -> int { return Make(memkv::Engine::FromEnvironment(), out); });
}

void memkv_engine_destroy(memkv_engine_t* engine) { delete engine; }

size_t memkv_server_count(const memkv_engine_t* e) { return e ? e->engine.server_count() : 0; }

const char* memkv_server_address(const memkv_engine_t* e, size_t i) {
  if (!e || i >= e->engine.server_count()) return nullptr;
  return e->engine.server(i).c_str();
}

size_t memkv_route_key(const memkv_engine_t* e, const void* key, size_t key_len) {
  return e ? e->engine.RouteKey(Key(key, key_len)) : 0;
}

size_t memkv_route_block(const memkv_engine_t* e, uint64_t block) {
  return e ? e->engine.RouteBlock(block) : 0;
}

int memkv_batch_put(memkv_engine_t* e, const memkv_put_entry_t* entries, size_t n, int* statuses) {
  if (!e || (!entries && n))
    return Fail(memkv::Code::kInvalidArgument, "memkv_batch_put: null argument");
  return Guard([&]() -> int {
    std::vector<memkv::PutEntry> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = {Key(entries[i].key, entries[i].key_len), entries[i].data, entries[i].size};
    auto r = e->engine.BatchPut(v);
    if (statuses)
      for (size_t i = 0; i < n; ++i) statuses[i] = static_cast<int>(r.entries[i]);
    return BatchReturn(r, [](memkv::Code c) { return c; });
  });
}

int memkv_batch_get(memkv_engine_t* e, memkv_get_entry_t* entries, size_t n) {
  if (!e || (!entries && n))
    return Fail(memkv::Code::kInvalidArgument, "memkv_batch_get: null argument");
  return Guard([&]() -> int {
    std::vector<memkv::GetEntry> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = {Key(entries[i].key, entries[i].key_len), entries[i].buffer, entries[i].capacity,
              entries[i].offset, entries[i].length};
    auto r = e->engine.BatchGet(v);
    for (size_t i = 0; i < n; ++i) {
      entries[i].status = static_cast<int>(r.entries[i].status);
      entries[i].value_size = r.entries[i].value_size;
      entries[i].bytes = r.entries[i].length;
    }
    return BatchReturn(r, [](const memkv::GetResult& g) { return g.status; });
  });
}

int memkv_batch_exists(memkv_engine_t* e, const memkv_key_t* keys, size_t n, int* statuses,
                       uint64_t* sizes) {
  if (!e || (!keys && n))
    return Fail(memkv::Code::kInvalidArgument, "memkv_batch_exists: null argument");
  return Guard([&]() -> int {
    std::vector<std::string_view> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = Key(keys[i].key, keys[i].key_len);
    auto r = e->engine.Exists(v);
    for (size_t i = 0; i < n; ++i) {
      if (statuses) statuses[i] = static_cast<int>(r.entries[i].status);
      if (sizes) sizes[i] = r.entries[i].size;
    }
    return BatchReturn(r, [](const memkv::ExistsResult& x) { return x.status; });
  });
}

int memkv_batch_delete(memkv_engine_t* e, const memkv_key_t* keys, size_t n, int* statuses) {
  if (!e || (!keys && n))
    return Fail(memkv::Code::kInvalidArgument, "memkv_batch_delete: null argument");
  return Guard([&]() -> int {
    std::vector<std::string_view> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = Key(keys[i].key, keys[i].key_len);
    auto r = e->engine.Delete(v);
    if (statuses)
      for (size_t i = 0; i < n; ++i) statuses[i] = static_cast<int>(r.entries[i]);
    return BatchReturn(r, [](memkv::Code c) { return c; });
  });
}

int memkv_register_memory(memkv_engine_t* e, void* ptr, size_t len, memkv_memory_t** out) {
  if (!e || !out)
    return Fail(memkv::Code::kInvalidArgument, "memkv_register_memory: null argument");
  *out = nullptr;
  return Guard([&]() -> int {
    auto h = e->engine.RegisterMemory(ptr, len);
    if (!h) return Fail(h.error());
    *out = new memkv_memory{*h};
    return MEMKV_OK;
  });
}

void memkv_unregister_memory(memkv_engine_t* e, memkv_memory_t* m) {
  if (e && m) e->engine.UnregisterMemory(m->handle);
  delete m;
}

int memkv_allocate_shared(memkv_engine_t* e, size_t size, memkv_shared_t** out) {
  if (!e || !out)
    return Fail(memkv::Code::kInvalidArgument, "memkv_allocate_shared: null argument");
  *out = nullptr;
  return Guard([&]() -> int {
    auto b = e->engine.AllocateShared(size);
    if (!b) return Fail(b.error());
    *out = new memkv_shared{*b};
    return MEMKV_OK;
  });
}

namespace {
// What a memkv_list_page_t's pointers point into.
struct ListPageData {
  std::vector<memkv::ListEntry> entries;
  std::vector<memkv_list_entry_t> view;
  std::string cursor;
};
}  // namespace

int memkv_list(memkv_engine_t* e, const void* prefix, size_t prefix_len, const void* cursor,
               size_t cursor_len, size_t limit, memkv_list_page_t* page) {
  if (!e || !page || (!prefix && prefix_len) || (!cursor && cursor_len))
    return Fail(memkv::Code::kInvalidArgument, "memkv_list: null argument");
  std::memset(page, 0, sizeof *page);
  return Guard([&]() -> int {
    auto p = e->engine.List(Key(prefix, prefix_len), Key(cursor, cursor_len), limit);
    if (!p.outcome) return Fail(p.outcome);
    auto data = std::make_unique<ListPageData>();
    data->entries = std::move(p.entries);
    data->cursor = std::move(p.cursor);
    data->view.reserve(data->entries.size());
    for (const memkv::ListEntry& le : data->entries)
      data->view.push_back({le.key.data(), le.key.size(), le.size, le.version});
    page->entries = data->view.data();
    page->count = data->view.size();
    page->cursor = data->cursor.data();
    page->cursor_len = data->cursor.size();
    page->internal = data.release();
    return MEMKV_OK;
  });
}

void memkv_list_page_free(memkv_list_page_t* page) {
  if (!page) return;
  delete static_cast<ListPageData*>(page->internal);
  std::memset(page, 0, sizeof *page);
}

int memkv_capacity(memkv_engine_t* e, memkv_capacity_t* out) {
  if (!e || !out) return Fail(memkv::Code::kInvalidArgument, "memkv_capacity: null argument");
  std::memset(out, 0, sizeof *out);
  return Guard([&]() -> int {
    auto c = e->engine.Capacity();
    *out = {c.total_bytes, c.used_bytes, c.keys, c.max_value_size};
    return c.outcome ? MEMKV_OK : Fail(c.outcome);
  });
}

int memkv_rename(memkv_engine_t* e, const void* from, size_t from_len, const void* to,
                 size_t to_len) {
  if (!e) return Fail(memkv::Code::kInvalidArgument, "memkv_rename: null argument");
  return Guard([&]() -> int {
    auto o = e->engine.Rename(Key(from, from_len), Key(to, to_len));
    return o ? MEMKV_OK : Fail(o);
  });
}

int memkv_put_stream_open(memkv_engine_t* e, const void* key, size_t key_len, size_t window,
                          memkv_put_stream_t** out) {
  if (!e || !out) return Fail(memkv::Code::kInvalidArgument, "memkv_put_stream_open: null argument");
  *out = nullptr;
  return Guard([&]() -> int {
    auto s = e->engine.OpenPutStream(Key(key, key_len), window ? window : size_t{16} << 20);
    if (!s) return Fail(s.error());
    *out = new memkv_put_stream{std::move(*s)};
    return MEMKV_OK;
  });
}

int memkv_put_stream_write(memkv_put_stream_t* s, const void* data, size_t size) {
  if (!s) return Fail(memkv::Code::kInvalidArgument, "memkv_put_stream_write: null stream");
  return Guard([&]() -> int {
    auto o = s->stream.Write(data, size);
    return o ? MEMKV_OK : Fail(o);
  });
}

int memkv_put_stream_finish(memkv_put_stream_t* s) {
  if (!s) return Fail(memkv::Code::kInvalidArgument, "memkv_put_stream_finish: null stream");
  std::unique_ptr<memkv_put_stream> owned(s);
  return Guard([&]() -> int {
    auto o = owned->stream.Finish();
    return o ? MEMKV_OK : Fail(o);
  });
}

void memkv_put_stream_abort(memkv_put_stream_t* s) {
  if (!s) return;
  try {
    s->stream.Abort();
  } catch (...) {
  }
  delete s;
}

void* memkv_shared_data(const memkv_shared_t* s) { return s ? s->buffer.data() : nullptr; }
size_t memkv_shared_size(const memkv_shared_t* s) { return s ? s->buffer.size() : 0; }
void memkv_free_shared(memkv_shared_t* s) { delete s; }

}  // extern "C"
