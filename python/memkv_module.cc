// memkv._memkv: the CPython extension over libmemkv.so's C++ API
// (include/memkv/engine.h). A thin adapter: Python objects are converted at
// the edge (keys to UTF-8 bytes, buffers through the buffer protocol) and the
// work happens in the client library. The GIL is released during every wait;
// the callback forms (_async_*) complete on the library's I/O threads, which
// take the GIL only to hand the result to a Python callable (memkv/__init__.py
// turns that into asyncio futures).
//
// Per-entry results of the batch forms (docs/python.md):
//   batch_put, batch_delete:     a list of codes (0 = ok);
//   batch_get_into, batch_exists: a list of ints, >= 0 the bytes written (the
//                                 value's size for exists), < 0 minus the code.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "memkv/engine.h"

namespace {

using memkv::Code;

// Releases the GIL for its scope (a blocking call of the library).
class ReleaseGil {
 public:
  ReleaseGil() : state_(PyEval_SaveThread()) {}
  ~ReleaseGil() { PyEval_RestoreThread(state_); }
  ReleaseGil(const ReleaseGil&) = delete;
  ReleaseGil& operator=(const ReleaseGil&) = delete;

 private:
  PyThreadState* state_;
};

// ---- exceptions: memkv.Error and one subclass per Code ----

PyObject* g_error = nullptr;                          // memkv.Error
PyObject* g_errors[memkv::kMaxCode + 1] = {nullptr};  // by code; [0] unused

// Async calls in flight, and whether the interpreter is going away (then a
// late completion leaks its objects rather than touch a dying interpreter).
std::atomic<int64_t> g_inflight{0};
std::atomic<bool> g_finalizing{false};

PyObject* ErrorClass(Code c) {
  const int i = static_cast<int>(c);
  if (i > 0 && i <= memkv::kMaxCode && g_errors[i]) return g_errors[i];
  return g_error;
}

// The message may hold a key's raw bytes: undecodable ones are replaced.
PyObject* NewError(Code c, const std::string& message) {
  PyObject* text =
      PyUnicode_DecodeUTF8(message.data(), static_cast<Py_ssize_t>(message.size()), "replace");
  if (!text) return nullptr;
  PyObject* e = PyObject_CallOneArg(ErrorClass(c), text);
  Py_DECREF(text);
  return e;
}

std::nullptr_t Raise(Code c, const std::string& message) {
  PyObject* e = NewError(c, message);
  if (e) {
    PyErr_SetObject(ErrorClass(c), e);
    Py_DECREF(e);
  }
  return nullptr;
}

std::nullptr_t Raise(const memkv::Outcome& o) {
  return Raise(o.code, o.message.empty() ? memkv::CodeName(o.code) : o.message);
}

// ---- keys ----

// Keys of one call, copied into one arena so they outlive the GIL.
struct Keys {
  std::string arena;
  std::vector<std::pair<size_t, size_t>> spans;
  std::vector<std::string_view> views;

  bool Add(PyObject* key) {
    const char* p;
    Py_ssize_t n;
    if (PyUnicode_Check(key)) {
      p = PyUnicode_AsUTF8AndSize(key, &n);
      if (!p) {
        // A key list() returned with its undecodable bytes escaped.
        PyErr_Clear();
        PyObject* raw = PyUnicode_AsEncodedString(key, "utf-8", "surrogateescape");
        if (!raw) return false;
        spans.emplace_back(arena.size(), static_cast<size_t>(PyBytes_GET_SIZE(raw)));
        arena.append(PyBytes_AS_STRING(raw), static_cast<size_t>(PyBytes_GET_SIZE(raw)));
        Py_DECREF(raw);
        return true;
      }
    } else if (PyBytes_Check(key)) {
      p = PyBytes_AS_STRING(key);
      n = PyBytes_GET_SIZE(key);
    } else {
      PyErr_Format(PyExc_TypeError, "a key must be str or bytes, not %.100s",
                   Py_TYPE(key)->tp_name);
      return false;
    }
    spans.emplace_back(arena.size(), static_cast<size_t>(n));
    arena.append(p, static_cast<size_t>(n));
    return true;
  }
  void Seal() {
    views.clear();
    views.reserve(spans.size());
    for (auto [off, n] : spans) views.emplace_back(arena.data() + off, n);
  }
};

std::string KeyRepr(std::string_view key) {
  std::string s = "'";
  s.append(key.substr(0, 200));
  if (key.size() > 200) s += "...";
  return s + "'";
}

// ---- buffers ----

// Buffer-protocol views held for one call; released with the GIL held.
struct Views {
  std::vector<Py_buffer> views;
  ~Views() {
    for (auto& v : views) PyBuffer_Release(&v);
  }
  // A contiguous view of `obj`; writable when asked.
  bool Add(PyObject* obj, bool writable, void** data, size_t* size) {
    Py_buffer v;
    if (PyObject_GetBuffer(obj, &v, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) return false;
    views.push_back(v);
    *data = v.buf;
    *size = static_cast<size_t>(v.len);
    return true;
  }
};

bool ToAddress(PyObject* o, void** out) {
  const unsigned long long a = PyLong_AsUnsignedLongLong(o);
  if (a == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
  if (a == 0) {
    PyErr_SetString(PyExc_ValueError, "address must not be 0");
    return false;
  }
  *out = reinterpret_cast<void*>(static_cast<uintptr_t>(a));
  return true;
}

bool ToSize(PyObject* o, size_t* out) {
  const size_t n = PyLong_AsSize_t(o);
  if (n == static_cast<size_t>(-1) && PyErr_Occurred()) return false;
  *out = n;
  return true;
}

// An item of a batch: (key, buffer) or (key, address, size).
bool ParseItem(PyObject* item, bool writable, Keys& keys, Views& views, void** data, size_t* size) {
  PyObject* fast = PySequence_Fast(item,
                                   "a batch entry must be (key, buffer) or "
                                   "(key, address, size)");
  if (!fast) return false;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  PyObject** f = PySequence_Fast_ITEMS(fast);
  bool ok = false;
  if (n == 2) {
    ok = keys.Add(f[0]) && views.Add(f[1], writable, data, size);
  } else if (n == 3) {
    ok = keys.Add(f[0]) && ToAddress(f[1], data) && ToSize(f[2], size);
  } else {
    PyErr_SetString(PyExc_TypeError, "a batch entry must be (key, buffer) or (key, address, size)");
  }
  Py_DECREF(fast);
  return ok;
}

// ---- results ----

PyObject* CodesToList(const std::vector<Code>& codes) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(codes.size()));
  if (!list) return nullptr;
  for (size_t i = 0; i < codes.size(); ++i) {
    PyObject* v = PyLong_FromLong(static_cast<long>(codes[i]));
    if (!v) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
  }
  return list;
}

template <class R, class F>
PyObject* SizesToList(const std::vector<R>& entries, F size_of) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(entries.size()));
  if (!list) return nullptr;
  for (size_t i = 0; i < entries.size(); ++i) {
    const R& e = entries[i];
    PyObject* v = e.status == Code::kOk ? PyLong_FromUnsignedLongLong(size_of(e))
                                        : PyLong_FromLong(-static_cast<long>(e.status));
    if (!v) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
  }
  return list;
}

