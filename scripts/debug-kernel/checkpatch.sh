#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Run the kernel's checkpatch.pl (from Debian's linux-source-6.1, the same
# tree the debug kernel is built from) over the driver and the UAPI header:
#
#   scripts/debug-kernel/checkpatch.sh [FILE...]
#
# --strict, --no-tree; any ERROR, WARNING or CHECK fails (--strict's CHECKs
# included: the driver is clean of them, and keeping it so costs nothing).
# Only checkpatch.pl, spelling.txt and const_structs.checkpatch are taken
# from the source tarball, once, into
# ${BELUGA_CHECKPATCH_CACHE:-/var/cache/beluga-checkpatch}/<package version>/.
#
# Ignored message types, each for one file and one reason:
#   beluga_compat.h  LINUX_VERSION_CODE, CONSTANT_COMPARISON: the file exists
#                    to hold the version tests an out-of-tree module needs
#                    (`LINUX_VERSION_CODE < KERNEL_VERSION(...)` is the
#                    kernel's own idiom, constant on the left by nature).
#                    MACRO_ARG_PRECEDENCE: BELUGA_HUGE_FAULT_FN's argument is
#                    a parameter name in a function declarator, where
#                    parentheses are a syntax error.
#   beluga_sysfs.c   MACRO_ARG_REUSE: the attribute macros reuse identifier
#                    arguments (a struct field name, token-pasted function
#                    names), never expressions, so reuse cannot have side
#                    effects; rewriting them would only duplicate code.
# Generated files (*.mod.c) are skipped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tarball=/usr/src/linux-source-6.1.tar.xz
cache_root=${BELUGA_CHECKPATCH_CACHE:-/var/cache/beluga-checkpatch}

die() {
	echo "checkpatch: $*" >&2
	exit 1
}

[[ -r $tarball ]] || die "$tarball missing: apt-get install linux-source-6.1 (make deps)"
command -v perl >/dev/null || die "perl missing (make deps)"

version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) || version=unknown
dir=$cache_root/$version
if [[ ! -f $dir/ok ]]; then
	# Three small files out of a 140 MB archive: xz still reads it all (~25 s).
	mkdir -p "$cache_root"
	tmp=$(mktemp -d "$cache_root/.extract.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	tar -xJf "$tarball" -C "$tmp" --strip-components=2 --wildcards \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
	rm -rf "$dir"
	mkdir -p "$dir"
	mv "$tmp"/checkpatch.pl "$tmp"/spelling.txt "$tmp"/const_structs.checkpatch "$dir/"
	touch "$dir/ok"
fi

cd "$repo"
files=("$@")
if ((${#files[@]} == 0)); then
	shopt -s nullglob
	for f in kmod/*.c kmod/*.h include/uapi/linux/beluga.h; do
		[[ $f == *.mod.c ]] || files+=("$f")
	done
fi

# ignores_for FILE: the --ignore list documented above.
ignores_for() {
	case $(basename "$1") in
	beluga_compat.h) echo LINUX_VERSION_CODE,CONSTANT_COMPARISON,MACRO_ARG_PRECEDENCE ;;
	beluga_sysfs.c) echo MACRO_ARG_REUSE ;;
	*) echo "" ;;
	esac
}

bad=0
for f in "${files[@]}"; do
	ign=$(ignores_for "$f")
	# spelling.txt and const_structs.checkpatch are found next to the script.
	out=$(perl "$dir/checkpatch.pl" --no-tree --strict --show-types \
		${ign:+--ignore "$ign"} -f "$f" 2>&1) || true
	total=$(grep -E '^total: [0-9]+ errors, [0-9]+ warnings, [0-9]+ checks' <<<"$out" || true)
	if [[ -z $total ]]; then
		echo "$out"
		echo "checkpatch: $f: checkpatch.pl did not run to its summary line"
		bad=1
	elif [[ ! $total =~ ^total:\ 0\ errors,\ 0\ warnings,\ 0\ checks ]]; then
		# The report without checkpatch's closing advice.
		sed -n '/^total: /q;p' <<<"$out"
		bad=1
	fi
done
if ((bad)); then
	echo "checkpatch: FAILED (fix the lines above, or document an ignore in $0)"
	exit 1
fi
echo "checkpatch: ${#files[@]} files clean (--strict)"
