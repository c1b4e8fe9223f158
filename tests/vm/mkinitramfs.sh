#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the initramfs of one VM-suite boot (see tests/vm/README.md).
#
#   mkinitramfs.sh --out IMG --kver VER --build-dir DIR --ko beluga.ko
#                  [--test-ko beluga_test.ko] [--params "nodes=..."]
#                  [--profile NAME] [--test-timeout SECS]
#                  [--setup guest-script] [--bins "host binaries"]
#                  [--env VAR=VALUE]... LIST...
#
# LIST files hold `<test-name> <path relative to DIR> [args...]` lines.
# The image holds busybox, tests/vm/init.sh as /init, the modules, the test
# programs under /opt/beluga/<path> and every shared library ldd lists for
# them, so dynamically linked tests run unchanged.  Each --env is exported
# to the guest's setup script and tests (/etc/beluga/env).  No root needed: the
# archive is written with owner 0:0 and /init mounts devtmpfs itself.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out='' kver='' build_dir='' ko='' test_ko='' params='' profile=default test_timeout=300
setup='' bins=''
lists=() envs=()
while (($#)); do
	case $1 in
	--out) out=$2; shift ;;
	--kver) kver=$2; shift ;;
	--build-dir) build_dir=$2; shift ;;
	--ko) ko=$2; shift ;;
	--test-ko) test_ko=$2; shift ;;
	--params) params=$2; shift ;;
	--profile) profile=$2; shift ;;
	--test-timeout) test_timeout=$2; shift ;;
	--setup) setup=$2; shift ;;
	--bins) bins=$2; shift ;;
	--env)
		[[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "mkinitramfs: bad --env '$2'" >&2; exit 2; }
		envs+=("$2"); shift ;;
	-*) echo "mkinitramfs: unknown option $1" >&2; exit 2 ;;
	*) lists+=("$1") ;;
	esac
	shift
done
[[ -n $out && -n $kver && -n $build_dir && -n $ko ]] || {
	echo "mkinitramfs: --out, --kver, --build-dir and --ko are required" >&2
	exit 2
}

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

root=$out.d
rm -rf "$root"
mkdir -p "$root"/{bin,etc/beluga,lib/beluga,opt/beluga}

# copy_file SRC [DEST]: copy (dereferencing links) to DEST inside the image.
copy_file() {
	local dest=$root${2:-$1}
	mkdir -p "$(dirname "$dest")"
	cp -L "$1" "$dest"
}

# copy_libs BINARY: every library ldd reports, the dynamic loader included.
# System libraries keep their path; the project's own (found through the
# build tree's RUNPATH, which may lie under /tmp, a tmpfs in the guest) go to
# /opt/beluga/lib, which /init puts on LD_LIBRARY_PATH.
copy_libs() {
	local lib
	ldd "$1" >/dev/null 2>&1 || return 0 # static: nothing to copy
	while read -r lib; do
		case $lib in
		/lib/* | /lib64/* | /usr/lib/* | /usr/lib64/*)
			[[ -e $root$lib ]] || copy_file "$lib" ;;
		*)
			[[ -e $root/opt/beluga/lib/${lib##*/} ]] ||
				copy_file "$lib" "/opt/beluga/lib/${lib##*/}" ;;
		esac
	done < <(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

add_busybox() {
	local bb
	bb=$(command -v busybox) || die "busybox not found (install busybox-static)"
	ldd "$bb" >/dev/null 2>&1 && die "$bb is dynamically linked; install busybox-static"
	cp "$bb" "$root/bin/busybox"
	install -m 0755 "$here/init.sh" "$root/init"
}

add_etc() {
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
	echo "$params" >"$root/etc/beluga/params"
	{
		printf 'BELUGA_PROFILE=%q\n' "$profile"
		printf 'BELUGA_PARAMS=%q\n' "$params"
		printf 'TEST_TIMEOUT=%q\n' "$test_timeout"
	} >"$root/etc/beluga/harness.conf"
	# Variables the tests honour, passed through from the host, and --env.
	local e
	: >"$root/etc/beluga/env"
	if [[ -n ${BELUGA_TEST_SEED:-} ]]; then
		printf 'export BELUGA_TEST_SEED=%q\n' "$BELUGA_TEST_SEED" >>"$root/etc/beluga/env"
	fi
	for e in "${envs[@]}"; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}" >>"$root/etc/beluga/env"
	done
}

