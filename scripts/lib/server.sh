# Sourced by the scripts and shell tests that run a memkv server of their own
# on loopback (scripts/package.sh, tests/packaging/install_test.sh,
# tests/python/wheel_test.sh).
#
#   memkv_start_server ERR_FILE MEMKV_COMMAND... -- SERVER_ARGS...
#
# Starts `MEMKV_COMMAND... --log-level warn server --address 127.0.0.1:P
# SERVER_ARGS...` on a random even port P (its admin API on P + 1), its
# stderr into ERR_FILE, and waits until `admin health` answers (30 s at
# most: under qemu-user a start is slow). A port taken by someone else makes
# it try another, five in all. Sets `memkv_server_pid` and
# `memkv_server_address` (127.0.0.1:P); returns 1 with both empty when no
# server started.
memkv_start_server() {
  local err=$1 p
  shift
  local cmd=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    cmd+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  memkv_server_pid=
  memkv_server_address=
  for _ in 1 2 3 4 5; do
    p=$((20000 + (RANDOM % 20000) * 2))
    "${cmd[@]}" --log-level warn server --address "127.0.0.1:$p" "$@" 2>"$err" &
    memkv_server_pid=$!
    for _ in $(seq 1 300); do
      if "${cmd[@]}" admin health --server "127.0.0.1:$((p + 1))" >/dev/null 2>&1; then
        memkv_server_address=127.0.0.1:$p
        return 0
      fi
      kill -0 "$memkv_server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$memkv_server_pid" 2>/dev/null
    wait "$memkv_server_pid" 2>/dev/null
    memkv_server_pid=
  done
  return 1
}
