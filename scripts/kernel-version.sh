#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Print the newest Debian kernel version <ver> that has both a bootable image
# /boot/vmlinuz-<ver> (ending in -amd64) and a kbuild tree
# /lib/modules/<ver>/build: the kernel `make` builds the module against and
# the VM suite boots.  The ABI name moves (6.1.0-56, -57, 6.12.118+deb12, ...)
# when the archive updates, so it is never hard-coded.  Prints nothing and
# fails if none.
#
#   kernel-version.sh                 the newest such kernel
#   kernel-version.sh --each-series   the newest of each series (major.minor:
#                                     6.1, 6.12), oldest series first, one a
#                                     line: the kernels `make check` tests
set -euo pipefail

each_series=0
case ${1:-} in
--each-series) each_series=1 ;;
'') ;;
*) echo "kernel-version: unknown argument $1" >&2; exit 2 ;;
esac

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
if ((each_series)); then
	# Sorted oldest first, so the last of each series is its newest.
	printf '%s\n' "${versions[@]}" | sort -V |
		awk -F. '{ s = $1 "." $2; if (!(s in last)) order[n++] = s; last[s] = $0 }
			END { for (i = 0; i < n; i++) print last[order[i]] }'
else
	printf '%s\n' "${versions[@]}" | sort -V | tail -n1
fi
