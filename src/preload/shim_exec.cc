// libmemkv_preload.so: exec. A descriptor of ours that survives exec (a
// shell's `cmd > /memkv/file` opens the file, then execs cmd) would be a bare
// memfd to the new program, and what it wrote would be lost. So every exec
// first settles those files and passes them on in MEMKV_PRELOAD_INHERIT,
// and the shim in the new program takes them over (shim.cc).
#include <spawn.h>
#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <string>
#include <vector>

#include "preload/shim.h"

extern char** environ;

using namespace memkv::preload;

namespace {

// envp with the shim's entries set (older ones dropped). `entries` owns
// the added strings.
std::vector<char*> EnvWith(char* const* envp, std::vector<std::string>& entries) {
  std::vector<char*> out;
  auto ours = [](const char* e) {
    return std::strncmp(e, "MEMKV_PRELOAD_INHERIT=", 22) == 0 ||
           std::strncmp(e, "MEMKV_PRELOAD_CWD=", 18) == 0;
  };
  for (char* const* e = envp; e && *e; ++e)
    if (!ours(*e)) out.push_back(*e);
  for (std::string& entry : entries) out.push_back(entry.data());
  out.push_back(nullptr);
  return out;
}

std::vector<char*> ArgsOf(const char* first, va_list ap, char*** envp) {
  std::vector<char*> args{const_cast<char*>(first)};
  while (char* a = va_arg(ap, char*)) args.push_back(a);
  args.push_back(nullptr);
  if (envp) *envp = va_arg(ap, char**);
  return args;
}

bool Active() { return Enabled() && !Inside(); }

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

int execve(const char* path, char* const argv[], char* const envp[]) {
  if (!Active()) return MEMKV_REAL(execve)(path, argv, envp);
  std::vector<std::string> entry = ExecEnvironment();
  std::vector<char*> env = EnvWith(envp, entry);
  return MEMKV_REAL(execve)(path, argv, env.data());
}

int execvpe(const char* file, char* const argv[], char* const envp[]) {
  if (!Active()) return MEMKV_REAL(execvpe)(file, argv, envp);
  std::vector<std::string> entry = ExecEnvironment();
  std::vector<char*> env = EnvWith(envp, entry);
  return MEMKV_REAL(execvpe)(file, argv, env.data());
}

int execv(const char* path, char* const argv[]) { return execve(path, argv, environ); }
int execvp(const char* file, char* const argv[]) { return execvpe(file, argv, environ); }

int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> args = ArgsOf(arg, ap, nullptr);
  va_end(ap);
  return execve(path, args.data(), environ);
}
int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> args = ArgsOf(arg, ap, nullptr);
  va_end(ap);
  return execvpe(file, args.data(), environ);
}
int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  char** envp = nullptr;
  std::vector<char*> args = ArgsOf(arg, ap, &envp);
  va_end(ap);
  return execve(path, args.data(), envp);
}

int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  if (!Active()) return MEMKV_REAL(posix_spawn)(pid, path, actions, attr, argv, envp);
  std::vector<std::string> entry = ExecEnvironment();
  std::vector<char*> env = EnvWith(envp, entry);
  return MEMKV_REAL(posix_spawn)(pid, path, actions, attr, argv, env.data());
}
int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                 const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  if (!Active()) return MEMKV_REAL(posix_spawnp)(pid, file, actions, attr, argv, envp);
  std::vector<std::string> entry = ExecEnvironment();
  std::vector<char*> env = EnvWith(envp, entry);
  return MEMKV_REAL(posix_spawnp)(pid, file, actions, attr, argv, env.data());
}

}  // extern "C"
#pragma GCC visibility pop
