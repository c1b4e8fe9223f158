#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Boot one VM-suite image under QEMU (TCG: /dev/kvm here is a PVM-only
# hypervisor that aborts or hangs guests, so KVM is never used).
#
#   boot.sh --kernel VMLINUZ --initrd IMG --log FILE --results FILE
#           [--append "extra cmdline"] [--timeout SECS] [--live]
#           [--machine "QEMU args"] [--qemu-extra "QEMU args"] [--smp N]
#
# Guest (default machine): 2 CPUs on node 0 with 1 GiB; nodes 1 and 2,
# 512 MiB each and no CPUs, stand in for CXL expanders (distance 20
# everywhere).  --smp sets the number of CPUs (default 2; the multi-host
# profile boots its guests with 1).  --machine replaces the machine, memory and NUMA arguments
# (a profile's `machine`); --qemu-extra adds devices (a profile's `qemu`).  ttyS0 is the
# console, written to --log without carriage returns; ttyS1 is the results
# channel (--results).  With --live, result lines are echoed as they come.
# Exit status: QEMU's, or 124 when --timeout expired.
set -euo pipefail

kernel='' initrd='' log='' results='' append='' timeout=900 live=0 smp=2
while (($#)); do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--initrd) initrd=$2; shift ;;
	--log) log=$2; shift ;;
	--results) results=$2; shift ;;
	--append) append=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--live) live=1 ;;
	--machine) machine=$2; shift ;;
	--qemu-extra) extra=$2; shift ;;
	--smp) smp=$2; shift ;;
	*) echo "boot: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[[ -n $kernel && -n $initrd && -n $log && -n $results ]] || {
	echo "boot: --kernel, --initrd, --log and --results are required" >&2
	exit 2
}

# printk.devkmsg=on: the per-test markers written to /dev/kmsg must not be
# rate-limited away.  panic=-1 + -no-reboot: a panic ends QEMU at once.
cmdline="console=ttyS0 panic=-1 oops=panic loglevel=7 printk.devkmsg=on $append"
# Under TCG the guest's TSC counts at the host's TSC rate, but the guest
# calibrates it against the emulated PIT, which a loaded host delays: once
# the guest took 68.5 MHz for a 2.6 GHz TSC ("PIT calibration deviates from
# HPET"), its clock ran 38 times too fast and a soft lockup failed the boot.
# Give it the host's rate instead of letting it measure one.
tsc_khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo 2>/dev/null)
[[ ${tsc_khz:-0} -gt 0 ]] && cmdline+=" tsc_early_khz=$tsc_khz"
# no_timer_check: on a loaded host a TCG guest can fail the kernel's early
# check that the IO-APIC timer ticks and panic ("IO-APIC + timer doesn't
# work!", seen in a two-guest boot at load average 14 to 18); the timer itself
# works.  Every boot gets it, so no profile depends on the host's load.
cmdline+=" no_timer_check"

# shellcheck disable=SC2054 # commas belong to QEMU options
default_machine=(
	-m 2G
	-object memory-backend-ram,id=m0,size=1G
	-object memory-backend-ram,id=m1,size=512M
	-object memory-backend-ram,id=m2,size=512M
	-numa node,nodeid=0,cpus=0-1,memdev=m0
	-numa node,nodeid=1,memdev=m1
	-numa node,nodeid=2,memdev=m2
	-numa dist,src=0,dst=1,val=20
	-numa dist,src=0,dst=2,val=20
	-numa dist,src=1,dst=2,val=20
)
# shellcheck disable=SC2206 # profile arguments are split on spaces
if [[ -n $machine ]]; then machine_args=($machine); else machine_args=("${default_machine[@]}"); fi
# shellcheck disable=SC2206
extra_args=($extra)
qemu=(
	qemu-system-x86_64 -nodefaults -no-reboot -display none -nic none
	-accel tcg,thread=multi -cpu max -smp "$smp"
	"${machine_args[@]}" "${extra_args[@]}"
	-serial stdio -serial "file:$results"
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline"
)

: >"$results"
# Result lines (exact, alone on a line) of the console, for --live.
show() {
	if ((live)); then
		grep --line-buffered -E '^(PASS|FAIL|SKIP) [^ ]+( \(rc=[0-9]+\))?$' || true
	else
		cat >/dev/null
	fi
}
set +e
# stdin from /dev/null: QEMU must not touch the terminal or wait for input.
timeout --kill-after=10 "$timeout" "${qemu[@]}" </dev/null 2>&1 |
	tr -d '\r' | tee "$log" | show
rc=${PIPESTATUS[0]}
exit "$rc"
