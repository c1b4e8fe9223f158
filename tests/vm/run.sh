#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Run the VM suite: one QEMU boot per profile, judged from its logs.
#
#   tests/vm/run.sh [--build-dir DIR] [--out DIR] PROFILE...
#
# PROFILE is a name in tests/vm/profiles/ (default, slub-debug, demo) or a
# path to a .conf file.  DIR is the CMake build directory (default build);
# logs and images go to --out (default DIR/vm).  Environment overrides:
#   KVER            kernel version to boot (default: scripts/kernel-version.sh)
#   BELUGA_KO       driver module        (default kmod/beluga.ko)
#   BELUGA_TEST_KO  test helper module   (default tests/driver/helper/beluga_test.ko)
#   VM_KERNEL       kernel image to boot (default /boot/vmlinuz-$KVER; the
#                   debug kernel: scripts/debug-kernel/check-debug.sh)
#   VM_MODULES_ROOT directory holding lib/modules/$KVER (default /), and
#   VM_MODULES_MISSING_OK=1 to skip guest-modules.list entries that kernel
#                   lacks (passed to mkinitramfs.sh)
#   VM_LISTS        test lists to run instead of the profile's (space separated)
#   VM_TIMEOUT      wall-clock limit of one boot in seconds (default 900)
#   VM_TEST_TIMEOUT limit of one test inside the guest (default 300)
#   VM_LIVE=1       echo result lines while the guest runs
#   BELUGA_TEST_SEED passed to the tests
# Prints each test's result with the cases it skipped (name and reason), the
# boot time, a line `M cases skipped inside passing tests` and a closing
# `N passed, N failed, N skipped` line for all boots; exit 0 when all passed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vm=$repo/tests/vm
build_dir=build out=
profiles=()
while (($#)); do
	case $1 in
	--build-dir) build_dir=$2; shift ;;
	--out) out=$2; shift ;;
	-*) echo "vm: unknown option $1" >&2; exit 2 ;;
	*) profiles+=("$1") ;;
	esac
	shift
done
((${#profiles[@]})) || profiles=(default)
cd "$repo"
build_dir=$(realpath -m "$build_dir")
out=$(realpath -m "${out:-$build_dir/vm}")
mkdir -p "$out"

die() {
	echo "vm: $*"
	echo "0 cases skipped inside passing tests"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
}

kver=${KVER:-$(bash "$repo/scripts/kernel-version.sh")} || die "no kernel to boot"
kernel=${VM_KERNEL:-/boot/vmlinuz-$kver}
ko=${BELUGA_KO:-$repo/kmod/beluga.ko}
test_ko=${BELUGA_TEST_KO:-$repo/tests/driver/helper/beluga_test.ko}
[[ -r $kernel ]] || die "$kernel not readable (install linux-image-amd64)"
if [[ ! -f $ko ]]; then
	if ! compgen -G "$repo/kmod/*.c" >/dev/null; then
		die "$ko missing: kmod/ has no driver sources (kmod/*.c) yet"
	fi
	die "$ko missing: build it first (make build)"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (make deps)"

# boot_profile CONF: build the image, boot it, judge it; appends to totals.
boot_profile() {
	local name cmdline params lists show_output machine='' qemu='' setup='' bins='' host_setup='' expect=''
	# shellcheck disable=SC1090
	source "$1"
	local img=$out/$name.cpio log=$out/$name.log res=$out/$name.results
	local list_files=()
	# Globs are relative to the repository root; sorted, as the convention says.
	# shellcheck disable=SC2086,SC2012 # globs of plain repository paths
	mapfile -t list_files < <(cd "$repo" && ls -1d ${VM_LISTS:-$lists} 2>/dev/null | LC_ALL=C sort)
	((${#list_files[@]})) || echo "vm[$name]: warning: no test list matches '${VM_LISTS:-$lists}'"

	bash "$vm/mkinitramfs.sh" --out "$img" --kver "$kver" --build-dir "$build_dir" \
		--ko "$ko" --test-ko "$test_ko" --params "$params" --profile "$name" \
		--test-timeout "${VM_TEST_TIMEOUT:-300}" --setup "$setup" --bins "$bins" \
		"${list_files[@]}" ||
		die "building the $name image failed"
	local ntests
	ntests=$(wc -l <"$img.d/etc/beluga/tests")
	echo "vm[$name]: booting $kver with '${cmdline}' beluga params '$params'," \
		"$ntests tests, image $(du -m "$img" | cut -f1) MiB"

	# @OUT@ in a profile's QEMU arguments is the output directory.
	qemu=${qemu//@OUT@/$out}
	# Host-side preparation (e.g. fresh CXL backing files), in $out.
	if [[ -n $host_setup ]]; then
		(cd "$out" && eval "$host_setup") || die "$name: host_setup failed"
	fi
	local t0 t1 rc=0 timeout=${VM_TIMEOUT:-900} live=()
	[[ ${VM_LIVE:-0} == 1 ]] && live=(--live)
	t0=$(date +%s.%N)
	bash "$vm/boot.sh" --kernel "$kernel" --initrd "$img" --log "$log" --results "$res" \
		--append "$cmdline" --timeout "$timeout" --machine "$machine" \
		--qemu-extra "$qemu" "${live[@]}" || rc=$?
	t1=$(date +%s.%N)

	local show=()
	[[ $show_output == 1 ]] && show=(--show-output)
	# With VM_LISTS, expectations hold only for the tests that were listed.
	local want=() exp=() e
	read -ra exp <<<"${expect//$'\n'/ }"	# no globbing: '*' is an entry
	for e in "${exp[@]}"; do
		if [[ -z ${VM_LISTS:-} || $e == '*' || $e == '!'* ]] ||
			grep -q "^${e%%:*} " "$img.d/etc/beluga/tests"; then
			want+=("$e")
		fi
	done
	python3 "$vm/judge.py" --name "$name" --console "$log" --results "$res" \
		--rc "$rc" --timeout "$timeout" --counts "$out/$name.counts" --expect "${want[*]}" \
		--wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "${show[@]}" ||
		true
}

total_pass=0 total_fail=0 total_skip=0 total_cases=0 all_ok=1
for p in "${profiles[@]}"; do
	conf=$p
	[[ -f $conf ]] || conf=$vm/profiles/$p.conf
	[[ -f $conf ]] || die "no profile $p (see tests/vm/profiles/)"
	name=$(sed -n 's/^name=//p' "$conf")
	rm -f "$out/$name.counts"
	boot_profile "$conf"
	read -r np nf ns ok _ nc _ <"$out/$name.counts" || die "$name: no verdict"
	# A boot that failed without a failed test (timeout, kernel warning,
	# missing summary) still counts as one failure in the closing line.
	((ok == 0 && nf == 0)) && nf=1
	((ok)) || all_ok=0
	total_pass=$((total_pass + np)) total_fail=$((total_fail + nf)) total_skip=$((total_skip + ns))
	total_cases=$((total_cases + ${nc:-0}))
done
echo "$total_cases cases skipped inside passing tests"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
((all_ok))
