#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_install.sh SRC BUILD: `make install DESTDIR=<tmp>` puts the module,
# the UAPI header, the udev rule and the modprobe example in place, and the
# dkms.conf that install-dkms would write names the right version.
set -euo pipefail
src=$1 build=$2
[[ -f $src/kmod/beluga.ko ]] || { echo "SKIP: kmod/beluga.ko not built (make build)"; exit 77; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
make -s -C "$src" install DESTDIR="$stage" BUILD_DIR="$build" >"$stage.log" 2>&1 ||
	{ cat "$stage.log"; rm -f "$stage.log"; exit 1; }
rm -f "$stage.log"
fail=0
for f in lib/modules/*/extra/beluga.ko usr/include/linux/beluga.h \
	etc/udev/rules.d/60-beluga.rules etc/modprobe.d/beluga.conf.example \
	usr/libexec/beluga/beluga-setup lib/systemd/system/beluga-setup.service \
	etc/beluga/beluga-setup.conf.example; do
	# shellcheck disable=SC2086 # the glob names the kernel version
	if ! ls $stage/$f >/dev/null 2>&1; then
		echo "FAIL: $f not installed"
		fail=1
	fi
done
grep -q 'GROUP="beluga"' "$stage/etc/udev/rules.d/60-beluga.rules" || { echo "FAIL: udev rule has no beluga group"; fail=1; }
cmp -s "$src/include/uapi/linux/beluga.h" "$stage/usr/include/linux/beluga.h" || { echo "FAIL: header differs"; fail=1; }
version=$(grep -m1 '^project' "$src/CMakeLists.txt" | grep -o 'VERSION [0-9.]*' | cut -d' ' -f2)
[[ $(sed "s/@VERSION@/$version/" "$src/packaging/dkms.conf" | grep -c "PACKAGE_VERSION=\"$version\"") == 1 ]] ||
	{ echo "FAIL: dkms.conf version"; fail=1; }
[[ -d /sys/module/beluga ]] && { echo "FAIL: the module was loaded"; fail=1; }
((fail == 0)) && echo "install: all files in place"
exit $fail
