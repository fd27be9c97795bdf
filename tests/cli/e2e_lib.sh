# Shared by the e2e shell tests (sourced, not run): named checks with a
# tally, and a `memkv server` on its embedded default on a random loopback
# port pair. The sourcing script sets `memkv` (the binary, an absolute path)
# and `dir` (its scratch directory, the working directory).

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
  for _ in 1 2 3 4 5; do
    port=$((20000 + (RANDOM % 20000) * 2))
    "$memkv" --log-level warn server --address "127.0.0.1:$port" --unix-socket "$dir/memkv.sock" \
      2>server.err &
    server_pid=$!
    for _ in $(seq 1 100); do
      if "$memkv" admin health --server "127.0.0.1:$((port + 1))" >/dev/null 2>&1; then
        admin="http://127.0.0.1:$((port + 1))"
        return 0
      fi
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
  done
  return 1
}

stop_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  server_pid=
}
