#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_dkms.sh SRC: the sources `make install-dkms` stages, with the
# dkms.conf it writes, build under DKMS for each kernel make check tests
# (scripts/kernel-version.sh --each-series: 6.1 and 6.12), into a private
# DKMS tree (--dkmstree/--sourcetree): the system's DKMS state is untouched,
# but for the signing key DKMS creates in /var/lib/dkms on its first build.
set -euo pipefail
src=$1
command -v dkms >/dev/null || { echo "SKIP: dkms not installed (make deps)"; exit 77; }
mapfile -t kvers < <(bash "$src/scripts/kernel-version.sh" --each-series)
((${#kvers[@]})) || { echo "FAIL: no kernel with headers installed"; exit 1; }
version=$(grep -m1 '^project' "$src/CMakeLists.txt" | grep -o 'VERSION [0-9.]*' | cut -d' ' -f2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s -C "$src" install-dkms DESTDIR="$tmp/stage" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
mkdir -p "$tmp/dkms"
dkms_opts=(--sourcetree "$tmp/stage/usr/src" --dkmstree "$tmp/dkms")
dkms add "${dkms_opts[@]}" "beluga/$version" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
fail=0
for k in "${kvers[@]}"; do
	if ! dkms build "${dkms_opts[@]}" -k "$k" "beluga/$version" >"$tmp/log" 2>&1; then
		echo "FAIL: dkms build for $k"
		cat "$tmp/log" "$tmp/dkms/beluga/$version/build/make.log" 2>/dev/null
		fail=1
		continue
	fi
	ko=$(find "$tmp/dkms/beluga/$version/$k" -name 'beluga.ko*' | head -n1)
	magic=$(modinfo -F vermagic "$ko" 2>/dev/null || true)
	if [[ ${magic%% *} != "$k" ]]; then
		echo "FAIL: DKMS module for $k has vermagic '$magic'"
		fail=1
		continue
	fi
	echo "dkms: beluga/$version built for $k"
done
exit $fail
