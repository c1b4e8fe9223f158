#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the Beluga VM-suite initramfs (busybox sh, PID 1).
#
# Loads beluga.ko (and the test helper module) with the boot profile's
# parameters, runs every test in /etc/beluga/tests with a per-test timeout,
# prints one result line per test and a summary, dumps dmesg and powers off.
# Result lines go to the console (ttyS0, where kernel messages can interleave
# with them) and to a second serial port (ttyS1) that only this script writes,
# so the host counts results from a channel nothing can garble.
#
# Each test is announced in the kernel log as "beluga-test: <name>" (written
# to /dev/kmsg at info level, so it stays off the console).
#
# Markers the host runner (tests/vm/judge.py) reads:
#   beluga-vm: init-start <uptime>        when /init starts (boot time)
#   beluga-vm: begin <name>               before a test; its output follows
#   beluga-vm: end <name> rc=<rc> <secs>  after it
#   PASS <name> | FAIL <name> (rc=N) | SKIP <name>
#   beluga-vm: skipped-case <name> <case>: <reason>
#                                         after a test's result line, one per
#                                         case it reported skipped (below)
#   M cases skipped inside passing tests  the skipped-case lines of tests that
#                                         passed, counted; just before
#   N passed, N failed, N skipped         the last result line
#   beluga-vm: dmesg-begin / dmesg-end    around the full kernel log
#
# A skipped case is reported by the test program (tests/common/skip_report.h)
# as a line "<case>: <reason>" in the file $BELUGA_SKIP_LOG, which /init
# empties before each test.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
# No /dev/console exists in the image (it is built without root): mount
# devtmpfs first, then attach stdio to the console.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts
read -r uptime _ </proc/uptime
echo "beluga-vm: init-start $uptime"

# shellcheck disable=SC1091 # written by mkinitramfs.sh
. /etc/beluga/harness.conf
# shellcheck disable=SC1091
[ -f /etc/beluga/env ] && . /etc/beluga/env
export HOME=/tmp PATH=/bin:/sbin:/usr/bin:/usr/sbin BELUGA_VM=1
# The project's shared libraries (see copy_libs in mkinitramfs.sh).
export LD_LIBRARY_PATH=/opt/beluga/lib
hostname "beluga-vm${BELUGA_VM_HOST:+-$BELUGA_VM_HOST}"

# Results channel: raw mode so the host sees exactly what is written.
if stty -F /dev/ttyS1 raw -echo 2>/dev/null; then
	exec 3>/dev/ttyS1
else
	echo "beluga-vm: no /dev/ttyS1; results go to the console only"
	exec 3>/dev/null
fi

passed=0
failed=0
skipped=0
cases_skipped=0
# Where test programs report skipped cases; writable by the unprivileged
# users tests drop to.
export BELUGA_SKIP_LOG=/run/beluga-skipped-cases

# say LINE: a line for the console and the results channel.
say() {
	echo "$*"
	echo "$*" >&3
}

# record NAME RC SECS: count a result and print its line.
record() {
	echo "beluga-vm: end $1 rc=$2 $3"
	echo "beluga-vm: time $1 $3" >&3
	case $2 in
	0) passed=$((passed + 1)); say "PASS $1" ;;
	77) skipped=$((skipped + 1)); say "SKIP $1" ;;
	*) failed=$((failed + 1)); say "FAIL $1 (rc=$2)" ;;
	esac
}

# skipped_cases NAME RC: forward the cases test NAME reported skipped;
# count them when it passed.
skipped_cases() {
	[ -s "$BELUGA_SKIP_LOG" ] || return 0
	while IFS= read -r line; do
		say "beluga-vm: skipped-case $1 $line"
		[ "$2" = 0 ] && cases_skipped=$((cases_skipped + 1))
	done <"$BELUGA_SKIP_LOG"
}

now() {
	read -r t _ </proc/uptime
	echo "$t"
}

elapsed() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# begin NAME: mark the start of a test on the console and in dmesg (so kernel
# messages can be attributed to the test that caused them).
begin() {
	echo "<6>beluga-test: $1" >/dev/kmsg
	echo "beluga-vm: begin $1"
	echo "beluga-vm: begin $1" >&3
}

# run_test NAME PROG ARGS...: run PROG in its own session so that it and
# every process it forked can be killed at once on timeout or when it ends.
run_test() {
	name=$1
	shift
	begin "$name"
	t0=$(now)
	if [ ! -x "$1" ]; then
		echo "beluga-vm: $1: test program missing from the image (not built?)"
		record "$name" 127 0.0
		return
	fi
	cd /tmp || return
	: >"$BELUGA_SKIP_LOG"
	chmod 666 "$BELUGA_SKIP_LOG"
	setsid "$@" </dev/null &
	pid=$!
	(
		sleep "$TEST_TIMEOUT"
		echo "beluga-vm: $name timed out after $TEST_TIMEOUT s; killing it"
		kill -KILL "-$pid"
	) &
	watchdog=$!
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	# Processes a test left behind must not disturb the next one.
	kill -KILL "-$pid" 2>/dev/null
	cd /
	record "$name" "$rc" "$(elapsed "$t0")"
	skipped_cases "$name" "$rc"
}

