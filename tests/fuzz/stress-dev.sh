#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# stress-ng's device stressor pointed at /dev/beluga: open/close, generic
# ioctls (FIONREAD, FIGETBSZ, ...), mmap, lseek, read, poll and select from
# several processes.  Usage: stress-dev.sh [SECONDS] [WORKERS].  Exits 77
# when the boot image has no stress-ng (only the profiles that list it in
# `bins` have it) and 1 when stress-ng fails.
secs=${1:-20}
workers=${2:-4}
command -v stress-ng >/dev/null 2>&1 || {
	echo "stress-dev: no stress-ng in this image: skipped"
	exit 77
}
[ -c /dev/beluga ] || { echo "stress-dev: no /dev/beluga"; exit 1; }
before=$(cat /sys/kernel/beluga/nr_regions)
# --dev-file limits the stressor to our device; --temp-path: a tmpfs.
stress-ng --dev "$workers" --dev-file /dev/beluga --timeout "${secs}s" \
	--metrics-brief --verify --temp-path /tmp 2>&1
rc=$?
after=$(cat /sys/kernel/beluga/nr_regions)
if [ "$before" != "$after" ]; then
	echo "stress-dev: nr_regions $before -> $after"
	rc=1
fi
exit $rc
