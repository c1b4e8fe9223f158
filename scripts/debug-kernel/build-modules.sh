#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build beluga.ko and the test helper beluga_test.ko against another kernel's
# tree (the debug kernel's; `make kmod-kernels`: each kernel make check tests
# besides the default one), in copies of their sources under OUT, so the
# normal build (kmod/, tests/driver/helper/) is untouched:
#
#   scripts/debug-kernel/build-modules.sh KDIR OUT
#
# OUT/kmod/beluga.ko and OUT/helper/beluga_test.ko afterwards.  The copy keeps
# the layout kmod/Kbuild expects (../include/uapi next to kmod/).
# BELUGA_KMOD_SRC: take kmod/ and include/ from another tree (a patched
# copy of the driver) instead of this repository.
set -euo pipefail

kdir=${1:?usage: build-modules.sh KDIR OUT}
out=$(realpath -m "${2:?usage: build-modules.sh KDIR OUT}")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

rm -rf "$out"
mkdir -p "$out/kmod" "$out/helper" "$out/include/uapi/linux"
shopt -s nullglob
src=${BELUGA_KMOD_SRC:-$repo}
for f in "$src"/kmod/Kbuild "$src"/kmod/Makefile "$src"/kmod/*.c "$src"/kmod/*.h; do
	[[ $f == *.mod.c ]] || cp "$f" "$out/kmod/"
done
cp "$src/include/uapi/linux/beluga.h" "$out/include/uapi/linux/"
for f in "$repo"/tests/driver/helper/Kbuild "$repo"/tests/driver/helper/*.c "$repo"/tests/driver/helper/*.h; do
	[[ $f == *.mod.c ]] || cp "$f" "$out/helper/"
done

make -s -C "$kdir" M="$out/kmod" -j2 modules
make -s -C "$kdir" M="$out/helper" KBUILD_EXTRA_SYMBOLS="$out/kmod/Module.symvers" -j2 modules
ls -l "$out/kmod/beluga.ko" "$out/helper/beluga_test.ko"
