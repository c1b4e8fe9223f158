#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fail on a file-level dependency cycle in the driver:
#
#   scripts/check-kmod-deps.sh [--graph] [OBJ...]
#
# File A depends on file B when A's object leaves undefined a global symbol
# (function or variable) that B's object defines; the graph is read with nm
# from the objects kbuild built, so it is what the linker sees, not what a
# header declares.  Without OBJ, the objects are those Kbuild links into
# beluga.ko (kmod/Kbuild's beluga-y), which must have been built (make kmod).
# Prints the graph with --graph.  On a cycle, prints each cycle found as
# "a.o -> b.o -> a.o", with the symbols each step uses, and exits 1.
#
# Calls through function pointers (struct beluga_source_ops, file and VM
# operations) are not symbol references and so are not edges; the design
# rule that keeps them from hiding a cycle is written in kmod/beluga_internal.h.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
NM=${NM:-nm}

die() {
	echo "check-kmod-deps: $*" >&2
	exit 2
}

graph=0
if [[ ${1:-} == --graph ]]; then
	graph=1
	shift
fi
objs=("$@")
if ((${#objs[@]} == 0)); then
	# beluga-y's objects, continuation lines included.
	mapfile -t names < <(sed -n '/^beluga-y/,/[^\\]$/p' "$repo/kmod/Kbuild" |
		grep -o '[A-Za-z0-9_]*\.o')
	((${#names[@]})) || die "no beluga-y objects in kmod/Kbuild"
	for n in "${names[@]}"; do
		objs+=("$repo/kmod/$n")
	done
fi
for o in "${objs[@]}"; do
	[[ -f $o ]] || die "$o missing: build the driver first (make kmod)"
done
command -v "$NM" >/dev/null || die "$NM missing (binutils)"

# "D <file> <symbol>" for every global definition, then "U <file> <symbol>"
# for every undefined reference; sorted, so the report is stable.
{
	for o in "${objs[@]}"; do
		"$NM" -g --defined-only "$o" | awk -v f="$(basename "$o")" 'NF >= 3 { print "D", f, $3 }'
	done | sort -u
	for o in "${objs[@]}"; do
		"$NM" -u "$o" | awk -v f="$(basename "$o")" 'NF >= 2 { print "U", f, $2 }'
	done | sort -u
} | awk -v graph="$graph" '
function add_node(f) {
	if (!(f in seen)) {
		seen[f] = 1
		nodes[++nnodes] = f
	}
}
$1 == "D" {
	add_node($2)
	if ($3 in def && def[$3] != $2) {
		printf "check-kmod-deps: %s is defined in both %s and %s\n", $3, def[$3], $2
		dup = 1
	}
	def[$3] = $2
	next
}
$1 == "U" {
	add_node($2)
	if (!($3 in def) || def[$3] == $2)
		next
	to = def[$3]
	if (!(($2, to) in edge)) {
		edge[$2, to] = $3
		adj[$2, ++nadj[$2]] = to
		nedges++
	} else {
		edge[$2, to] = edge[$2, to] ", " $3
	}
}
# Report the cycle closed by the back edge stack[sp] -> v.
function report(v,    k, j, path, why) {
	for (k = sp; k > 0 && stack[k] != v; k--)
		;
	path = ""
	why = ""
	for (j = k; j <= sp; j++) {
		path = path stack[j] " -> "
		why = why sprintf("\n    %s -> %s: %s", stack[j],
				  j < sp ? stack[j + 1] : v,
				  edge[stack[j], j < sp ? stack[j + 1] : v])
	}
	printf "check-kmod-deps: cycle: %s%s%s\n", path, v, why
	ncycles++
}
function dfs(u,    i, v) {
	color[u] = 1
	stack[++sp] = u
	for (i = 1; i <= nadj[u]; i++) {
		v = adj[u, i]
		if (color[v] == 1)
			report(v)
		else if (!color[v])
			dfs(v)
	}
	sp--
	color[u] = 2
}
END {
	if (graph) {
		for (n = 1; n <= nnodes; n++) {
			line = nodes[n] ":"
			for (i = 1; i <= nadj[nodes[n]]; i++)
				line = line " " adj[nodes[n], i]
			print line
		}
	}
	for (n = 1; n <= nnodes; n++)
		if (!color[nodes[n]])
			dfs(nodes[n])
	if (ncycles || dup) {
		printf "check-kmod-deps: FAILED: %d cycle(s) among %d files (one direction between files: see kmod/beluga_internal.h)\n", ncycles, nnodes
		exit 1
	}
	printf "check-kmod-deps: %d files, %d dependencies, no cycle\n", nnodes, nedges
}'