PyObject* GetsToList(const memkv::GetResults& r) {
  return SizesToList(r.entries, [](const memkv::GetResult& e) { return e.length; });
}
PyObject* ExistsToList(const memkv::ExistsResults& r) {
  return SizesToList(r.entries, [](const memkv::ExistsResult& e) { return e.size; });
}

// ---- SharedBuffer: memory from Engine.alloc ----

struct SharedBufferObject {
  PyObject_HEAD memkv::SharedBuffer* buf;
};

void SharedBufferDealloc(PyObject* self) {
  delete reinterpret_cast<SharedBufferObject*>(self)->buf;
  Py_TYPE(self)->tp_free(self);
}

int SharedBufferGetBuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* b = reinterpret_cast<SharedBufferObject*>(self)->buf;
  return PyBuffer_FillInfo(view, self, b->data(), static_cast<Py_ssize_t>(b->size()), 0, flags);
}

Py_ssize_t SharedBufferLen(PyObject* self) {
  return static_cast<Py_ssize_t>(reinterpret_cast<SharedBufferObject*>(self)->buf->size());
}

PyObject* SharedBufferAddress(PyObject* self, void*) {
  return PyLong_FromVoidPtr(reinterpret_cast<SharedBufferObject*>(self)->buf->data());
}

PyObject* SharedBufferRepr(PyObject* self) {
  auto* b = reinterpret_cast<SharedBufferObject*>(self)->buf;
  return PyUnicode_FromFormat("<memkv.SharedBuffer size=%zu address=%p>", b->size(), b->data());
}

PyBufferProcs g_shared_buffer_procs = {SharedBufferGetBuffer, nullptr};
PySequenceMethods g_shared_buffer_seq = {SharedBufferLen};
PyGetSetDef g_shared_buffer_getset[] = {
    {"address", SharedBufferAddress, nullptr,
     "The address of the first byte (for the (key, address, size) forms).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject g_shared_buffer_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

// ---- Engine ----

struct Registration {
  Py_buffer view;
  memkv::MemoryHandle handle;
};

struct EngineObject {
  PyObject_HEAD memkv::Engine* engine;
  std::vector<Registration>* registrations;
};

PyTypeObject g_engine_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

memkv::Engine* Get(PyObject* self) {
  auto* e = reinterpret_cast<EngineObject*>(self)->engine;
  if (!e) PyErr_SetString(PyExc_RuntimeError, "memkv.Engine: not initialized (call __init__)");
  return e;
}

PyObject* EngineNew(PyTypeObject* type, PyObject*, PyObject*) {
  auto* self = reinterpret_cast<EngineObject*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->engine = nullptr;
  self->registrations = new std::vector<Registration>();
  return reinterpret_cast<PyObject*>(self);
}

void EngineDealloc(PyObject* obj) {
  auto* self = reinterpret_cast<EngineObject*>(obj);
  if (self->registrations) {
    for (auto& r : *self->registrations) {
      if (self->engine) self->engine->UnregisterMemory(r.handle);
      PyBuffer_Release(&r.view);
    }
    delete self->registrations;
  }
  if (self->engine) {
    memkv::Engine* e = self->engine;
    self->engine = nullptr;
    // The last engine stops the library's I/O threads: never with the GIL.
    {
      ReleaseGil nogil;
      delete e;
    }
  }
  Py_TYPE(obj)->tp_free(obj);
}

int Install(EngineObject* self, memkv::Expected<memkv::Engine> created) {
  if (!created) {
    Raise(created.error());
    return -1;
  }
  auto* fresh = new memkv::Engine(std::move(*created));
  std::swap(self->engine, fresh);
  if (fresh) {
    {
      ReleaseGil nogil;
      delete fresh;
    }
  }
  return 0;
}

bool ParseServers(PyObject* servers, std::vector<std::string>& out) {
  if (PyUnicode_Check(servers)) {
    const char* s = PyUnicode_AsUTF8(servers);
    if (!s) return false;
    std::string_view rest(s);
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view one = rest.substr(0, comma);
      while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
      while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
      if (!one.empty()) out.emplace_back(one);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return true;
  }
  PyObject* fast = PySequence_Fast(servers, "servers must be a str or a list of str");
  if (!fast) return false;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); ++i) {
    PyObject* s = PySequence_Fast_GET_ITEM(fast, i);
    const char* p = PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : nullptr;
    if (!p) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "servers must be a list of str");
      Py_DECREF(fast);
      return false;
    }
    out.emplace_back(p);
  }
  Py_DECREF(fast);
  return true;
}

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0 + 0.5));
}

