#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-public-includes.sh [--allow FILE:HEADER]... REPO DIR...
#
# Every #include in the C and C++ sources under REPO/DIR must name a file of
# the including file's own folder, a public header (under an include/ folder
# of the repository: libbeluga's, its libraries', the UAPI header's), or a
# header from outside the repository (the system, dependencies).  Prints
# each include that names a private header of the repository instead (a
# library's src/, a test's helper, the driver) and exits 1; --allow
# FILE:HEADER (FILE relative to REPO) lets one such include stand.
# make check runs it on bench/ (tests/public-includes).
set -euo pipefail

allow=()
while [[ ${1:-} == --allow ]]; do
	allow+=("$2")
	shift 2
done
if (($# < 2)); then
	echo "usage: $0 [--allow FILE:HEADER]... REPO DIR..." >&2
	exit 2
fi
repo=$1
shift

# The repository's files, relative to it: what git tracks, or (outside a
# checkout) every file but build outputs.
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git -C "$repo" ls-files --cached --others --exclude-standard)
else
	mapfile -t files < <(cd "$repo" && find . \( -name build -o -name .git \) -prune -o -type f -print |
		sed 's|^\./||')
fi

# is_public NAME: NAME is a file below an include/ folder (or include/uapi/,
# the UAPI header's, which its users name as <linux/beluga.h>).
is_public() {
	local f
	for f in "${files[@]}"; do
		case /$f in
		*/include/"$1" | */include/uapi/"$1") [[ -f $repo/$f ]] && return 0 ;;
		esac
	done
	return 1
}

# private_match NAME: the first repository file whose path ends in /NAME.
private_match() {
	local f
	for f in "${files[@]}"; do
		case /$f in
		*/"$1") [[ -f $repo/$f ]] && { echo "$f"; return 0; } ;;
		esac
	done
	return 1
}

bad=0 checked=0
for dir in "$@"; do
	[[ -d $repo/$dir ]] || { echo "check-public-includes: no folder $repo/$dir" >&2; exit 2; }
	while IFS= read -r src; do
		while IFS=: read -r line text; do
			name=$(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/p' <<<"$text")
			[[ -n $name ]] || continue
			checked=$((checked + 1))
			if [[ /$name/ == */../* ]]; then
				# A path out of the file's folder: the file it names.
				hit=$(realpath -m --relative-to="$repo" "$repo/$(dirname "$src")/$name")
				[[ -f $repo/$hit && $hit != ../* ]] || continue
				[[ /$hit == */include/* ]] && continue
			else
				[[ -f $repo/$(dirname "$src")/$name ]] && continue # its own folder's
				is_public "$name" && continue
				hit=$(private_match "$name") || continue # not the repository's
			fi
			for a in "${allow[@]+"${allow[@]}"}"; do
				[[ $a == "$src:$name" ]] && continue 2
			done
			echo "$src:$line: includes $name, which is $hit: a private header of the" \
				"repository; use the public API (an include/ folder's headers)" >&2
			bad=1
		done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$repo/$src" || true)
	done < <(printf '%s\n' "${files[@]}" | grep -E "^$dir/.*\.(c|cc|cpp|cxx|h|hh|hpp|hxx|cu|cuh)$" || true)
done
if ((bad)); then
	exit 1
fi
echo "check-public-includes: $checked includes in $*: public headers only"
