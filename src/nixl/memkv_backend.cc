// The NIXL backend MEMKV (memkv_backend.h).

#include "nixl/memkv_backend.h"

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace memkv::nixl {

namespace {

// The plugin-only option; the others are the client config's fields.
constexpr const char* kOptimize = "optimize";
constexpr const char* kClientFields[] = {"servers",       "auth_key",        "transport",
                                         "timeout",       "connect_timeout", "io_threads",
                                         "immutable_keys"};

void Log(const std::string& what) { std::fprintf(stderr, "memkv nixl: %s\n", what.c_str()); }

// A registration: an object (a value's key) or a range of local memory.
struct Registered : nixlBackendMD {
  Registered() : nixlBackendMD(true) {}
  bool object = false;
  std::string key;      // object
  MemoryHandle handle;  // host memory (when registered with the client)
  MemoryKind kind = MemoryKind::kHost;
};

nixl_status_t StatusOf(Code c) {
  switch (c) {
    case Code::kOk:
      return NIXL_SUCCESS;
    case Code::kNotFound:
      return NIXL_ERR_NOT_FOUND;
    case Code::kInvalidArgument:
    case Code::kTooLarge:
    case Code::kTooManyEntries:
    case Code::kBufferTooSmall:
    case Code::kRangeOutOfBounds:
      return NIXL_ERR_INVALID_PARAM;
    case Code::kUnsupported:
      return NIXL_ERR_NOT_SUPPORTED;
    default:
      return NIXL_ERR_BACKEND;
  }
}

// What prepXfer works out once; every post of the request reuses it.
struct Prepared {
  explicit Prepared(PlanOp op, bool optimize) : plan(op, optimize) {}
  BatchPlan plan;
  // One batch per server: the chunks (reads) or groups (writes) it sends.
  struct Batch {
    size_t server = 0;
    std::vector<uint32_t> items;
  };
  std::vector<Batch> batches;
  // Per item (chunk for reads, group for writes): where its wire bytes
  // land or come from in the staging memory, or UINT64_MAX when in place.
  std::vector<uint64_t> staging_at;
  std::vector<uint64_t> value_size;  // writes: per group
  uint64_t staging_bytes = 0;
  uint64_t nonempty = 0;  // descriptors that move bytes
};

// One post of a request: shared with its completions.
struct Flight {
  std::shared_ptr<const Prepared> prepared;
  std::shared_ptr<std::byte[]> staging;  // the request's, held until the replies
  std::atomic<size_t> pending{0};        // batches not yet answered
  std::atomic<uint64_t> remaining{0};    // descriptors not yet complete
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;                    // guarded by mu
  nixl_status_t status = NIXL_SUCCESS;  // guarded by mu: the first error
  std::string error;                    // guarded by mu

  void Fail(nixl_status_t s, std::string why) {
    std::lock_guard lock(mu);
    if (status == NIXL_SUCCESS) {
      status = s;
      error = std::move(why);
    }
  }
  void BatchDone() {
    if (pending.fetch_sub(1) != 1) return;
    std::lock_guard lock(mu);
    if (status == NIXL_SUCCESS && remaining.load() != 0) {
      status = NIXL_ERR_UNKNOWN;
      error = "descriptor accounting: " + std::to_string(remaining.load()) + " left";
    }
    if (status != NIXL_SUCCESS) Log("transfer failed: " + error);
    done = true;
    cv.notify_all();
  }
};

struct Request : nixlBackendReqH {
  std::shared_ptr<const Prepared> prepared;
  std::shared_ptr<Flight> flight;  // the latest post
  // Staging memory, allocated at the first post and reused by the next
  // ones (a request is never posted twice at once): a fresh allocation per
  // post would fault its pages in every time.
  std::shared_ptr<std::byte[]> staging;
  // The staging memory's registration with the client (a put from
  // registered memory is not copied again), ended at release.
  MemoryHandle staging_registration;
};

}  // namespace

WireCounters& Counters() {
  static WireCounters counters;
  return counters;
}

nixl_b_params_t MemkvBackend::DefaultOptions() {
  nixl_b_params_t p;
  for (const char* f : kClientFields) p[f] = "";
  p[kOptimize] = "1";
  return p;
}

nixl_mem_list_t MemkvBackend::SupportedMems() {
  nixl_mem_list_t m = {DRAM_SEG, OBJ_SEG};
  if (GetDeviceCopy() != nullptr) m.push_back(VRAM_SEG);
  return m;
}

MemkvBackend::MemkvBackend(const nixlBackendInitParams* init) : nixlBackendEngine(init) {
  // The client library's environment first (MEMKV_CONFIG, MEMKV_SERVERS,
  // ...), then the backend's parameters over it, field by field.
  EngineOptions options;
  auto env = EngineOptions::FromEnvironment();
  std::string env_error;
  if (env)
    options = std::move(*env);
  else
    env_error = env.error().message;
  std::string yaml;
  std::vector<std::string> given;
  for (const char* f : kClientFields) {
    std::string v;
    if (getInitParam(f, v) == NIXL_SUCCESS && !v.empty()) {
      yaml += std::string(f) + ": " + v + "\n";
      given.emplace_back(f);
    }
  }
  auto params = EngineOptions::FromYaml(yaml, "MEMKV backend parameters");
  if (!params) {
    Log(params.error().message);
    initErr = true;
    return;
  }
  for (const std::string& f : given) {
    if (f == "servers") options.servers = params->servers;
    if (f == "auth_key") options.auth_key = params->auth_key;
    if (f == "transport") options.transport = params->transport;
    if (f == "timeout") options.timeout = params->timeout;
    if (f == "connect_timeout") options.connect_timeout = params->connect_timeout;
    if (f == "io_threads") options.io_threads = params->io_threads;
    if (f == "immutable_keys") options.immutable_keys = params->immutable_keys;
  }
  std::string opt;
  if (getInitParam(kOptimize, opt) == NIXL_SUCCESS && !opt.empty()) {
    if (opt != "0" && opt != "1") {
      Log("MEMKV backend parameters: optimize: '" + opt + "' is not 0 or 1");
      initErr = true;
      return;
    }
    optimize_ = opt == "1";
  }
  if (options.servers.empty()) {
    Log("no memkv server: set the backend parameter 'servers' (host:port,...) or MEMKV_SERVERS" +
        (env_error.empty() ? std::string() : " (" + env_error + ")"));
    initErr = true;
    return;
  }
  auto engine = Engine::Create(std::move(options));
  if (!engine) {
    Log(engine.error().message);
    initErr = true;
    return;
  }
  engine_.emplace(std::move(*engine));
}

MemkvBackend::~MemkvBackend() = default;

nixl_mem_list_t MemkvBackend::getSupportedMems() const { return SupportedMems(); }

nixl_status_t MemkvBackend::registerMem(const nixlBlobDesc& mem, const nixl_mem_t& nixl_mem,
                                        nixlBackendMD*& out) {
  auto md = std::make_unique<Registered>();
  switch (nixl_mem) {
    case OBJ_SEG:
      md->object = true;
      md->key = mem.metaInfo.empty() ? std::to_string(mem.devId) : std::string(mem.metaInfo);
      break;
    case DRAM_SEG:
      if (mem.len > 0) {
        auto h = engine_->RegisterMemory(reinterpret_cast<void*>(mem.addr), mem.len);
        if (!h) {
          Log(h.error().message);
          return StatusOf(h.error().code);
        }
        md->handle = *h;
        std::lock_guard lock(mu_);
        ++registered_[h->id()];
      }
      break;
    case VRAM_SEG:
      if (GetDeviceCopy() == nullptr) return NIXL_ERR_NOT_SUPPORTED;
      md->kind = MemoryKind::kDevice;  // staged through host memory on tcp and shm
      break;
    default:
      return NIXL_ERR_NOT_SUPPORTED;
  }
  out = md.release();
  return NIXL_SUCCESS;
}

nixl_status_t MemkvBackend::deregisterMem(nixlBackendMD* meta) {
  std::unique_ptr<Registered> md(static_cast<Registered*>(meta));
  if (md && md->handle) {
    bool last = false;
    {
      std::lock_guard lock(mu_);
      auto it = registered_.find(md->handle.id());
      if (it != registered_.end() && --it->second == 0) {
        registered_.erase(it);
        last = true;
      }
    }
    if (last) engine_->UnregisterMemory(md->handle);
  }
  return NIXL_SUCCESS;
}

nixl_status_t MemkvBackend::loadLocalMD(nixlBackendMD* input, nixlBackendMD*& output) {
  output = input;  // the same registration: nothing to load
  return NIXL_SUCCESS;
}

nixl_status_t MemkvBackend::prepXfer(const nixl_xfer_op_t& op, const nixl_meta_dlist_t& local,
                                     const nixl_meta_dlist_t& remote,
                                     const std::string& remote_agent, nixlBackendReqH*& handle,
                                     const nixl_opt_b_args_t*) const {
  if (remote_agent != localAgent) {
    Log("transfers are local only (agent '" + localAgent + "', not '" + remote_agent + "')");
    return NIXL_ERR_NOT_SUPPORTED;
  }
  const nixl_mem_t lt = local.getType(), rt = remote.getType();
  if (rt != OBJ_SEG || !(lt == DRAM_SEG || (lt == VRAM_SEG && GetDeviceCopy() != nullptr))) {
    Log("transfers move between OBJ_SEG and DRAM_SEG (or VRAM_SEG with CUDA)");
    return NIXL_ERR_NOT_SUPPORTED;
  }
  if (local.descCount() != remote.descCount()) return NIXL_ERR_INVALID_PARAM;
  const PlanOp pop = op == NIXL_READ ? PlanOp::kRead : PlanOp::kWrite;
  auto p = std::make_shared<Prepared>(pop, optimize_);
  const MemoryKind kind = lt == VRAM_SEG ? MemoryKind::kDevice : MemoryKind::kHost;
  for (int i = 0; i < remote.descCount(); ++i) {
    const nixlMetaDesc& r = remote[i];
    const nixlMetaDesc& l = local[i];
    if (r.len != l.len) return NIXL_ERR_INVALID_PARAM;
    const auto* md = static_cast<const Registered*>(r.metadataP);
    if (md == nullptr || !md->object) return NIXL_ERR_INVALID_PARAM;
    p->plan.Add(engine_->RouteKey(md->key), md->key, r.addr, reinterpret_cast<void*>(l.addr), l.len,
                kind);
    p->nonempty += l.len != 0;
  }
  p->plan.Finish();
  const BatchPlan& plan = p->plan;
  std::map<size_t, size_t> batch_of;  // server -> index in batches
  auto add = [&](size_t server, uint32_t item) {
    auto [it, fresh] = batch_of.emplace(server, p->batches.size());
    if (fresh) p->batches.push_back({server, {}});
    p->batches[it->second].items.push_back(item);
  };
  if (pop == PlanOp::kRead) {
    p->staging_at.assign(plan.chunks().size(), UINT64_MAX);
    for (uint32_t c = 0; c < plan.chunks().size(); ++c) {
      const PlanChunk& ch = plan.chunks()[c];
      if (ch.target == nullptr) {
        p->staging_at[c] = p->staging_bytes;
        p->staging_bytes += ch.length;
      }
      add(plan.groups()[ch.group].server, c);
    }
  } else {
    // A put writes a whole value: a group of one host chunk from offset 0
    // goes from its source; any other is gathered into staging memory.
    p->staging_at.assign(plan.groups().size(), UINT64_MAX);
    p->value_size.assign(plan.groups().size(), 0);
    for (uint32_t g = 0; g < plan.groups().size(); ++g) {
      const PlanGroup& gr = plan.groups()[g];
      auto size = plan.WholeValueSize(gr);
      if (!size) {
        Log(size.error().message);
        return NIXL_ERR_INVALID_PARAM;
      }
      p->value_size[g] = *size;
      const PlanChunk& first = plan.chunks()[gr.first_chunk];
      if (!(gr.chunk_count == 1 && first.offset == 0 && first.target_kind == MemoryKind::kHost)) {
        p->staging_at[g] = p->staging_bytes;
        p->staging_bytes += *size;
      }
      add(gr.server, g);
    }
  }
  auto req = std::make_unique<Request>();
  req->prepared = std::move(p);
  handle = req.release();
  return NIXL_SUCCESS;
}

nixl_status_t MemkvBackend::postXfer(const nixl_xfer_op_t&, const nixl_meta_dlist_t&,
                                     const nixl_meta_dlist_t&, const std::string&,
                                     nixlBackendReqH*& handle, const nixl_opt_b_args_t*) const {
  auto* req = static_cast<Request*>(handle);
  if (req->flight) {
    std::lock_guard lock(req->flight->mu);
    if (!req->flight->done) return NIXL_ERR_REPOST_ACTIVE;
  }
  auto f = std::make_shared<Flight>();
  const Prepared& p = *req->prepared;
  const BatchPlan& plan = p.plan;
  f->prepared = req->prepared;
  if (p.staging_bytes && !req->staging) {
    req->staging = std::make_shared_for_overwrite<std::byte[]>(p.staging_bytes);
    // Kept only when it is a registration of its own (not one of the
    // caller's that happened to cover it), so that releasing ends only it.
    auto h = engine_->RegisterMemory(req->staging.get(), p.staging_bytes);
    if (h && h->data() == req->staging.get() && h->size() == p.staging_bytes)
      req->staging_registration = *h;
  }
  f->staging = req->staging;
  f->remaining = p.nonempty;
  const bool read = plan.op() == PlanOp::kRead;
  if (!read) {  // gather before anything is sent
    for (uint32_t g = 0; g < plan.groups().size(); ++g) {
      if (p.staging_at[g] == UINT64_MAX) continue;
      if (auto o = GatherGroup(plan, plan.groups()[g], f->staging.get() + p.staging_at[g],
                               p.value_size[g]);
          !o) {
        Log(o.message);
        return StatusOf(o.code);
      }
    }
  }
  req->flight = f;
  if (p.batches.empty()) {
    std::lock_guard lock(f->mu);
    f->done = true;
    return NIXL_SUCCESS;
  }
  f->pending = p.batches.size();
  for (const Prepared::Batch& b : p.batches) {
    std::vector<XferEntry> entries(b.items.size());
    uint64_t bytes = 0;
    for (size_t i = 0; i < b.items.size(); ++i) {
      const uint32_t it = b.items[i];
      XferEntry& e = entries[i];
      if (read) {
        const PlanChunk& c = plan.chunks()[it];
        e.key = plan.groups()[c.group].key;
        e.buffer = p.staging_at[it] == UINT64_MAX ? c.target : f->staging.get() + p.staging_at[it];
        e.size = c.length;
        e.offset = c.offset;
        e.length = c.length;
        bytes += c.length;
      } else {
        const PlanGroup& g = plan.groups()[it];
        e.key = g.key;
        e.buffer = p.staging_at[it] == UINT64_MAX ? plan.chunks()[g.first_chunk].target
                                                  : f->staging.get() + p.staging_at[it];
        e.size = p.value_size[it];
        bytes += e.size;
      }
    }
    Counters().ops += entries.size();
    Counters().bytes += bytes;
    engine_->AsyncBatchXferForServer(
        b.server, read ? XferOp::kGet : XferOp::kPut, entries, [f, &b, read](GetResults r) {
          const Prepared& p = *f->prepared;
          const BatchPlan& plan = p.plan;
          for (size_t i = 0; i < b.items.size(); ++i) {
            const uint32_t it = b.items[i];
            const GetResult* res = i < r.entries.size() ? &r.entries[i] : nullptr;
            const Code code =
                res ? res->status : (r.outcome.ok() ? Code::kInternal : r.outcome.code);
            const std::string& key =
                read ? plan.groups()[plan.chunks()[it].group].key : plan.groups()[it].key;
            if (code != Code::kOk) {
              f->Fail(StatusOf(code),
                      "key '" + key + "': " + CodeName(code) +
                          (r.outcome.message.empty() ? "" : ": " + r.outcome.message));
              continue;
            }
            if (read) {
              const PlanChunk& c = plan.chunks()[it];
              if (res->length != c.length) {
                f->Fail(NIXL_ERR_INVALID_PARAM, "key '" + key + "': the value ends before byte " +
                                                    std::to_string(c.offset + c.length));
                continue;
              }
              const std::byte* wire =
                  p.staging_at[it] == UINT64_MAX ? c.target : f->staging.get() + p.staging_at[it];
              if (auto o = ScatterChunk(plan, c, wire); !o) {
                f->Fail(StatusOf(o.code), o.message);
                continue;
              }
              f->remaining -= c.descriptor_count;
            } else {
              const PlanGroup& g = plan.groups()[it];
              for (const PlanChunk& c : plan.chunks().subspan(g.first_chunk, g.chunk_count))
                f->remaining -= c.descriptor_count;
            }
          }
          f->BatchDone();
        });
  }
  return NIXL_IN_PROG;
}

nixl_status_t MemkvBackend::checkXfer(nixlBackendReqH* handle) const {
  auto* req = static_cast<Request*>(handle);
  if (!req->flight) return NIXL_ERR_NOT_POSTED;
  std::lock_guard lock(req->flight->mu);
  return req->flight->done ? req->flight->status : NIXL_IN_PROG;
}

nixl_status_t MemkvBackend::releaseReqH(nixlBackendReqH* handle) const {
  std::unique_ptr<Request> req(static_cast<Request*>(handle));
  if (req->flight) {
    // The client cannot take back a batch it sent: wait for its replies so
    // that no destination of the caller is written after the release.
    std::unique_lock lock(req->flight->mu);
    req->flight->cv.wait(lock, [&] { return req->flight->done; });
  }
  if (req->staging_registration) engine_->UnregisterMemory(req->staging_registration);
  return NIXL_SUCCESS;
}

}  // namespace memkv::nixl
