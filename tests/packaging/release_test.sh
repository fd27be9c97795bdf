#!/usr/bin/env bash
# integration: scripts/release.sh signs a folder of release files with keys
# the user supplies (made here, thrown away after), and the signatures
# verify the way docs/packaging.md tells users to verify them; a file
# changed after signing fails the check.
set -u
src=$(realpath "$1")
dir=$(mktemp -d)
trap 'gpgconf --homedir "$dir/gnupg" --kill all >/dev/null 2>&1; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v minisign >/dev/null || fail "minisign is not installed (scripts/test.sh installs it)"
command -v gpg >/dev/null || fail "gpg is not installed"
mkdir -p "$dir/out" "$dir/gnupg"
chmod 700 "$dir/gnupg"
head -c 100000 /dev/urandom >"$dir/out/memkv_0.1.0_amd64.deb"
head -c 100000 /dev/urandom >"$dir/out/memkv-0.1.0-1.x86_64.rpm"
head -c 1000 /dev/urandom >"$dir/out/memkv-0.1.0-cp311-cp311-manylinux_2_34_x86_64.whl"

# Throwaway keys: minisign without a password, GPG in its own home.
minisign -G -W -p "$dir/minisign.pub" -s "$dir/minisign.key" >/dev/null || fail "minisign -G"
export GNUPGHOME=$dir/gnupg
gpg --batch --passphrase '' --quick-gen-key "memkv release test <test@memkv.invalid>" ed25519 sign never \
  >/dev/null 2>&1 || fail "gpg --quick-gen-key"
fpr=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')

MEMKV_MINISIGN_KEY=$dir/minisign.key MEMKV_GPG_KEY=$fpr bash "$src/scripts/release.sh" "$dir/out" ||
  fail "release.sh"
cd "$dir/out"
[ "$(wc -l <sha256sums)" -eq 3 ] || fail "sha256sums does not list the 3 files: $(cat sha256sums)"
# What a user runs (docs/packaging.md):
minisign -Vm sha256sums -p "$dir/minisign.pub" >/dev/null || fail "minisign -V"
gpg --batch --verify sha256sums.asc sha256sums 2>/dev/null || fail "gpg --verify"
sha256sum -c sha256sums >/dev/null || fail "sha256sum -c"
# A package changed after signing is caught.
printf x >>memkv_0.1.0_amd64.deb
if sha256sum -c sha256sums >/dev/null 2>&1; then fail "a changed package passed sha256sum -c"; fi
# A list changed after signing is caught by both signatures.
sha256sum -- *.deb *.rpm *.whl >sha256sums
if minisign -Vm sha256sums -p "$dir/minisign.pub" >/dev/null 2>&1; then fail "minisign accepted a changed list"; fi
if gpg --batch --verify sha256sums.asc sha256sums 2>/dev/null; then fail "gpg accepted a changed list"; fi
# No key: refused.
if bash "$src/scripts/release.sh" "$dir/out" 2>/dev/null; then fail "release.sh ran with no key"; fi
echo PASS