int EngineInit(PyObject* obj, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"servers",         "auth_key",   "transport",      "timeout",
                             "connect_timeout", "io_threads", "immutable_keys", nullptr};
  PyObject* servers = nullptr;
  const char* auth_key = nullptr;
  const char* transport = "auto";
  double timeout = 30.0, connect_timeout = 5.0;
  Py_ssize_t io_threads = 1;
  int immutable = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|zsd$dnp", const_cast<char**>(kw), &servers,
                                   &auth_key, &transport, &timeout, &connect_timeout, &io_threads,
                                   &immutable))
    return -1;
  memkv::EngineOptions o;
  if (!ParseServers(servers, o.servers)) return -1;
  if (auth_key) o.auth_key = auth_key;
  const std::string_view t(transport);
  if (t == "auto")
    o.transport = memkv::Transport::kAuto;
  else if (t == "shm")
    o.transport = memkv::Transport::kShm;
  else if (t == "tcp")
    o.transport = memkv::Transport::kTcp;
  else if (t == "rdma")
    o.transport = memkv::Transport::kRdma;
  else {
    Raise(Code::kInvalidArgument,
          "transport: '" + std::string(t) + "' is not one of auto, shm, tcp, rdma");
    return -1;
  }
  if (!(timeout > 0) || !(connect_timeout > 0)) {
    Raise(Code::kInvalidArgument, "timeout and connect_timeout must be > 0 seconds");
    return -1;
  }
  o.timeout = Millis(timeout);
  o.connect_timeout = Millis(connect_timeout);
  if (io_threads < 1) {
    Raise(Code::kInvalidArgument, "io_threads must be >= 1");
    return -1;
  }
  o.io_threads = static_cast<size_t>(io_threads);
  o.immutable_keys = immutable != 0;
  return Install(reinterpret_cast<EngineObject*>(obj), memkv::Engine::Create(std::move(o)));
}

PyObject* EngineFromEnvironment(PyObject* cls, PyObject*) {
  PyObject* obj = EngineNew(reinterpret_cast<PyTypeObject*>(cls), nullptr, nullptr);
  if (!obj) return nullptr;
  if (Install(reinterpret_cast<EngineObject*>(obj), memkv::Engine::FromEnvironment()) < 0) {
    Py_DECREF(obj);
    return nullptr;
  }
  return obj;
}

// ---- single calls ----

PyObject* DoPut(PyObject* self, PyObject* key, void* data, size_t size) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  memkv::PutEntry p{k.views[0], data, size};
  memkv::PutResults r;
  {
    ReleaseGil nogil;
    r = e->BatchPut({&p, 1});
  }
  if (!r.outcome) return Raise(r.outcome);
  if (r.entries[0] != Code::kOk)
    return Raise(r.entries[0], "put " + KeyRepr(k.views[0]) + ": " + memkv::CodeName(r.entries[0]));
  Py_RETURN_NONE;
}

PyObject* EnginePut(PyObject* self, PyObject* args) {
  PyObject *key, *data;
  if (!PyArg_ParseTuple(args, "OO:put", &key, &data)) return nullptr;
  Views v;
  void* p;
  size_t n;
  if (!v.Add(data, false, &p, &n)) return nullptr;
  return DoPut(self, key, p, n);
}

PyObject* EnginePutPtr(PyObject* self, PyObject* args) {
  PyObject *key, *addr, *size;
  if (!PyArg_ParseTuple(args, "OOO:put_ptr", &key, &addr, &size)) return nullptr;
  void* p;
  size_t n;
  if (!ToAddress(addr, &p) || !ToSize(size, &n)) return nullptr;
  return DoPut(self, key, p, n);
}

// Reads `key` into [data, data + size): the bytes written.
PyObject* DoGetInto(PyObject* self, PyObject* key, void* data, size_t size) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  memkv::GetEntry g{k.views[0], data, size};
  memkv::GetResults r;
  {
    ReleaseGil nogil;
    r = e->BatchGet({&g, 1});
  }
  if (!r.outcome) return Raise(r.outcome);
  const memkv::GetResult& gr = r.entries[0];
  if (gr.status == Code::kBufferTooSmall)
    return Raise(gr.status, "get " + KeyRepr(k.views[0]) + ": the value has " +
                                std::to_string(gr.value_size) + " bytes, the buffer " +
                                std::to_string(size));
  if (gr.status != Code::kOk)
    return Raise(gr.status, "get " + KeyRepr(k.views[0]) + ": " + memkv::CodeName(gr.status));
  return PyLong_FromUnsignedLongLong(gr.length);
}

PyObject* EngineGetInto(PyObject* self, PyObject* args) {
  PyObject *key, *buffer;
  if (!PyArg_ParseTuple(args, "OO:get_into", &key, &buffer)) return nullptr;
  Views v;
  void* p;
  size_t n;
  if (!v.Add(buffer, true, &p, &n)) return nullptr;
  return DoGetInto(self, key, p, n);
}

PyObject* EngineGetIntoPtr(PyObject* self, PyObject* args) {
  PyObject *key, *addr, *size;
  if (!PyArg_ParseTuple(args, "OOO:get_into_ptr", &key, &addr, &size)) return nullptr;
  void* p;
  size_t n;
  if (!ToAddress(addr, &p) || !ToSize(size, &n)) return nullptr;
  return DoGetInto(self, key, p, n);
}

