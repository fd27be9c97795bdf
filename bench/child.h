#pragma once
// Child processes of memkv-bench (a `memkv server`, redis-server, iperf3)
// and the clean-up that must happen however the bench ends: every live
// child is registered, and on SIGINT or SIGTERM a handler kills them all,
// removes the registered files and directories and re-raises the signal.
// Normal and error paths stop children through ChildProcess's destructor.
//
// Thread-safety: spawn and stop children from one thread (the bench's main
// thread); the signal handler reads the registry without locks (fixed-size
// arrays of pids and paths written before the child starts).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace memkv::bench {

// Installs the SIGINT/SIGTERM handler (once; later calls do nothing).
void InstallCleanupHandler();
// A file or an empty directory the handler removes (unlink, then rmdir).
// Removed from the list again by ForgetPath once the bench cleans it itself.
void RegisterPath(const std::string& path);
void ForgetPath(const std::string& path);

// Whether `name` is an executable on PATH (or a path that is one).
bool OnPath(const std::string& name);

// A loopback TCP port nobody listens on now (bound once, then released).
uint16_t FreePort();
// A port p free on loopback with p + 1 free too (a memkv server's data and
// admin ports); 0 when none was found.
uint16_t FreePortPair();
// Whether something accepts TCP connections on 127.0.0.1:port.
bool PortAccepts(uint16_t port);

class ChildProcess {
 public:
  ChildProcess() = default;
  // Starts argv[0] (looked up on PATH) with stdin from /dev/null and stdout
  // and stderr appended to `log` (/dev/null when empty), in `cwd` when given.
  static std::optional<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                           const std::string& log, std::string& error,
                                           const std::string& cwd = {});
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ~ChildProcess() { Stop(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Whether it has exited (then reaped; `status` as waitpid gave it).
  bool Exited(int* status = nullptr);
  // Waits up to `timeout` for it to exit; true when it did.
  bool Wait(std::chrono::milliseconds timeout, int* status = nullptr);
  // SIGTERM, then SIGKILL after `grace`; reaps it. Nothing when not running.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

 private:
  pid_t pid_ = -1;
};

// What a child run to its end printed.
struct ChildOutput {
  int status = -1;  // as waitpid reports it
  std::string out, err;
  std::string spawn_error;  // set when it could not start (not on PATH, ...)
};

// Runs argv (looked up on PATH) to its end with stdout and stderr captured
// and stdin from /dev/null. `tick` is called about five times a second
// while it runs (progress display). Registered for the signal handler while
// it runs.
ChildOutput RunChild(const std::vector<std::string>& argv,
                     const std::function<void()>& tick = {});

}  // namespace memkv::bench
