#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make check-debug`: the VM suite on the debug kernel.
#
#   scripts/debug-kernel/check-debug.sh [PROFILE...]
#
# 1. builds the debug kernel, or reuses the cached one (build.sh);
# 2. builds beluga.ko and beluga_test.ko against it, in copies under
#    $BUILD_DIR/debug-modules (build-modules.sh; kmod/ is untouched);
# 3. boots PROFILE... (default: debug debug-ranges-gpu debug-fuzz, i.e. the
#    whole suite, the part-2 and hardening tests on the ranges-gpu machine,
#    and the 10-minute fuzzing run) with tests/vm/run.sh.
# A boot fails on any failed test and on any KASAN, lockdep, UBSAN, DEBUG_VM
# or DEBUG_LIST report (tests/vm/judge.py: BUG/WARNING/UBSAN lines) and on
# any kmemleak report (the harness/kmemleak step, tests/vm/init.sh).
# User space must be built already ($BUILD_DIR, default build).
# Prints the time of each phase; logs in $BUILD_DIR/vm-debug/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir=$(realpath -m "${BUILD_DIR:-build}")
profiles=("$@")
((${#profiles[@]})) || profiles=(debug debug-ranges-gpu debug-fuzz)
cd "$repo"

secs() { date +%s; }
t0=$(secs)
env_lines=$(bash "$here/build.sh" --print-env) || {
	echo "check-debug: building the debug kernel failed"
	exit 1
}
eval "$env_lines"
t1=$(secs)

mods=$build_dir/debug-modules
bash "$here/build-modules.sh" "$DEBUG_KDIR" "$mods" >/dev/null
t2=$(secs)

# The debug kernel is slower (KASAN, lockdep): roomier limits than make check.
export KVER=$DEBUG_KVER VM_KERNEL=$DEBUG_KERNEL VM_MODULES_ROOT=$DEBUG_MODBASE
export VM_MODULES_MISSING_OK=1	# no CXL/NVDIMM modules in the trimmed kernel
export BELUGA_KO=$mods/kmod/beluga.ko BELUGA_TEST_KO=$mods/helper/beluga_test.ko
export VM_TIMEOUT=${VM_TIMEOUT:-3600} VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-1500}
rc=0
bash tests/vm/run.sh --build-dir "$build_dir" --out "$build_dir/vm-debug" "${profiles[@]}" || rc=$?
t3=$(secs)

echo "check-debug: kernel $DEBUG_KVER ($(cat "$(dirname "$DEBUG_KERNEL")/build-seconds") s to build" \
	"when it was built; $((t1 - t0)) s this time), modules $((t2 - t1)) s," \
	"VM suite $((t3 - t2)) s (${profiles[*]})"
exit $rc
