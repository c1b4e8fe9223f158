#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Description: libbeluga's exported symbols are exactly the functions that
# beluga.h declares BELUGA_API, all under a LIBBELUGA_* version node, and
# beluga.map lists the same set (nothing internal or CUDA leaks out).
#   check-abi.sh LIBBELUGA.so beluga.h beluga.map
set -euo pipefail
lib=$1 header=$2 map=$3

declared=$(grep -oP '^BELUGA_API [^(]*?\**\K(beluga_\w+)(?=\()' "$header" | sort)
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort)
mapped=$(grep -oP '^\s+\Kbeluga_\w+(?=;)' "$map" | sort)
versions=$(objdump -T "$lib" | awk '$NF ~ /^beluga_/ { print $(NF-1) }' | sort -u)

status=0
if [[ $declared != "$exported" ]]; then
	echo "exported symbols differ from beluga.h (< header, > library):"
	diff <(echo "$declared") <(echo "$exported") || true
	status=1
fi
if [[ $declared != "$mapped" ]]; then
	echo "beluga.map differs from beluga.h (< header, > map):"
	diff <(echo "$declared") <(echo "$mapped") || true
	status=1
fi
if [[ $(echo "$versions" | grep -cv '^LIBBELUGA_') -ne 0 ]]; then
	echo "symbols outside a LIBBELUGA_* version node: $versions"
	status=1
fi
others=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDB]/ && $3 !~ /^beluga_/ { print $3 }')
if [[ -n $others ]]; then
	echo "non-beluga symbols exported: $others"
	status=1
fi
((status)) || echo "ABI OK: $(echo "$declared" | wc -l) functions, $(echo "$versions" | tr '\n' ' ')"
exit $status
