#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Run the VM suite: one QEMU boot per profile, judged from its logs.
#
#   tests/vm/run.sh [--build-dir DIR] [--out DIR] PROFILE[@KVER]...
#
# PROFILE is a name in tests/vm/profiles/ (default, slub-debug, demo) or a
# path to a .conf file; @KVER boots it on kernel KVER instead of the
# default one (make check boots 6.1 and 6.12 in one run).  DIR
# is the CMake build directory (default build); logs and images go to --out
# (default DIR/vm), named after the profile, or PROFILE@KVER with @KVER.
# The modules for a kernel are the first of kmod/beluga.ko,
# tests/driver/helper/beluga_test.ko (the in-tree build, `make`) and
# DIR/kernels/KVER/{kmod/beluga.ko,helper/beluga_test.ko} (make check builds
# them there for its other kernels) whose vermagic names that kernel.
# Environment overrides:
#   KVER            kernel version to boot without @ (default:
#                   scripts/kernel-version.sh, the newest installed)
#   BELUGA_KO       driver module, used as is on every kernel
#   BELUGA_TEST_KO  test helper module, used as is on every kernel
#   VM_KERNEL       kernel image to boot (default /boot/vmlinuz-$KVER; the
#                   debug kernel: scripts/debug-kernel/check-debug.sh)
#   VM_MODULES_ROOT directory holding lib/modules/$KVER (default /), and
#   VM_MODULES_MISSING_OK=1 to skip guest-modules.list entries that kernel
#                   lacks (passed to mkinitramfs.sh)
#   VM_LISTS        test lists to run instead of the profile's (space separated)
#   VM_TIMEOUT      wall-clock limit of one boot in seconds (default 900)
#   VM_TEST_TIMEOUT limit of one test inside the guest (default 300)
#   VM_LIVE=1       echo result lines while the guest runs
#   VM_HOSTS        number of guests of a multi-host profile (one with
#                   `hosts=`), instead of the profile's (tests/vm/multihost.py)
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

default_kver=${KVER:-$(bash "$repo/scripts/kernel-version.sh")} || die "no kernel to boot"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (make deps)"

# vermagic_is FILE KVER: whether module FILE was built for kernel KVER.
vermagic_is() {
	local magic
	magic=$(modinfo -F vermagic "$1" 2>/dev/null) || return 1
	[[ ${magic%% *} == "$2" ]]
}

# pick_modules KVER: set kernel, ko and test_ko for kernel KVER, or die.
pick_modules() {
	local k=$1 cand
	kernel=${VM_KERNEL:-/boot/vmlinuz-$k}
	[[ -r $kernel ]] || die "$kernel not readable (make deps installs the kernels)"
	if [[ -n ${BELUGA_KO:-} ]]; then
		ko=$BELUGA_KO
		[[ -f $ko ]] || die "$ko missing: build it first"
	else
		ko=
		for cand in "$repo/kmod/beluga.ko" "$build_dir/kernels/$k/kmod/beluga.ko"; do
			if [[ -f $cand ]] && vermagic_is "$cand" "$k"; then
				ko=$cand
				break
			fi
		done
		if [[ -z $ko ]]; then
			compgen -G "$repo/kmod/*.c" >/dev/null ||
				die "beluga.ko missing: kmod/ has no driver sources (kmod/*.c) yet"
			die "no beluga.ko built for $k: make kmod KDIR=/lib/modules/$k/build (or make check)"
		fi
	fi
	if [[ -n ${BELUGA_TEST_KO:-} ]]; then
		test_ko=$BELUGA_TEST_KO
	else
		# Optional (no helper sources: no helper module), but never one
		# built for another kernel.
		test_ko=
		for cand in "$repo/tests/driver/helper/beluga_test.ko" \
			"$build_dir/kernels/$k/helper/beluga_test.ko"; do
			if [[ -f $cand ]] && vermagic_is "$cand" "$k"; then
				test_ko=$cand
				break
			fi
		done
	fi
}

