# Shared by the e2e shell tests (sourced, not run): named checks with a
# tally, and a `memkv server` on its embedded default on a random loopback
# port pair. The sourcing script sets `memkv` (the binary, an absolute path)
# and `dir` (its scratch directory, the working directory).

# memkv_start_server, shared with the scripts.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/server.sh"

failures=0
passed=0
check() {  # check NAME COMMAND...: runs COMMAND and counts it under NAME
  local name=$1
  shift
  if "$@"; then echo "ok: $name"; passed=$((passed + 1)); else echo "FAILED: $name"; failures=$((failures + 1)); fi
}

# Prints the tally and returns non-zero when a check failed.
finish() {
  echo "$passed passed, $failures failed${1:+; $1}"
  [ "$failures" -eq 0 ]
}

# Starts `memkv server` on the embedded default (two file drives under
# ./var/memkv) on a random port pair, retrying when the port is taken. Sets
# server_pid, port and admin (http://127.0.0.1:PORT+1); admin is empty when
# the server never answered. The server's stderr goes to server.err.
server_pid=
port=
admin=
start_server() {
  memkv_start_server server.err "$memkv" -- --unix-socket "$dir/memkv.sock" || return 1
  server_pid=$memkv_server_pid
  port=${memkv_server_address##*:}
  admin="http://127.0.0.1:$((port + 1))"
}

stop_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  server_pid=
}
