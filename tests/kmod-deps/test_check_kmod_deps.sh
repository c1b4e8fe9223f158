#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_check_kmod_deps.sh SRC CC: compile small C files into objects whose
# global symbols form known graphs and check scripts/check-kmod-deps.sh's
# verdict and report on each.
set -euo pipefail
src=$1 cc=$2
check=$src/scripts/check-kmod-deps.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# obj NAME CODE: compile CODE into $work/NAME.o
obj() {
	printf '%s\n' "$2" >"$work/$1.c"
	"$cc" -c -o "$work/$1.o" "$work/$1.c"
}

# expect NAME RC PATTERN... -- ARG...: run the check with ARGs; its exit
# status must be RC and its output must contain every PATTERN (fixed
# strings).
expect() {
	local name=$1 rc=$2 got=0 out
	shift 2
	local pats=()
	while [[ $1 != -- ]]; do
		pats+=("$1")
		shift
	done
	shift
	out=$(bash "$check" "$@" 2>&1) || got=$?
	if [[ $got != "$rc" ]]; then
		echo "FAIL: $name: exit $got, expected $rc; output:"
		echo "$out"
		fail=1
		return
	fi
	for p in "${pats[@]}"; do
		if ! grep -qF -- "$p" <<<"$out"; then
			echo "FAIL: $name: output lacks '$p'; output:"
			echo "$out"
			fail=1
			return
		fi
	done
	echo "ok: $name"
}

# Two files calling each other.
obj a 'void b_fn(void); void a_fn(void) { b_fn(); }'
obj b 'void a_fn(void); void b_fn(void) { a_fn(); }'
expect "two files calling each other" 1 \
	"cycle: a.o -> b.o -> a.o" "a.o -> b.o: b_fn" "b.o -> a.o: a_fn" "FAILED: 1 cycle" \
	-- "$work/a.o" "$work/b.o"

# Three files, the cycle closed by a variable rather than a call.
obj p 'extern int r_var; void q_fn(void); int p_var; void p_fn(void) { q_fn(); }'
obj q 'void r_fn(void); void q_fn(void) { r_fn(); }'
obj r 'extern int p_var; int r_var; void r_fn(void) { p_var++; }'
expect "three files, closed by a variable" 1 \
	"cycle: p.o -> q.o -> r.o -> p.o" "r.o -> p.o: p_var" \
	-- "$work/p.o" "$work/q.o" "$work/r.o"

# A diamond (top -> left, right -> bottom) has no cycle; same-named static
# functions in two files and calls within one file are no edges.
obj top 'void left_fn(void); void right_fn(void); void top_fn(void) { left_fn(); right_fn(); }'
obj left 'void bottom_fn(void); static void helper(void) { bottom_fn(); } void left_fn(void) { helper(); }'
obj right 'void bottom_fn(void); static void helper(void) { bottom_fn(); } void right_fn(void) { helper(); }'
obj bottom 'static int n; void bottom_fn(void) { n++; } void bottom_other(void) { bottom_fn(); }'
expect "diamond, no cycle" 0 \
	"4 files, 4 dependencies, no cycle" \
	-- "$work/top.o" "$work/left.o" "$work/right.o" "$work/bottom.o"
expect "diamond's graph" 0 \
	"top.o: left.o right.o" "left.o: bottom.o" "bottom.o:" \
	-- --graph "$work/top.o" "$work/left.o" "$work/right.o" "$work/bottom.o"

# A cycle elsewhere in a larger graph is still found.
expect "a cycle beside an acyclic part" 1 "cycle: a.o -> b.o -> a.o" \
	-- "$work/top.o" "$work/left.o" "$work/right.o" "$work/bottom.o" "$work/a.o" "$work/b.o"

# An object that is missing is an error, not a pass.
expect "missing object" 2 "missing" -- "$work/a.o" "$work/nonexistent.o"

((fail == 0)) && echo "check-kmod-deps: every case as expected"
exit $fail
