#!/usr/bin/env bash
# e2e: memkv over a real network. Three `memkv server`s and the client
# (memkv-bench --tier fan-in) each run in their own network namespace; the
# client's namespace has one veth pair to each server's:
#
#   client ns  vc1 198.18.1.1/24 <-> vs 198.18.1.2/24  server ns s1
#              vc2 198.18.2.1/24 <-> vs 198.18.2.2/24  server ns s2
#              vc3 198.18.3.1/24 <-> vs 198.18.3.2/24  server ns s3
#
# (a) loss and bandwidth: 0.1 % random loss on every INPUT of the client and
#     of s1 (iptables' statistic match; this kernel has no netem) and a
#     1 Gbit/s tbf on both ends of vc1: the fan-in against s1 gets 100 %
#     success with every byte checked.
# (b) fail-over: the fan-in routes keys by HRW over s1, s2, s3; s2's veth
#     is set down for a while. Only s2's keys fail (by the deadline, as
#     Timeout or Unavailable), s1's and s3's keep working throughout, and
#     s2's work again after its link comes back up. The time from the cut
#     to the first failed reply and from link-up to the first good batch
#     are printed (figures, not assertions).
# (c) the rdma rail between namespaces: a fourth server in s3's namespace
#     with rdma.provider=ofi (libfabric's tcp provider over vc3): a 16 MiB
#     value put and got with `memkv kv --transport rdma`, the bytes compared
#     and the server's rdma counters checked, exists and rm; the fan-in over
#     rdma, every byte checked, its value bytes counted on the rdma rail and
#     none on tcp; a fan-in SIGKILLed mid-run, its sessions and rdma peers
#     let go.
#
# Needs root, ip (iproute2), iptables and tc; exits 77 (skipped) without
# them. Cleans up its namespaces (and with them their veths and iptables
# rules) and processes on any exit. Every wait is bounded.
# Usage: netns_test.sh MEMKV MEMKV_BENCH
set -u
memkv=$(realpath "$1")
bench=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: needs root (network namespaces, veth, iptables, tc)"
  exit 77
fi
for tool in ip iptables tc; do
  if ! command -v "$tool" >/dev/null; then
    echo "skipped: $tool is not installed (scripts/deps.sh iproute2 iptables)"
    exit 77
  fi
done

tag="mkv$$"
ns_c="$tag-c"
ns_s=("$tag-s1" "$tag-s2" "$tag-s3")
dir=$(mktemp -d)
pids=()