// The value's size and version, or null with NotFound raised.
bool Stat(memkv::Engine* e, std::string_view key, memkv::ExistsResult* out, const char* op) {
  memkv::ExistsResults r;
  {
    ReleaseGil nogil;
    r = e->Exists({&key, 1});
  }
  if (!r.outcome) {
    Raise(r.outcome);
    return false;
  }
  *out = r.entries[0];
  if (out->status != Code::kOk) {
    Raise(out->status, op + (" " + KeyRepr(key)) + ": " + memkv::CodeName(out->status));
    return false;
  }
  return true;
}

PyObject* EngineGet(PyObject* self, PyObject* key) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  const std::string_view kv = k.views[0];
  // The read is pinned to the version Exists saw; a key rewritten between
  // the two is read again.
  constexpr int kTries = 3;
  for (int attempt = 0;; ++attempt) {
    memkv::ExistsResult st;
    if (!Stat(e, kv, &st, "get")) return nullptr;
    PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(st.size));
    if (!bytes) return nullptr;
    memkv::GetEntry g{kv, PyBytes_AS_STRING(bytes), st.size, 0, 0, st.version};
    memkv::GetResults r;
    {
      ReleaseGil nogil;
      r = e->BatchGet({&g, 1});
    }
    if (!r.outcome) {
      Py_DECREF(bytes);
      return Raise(r.outcome);
    }
    const memkv::GetResult& gr = r.entries[0];
    if (gr.status == Code::kOk) {
      if (gr.length != st.size && _PyBytes_Resize(&bytes, static_cast<Py_ssize_t>(gr.length)) < 0)
        return nullptr;
      return bytes;
    }
    Py_DECREF(bytes);
    const bool changed = gr.status == Code::kNotFound || gr.status == Code::kBufferTooSmall;
    if (!changed || attempt + 1 == kTries)
      return Raise(gr.status, "get " + KeyRepr(kv) + ": " + memkv::CodeName(gr.status));
  }
}

PyObject* EngineSize(PyObject* self, PyObject* key) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  memkv::ExistsResult st;
  if (!Stat(e, k.views[0], &st, "size")) return nullptr;
  return PyLong_FromUnsignedLongLong(st.size);
}

PyObject* EngineExists(PyObject* self, PyObject* key) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  memkv::ExistsResults r;
  {
    ReleaseGil nogil;
    r = e->Exists({k.views.data(), 1});
  }
  if (!r.outcome) return Raise(r.outcome);
  const Code c = r.entries[0].status;
  if (c == Code::kOk) Py_RETURN_TRUE;
  if (c == Code::kNotFound) Py_RETURN_FALSE;
  return Raise(c, "exists " + KeyRepr(k.views[0]) + ": " + memkv::CodeName(c));
}

PyObject* EngineDelete(PyObject* self, PyObject* key) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  memkv::DeleteResults r;
  {
    ReleaseGil nogil;
    r = e->Delete({k.views.data(), 1});
  }
  if (!r.outcome) return Raise(r.outcome);
  if (r.entries[0] != Code::kOk)
    return Raise(r.entries[0],
                 "delete " + KeyRepr(k.views[0]) + ": " + memkv::CodeName(r.entries[0]));
  Py_RETURN_NONE;
}

PyObject* EngineRoute(PyObject* self, PyObject* key) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(key)) return nullptr;
  k.Seal();
  return PyLong_FromSize_t(e->RouteKey(k.views[0]));
}

PyObject* EngineRename(PyObject* self, PyObject* args) {
  PyObject *from, *to;
  if (!PyArg_ParseTuple(args, "OO:rename", &from, &to)) return nullptr;
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!k.Add(from) || !k.Add(to)) return nullptr;
  k.Seal();
  memkv::Outcome o;
  {
    ReleaseGil nogil;
    o = e->Rename(k.views[0], k.views[1]);
  }
  if (!o) return Raise(o);
  Py_RETURN_NONE;
}

PyObject* EngineList(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"prefix", "limit", nullptr};
  PyObject* prefix = nullptr;
  PyObject* limit_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:list", const_cast<char**>(kw), &prefix,
                                   &limit_obj))
    return nullptr;
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (prefix && !k.Add(prefix)) return nullptr;
  if (!prefix) k.spans.emplace_back(0, 0);
  k.Seal();
  size_t limit = SIZE_MAX;
  if (limit_obj != Py_None && !ToSize(limit_obj, &limit)) return nullptr;
  PyObject* out = PyList_New(0);
  if (!out) return nullptr;
  std::string cursor;
  while (limit > 0) {
    const size_t page = std::min<size_t>(limit, 1000);
    memkv::ListPage p;
    {
      ReleaseGil nogil;
      p = e->List(k.views[0], cursor, page);
    }
    if (!p.outcome) {
      Py_DECREF(out);
      return Raise(p.outcome);
    }
    for (const auto& le : p.entries) {
      PyObject* t =
          Py_BuildValue("(NK)",
                        PyUnicode_DecodeUTF8(le.key.data(), static_cast<Py_ssize_t>(le.key.size()),
                                             "surrogateescape"),
                        static_cast<unsigned long long>(le.size));
      if (!t || PyList_Append(out, t) < 0) {
        Py_XDECREF(t);
        Py_DECREF(out);
        return nullptr;
      }
      Py_DECREF(t);
    }
    limit -= std::min(limit, p.entries.size());
    if (p.cursor.empty() || p.entries.empty()) break;
    cursor = std::move(p.cursor);
  }
  return out;
}

