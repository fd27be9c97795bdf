#!/usr/bin/env bash
# e2e: `memkv admin` against a running `memkv server`, as an operator runs
# it. Usage: admin_test.sh MEMKV
set -u
memkv=$(realpath "$1")
source "$(dirname "$0")/e2e_lib.sh"
dir=$(mktemp -d)
trap 'stop_server; rm -rf "$dir"' EXIT
cd "$dir"

start_server
check "the server's admin API answers" test -n "$admin"

"$memkv" admin status --json --server "$admin" >status.json 2>status.err
check "admin status --json exits 0 for a healthy server" test $? -eq 0
check "the JSON names the server" grep -q "\"server\": \"$admin\"" status.json
check "the JSON has the server's status" grep -q '"status": "healthy"' status.json
check "the JSON has storage totals" grep -q '"raw_bytes_total": 2147483648' status.json
check "the JSON has both drives" grep -q '"name": ".*drive1.img"' status.json

"$memkv" admin status --server "$admin" >status.txt 2>&1
check "admin status prints a table" grep -q '^SERVER  *STATUS  *DRIVES' status.txt
check "the table has the server's row" grep -q "^$admin  *healthy  *2/2 online" status.txt

"$memkv" admin health --server "$admin" >health.txt
check "admin health prints the drives online" grep -Eq "^$admin +healthy +2 +0 +2 +inactive" health.txt
"$memkv" admin health --json --server "$admin" >health.json
check "admin health --json has drives_online" grep -q '"drives_online": 2' health.json

"$memkv" admin status --json --server "$admin" --server 127.0.0.1:1 >both.json 2>both.err
check "an unreachable server makes the exit status non-zero" test $? -ne 0
check "the reachable server is still reported" grep -q '"status": "healthy"' both.json
check "the unreachable one is marked" grep -q '"reachable": false' both.json
"$memkv" admin health --server 127.0.0.1:1 >/dev/null 2>down.err
check "health of an unreachable server fails" test $? -ne 0
check "the error names the server" grep -q "127.0.0.1:1" down.err

admin_port=${admin##*:}
"$memkv" admin health --server "http://localhost:$admin_port" >byname.txt 2>&1
check "admin health by localhost works" grep -Eq "healthy +2 +0 +2" byname.txt

if command -v curl >/dev/null; then
  # The issue's reproduction: a web page's POST (DNS rebinding) is refused.
  code=$(curl -s -o reset.json -w '%{http_code}' -X POST -H 'Origin: http://evil.example' \
    -H "Host: evil.example:$admin_port" "$admin/v1/drives/1/reset")
  check "a foreign Host cannot reset a drive" test "$code" = 403
  check "the refusal names admin.allowed_hosts" grep -q "admin.allowed_hosts" reset.json
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: http://evil.example" \
    "$admin/v1/drives/1/reset")
  check "a foreign Origin cannot reset a drive" test "$code" = 403
  check "curl from a shell reads" curl -sf "$admin/v1/health" -o /dev/null
fi

"$memkv" --help >help.txt
check "--help lists admin" grep -q "admin" help.txt

kill -TERM "$server_pid"
wait "$server_pid"
check "the server stops cleanly" test $? -eq 0
server_pid=

finish
