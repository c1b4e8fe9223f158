#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Print the newest Debian kernel version <ver> that has both a bootable image
# /boot/vmlinuz-<ver> (ending in -amd64) and a kbuild tree
# /lib/modules/<ver>/build: the kernel the module is built against and booted
# in the VM suite.  The ABI name moves (6.1.0-56, -57, ...) when the archive
# updates, so it is never hard-coded.  Prints nothing and fails if none.
set -euo pipefail

shopt -s nullglob
versions=()
for image in /boot/vmlinuz-*-amd64; do
	ver=${image#/boot/vmlinuz-}
	[[ -d /lib/modules/$ver/build ]] && versions+=("$ver")
done
((${#versions[@]})) || {
	echo "kernel-version: no /boot/vmlinuz-*-amd64 with /lib/modules/<ver>/build;" \
		"install linux-image-amd64 linux-headers-amd64 (make deps)" >&2
	exit 1
}
printf '%s\n' "${versions[@]}" | sort -V | tail -n1