PyObject* EngineCapacity(PyObject* self, PyObject*) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  memkv::CapacityInfo c;
  {
    ReleaseGil nogil;
    c = e->Capacity();
  }
  if (!c.outcome) return Raise(c.outcome);
  return Py_BuildValue("{sKsKsKsK}", "total_bytes", (unsigned long long)c.total_bytes, "used_bytes",
                       (unsigned long long)c.used_bytes, "keys", (unsigned long long)c.keys,
                       "max_value_size", (unsigned long long)c.max_value_size);
}

// ---- batches ----

// A batch parsed from Python: keys, views and entries, kept alive until the
// call completes (on this thread, or on an I/O thread for the async forms).
struct Batch {
  Keys keys;
  Views views;
  std::vector<memkv::PutEntry> puts;
  std::vector<memkv::GetEntry> gets;
};

enum class Kind { kPut, kGetInto };

bool ParseBatch(PyObject* items, Kind kind, Batch& b) {
  PyObject* fast = PySequence_Fast(items, "a batch must be a sequence of entries");
  if (!fast) return false;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  std::vector<std::pair<void*, size_t>> bufs;
  bufs.reserve(static_cast<size_t>(n));
  b.views.views.reserve(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    void* p = nullptr;
    size_t sz = 0;
    if (!ParseItem(PySequence_Fast_GET_ITEM(fast, i), kind == Kind::kGetInto, b.keys, b.views, &p,
                   &sz)) {
      Py_DECREF(fast);
      return false;
    }
    bufs.emplace_back(p, sz);
  }
  Py_DECREF(fast);
  b.keys.Seal();
  for (size_t i = 0; i < bufs.size(); ++i) {
    if (kind == Kind::kPut)
      b.puts.push_back({b.keys.views[i], bufs[i].first, bufs[i].second});
    else
      b.gets.push_back({b.keys.views[i], bufs[i].first, bufs[i].second});
  }
  return true;
}

bool ParseKeys(PyObject* keys, Keys& k) {
  PyObject* fast = PySequence_Fast(keys, "keys must be a sequence of str or bytes");
  if (!fast) return false;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); ++i) {
    if (!k.Add(PySequence_Fast_GET_ITEM(fast, i))) {
      Py_DECREF(fast);
      return false;
    }
  }
  Py_DECREF(fast);
  k.Seal();
  return true;
}

PyObject* EngineBatchPut(PyObject* self, PyObject* items) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Batch b;
  if (!ParseBatch(items, Kind::kPut, b)) return nullptr;
  memkv::PutResults r;
  {
    ReleaseGil nogil;
    r = e->BatchPut(b.puts);
  }
  if (!r.outcome) return Raise(r.outcome);
  return CodesToList(r.entries);
}

PyObject* EngineBatchGetInto(PyObject* self, PyObject* items) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Batch b;
  if (!ParseBatch(items, Kind::kGetInto, b)) return nullptr;
  memkv::GetResults r;
  {
    ReleaseGil nogil;
    r = e->BatchGet(b.gets);
  }
  if (!r.outcome) return Raise(r.outcome);
  return GetsToList(r);
}

PyObject* EngineBatchExists(PyObject* self, PyObject* keys) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!ParseKeys(keys, k)) return nullptr;
  memkv::ExistsResults r;
  {
    ReleaseGil nogil;
    r = e->Exists(k.views);
  }
  if (!r.outcome) return Raise(r.outcome);
  return ExistsToList(r);
}

PyObject* EngineBatchDelete(PyObject* self, PyObject* keys) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!ParseKeys(keys, k)) return nullptr;
  memkv::DeleteResults r;
  {
    ReleaseGil nogil;
    r = e->Delete(k.views);
  }
  if (!r.outcome) return Raise(r.outcome);
  return CodesToList(r.entries);
}

// batch_get(keys): the values as bytes, None where an entry failed.
PyObject* EngineBatchGet(PyObject* self, PyObject* keys) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Keys k;
  if (!ParseKeys(keys, k)) return nullptr;
  memkv::ExistsResults ex;
  {
    ReleaseGil nogil;
    ex = e->Exists(k.views);
  }
  if (!ex.outcome) return Raise(ex.outcome);
  const size_t n = k.views.size();
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(n));
  if (!out) return nullptr;
  std::vector<memkv::GetEntry> gets;
  std::vector<size_t> index;
  for (size_t i = 0; i < n; ++i) {
    const auto& x = ex.entries[i];
    if (x.status != Code::kOk) {
      Py_INCREF(Py_None);
      PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), Py_None);
      continue;
    }
    PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(x.size));
    if (!bytes) {
      for (size_t j = i; j < n; ++j) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(out, static_cast<Py_ssize_t>(j), Py_None);
      }
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), bytes);
    gets.push_back({k.views[i], PyBytes_AS_STRING(bytes), x.size, 0, 0, x.version});
    index.push_back(i);
  }
  memkv::GetResults r;
  {
    ReleaseGil nogil;
    r = e->BatchGet(gets);
  }
  if (!r.outcome) {
    Py_DECREF(out);
    return Raise(r.outcome);
  }
  for (size_t j = 0; j < index.size(); ++j) {
    const auto& gr = r.entries[j];
    const Py_ssize_t i = static_cast<Py_ssize_t>(index[j]);
    if (gr.status != Code::kOk) {
      Py_INCREF(Py_None);
      PyList_SetItem(out, i, Py_None);  // drops the unfilled bytes
    } else if (gr.length != gets[j].capacity) {
      PyObject* item = PyList_GET_ITEM(out, i);
      PyObject* shrunk =
          PyBytes_FromStringAndSize(PyBytes_AS_STRING(item), static_cast<Py_ssize_t>(gr.length));
      if (!shrunk) {
        Py_DECREF(out);
        return nullptr;
      }
      PyList_SetItem(out, i, shrunk);
    }
  }
  return out;
}