# boot_profile CONF KVER BOOT: build the image, boot kernel KVER, judge it;
# BOOT names the files and the result lines.
boot_profile() {
	local name cmdline params lists show_output machine='' qemu='' setup='' bins='' host_setup='' expect=''
	local hosts='' smp=1 guest_env=''
	local kver=$2 boot=$3 kernel ko test_ko
	pick_modules "$kver"
	# shellcheck disable=SC1090
	source "$1"
	local img=$out/$boot.cpio log=$out/$boot.log res=$out/$boot.results
	local list_files=()
	# Globs are relative to the repository root; sorted, as the convention says.
	# shellcheck disable=SC2086,SC2012 # globs of plain repository paths
	mapfile -t list_files < <(cd "$repo" && ls -1d ${VM_LISTS:-$lists} 2>/dev/null | LC_ALL=C sort)
	((${#list_files[@]})) || echo "vm[$boot]: warning: no test list matches '${VM_LISTS:-$lists}'"

	# Several guests at once: tests/vm/multihost.py boots and judges them.
	if [[ -n $hosts ]]; then
		local envs=() e
		for e in $guest_env; do envs+=(--env "$e"); done
		local mh=(--name "$name" --hosts "${VM_HOSTS:-$hosts}" --kver "$kver" --kernel "$kernel"
			--ko "$ko" --test-ko "$test_ko" --build-dir "$build_dir" --out "$out"
			--cmdline "$cmdline" --params "$params" --machine "$machine" --qemu "$qemu"
			--host-setup "$host_setup" --setup "$setup" --bins "$bins" --smp "$smp"
			--timeout "${VM_TIMEOUT:-900}" --test-timeout "${VM_TEST_TIMEOUT:-300}"
			--counts "$out/$boot.counts" --expect "${expect//$'\n'/ }" "${envs[@]}")
		[[ $show_output == 1 ]] && mh+=(--show-output)
		[[ ${VM_LIVE:-0} == 1 ]] && mh+=(--live)
		python3 "$vm/multihost.py" "${mh[@]}" -- "${list_files[@]}" || true
		return
	fi

	bash "$vm/mkinitramfs.sh" --out "$img" --kver "$kver" --build-dir "$build_dir" \
		--ko "$ko" --test-ko "$test_ko" --params "$params" --profile "$name" \
		--test-timeout "${VM_TEST_TIMEOUT:-300}" --setup "$setup" --bins "$bins" \
		"${list_files[@]}" ||
		die "building the $boot image failed"
	local ntests
	ntests=$(wc -l <"$img.d/etc/beluga/tests")
	echo "vm[$boot]: booting $kver with '${cmdline}' beluga params '$params'," \
		"$ntests tests, image $(du -m "$img" | cut -f1) MiB"

	# @OUT@ in a profile's QEMU arguments is the output directory.
	qemu=${qemu//@OUT@/$out}
	# Host-side preparation (e.g. fresh CXL backing files), in $out.
	if [[ -n $host_setup ]]; then
		(cd "$out" && eval "$host_setup") || die "$boot: host_setup failed"
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
	python3 "$vm/judge.py" --name "$boot" --console "$log" --results "$res" \
		--rc "$rc" --timeout "$timeout" --counts "$out/$boot.counts" --expect "${want[*]}" \
		--wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "${show[@]}" ||
		true
}

total_pass=0 total_fail=0 total_skip=0 total_cases=0 all_ok=1
for spec in "${profiles[@]}"; do
	p=${spec%@*} kver=$default_kver
	[[ $spec == *@* ]] && kver=${spec##*@}
	conf=$p
	[[ -f $conf ]] || conf=$vm/profiles/$p.conf
	[[ -f $conf ]] || die "no profile $p (see tests/vm/profiles/)"
	name=$(sed -n 's/^name=//p' "$conf")
	[[ $spec == *@* ]] && name+=@$kver
	rm -f "$out/$name.counts"
	boot_profile "$conf" "$kver" "$name"
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