# step NAME FUNCTION: a harness check, counted like a test.
step() {
	begin "$1"
	t0=$(now)
	$2
	record "$1" $? "$(elapsed "$t0")"
}

load_beluga() {
	echo "beluga-vm: insmod /lib/beluga/beluga.ko $BELUGA_PARAMS"
	# shellcheck disable=SC2086 # one argument per parameter
	insmod /lib/beluga/beluga.ko $BELUGA_PARAMS
}

load_helper() {
	insmod /lib/beluga/beluga_test.ko
}

# After the suite no region may be left, every chunk must be back in the pool
# and the module must unload: catches tests that leak and leaks in the driver.
final_unload() {
	ok=0
	if [ -d /sys/module/beluga_test ]; then
		rmmod beluga_test || ok=1
	fi
	if [ ! -d /sys/module/beluga ]; then
		echo "beluga-vm: beluga.ko is not loaded: a test unloaded it and did not reload it"
		return 1
	fi
	s=/sys/kernel/beluga
	for f in nr_regions quarantined_bytes; do
		if [ -r "$s/$f" ] && [ "$(cat $s/$f)" != 0 ]; then
			echo "beluga-vm: $s/$f is $(cat $s/$f) after the suite (expected 0)"
			ok=1
		fi
	done
	if [ -r "$s/free_bytes" ] && [ "$(cat $s/free_bytes)" != "$(cat $s/total_bytes)" ]; then
		echo "beluga-vm: free_bytes $(cat $s/free_bytes) != total_bytes $(cat $s/total_bytes) after the suite"
		ok=1
	fi
	rmmod beluga || ok=1
	return $ok
}

# Debug kernels (profiles debug*, which boot with kmemleak=on): leak
# suspects from the boot itself are cleared now, so the scan after the suite
# (harness/kmemleak) reports only what the suite leaked.
kmemleak=/sys/kernel/debug/kmemleak
case " $(cat /proc/cmdline) " in
*" kmemleak=on "*)
	mount -t debugfs debugfs /sys/kernel/debug
	if [ -w $kmemleak ]; then
		echo scan >$kmemleak && echo clear >$kmemleak
	fi
	;;
*) kmemleak= ;;
esac

# harness/kmemleak: two scans (an object is reported only once it is 5 s
# old and still unreferenced), then any report fails the step.
kmemleak_check() {
	if ! echo scan >$kmemleak; then
		echo "beluga-vm: kmemleak is not working (disabled after an error?)"
		return 1
	fi
	sleep 6
	echo scan >$kmemleak
	if grep -q "unreferenced object" $kmemleak; then
		echo "beluga-vm: kmemleak found $(grep -c "unreferenced object" $kmemleak) leaked objects:"
		cat $kmemleak
		return 1
	fi
	echo "beluga-vm: kmemleak: no leaks"
}

mkdir -p /etc/beluga
# A profile's setup (e.g. creating a CXL region) may set BELUGA_PARAMS.
if [ -f /etc/beluga/setup.sh ]; then
	echo "beluga-vm: running the profile's setup"
	# shellcheck disable=SC1091
	. /etc/beluga/setup.sh
fi
echo "$BELUGA_PARAMS" >/etc/beluga/params
# Keep info-level chatter off the console while tests print; everything is in
# the dmesg dump at the end, warnings and worse still show up at once.
echo 5 >/proc/sys/kernel/printk

step harness/load-beluga load_beluga
if [ -f /lib/beluga/beluga_test.ko ]; then
	step harness/load-beluga_test load_helper
fi
while read -r name prog args; do
	# shellcheck disable=SC2086 # list arguments are split on spaces
	run_test "$name" "/opt/beluga/$prog" $args
done </etc/beluga/tests
step harness/final-unload final_unload
[ -n "$kmemleak" ] && step harness/kmemleak kmemleak_check

echo "beluga-vm: tainted $(cat /proc/sys/kernel/tainted)" >&3
say "$cases_skipped cases skipped inside passing tests"
say "$passed passed, $failed failed, $skipped skipped"
echo "beluga-vm: dmesg-begin"
dmesg
echo "beluga-vm: dmesg-end"
sync
poweroff -f
# Not reached unless poweroff failed; PID 1 must never exit.
echo o >/proc/sysrq-trigger
sleep 1000000
