#!/usr/bin/env bash
# e2e: the drive tools as an operator runs them. Usage: drive_tools_test.sh MEMKV
set -u
memkv=$(realpath "$1")
source "$(dirname "$0")/e2e_lib.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

"$memkv" drive init d0.img --size 64MiB 2>init.err
check "drive init creates a sparse file" test "$(stat -c %s d0.img)" = 67108864
check "the file is sparse" test "$(stat -c %b d0.img)" -lt 1024
"$memkv" drive init d1.img --size "64 MiB" 2>>init.err
"$memkv" drive init d0.img --size 64MiB 2>again.err
check "drive init refuses an existing path" test $? -ne 0
"$memkv" drive init tiny.img --size 1MiB 2>tiny.err
check "drive init refuses a drive below 16 MiB" grep -q "below the minimum" tiny.err
"$memkv" drive init x.img --size 12parsecs 2>unit.err
check "a bad size names the option" grep -q -- "--size" unit.err

"$memkv" setup --drives d0.img d1.img >config.yaml 2>setup.err
check "setup succeeds" test $? -eq 0
check "setup prints a 64-hex auth_key" grep -Eq '^  auth_key: [0-9a-f]{64}$' config.yaml
check "setup listens on all addresses" grep -q '^  address: 0.0.0.0:9900$' config.yaml
check "setup lists the drives" grep -q -- '- media: d1.img' config.yaml
check "setup logs on stderr only" grep -q formatted setup.err
"$memkv" setup --drives d0.img d1.img >/dev/null 2>refuse.err
check "setup refuses drives holding memkv data" test $? -ne 0
check "the refusal names the drive and --force" grep -q "d0.img holds memkv data.*--force" refuse.err
"$memkv" setup --drives d0.img d1.img --force >config2.yaml 2>/dev/null
check "setup --force formats again with a new key" test "$(grep auth_key config.yaml)" != "$(grep auth_key config2.yaml)"

"$memkv" drive info d1.img >info.json
check "drive info prints JSON of the superblock" grep -q '"drive_index": 1' info.json
check "drive info reads the primary" grep -q '"source": "primary"' info.json
printf '\xff\xff\xff\xff' | dd of=d1.img bs=1 seek=200 conv=notrunc status=none
"$memkv" drive info d1.img >mirror.json
check "drive info falls back to the mirror" grep -q '"source": "mirror"' mirror.json

flock d0.img sleep 5 &
holder=$!
sleep 0.5
"$memkv" drive reset d0.img 2>held.err
status=$?
kill $holder 2>/dev/null
wait $holder 2>/dev/null
check "drive reset refuses a drive another process holds" test $status -ne 0
check "the refusal says it is in use" grep -q "in use" held.err

id_before=$(grep device_id info.json)
"$memkv" drive reset d1.img --secure 2>reset.err
check "drive reset --secure succeeds" test $? -eq 0
"$memkv" drive info d1.img >after.json
check "reset keeps the device id" test "$(grep device_id after.json)" = "$id_before"
check "reset bumps the drive generation" grep -q '"drive_generation": 2' after.json

finish
