#!/usr/bin/env bash
# Signs the release files in DIR (docs/packaging.md, "Release files"): writes
# DIR/sha256sums over every package and wheel in it, then signs that list
# with minisign and with GPG, using keys the user supplies (none are in the
# repository):
#   MEMKV_MINISIGN_KEY  a minisign secret key file (minisign -G makes one);
#                       its password is asked for, or read from
#                       MEMKV_MINISIGN_PASSWORD_FILE when set
#   MEMKV_GPG_KEY       a GPG key id or fingerprint in the user's keyring
# Either may be left unset to skip that signature; with neither, it fails.
# Usage: scripts/release.sh DIR    (e.g. build/package/out)
set -euo pipefail
dir=${1:?usage: scripts/release.sh DIR}
cd "$dir"
mapfile -t files < <(ls -- *.deb *.rpm *.whl *.tar.xz 2>/dev/null | sort -u)
[ ${#files[@]} -gt 0 ] || { echo "release.sh: no .deb, .rpm or .whl in $dir" >&2; exit 1; }
if [ -z "${MEMKV_MINISIGN_KEY:-}" ] && [ -z "${MEMKV_GPG_KEY:-}" ]; then
  echo "release.sh: set MEMKV_MINISIGN_KEY and/or MEMKV_GPG_KEY (see docs/packaging.md)" >&2
  exit 1
fi
sha256sum -- "${files[@]}" >sha256sums
echo "release.sh: sha256sums over ${#files[@]} files" >&2
if [ -n "${MEMKV_MINISIGN_KEY:-}" ]; then
  if [ -n "${MEMKV_MINISIGN_PASSWORD_FILE:-}" ]; then
    minisign -S -s "$MEMKV_MINISIGN_KEY" -m sha256sums -t "memkv release sha256sums" \
      <"$MEMKV_MINISIGN_PASSWORD_FILE"
  else
    minisign -S -s "$MEMKV_MINISIGN_KEY" -m sha256sums -t "memkv release sha256sums"
  fi
  echo "release.sh: wrote sha256sums.minisig" >&2
fi
if [ -n "${MEMKV_GPG_KEY:-}" ]; then
  gpg --batch --yes --local-user "$MEMKV_GPG_KEY" --armor --detach-sign --output sha256sums.asc sha256sums
  echo "release.sh: wrote sha256sums.asc" >&2
fi
