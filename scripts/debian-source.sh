#!/usr/bin/env bash
# Unpacks the Debian source package of an installed library, at the version
# installed, for the parts of it that Debian ships only as a shared library
# and that a portable build (-DMEMKV_PORTABLE=ON, docs/packaging.md) compiles
# in instead: simdjson's singleheader/simdjson.cpp. apt-get fetches it from
# the machine's own Debian sources (their deb-src twins, in a private apt
# state under DEST: the system's apt configuration is not touched) and checks
# it against the archive's signed index.
# Usage: scripts/debian-source.sh BINARY_PACKAGE DEST   prints the unpacked folder
set -euo pipefail
pkg=$1
dest=$(mkdir -p "$2" && cd "$2" && pwd)
version=$(dpkg-query -W -f='${Version}' "$pkg")
source=$(dpkg-query -W -f='${source:Package}' "$pkg")
upstream=${version#*:}
upstream=${upstream%-*}
dir="$dest/$source-$upstream"
if [ -f "$dir/.memkv-$version" ]; then echo "$dir"; exit 0; fi
command -v dpkg-source >/dev/null || { echo "debian-source.sh: needs dpkg-source (dpkg-dev)" >&2; exit 1; }
state="$dest/apt"
mkdir -p "$state/sources.list.d" "$state/lists/partial" "$state/cache/archives/partial"
: >"$state/sources.list"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  sed -n '/^Types:/s/\bdeb\b/deb-src/; p' "$f" >"$state/sources.list.d/$(basename "$f")"
done
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb\s/deb-src /p' /etc/apt/sources.list >"$state/sources.list"
fi
apt=(apt-get -q -o "Dir::Etc::SourceList=$state/sources.list"
  -o "Dir::Etc::SourceParts=$state/sources.list.d" -o "Dir::State::Lists=$state/lists"
  -o "Dir::Cache=$state/cache" -o "APT::Sandbox::User=$(id -un)")
"${apt[@]}" update >&2
(cd "$dest" && "${apt[@]}" source "$source=$version" >&2)
[ -d "$dir" ] || { echo "debian-source.sh: apt-get source made no $dir" >&2; exit 1; }
touch "$dir/.memkv-$version"
echo "$dir"
