#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build (or reuse) the Beluga debug kernel: Debian's linux-source-6.1 with
# KASAN, lockdep, kmemleak, UBSAN, DEBUG_VM/LIST and fault injection on the
# trimmed config scripts/debug-kernel/debug.config.
#
#   scripts/debug-kernel/build.sh [--print-env] [--jobs N]
#
# The kernel is built once per machine into a cache directory outside the
# repository, keyed by a hash of the config fragment, the build recipe
# version below, the linux-source package version and the compiler version:
#   ${BELUGA_DEBUG_KERNEL_CACHE:-/var/cache/beluga-debug-kernel}/<key>/
#     src/      the extracted source tree (needed by out-of-tree module builds)
#     obj/      kbuild output (O=): KDIR for beluga.ko and the helper module
#     mod/      modules_install (INSTALL_MOD_PATH): lib/modules/<release>/
#     bzImage, release, build-seconds, ok (written last: the cache is valid)
# A second call with the same key reuses it in a second.  Concurrent calls
# serialise on a lock file.  Old keys are never removed automatically;
# delete stale <key>/ directories by hand (about 3 GB each).
#
# --print-env prints DEBUG_KVER, DEBUG_KERNEL, DEBUG_KDIR and DEBUG_MODBASE as
# shell assignments (build progress goes to stderr), for check-debug.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/debug.config
tarball=/usr/src/linux-source-6.1.tar.xz
cache_root=${BELUGA_DEBUG_KERNEL_CACHE:-/var/cache/beluga-debug-kernel}
# Bump when the build steps below change what ends up in the cache.
recipe=1
jobs=2 print_env=0
while (($#)); do
	case $1 in
	--print-env) print_env=1 ;;
	--jobs) jobs=$2; shift ;;
	*) echo "debug-kernel: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

log() { echo "debug-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -r $tarball ]] || die "$tarball missing: apt-get install linux-source-6.1 (make deps)"
for tool in flex bison bc gcc make xz depmod; do
	command -v "$tool" >/dev/null || die "$tool missing (make deps: flex bison bc libelf-dev libssl-dev)"
done

cache_key() {
	{
		sha256sum "$fragment" | cut -d' ' -f1
		echo "recipe $recipe"
		dpkg-query -W -f='${Version}\n' linux-source-6.1
		gcc --version | head -n1
	} | sha256sum | cut -c1-16
}

key=$(cache_key)
dir=$cache_root/$key
mkdir -p "$cache_root"

print_env() {
	local rel
	rel=$(cat "$dir/release")
	printf 'DEBUG_KVER=%q\nDEBUG_KERNEL=%q\nDEBUG_KDIR=%q\nDEBUG_MODBASE=%q\n' \
		"$rel" "$dir/bzImage" "$dir/obj" "$dir/mod"
}

# check_config: every option the fragment sets must have survived
# olddefconfig with the same value; "is not set" lines must stay unset.
check_config() {
	local cfg=$dir/obj/.config line opt bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Z0-9_]+)= ]]; then
			grep -qxF "$line" "$cfg" || { log "option lost: $line (got: $(grep "^${BASH_REMATCH[1]}=" "$cfg" || echo unset))"; bad=1; }
		elif [[ $line =~ ^#\ (CONFIG_[A-Z0-9_]+)\ is\ not\ set ]]; then
			opt=${BASH_REMATCH[1]}
			grep -q "^$opt=" "$cfg" && { log "option should be unset: $(grep "^$opt=" "$cfg")"; bad=1; }
		fi
	done <"$fragment"
	return $bad
}

build() {
	local t0 t1 src
	t0=$(date +%s)
	rm -rf "$dir"
	mkdir -p "$dir/obj" "$dir/mod"
	log "extracting $tarball into $dir/src"
	mkdir -p "$dir/src"
	tar -xJf "$tarball" -C "$dir/src" --strip-components=1
	src=$dir/src
	log "configuring (allnoconfig + $fragment)"
	make -s -C "$src" O="$dir/obj" ARCH=x86_64 KCONFIG_ALLCONFIG="$fragment" allnoconfig >&2
	check_config || die "the config fragment does not apply cleanly (see above)"
	log "building bzImage and modules with -j$jobs (an hour or more on 2 busy cores)"
	make -s -C "$src" O="$dir/obj" ARCH=x86_64 -j"$jobs" bzImage modules >&2
	make -s -C "$src" O="$dir/obj" ARCH=x86_64 INSTALL_MOD_PATH="$dir/mod" modules_install >&2
	cp "$dir/obj/arch/x86/boot/bzImage" "$dir/bzImage"
	cat "$dir/obj/include/config/kernel.release" >"$dir/release"
	t1=$(date +%s)
	echo $((t1 - t0)) >"$dir/build-seconds"
	touch "$dir/ok"
	log "built $(cat "$dir/release") in $((t1 - t0)) s ($dir)"
}

exec 9>"$cache_root/$key.lock"
flock 9
if [[ -f $dir/ok ]]; then
	log "reusing $(cat "$dir/release") from $dir (built in $(cat "$dir/build-seconds") s)"
else
	build
fi
((print_env)) && print_env
exit 0