# copy_module PATH DEST: a kernel module, decompressed (6.12's Debian modules
# are .ko.xz): the guest's busybox modprobe then needs no decompressor, and
# depmod in the image indexes plain .ko files.
copy_module() {
	local dest=$root$2
	mkdir -p "$(dirname "$dest")"
	case $1 in
	*.ko.xz) xz -dc "$1" >"${dest%.xz}" ;;
	*.ko.zst) zstd -q -dc "$1" >"${dest%.zst}" ;;
	*.ko.gz) gzip -dc "$1" >"${dest%.gz}" ;;
	*) cp -L "$1" "$dest" ;;
	esac
}

add_modules() {
	copy_file "$ko" /lib/beluga/beluga.ko
	[[ -n $test_ko && -f $test_ko ]] && copy_file "$test_ko" /lib/beluga/beluga_test.ko
	# Kernel modules the tests may modprobe, with their dependencies.  The
	# host's /etc/modprobe.d is ignored (-C): ndctl installs an "install"
	# rule for libnvdimm there that hides it from --show-depends.
	# VM_MODULES_ROOT: a kernel whose modules are not under /lib/modules
	# (the debug kernel); they land at /lib/modules/<ver> in the image.
	local mod path mroot=${VM_MODULES_ROOT:-} moddir=/lib/modules/$kver
	while read -r mod; do
		if ! modprobe -C /nonexistent -d "${mroot:-/}" -S "$kver" --show-depends "$mod" >/dev/null 2>&1; then
			[[ ${VM_MODULES_MISSING_OK:-0} == 1 ]] || die "kernel module $mod not found for $kver"
			echo "mkinitramfs: $mod not in $kver: left out" >&2
			continue
		fi
		while read -r path; do
			copy_module "$path" "${path#"$mroot"}"
		done < <(modprobe -C /nonexistent -d "${mroot:-/}" -S "$kver" --show-depends "$mod" | awk '$1 == "insmod" { print $2 }')
	done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/guest-modules.list")
	for f in modules.builtin modules.builtin.modinfo modules.order; do
		[[ -f $mroot$moddir/$f ]] && copy_file "$mroot$moddir/$f" "$moddir/$f"
	done
	mkdir -p "$root$moddir"
	depmod -b "$root" "$kver"
}

# add_tests: merge the lists into /etc/beluga/tests and copy each program.
add_tests() {
	local list name prog args seen=" "
	: >"$root/etc/beluga/tests"
	for list in "${lists[@]}"; do
		while read -r name prog args; do
			[[ -z $name || $name == \#* ]] && continue
			[[ $name =~ ^[A-Za-z0-9._/-]+$ ]] || die "$list: bad test name '$name'"
			[[ -n $prog ]] || die "$list: test '$name' has no program"
			[[ $seen == *" $name "* ]] && die "$list: test name '$name' used twice"
			seen+="$name "
			echo "$name $prog $args" >>"$root/etc/beluga/tests"
			if [[ -x $build_dir/$prog ]]; then
				copy_file "$build_dir/$prog" "/opt/beluga/$prog"
				copy_libs "$build_dir/$prog"
			else
				echo "mkinitramfs: warning: $build_dir/$prog not built; $name will fail" >&2
			fi
		done <"$list"
	done
	# glibc dlopens libgcc_s for pthread_cancel/pthread_exit unwinding.
	local gcc_s=/lib/x86_64-linux-gnu/libgcc_s.so.1
	if [[ -f $gcc_s && ! -e $root$gcc_s ]]; then
		copy_file "$gcc_s"
	fi
}

# add_extras: a profile's guest setup script (/etc/beluga/setup.sh, sourced
# by /init before beluga.ko is loaded; it may change BELUGA_PARAMS) and the
# host programs it needs, with their libraries.
add_extras() {
	local bin
	if [[ -n $setup ]]; then
		[[ -f $setup ]] || die "setup script $setup not found"
		install -m 0755 "$setup" "$root/etc/beluga/setup.sh"
	fi
	for bin in $bins; do
		[[ -x $bin ]] || die "$bin not found (make deps)"
		copy_file "$bin"
		copy_libs "$bin"
	done
}

add_busybox
add_etc
add_extras
add_modules
add_tests
# Uncompressed: the guest unpacks it faster than it could gunzip it.
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc -R 0:0 --quiet) >"$out"