// ---- callback forms: done(result) on an I/O thread, with the GIL ----

struct AsyncCall {
  Batch batch;
  PyObject* done = nullptr;  // owned
};

// Runs `build` (which returns a new reference or null with an exception set)
// under the GIL and calls the call's `done` with its result or exception.
template <class Build>
void Finish(std::unique_ptr<AsyncCall> call, Build build) {
  if (g_finalizing.load()) {
    call.release();  // the interpreter is gone: leak rather than touch it
    g_inflight.fetch_sub(1);
    return;
  }
  PyGILState_STATE st = PyGILState_Ensure();
  PyObject* result = build();
  if (!result) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    result = value ? value : (Py_INCREF(Py_None), Py_None);
  }
  PyObject* r = PyObject_CallOneArg(call->done, result);
  if (!r) PyErr_WriteUnraisable(call->done);
  Py_XDECREF(r);
  Py_DECREF(result);
  Py_DECREF(call->done);
  call.reset();  // releases the views with the GIL held
  g_inflight.fetch_sub(1);
  PyGILState_Release(st);
}

std::unique_ptr<AsyncCall> NewCall(PyObject* done) {
  if (!PyCallable_Check(done)) {
    PyErr_SetString(PyExc_TypeError, "done must be callable");
    return nullptr;
  }
  auto call = std::make_unique<AsyncCall>();
  Py_INCREF(done);
  call->done = done;
  return call;
}

// Submits with the GIL released (the completion may run on this thread when
// the batch is refused at once; it takes the GIL back itself).
template <class F>
PyObject* Submit(std::unique_ptr<AsyncCall> call, F submit) {
  g_inflight.fetch_add(1);
  AsyncCall* raw = call.release();
  {
    ReleaseGil nogil;
    submit(raw);
  }
  Py_RETURN_NONE;
}

// The asynchronous batch calls: `format` parses (argument, done); `parse`
// fills the call's batch from the argument; `start` hands the batch to the
// engine with a completion that finishes the call with `to_list` of the
// results.
template <class Parse, class Start>
PyObject* AsyncBatch(PyObject* self, PyObject* args, const char* format, Parse parse, Start start) {
  PyObject *arg, *done;
  if (!PyArg_ParseTuple(args, format, &arg, &done)) return nullptr;
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  auto call = NewCall(done);
  if (!call) return nullptr;
  if (!parse(arg, call->batch)) {
    Py_CLEAR(call->done);
    return nullptr;
  }
  return Submit(std::move(call), [e, start](AsyncCall* c) { start(*e, c); });
}

// A completion for `start`: finishes `c` with to_list(results), or raises.
template <class Results, class ToList>
auto Completes(AsyncCall* c, ToList to_list) {
  return [c, to_list](Results r) {
    Finish(std::unique_ptr<AsyncCall>(c), [&]() -> PyObject* {
      if (!r.outcome) return Raise(r.outcome);
      return to_list(r);
    });
  };
}

PyObject* EngineAsyncBatchPut(PyObject* self, PyObject* args) {
  return AsyncBatch(
      self, args, "OO:_async_batch_put",
      [](PyObject* items, Batch& b) { return ParseBatch(items, Kind::kPut, b); },
      [](memkv::Engine& e, AsyncCall* c) {
        e.AsyncBatchPut(c->batch.puts, Completes<memkv::PutResults>(
                                           c, [](const memkv::PutResults& r) { return CodesToList(r.entries); }));
      });
}

PyObject* EngineAsyncBatchGetInto(PyObject* self, PyObject* args) {
  return AsyncBatch(
      self, args, "OO:_async_batch_get_into",
      [](PyObject* items, Batch& b) { return ParseBatch(items, Kind::kGetInto, b); },
      [](memkv::Engine& e, AsyncCall* c) {
        e.AsyncBatchGet(c->batch.gets, Completes<memkv::GetResults>(
                                           c, [](const memkv::GetResults& r) { return GetsToList(r); }));
      });
}

PyObject* EngineAsyncBatchExists(PyObject* self, PyObject* args) {
  return AsyncBatch(
      self, args, "OO:_async_batch_exists",
      [](PyObject* keys, Batch& b) { return ParseKeys(keys, b.keys); },
      [](memkv::Engine& e, AsyncCall* c) {
        e.AsyncExists(c->batch.keys.views, Completes<memkv::ExistsResults>(
                                               c, [](const memkv::ExistsResults& r) { return ExistsToList(r); }));
      });
}

PyObject* EngineAsyncBatchDelete(PyObject* self, PyObject* args) {
  return AsyncBatch(
      self, args, "OO:_async_batch_delete",
      [](PyObject* keys, Batch& b) { return ParseKeys(keys, b.keys); },
      [](memkv::Engine& e, AsyncCall* c) {
        e.AsyncDelete(c->batch.keys.views, Completes<memkv::DeleteResults>(
                                               c, [](const memkv::DeleteResults& r) { return CodesToList(r.entries); }));
      });
}

// ---- memory ----

PyObject* EngineAlloc(PyObject* self, PyObject* arg) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  size_t size;
  if (!ToSize(arg, &size)) return nullptr;
  if (size == 0) return Raise(Code::kInvalidArgument, "alloc: size must be >= 1");
  memkv::Expected<memkv::SharedBuffer> b = memkv::Outcome{};
  {
    ReleaseGil nogil;
    b = e->AllocateShared(size);
  }
  if (!b) return Raise(b.error());
  auto* obj = PyObject_New(SharedBufferObject, &g_shared_buffer_type);
  if (!obj) return nullptr;
  obj->buf = new memkv::SharedBuffer(std::move(*b));
  return reinterpret_cast<PyObject*>(obj);
}

