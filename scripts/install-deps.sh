#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Install the Debian packages listed in scripts/debian-packages.txt that are
# not installed yet.  Idempotent: when everything is present it touches
# nothing (no apt-get update) and prints nothing.  Works unattended (CI=true,
# no stdin) as root, or through sudo when run as another user.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list=${BELUGA_DEPS_LIST:-$here/debian-packages.txt}

# Strip comments and blank lines: one package name per line.
mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list")

# Print the names among "$@" that are not fully installed (one dpkg-query call).
not_installed() {
	local installed
	installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
		awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
	local pkg
	for pkg in "$@"; do
		grep -qxF "$pkg" <<<"$installed" || echo "$pkg"
	done
}

mapfile -t missing < <(not_installed "${packages[@]}")
((${#missing[@]} == 0)) && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || {
		echo "install-deps: not root and no sudo; install as root: ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo -n)
fi
# Through env so that sudo keeps it.
sudo+=(env DEBIAN_FRONTEND=noninteractive)
apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${sudo[@]}" apt-get update -q </dev/null
"${sudo[@]}" apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null

# Verify: a package apt could not install must fail here, not later.
mapfile -t still < <(not_installed "${missing[@]}")
if ((${#still[@]})); then
	echo "install-deps: still missing after apt-get: ${still[*]}" >&2
	exit 1
fi