# `nsenter --net` rather than `ip netns exec` or `ip -n`/`tc -n`: those also
# remount / and /sys, which fails in a chroot (a fresh root made by
# tools/fresh-root.sh) and is not needed here.
in_ns() {  # in_ns NAMESPACE COMMAND...
  local ns=$1
  shift
  nsenter --net="/run/netns/$ns" "$@"
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for ns in "$ns_c" "${ns_s[@]}"; do
    if ip netns list | grep -qw "$ns"; then
      nsenter --net="/run/netns/$ns" iptables -F INPUT 2>/dev/null
      ip netns del "$ns" 2>/dev/null
    fi
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$dir"

source "$here/../cli/e2e_lib.sh"

# ---- the network
if ! ip netns add "$ns_c"; then
  echo "skipped: cannot create a network namespace here"
  exit 77
fi
in_ns "$ns_c" ip link set lo up
for i in 1 2 3; do
  s=${ns_s[$((i - 1))]}
  ip netns add "$s"
  in_ns "$s" ip link set lo up
  in_ns "$ns_c" ip link add "vc$i" type veth peer name vs netns "$s"
  in_ns "$ns_c" ip addr add "198.18.$i.1/24" dev "vc$i"
  in_ns "$s" ip addr add "198.18.$i.2/24" dev vs
  in_ns "$ns_c" ip link set "vc$i" up
  in_ns "$s" ip link set vs up
done
# ---- the servers, one per namespace, with an auth key (non-loopback)
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
servers=
for i in 1 2 3; do
  s=${ns_s[$((i - 1))]}
  nsenter --net="/run/netns/$s" "$memkv" --log-level warn server --mode memory --memory 1GiB --threads 1 \
    --address "198.18.$i.2:9900" --unix-socket "$dir/s$i.sock" \
    --set "network.auth_key=$key" 2>"s$i.err" &
  pids+=($!)
  servers+="${servers:+,}198.18.$i.2:9900"
done
up=0
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    if nsenter --net="/run/netns/$ns_c" "$memkv" admin health --server "198.18.$i.2:9901" >/dev/null 2>&1; then
      up=$((up + 1))
      break
    fi
    sleep 0.1
  done
done
check "three servers answer across the veths" test "$up" -eq 3

# ---- (a) 0.1 % loss and 1 Gbit/s
# One TCP segment per packet (no segmentation offload on the veths), so the
# loss applies to wire-sized packets, not to 64 KiB super-packets.
in_ns "$ns_c" ip link set vc1 gso_max_segs 1 gso_max_size 1500
in_ns "${ns_s[0]}" ip link set vs gso_max_segs 1 gso_max_size 1500
for ns in "$ns_c" "${ns_s[0]}"; do
  nsenter --net="/run/netns/$ns" iptables -A INPUT -m statistic --mode random --probability 0.001 -j DROP
done
in_ns "$ns_c" tc qdisc add dev vc1 root tbf rate 1gbit burst 256kb latency 50ms
in_ns "${ns_s[0]}" tc qdisc add dev vs root tbf rate 1gbit burst 256kb latency 50ms

timeout 120 nsenter --net="/run/netns/$ns_c" "$bench" --tier fan-in --fan-in-servers 198.18.1.2:9900 \
  --fan-in-auth-key "$key" --seconds 12 --processes 4 --workers 2 --worker-batches 2 \
  --entries 7500 --min-value 64 --max-value 4096 --timeout 60 >loss.out 2>loss.err
rc=$?
cat loss.out
check "(a) the fan-in under 0.1 % loss and 1 Gbit/s exits 0" test "$rc" -eq 0
check "(a) every entry succeeded, every byte checked" grep -q '^success: 100.0000 % .* 0 failed, 0 wrong bytes' loss.out
dropped=0
for ns in "$ns_c" "${ns_s[0]}"; do
  n=$(nsenter --net="/run/netns/$ns" iptables -L INPUT -v -n -x | awk '/statistic/ {print $1}')
  dropped=$((dropped + ${n:-0}))
done
received=$(in_ns "$ns_c" ip -s link show vc1 | awk '/RX:/ {getline; print $2}')
echo "(a) packets dropped by the 0.1 % rules: $dropped (the client's vc1 received $received)"
check "(a) the loss rules dropped packets" test "$dropped" -gt 0
in_ns "$ns_c" tc -s qdisc show dev vc1 | head -3
for ns in "$ns_c" "${ns_s[0]}"; do nsenter --net="/run/netns/$ns" iptables -F INPUT; done
in_ns "$ns_c" tc qdisc del dev vc1 root
in_ns "${ns_s[0]}" tc qdisc del dev vs root

# ---- (b) one of three servers cut off, then back
timeout 120 nsenter --net="/run/netns/$ns_c" "$bench" --tier fan-in --fan-in-servers "$servers" \
  --fan-in-auth-key "$key" --seconds 30 --processes 2 --workers 2 --worker-batches 3 \
  --entries 7500 --min-value 64 --max-value 1024 --timeout 2 --connect-timeout 1 \
  --allow-failures --trace trace.txt >cut.out 2>cut.err &
fan_in=$!
pids+=($fan_in)
sleep 6
t_down=$(date +%s.%N)
in_ns "${ns_s[1]}" ip link set vs down
sleep 8
t_up=$(date +%s.%N)
in_ns "${ns_s[1]}" ip link set vs up
wait "$fan_in"
rc=$?
cat cut.out
check "(b) the fan-in over three servers ran to its end" test "$rc" -eq 0
check "(b) no wrong bytes" grep -q ' 0 wrong bytes' cut.out

# trace: put-start get-end process slot server ok failed first-failure;
# server 1 is s2 (the order of --fan-in-servers).
awk -v down="$t_down" -v up="$t_up" '
  $5 != 1 { other_failed += $7; if ($2 > down && $1 < up) other_during += $6 }
  $5 == 1 && $7 > 0 { reasons[$8] += $7 }
  $5 == 1 && $7 > 0 && $2 > down { cut_failed += $7; if (!first_fail || $2 < first_fail) first_fail = $2
                                   if ($8 != "Timeout" && $8 != "Unavailable") odd = odd " " $8 }
  $5 == 1 && $7 > 0 && $2 < down { early += $7 }
  $5 == 1 && $7 == 0 && $1 > up { if (!back || $2 < back) back = $2 }
  END {
    for (r in reasons) printf "# s2 entries failed with %s: %d\n", r, reasons[r]
    printf "other_failed=%d\nother_during=%d\ncut_failed=%d\nearly=%d\nodd=\"%s\"\n", other_failed, other_during, cut_failed, early, odd
    printf "fail_after=%.3f\nback_after=%.3f\n", first_fail ? first_fail - down : -1, back ? back - up : -1
  }' trace.txt >trace.vars
cat trace.vars
# Defaults that fail the checks below when there is no trace at all.
other_failed=-1 other_during=0 cut_failed=0 early=0 odd="no trace" fail_after=-1 back_after=-1
source trace.vars
echo "(b) the client's log:"
head -n 20 cut.err
check "(b) the other servers' keys never failed" test "$other_failed" -eq 0
check "(b) the other servers' keys kept working while s2 was cut off" test "$other_during" -gt 0
check "(b) s2's keys failed while it was cut off" test "$cut_failed" -gt 0
check "(b) s2's keys did not fail before the cut" test "$early" -eq 0
check "(b) they failed by the deadline (Timeout or Unavailable), nothing else" test -z "$odd"
check "(b) s2's keys work again after its link came back" awk -v b="$back_after" 'BEGIN { exit !(b >= 0) }' 
echo "(b) time from the cut to s2's first failed reply: ${fail_after} s (client timeout 2 s)"
echo "(b) time from link-up to s2's first good batch: ${back_after} s"
for i in 1 2 3; do
  check "server s$i is still running" kill -0 "${pids[$((i - 1))]}"
done

# ---- (c) the rdma rail across the veth: libfabric's tcp provider between
# the client's namespace and s3's, a 16 MiB value put (RDMA READ by the
# server) and got (RDMA WRITE into the client), every byte compared, and the
# server's counters showing the bytes went over rdma.
s=${ns_s[2]}
nsenter --net="/run/netns/$s" "$memkv" --log-level warn server --mode memory --memory 1GiB --threads 1 \
  --address 198.18.3.2:9910 --unix-socket "$dir/r.sock" --set "network.auth_key=$key" \
  --set rdma.provider=ofi --set rdma.address=198.18.3.2 2>r.err &
pids+=($!)
for _ in $(seq 1 100); do
  nsenter --net="/run/netns/$ns_c" "$memkv" admin health --server 198.18.3.2:9911 >/dev/null 2>&1 && break
  sleep 0.1
done
head -c $((16 << 20)) /dev/urandom >rdma.in
rdma_kv() {
  MEMKV_AUTH_KEY=$key MEMKV_RDMA_ADDRESS=198.18.3.1 timeout 60 nsenter --net="/run/netns/$ns_c" \
    "$memkv" --log-level warn kv --servers 198.18.3.2:9910 --transport rdma "$@"
}
check "(c) a 16 MiB put over rdma across the veth" rdma_kv put rdma/value rdma.in
rdma_kv get rdma/value >rdma.out 2>rdma.err
check "(c) the value got back over rdma is the one put" cmp rdma.in rdma.out
status=$(nsenter --net="/run/netns/$ns_c" curl -s -H "Authorization: Bearer $key" \
  http://198.18.3.2:9911/v1/status)
echo "(c) the server's rdma counters: $(echo "$status" | grep -o '"rdma":{[^}]*}')"
check "(c) the server READ the 16 MiB from the client over rdma" \
  grep -q "\"bytes_read\":$((16 << 20))" <<<"$status"
check "(c) and WROTE them back over rdma" grep -q "\"bytes_written\":$((16 << 20))" <<<"$status"
check "(c) exists over rdma prints the value's size" \
  grep -q "$((16 << 20))" <(rdma_kv exists rdma/value 2>/dev/null)
check "(c) rm over rdma removes it" rdma_kv rm rdma/value
check "(c) and then exists says NotFound" \
  test "$(rdma_kv exists rdma/value 2>/dev/null)" = "$(printf 'rdma/value\tNotFound')"

# The fan-in over rdma across the veth: client processes with rotating
# threads, 7,500-entry batches in registered memory, every byte compared;
# the server's per-rail counters show every value byte went over rdma and
# none inline over tcp.
s3_status() {
  nsenter --net="/run/netns/$ns_c" curl -s -H "Authorization: Bearer $key" http://198.18.3.2:9911/v1/status
}
rail_bytes() {  # rail_bytes RAIL: to_clients + from_clients of the server in s3
  s3_status | grep -o "\"$1\":{\"to_clients\":[0-9]*,\"from_clients\":[0-9]*}" |
    grep -o '[0-9][0-9]*' | awk '{ sum += $1 } END { print sum + 0 }'
}
rdma_before=$(rail_bytes rdma)
tcp_before=$(rail_bytes tcp)
MEMKV_RDMA_ADDRESS=198.18.3.1 timeout 120 nsenter --net="/run/netns/$ns_c" "$bench" --tier fan-in \
  --fan-in-servers 198.18.3.2:9910 --fan-in-auth-key "$key" --transport rdma --seconds 8 \
  --processes 2 --workers 2 --worker-batches 2 --entries 7500 --min-value 64 --max-value 4096 \
  --timeout 60 >rdma-fan.out 2>rdma-fan.err
rc=$?
cat rdma-fan.out
check "(c) the fan-in over rdma across the veth exits 0" test "$rc" -eq 0
check "(c) every entry succeeded, every byte checked" \
  grep -q '^success: 100.0000 % .* 0 failed, 0 wrong bytes' rdma-fan.out
rdma_moved=$(($(rail_bytes rdma) - rdma_before))
echo "(c) value bytes the server moved over rdma during the fan-in: $rdma_moved"
check "(c) the fan-in's values went over rdma" test "$rdma_moved" -gt $((64 << 20))
check "(c) and none inline over tcp" test "$(rail_bytes tcp)" -eq "$tcp_before"

# A fan-in killed mid-run (SIGKILL to its processes): the server in s3 lets
# its sessions and rdma peers go, and serves a new client. First the last
# fan-in's sessions are gone, so that those counted below are the new one's.
s3_sessions() {
  s3_status | grep -o '"sessions":{"active":[0-9]*' | grep -o '[0-9]*$'
}
for _ in $(seq 1 300); do
  [ "$(s3_sessions)" = 0 ] && break
  sleep 0.1
done
check "(c) no session left from the fan-in before" test "$(s3_sessions)" = 0
MEMKV_RDMA_ADDRESS=198.18.3.1 setsid nsenter --net="/run/netns/$ns_c" "$bench" --tier fan-in \
  --fan-in-servers 198.18.3.2:9910 --fan-in-auth-key "$key" --transport rdma --seconds 60 \
  --processes 2 --workers 2 --worker-batches 2 --entries 7500 --min-value 64 --max-value 4096 \
  --timeout 60 >killed.out 2>killed.err &
killed=$!
pids+=($killed)
busy=0
for _ in $(seq 1 100); do
  busy=$(s3_sessions)
  [ "${busy:-0}" -ge 2 ] && break
  sleep 0.1
done
sleep 1
moving_from=$(rail_bytes rdma)
sleep 1
moving_to=$(rail_bytes rdma)
kill -9 -- -"$killed" 2>/dev/null
wait "$killed" 2>/dev/null
echo "(c) sessions on the server when the fan-in was killed: ${busy:-0};" \
  "rdma bytes in its last second: $((moving_to - moving_from))"
check "(c) the killed fan-in had sessions open" test "${busy:-0}" -ge 2
check "(c) and was moving values over rdma when killed" test "$moving_to" -gt "$moving_from"
left="unknown"
for _ in $(seq 1 300); do
  st=$(s3_status)
  sessions=$(grep -o '"sessions":{"active":[0-9]*' <<<"$st" | grep -o '[0-9]*$')
  peers=$(grep -o '"peers":[0-9]*' <<<"$st" | grep -o '[0-9]*$')
  left="sessions ${sessions:-?}, rdma peers ${peers:-?}"
  [ "${sessions:-1}" -eq 0 ] && [ "${peers:-1}" -eq 0 ] && break
  sleep 0.1
done
echo "(c) after the kill: $left"
check "(c) the server let the killed clients' sessions and rdma peers go" \
  test "$left" = "sessions 0, rdma peers 0"
check "(c) and serves a new client over rdma" rdma_kv put rdma/after-kill rdma.in

finish
