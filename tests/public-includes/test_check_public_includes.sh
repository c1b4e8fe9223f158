#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_check_public_includes.sh SRC: run scripts/check-public-includes.sh on
# made-up trees and check its verdict and report on each.
set -euo pipefail
check=$1/scripts/check-public-includes.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# A repository (not a git checkout) with a public header, a private one and
# the UAPI header.
mkdir -p "$work/lib/include/lib" "$work/lib/src" "$work/include/uapi/linux" "$work/app"
touch "$work/lib/include/lib/api.h" "$work/lib/src/internal.h" \
	"$work/include/uapi/linux/beluga.h" "$work/app/own.hpp"

# expect NAME RC PATTERN ARG...: app/main.cpp holds NAME's includes (set by
# the caller); the check with ARGs must exit RC and print PATTERN.
expect() {
	local name=$1 rc=$2 pat=$3 got=0 out
	shift 3
	out=$(bash "$check" "$@" 2>&1) || got=$?
	if [[ $got != "$rc" ]] || ! grep -qF -- "$pat" <<<"$out"; then
		echo "FAIL $name: exit $got (want $rc), output:"
		echo "$out"
		fail=1
	else
		echo "ok   $name"
	fi
}

printf '%s\n' '#include "own.hpp"' '#include <lib/api.h>' '#include <linux/beluga.h>' \
	'#include <vector>' '#  include <CLI/CLI.hpp>' >"$work/app/main.cpp"
expect public-only 0 "5 includes in app: public headers only" "$work" app

printf '%s\n' '#include <vector>' '#include "internal.h"' >"$work/app/main.cpp"
expect private 1 "app/main.cpp:2: includes internal.h, which is lib/src/internal.h" "$work" app
expect allowed 0 "public headers only" --allow app/main.cpp:internal.h "$work" app
expect allowed-elsewhere 1 "app/main.cpp:2: includes internal.h" --allow app/other.cpp:internal.h "$work" app

printf '%s\n' '#include "../lib/src/internal.h"' >"$work/app/main.cpp"
expect relative-path 1 "includes ../lib/src/internal.h" "$work" app

expect no-folder 2 "no folder" "$work" nowhere
exit $fail