PyObject* EngineRegister(PyObject* self, PyObject* buffer) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Registration reg;
  if (PyObject_GetBuffer(buffer, &reg.view, PyBUF_SIMPLE) < 0) return nullptr;
  memkv::Expected<memkv::MemoryHandle> h = memkv::Outcome{};
  {
    ReleaseGil nogil;
    h = e->RegisterMemory(reg.view.buf, static_cast<size_t>(reg.view.len));
  }
  if (!h) {
    PyBuffer_Release(&reg.view);
    return Raise(h.error());
  }
  reg.handle = *h;
  reinterpret_cast<EngineObject*>(self)->registrations->push_back(reg);
  Py_RETURN_NONE;
}

PyObject* EngineUnregister(PyObject* self, PyObject* buffer) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  Py_buffer v;
  if (PyObject_GetBuffer(buffer, &v, PyBUF_SIMPLE) < 0) return nullptr;
  auto* regs = reinterpret_cast<EngineObject*>(self)->registrations;
  for (auto it = regs->begin(); it != regs->end(); ++it) {
    if (it->view.buf == v.buf && it->view.len == v.len) {
      e->UnregisterMemory(it->handle);
      PyBuffer_Release(&it->view);
      regs->erase(it);
      PyBuffer_Release(&v);
      Py_RETURN_NONE;
    }
  }
  PyBuffer_Release(&v);
  return Raise(Code::kNotFound, "unregister: this buffer is not registered with this engine");
}

