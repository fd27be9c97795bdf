// Put and get one value through the installed C++ Engine (memkv/engine.h),
// built with find_package(memkv) by tests/packaging/install_test.sh.
#include <cstdio>
#include <string>
#include <vector>

#include <memkv/engine.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  memkv::EngineOptions o;
  o.servers = {argv[1]};
  o.transport = memkv::Transport::kTcp;
  auto engine = memkv::Engine::Create(o);
  if (!engine) {
    std::fprintf(stderr, "create: %s\n", engine.error().message.c_str());
    return 1;
  }
  const std::string value = "from find_package(memkv)";
  const memkv::PutEntry put{"consumer/cmake", value.data(), value.size()};
  if (auto r = engine->BatchPut({&put, 1}); !r.ok()) {
    std::fprintf(stderr, "put: %s\n", memkv::CodeName(r.entries.at(0)));
    return 1;
  }
  std::vector<char> buf(64);
  const memkv::GetEntry get{"consumer/cmake", buf.data(), buf.size()};
  auto r = engine->BatchGet({&get, 1});
  if (!r.ok() || std::string(buf.data(), r.entries[0].length) != value) {
    std::fprintf(stderr, "get: %s\n", memkv::CodeName(r.entries.at(0).status));
    return 1;
  }
  std::printf("cmake consumer: ok\n");
  return 0;
}
