#!/usr/bin/env bash
# e2e: the dashboard and the docs site as an operator's browser renders them.
# Starts `memkv server` on its embedded default (two file drives), puts and
# reads a few keys, then opens pages in headless Chromium (Debian's
# `chromium`) and checks the DOM it rendered: drive rows, charts drawn, the
# hit ratio, and every link and resource of the pages resolving on the
# server. Screenshots are kept in ARTIFACTS.
#
# Usage: dashboard_test.sh MEMKV ARTIFACTS
# Exits 77 (skipped) when chromium is missing, unless MEMKV_REQUIRE_BROWSER=1
# (scripts/test.sh installs chromium and sets it).
set -u
memkv=$(realpath "$1")
artifacts=$2
source "$(dirname "$0")/../cli/e2e_lib.sh"
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  if [ "${MEMKV_REQUIRE_BROWSER:-0}" = 1 ]; then
    echo "FAILED: chromium is not installed (scripts/deps.sh chromium installs it)"
    exit 1
  fi
  echo "skipped: chromium is not installed (scripts/deps.sh chromium installs it)"
  exit 77
fi
mkdir -p "$artifacts"
dir=$(mktemp -d)
doc_pid=
cleanup() {
  stop_server
  [ -n "$doc_pid" ] && kill "$doc_pid" 2>/dev/null && wait "$doc_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
count() {  # count PATTERN FILE: the number of matches of an extended regex
  grep -Eo "$1" "$2" | wc -l
}

# Headless Chromium, each run in its own profile. The virtual-time budget lets
# the page's timers run (three polls of the admin API) while network fetches
# pause virtual time, so the DOM is dumped after the page has drawn its data.
browse() {  # browse URL [chromium flags...]: the rendered DOM on stdout
  local url=$1
  shift
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --no-default-browser-check --disable-extensions --disable-sync \
    --user-data-dir="$dir/profile.$RANDOM" --window-size=1280,1100 --hide-scrollbars \
    --virtual-time-budget=7000 "$@" "$url" 2>>browser.err
}

# Every href and src of a rendered page, resolved against BASE (the page's
# URL), must answer 200 on the server; links to other hosts are only allowed
# as plain <a> links (nothing the page loads comes from outside).
check_links() {  # check_links NAME DOM BASE
  local name=$1 dom=$2 base=$3 origin bad=0 n=0 url ref
  origin=$(echo "$base" | grep -Eo '^https?://[^/]+')
  while read -r ref; do
    ref=${ref%%#*}
    [ -z "$ref" ] && continue
    case "$ref" in
      http://127.0.0.1*|https://127.0.0.1*) url=$ref ;;
      http://*|https://*|mailto:*) continue ;;
      /*) url="$origin$ref" ;;
      *) url="${base%/*}/$ref" ;;
    esac
    n=$((n + 1))
    if ! curl -sf -o /dev/null --max-time 10 "$url"; then
      echo "  broken link on $base: $ref ($url)"
      bad=$((bad + 1))
    fi
  done < <(grep -Eo '(href|src)="[^"]*"' "$dom" | sed -E 's/^(href|src)="(.*)"$/\2/' | sed 's/&amp;/\&/g' | sort -u)
  echo "  $n links checked on $base"
  check "$name: every link resolves" test "$bad" -eq 0 -a "$n" -gt 0
  local outside
  outside=$(grep -Eo '<(script|link|img|iframe)[^>]*(src|href)="https?://[^"]*"' "$dom" | grep -v '127\.0\.0\.1' | wc -l)
  check "$name: nothing is loaded from another host" test "$outside" -eq 0
}

start_server
check "the server's admin API answers" test -n "$admin"
[ -n "$admin" ] || exit 1

# Traffic for the dashboard to show: 8 puts, 8 hits, 8 misses (50 % hits).
head -c 65536 /dev/urandom >value.bin
kv() { "$memkv" kv --servers "127.0.0.1:$port" --transport tcp "$@"; }
ok=0
for i in 1 2 3 4 5 6 7 8; do
  kv put "browser/$i" value.bin && kv get "browser/$i" "got.$i" && cmp -s value.bin "got.$i" &&
    ! kv get "browser/missing/$i" /dev/null 2>/dev/null && ok=$((ok + 1))
done
check "memkv kv put, get and a miss for 8 keys" test "$ok" -eq 8

# The dashboard.
browse "$admin/" --dump-dom >dashboard.html
check "the dashboard renders" grep -q '<h1>memkv' dashboard.html
check "the dashboard shows the server healthy" grep -Eq 'id="health" class="state-healthy">healthy<' dashboard.html
check "a row per drive (2)" test "$(count '<tr class="drive">' dashboard.html)" -eq 2
check "each drive row is online" test "$(count '<td class="state-online">online</td>' dashboard.html)" -eq 2
check "the drive rows name the drive files" grep -q 'drive1.img</td>' dashboard.html
check "both charts drew a line" test "$(count '<polyline class="line" points="[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+' dashboard.html)" -eq 2
check "the charts have their axes" test "$(count '<line class="grid"' dashboard.html)" -ge 10
# The hit ratio shown is the API's: 1 - misses / lookups, with the 8 misses.
curl -sf "$admin/v1/status" >status.json
gets=$(grep -o '"gets":[0-9]*' status.json | cut -d: -f2)
misses=$(grep -o '"misses":[0-9]*' status.json | cut -d: -f2)
check "the API counts the 8 misses" test "$misses" = 8
ratio=$(awk -v g="$gets" -v m="$misses" 'BEGIN { printf "%.1f", 100 * (1 - m / g) }')
check "the dashboard shows the hit ratio ($ratio %)" grep -q "id=\"hit-ratio\">$ratio %<" dashboard.html
check "a row per rail (tcp, shm, rdma)" test "$(count '<tr class="rail">' dashboard.html)" -eq 3
# 8 values of 64 KiB put and got over tcp: 512 KiB each way on the tcp row.
check "the tcp rail row shows the 512 KiB moved each way" \
  grep -q '<tr class="rail"><td>tcp</td><td class="state-online">on</td><td>512.0 KiB</td><td>512.0 KiB</td></tr>' dashboard.html
check "the API counts them per rail" grep -q '"tcp":{"to_clients":524288,"from_clients":524288}' status.json
check "the summary counts the 8 keys" grep -Eq 'id="summary">[^<]* 8 keys ' dashboard.html
check_links "dashboard" dashboard.html "$admin/"
browse "$admin/" --screenshot="$artifacts/dashboard.png" >/dev/null
check "a screenshot of the dashboard" test "$(head -c 4 "$artifacts/dashboard.png" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG'

# The docs site under /docs/ on the admin port.
browse "$admin/docs/index.html" --dump-dom >docs.html
check "the docs index renders" grep -q '<h1' docs.html
check "the docs use the embedded style sheet" grep -q 'href="style.css"\|href="/docs/style.css"' docs.html
check_links "docs index" docs.html "$admin/docs/index.html"
browse "$admin/docs/operations.html" --dump-dom >operations.html
check "the operations page renders" grep -qi '<h1[^>]*>[^<]*operat' operations.html
check_links "operations page" operations.html "$admin/docs/operations.html"
browse "$admin/docs/index.html" --screenshot="$artifacts/docs.png" >/dev/null
check "a screenshot of the docs index" test "$(head -c 4 "$artifacts/docs.png" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG'

# The same site from `memkv doc`, on its own port.
doc=
for attempt in 1 2 3 4 5; do
  doc_port=$((20000 + (RANDOM % 20000) * 2 + 1))
  "$memkv" doc --listen "127.0.0.1:$doc_port" >doc.out 2>doc.err &
  doc_pid=$!
  for _ in $(seq 1 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$doc_port/" && { doc="http://127.0.0.1:$doc_port"; break; }
    kill -0 "$doc_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$doc" ] && break
  kill "$doc_pid" 2>/dev/null; wait "$doc_pid" 2>/dev/null; doc_pid=
done
check "memkv doc serves the site" test -n "$doc"
if [ -n "$doc" ]; then
  browse "$doc/" --dump-dom >doc-root.html
  check "memkv doc's root is the docs index" cmp -s <(grep -v 'data-' doc-root.html) <(grep -v 'data-' docs.html)
  check_links "memkv doc" doc-root.html "$doc/"
fi

if [ "$failures" -ne 0 ]; then
  echo "--- chromium's stderr (last lines)"
  tail -n 20 browser.err
  cp dashboard.html docs.html "$artifacts/" 2>/dev/null
fi
finish "screenshots in $artifacts"