PyObject* EngineServers(PyObject* self, void*) {
  memkv::Engine* e = Get(self);
  if (!e) return nullptr;
  PyObject* list = PyList_New(0);
  if (!list) return nullptr;
  for (size_t i = 0; i < e->server_count(); ++i) {
    PyObject* s = PyUnicode_FromString(e->server(i).c_str());
    if (!s || PyList_Append(list, s) < 0) {
      Py_XDECREF(s);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(s);
  }
  return list;
}

PyObject* EngineRepr(PyObject* self) {
  auto* e = reinterpret_cast<EngineObject*>(self)->engine;
  if (!e) return PyUnicode_FromString("<memkv.Engine (not initialized)>");
  std::string s;
  for (size_t i = 0; i < e->server_count(); ++i) s += (i ? "," : "") + e->server(i);
  return PyUnicode_FromFormat("<memkv.Engine servers=%s transport=%s>", s.c_str(),
                              memkv::TransportName(e->options().transport));
}

PyMethodDef g_engine_methods[] = {
    {"from_environment", EngineFromEnvironment, METH_NOARGS | METH_CLASS,
     "from_environment() -> Engine\n\nAn engine from MEMKV_CONFIG, then MEMKV_SERVERS, "
     "MEMKV_AUTH_KEY and MEMKV_TRANSPORT."},
    {"put", EnginePut, METH_VARARGS,
     "put(key, data) -> None\n\nWrites `data` (any contiguous buffer) as the whole value."},
    {"put_ptr", EnginePutPtr, METH_VARARGS,
     "put_ptr(key, address, size) -> None\n\nWrites `size` bytes at `address` (a tensor's "
     "data_ptr()) as the whole value. The memory must stay valid during the call."},
    {"get", EngineGet, METH_O, "get(key) -> bytes\n\nThe whole value; raises NotFound."},
    {"get_into", EngineGetInto, METH_VARARGS,
     "get_into(key, buffer) -> int\n\nReads the value into a writable contiguous buffer "
     "(bytearray, memoryview, numpy array, SharedBuffer); returns the bytes written."},
    {"get_into_ptr", EngineGetIntoPtr, METH_VARARGS,
     "get_into_ptr(key, address, size) -> int\n\nReads the value into [address, address + "
     "size); returns the bytes written."},
    {"exists", EngineExists, METH_O, "exists(key) -> bool"},
    {"size", EngineSize, METH_O, "size(key) -> int\n\nThe value's size; raises NotFound."},
    {"delete", EngineDelete, METH_O, "delete(key) -> None\n\nRaises NotFound if absent."},
    {"route", EngineRoute, METH_O,
     "route(key) -> int\n\nThe index in `servers` of the server the key goes to (HRW)."},
    {"rename", EngineRename, METH_VARARGS, "rename(src, dst) -> None"},
    {"list", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(EngineList)),
     METH_VARARGS | METH_KEYWORDS,
     "list(prefix='', limit=None) -> list[tuple[str, int]]\n\n(key, size) of the keys that "
     "start with `prefix`, in byte order over all servers, at most `limit`."},
    {"capacity", EngineCapacity, METH_NOARGS,
     "capacity() -> dict\n\ntotal_bytes, used_bytes, keys, max_value_size over all servers."},
    {"batch_put", EngineBatchPut, METH_O,
     "batch_put(items) -> list[int]\n\n`items`: (key, buffer) or (key, address, size). "
     "Returns a code per entry (0: ok)."},
    {"batch_get_into", EngineBatchGetInto, METH_O,
     "batch_get_into(items) -> list[int]\n\n`items`: (key, writable buffer) or (key, address, "
     "size). Per entry: the bytes written (>= 0), or minus its code (< 0)."},
    {"batch_get", EngineBatchGet, METH_O,
     "batch_get(keys) -> list[bytes | None]\n\nThe values; None where an entry failed."},
    {"batch_exists", EngineBatchExists, METH_O,
     "batch_exists(keys) -> list[int]\n\nPer key: the value's size (>= 0), or minus its code "
     "(-1: NotFound)."},
    {"batch_delete", EngineBatchDelete, METH_O,
     "batch_delete(keys) -> list[int]\n\nA code per key (0: ok)."},
    {"_async_batch_put", EngineAsyncBatchPut, METH_VARARGS,
     "_async_batch_put(items, done): done(result or exception) runs on an I/O thread."},
    {"_async_batch_get_into", EngineAsyncBatchGetInto, METH_VARARGS,
     "_async_batch_get_into(items, done)"},
    {"_async_batch_exists", EngineAsyncBatchExists, METH_VARARGS,
     "_async_batch_exists(keys, done)"},
    {"_async_batch_delete", EngineAsyncBatchDelete, METH_VARARGS,
     "_async_batch_delete(keys, done)"},
    {"alloc", EngineAlloc, METH_O,
     "alloc(size) -> SharedBuffer\n\n`size` zeroed bytes of shared memory that move without "
     "copies over the shm rail; freed when the last reference goes."},
    {"register", EngineRegister, METH_O,
     "register(buffer) -> None\n\nRegisters a buffer that puts reuse (not copied); the engine "
     "holds it until unregister()."},
    {"unregister", EngineUnregister, METH_O, "unregister(buffer) -> None"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef g_engine_getset[] = {
    {"servers", EngineServers, nullptr, "The servers, as configured.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// ---- module ----

PyObject* ModuleCodeName(PyObject*, PyObject* arg) {
  const long c = PyLong_AsLong(arg);
  if (c == -1 && PyErr_Occurred()) return nullptr;
  if (c < 0 || c > memkv::kMaxCode) return PyUnicode_FromFormat("Code(%ld)", c);
  return PyUnicode_FromString(memkv::CodeName(static_cast<Code>(c)));
}

// atexit: waits (without the GIL) for async calls in flight, then stops
// completions from touching the interpreter.
PyObject* ModuleShutdown(PyObject*, PyObject*) {
  {
    ReleaseGil nogil;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (g_inflight.load() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  g_finalizing.store(true);
  Py_RETURN_NONE;
}

PyObject* ModuleInflight(PyObject*, PyObject*) { return PyLong_FromLongLong(g_inflight.load()); }

PyMethodDef g_module_methods[] = {
    {"code_name", ModuleCodeName, METH_O, "code_name(code) -> str: 'Ok', 'NotFound', ..."},
    {"_shutdown", ModuleShutdown, METH_NOARGS, "Called at exit."},
    {"_inflight", ModuleInflight, METH_NOARGS, "Async calls in flight (tests)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT, "memkv._memkv",
                        "The memkv client library (libmemkv.so) for Python.", -1, g_module_methods};

}  // namespace

PyMODINIT_FUNC PyInit__memkv() {
  g_shared_buffer_type.tp_name = "memkv.SharedBuffer";
  g_shared_buffer_type.tp_basicsize = sizeof(SharedBufferObject);
  g_shared_buffer_type.tp_dealloc = SharedBufferDealloc;
  g_shared_buffer_type.tp_repr = SharedBufferRepr;
  g_shared_buffer_type.tp_as_buffer = &g_shared_buffer_procs;
  g_shared_buffer_type.tp_as_sequence = &g_shared_buffer_seq;
  g_shared_buffer_type.tp_getset = g_shared_buffer_getset;
  g_shared_buffer_type.tp_flags = Py_TPFLAGS_DEFAULT;
  g_shared_buffer_type.tp_doc =
      "Shared memory from Engine.alloc(size): a writable buffer (memoryview(b), "
      "numpy.frombuffer(b, dtype)) that stays mapped while referenced.";
  if (PyType_Ready(&g_shared_buffer_type) < 0) return nullptr;

  g_engine_type.tp_name = "memkv.Engine";
  g_engine_type.tp_basicsize = sizeof(EngineObject);
  g_engine_type.tp_dealloc = EngineDealloc;
  g_engine_type.tp_repr = EngineRepr;
  g_engine_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
  g_engine_type.tp_doc =
      "Engine(servers, auth_key=None, transport='auto', timeout=30.0, *, connect_timeout=5.0, "
      "io_threads=1, immutable_keys=False)\n\nA client of memkv servers; every call releases "
      "the GIL while it waits.";
  g_engine_type.tp_methods = g_engine_methods;
  g_engine_type.tp_getset = g_engine_getset;
  g_engine_type.tp_new = EngineNew;
  g_engine_type.tp_init = EngineInit;
  if (PyType_Ready(&g_engine_type) < 0) return nullptr;

  PyObject* m = PyModule_Create(&g_module);
  if (!m) return nullptr;
  g_error = PyErr_NewExceptionWithDoc("memkv.Error", "A memkv call failed; `code` says why.",
                                      nullptr, nullptr);
  if (!g_error || PyObject_SetAttrString(g_error, "code", Py_None) < 0 ||
      PyModule_AddObjectRef(m, "Error", g_error) < 0)
    return nullptr;
  for (int c = 1; c <= memkv::kMaxCode; ++c) {
    const char* name = memkv::CodeName(static_cast<Code>(c));
    const std::string qual = std::string("memkv.") + name;
    PyObject* cls = PyErr_NewException(qual.c_str(), g_error, nullptr);
    if (!cls) return nullptr;
    PyObject* code = PyLong_FromLong(c);
    if (!code || PyObject_SetAttrString(cls, "code", code) < 0) return nullptr;
    Py_DECREF(code);
    g_errors[c] = cls;
    if (PyModule_AddObjectRef(m, name, cls) < 0) return nullptr;
  }
  if (PyModule_AddObjectRef(m, "Engine", reinterpret_cast<PyObject*>(&g_engine_type)) < 0 ||
      PyModule_AddObjectRef(m, "SharedBuffer", reinterpret_cast<PyObject*>(&g_shared_buffer_type)) <
          0 ||
      PyModule_AddIntConstant(m, "MAX_CODE", memkv::kMaxCode) < 0)
    return nullptr;
  return m;
}
