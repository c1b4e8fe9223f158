#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_setup.sh SRC: packaging/beluga-setup against a fake sysfs tree and
# fake modprobe and beluga-tool that log their arguments: the module is
# loaded with the range line, a dax device is handed over with 'beluga-tool
# source add' and named after itself, shared regions
# are defined on the right source index with mode and owner, a second run
# keeps them, a different extent is refused, and every configuration error
# exits 1 naming its line.
set -euo pipefail
src=$1
setup=$src/packaging/beluga-setup
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
	if ! "${@:2}"; then
		echo "FAIL: $1"
		fail=1
	fi
}

# sysfs: one dax device in an NVDIMM region (as QEMU's CXL device shows it on
# 6.1), one without a region; after "modprobe", two node and one range
# source; 'source add' adds a range source named after the device.
region=$t/sys/devices/platform/ACPI0017:00/root0/nvdimm-bridge0/ndbus0/region0
mkdir -p "$region/dax0.0/dax0.0/driver" "$t/sys/devices/hmem/dax1.0" "$t/sys/bus/dax/devices" "$t/bin"
echo 0x1b2f00cafe >"$region/set_cookie"
ln -s ../../../devices/platform/ACPI0017:00/root0/nvdimm-bridge0/ndbus0/region0/dax0.0/dax0.0 \
	"$t/sys/bus/dax/devices/dax0.0"
ln -s ../../../devices/hmem/dax1.0 "$t/sys/bus/dax/devices/dax1.0"
echo 0x4080000000 >"$region/dax0.0/dax0.0/resource"
echo $(((256 << 20) + 4096)) >"$region/dax0.0/dax0.0/size"
cat >"$t/bin/modprobe" <<SH
#!/bin/bash
echo "modprobe \$*" >>"$t/log"
for i in 0 1 2; do
	mkdir -p "$t/sys/kernel/beluga/sources/\$i"
	if ((i < 2)); then echo node; else echo range; fi >"$t/sys/kernel/beluga/sources/\$i/kind"
	: >"$t/sys/kernel/beluga/sources/\$i/name"
done
mkdir -p "$t/sys/module/beluga/parameters"
echo "\${2#ranges=}" >"$t/sys/module/beluga/parameters/ranges"
SH
# beluga-tool: 'shared list --bytes' prints what 'shared define' recorded.
cat >"$t/bin/beluga-tool" <<SH
#!/bin/bash
echo "beluga-tool \$*" >>"$t/log"
if [[ \$1 == source && \$2 == add ]]; then
	rmdir "$t/sys/bus/dax/devices/\$3/driver"
	mkdir -p "$t/sys/kernel/beluga/sources/3"
	echo range >"$t/sys/kernel/beluga/sources/3/kind"
	echo "\$3" >"$t/sys/kernel/beluga/sources/3/name"
	exit 0
fi
if [[ \$1 == shared && \$2 == list ]]; then
	echo "NAME SOURCE OFFSET SIZE MODE OWNER OPEN MAPS ID"
	cat "$t/defined" 2>/dev/null || true
	exit 0
fi
size() { local v=\$1 m=1; case \$v in *M) m=\$((1 << 20));; *G) m=\$((1 << 30));; esac; ((m == 1)) || v=\${v%?}; echo \$((v * m)); }
echo "\$3 \$5 \$(size \$7) \$(size \$9) 0600 root 0 0 1" >>"$t/defined"
SH
chmod +x "$t/bin/"*
export BELUGA_SYSFS=$t/sys MODPROBE=$t/bin/modprobe \
	BELUGA_TOOL=$t/bin/beluga-tool BELUGA_DAX_WAIT=1

cat >"$t/conf" <<CONF
# a comment, then a blank line

range 0x100000000+64M
dax dax0.0 cookie=0x1B2F00CAFE
shared kv-pool dax0.0 0 128M 0660 1000 990
shared scratch 0x100000000+64M 2M 4M
CONF
check "setup succeeds" "$setup" "$t/conf"
check "module loaded with the range line" grep -qx "modprobe beluga ranges=0x100000000+64M" "$t/log"
check "dax handed over at run time" grep -qx "beluga-tool source add dax0.0" "$t/log"
check "kv-pool on the dax device's source (index 3)" grep -qx \
	"beluga-tool shared define kv-pool --source 3 --offset 0 --size 128M --mode 0660 --uid 1000 --gid 990" "$t/log"
check "scratch on the first range source (index 2)" grep -qx \
	"beluga-tool shared define scratch --source 2 --offset 2M --size 4M --mode 0600" "$t/log"

# A second run (the unit restarted): nothing loaded or defined again.
: >"$t/log"
check "second run succeeds" "$setup" "$t/conf"
check "second run defines nothing" bash -c "! grep -q 'shared define' '$t/log'"
check "second run loads nothing" bash -c "! grep -q modprobe '$t/log'"
check "second run adds no source" bash -c "! grep -q 'source add' '$t/log'"
# The same name with another extent is refused.
sed -i 's/^shared scratch .*/shared scratch 0x100000000+64M 4M 4M/' "$t/conf"
out=$("$setup" "$t/conf" 2>&1) && st=0 || st=$?
check "other extent exits 2 (got $st)" test "$st" -eq 2
check "other extent is named" grep -q "already defined with another extent" <<<"$out"

# Identity: --identity prints the line to use; a wrong cookie, or a device
# without a region, is refused before anything is released.
check "--identity prints the cookie" test "$("$setup" --identity dax0.0)" = "dax dax0.0 cookie=0x1b2f00cafe"
out=$("$setup" --identity dax1.0 2>&1) && st=0 || st=$?
check "--identity without a region exits 2 (got $st)" test "$st" -eq 2
check "--identity without a region says so" grep -q "no interleave-set cookie" <<<"$out"
mkdir -p "$region/dax0.0/dax0.0/driver"
: >"$t/log"
printf 'dax dax0.0 cookie=0x1b2f00caff\n' >"$t/other"
out=$("$setup" "$t/other" 2>&1) && st=0 || st=$?
check "wrong cookie exits 2 (got $st)" test "$st" -eq 2
check "wrong cookie is explained" grep -q "its cookie is 0x1b2f00cafe, the configuration says 0x1b2f00caff" <<<"$out"
check "wrong cookie releases nothing" test ! -s "$t/log"
rmdir "$region/dax0.0/dax0.0/driver"

# Configuration errors: exit 1, naming the line.
bad() { # bad LINE EXPECTED-TEXT
	printf 'range 0x100000000+64M\n%s\n' "$1" >"$t/bad"
	out=$("$setup" "$t/bad" 2>&1) && st=0 || st=$?
	check "'$1' exits 1 (got $st: $out)" test "$st" -eq 1
	check "'$1' says '$2' (got: $out)" grep -qF "$2" <<<"$out"
}
bad "dax 0.0" "bad:2: expected 'dax daxX.Y"
bad "dax dax0.0 cookie=12" "bad:2: expected 'dax daxX.Y [cookie=0x...]'"
bad "range 0x1000" "bad:2: expected 'range START+SIZE'"
bad "shared x 0x100000000+64M 0" "bad:2: expected 'shared NAME"
bad "shared x 0x100000000+64M 1.5G 2M" "OFFSET and SIZE are integers"
bad "shared x 0x100000000+64M 0 2M 999" "bad mode"
bad "shared x/y 0x100000000+64M 0 2M" "bad region name"
bad "shared x dax9.9 0 2M" "bad:2: source 'dax9.9' is not a dax or range line"
bad "pool everything" "unknown keyword 'pool'"
out=$("$setup" "$t/missing" 2>&1) && st=0 || st=$?
check "missing config exits 1" test "$st" -eq 1

# A dax device that never appears: exit 2, naming it.
printf 'dax dax7.0\n' >"$t/late"
out=$("$setup" "$t/late" 2>&1) && st=0 || st=$?
check "absent dax exits 2 (got $st)" test "$st" -eq 2
check "absent dax is named" grep -q "dax7.0: no such device-dax instance" <<<"$out"

((fail == 0)) && echo "beluga-setup: all cases pass"
exit $fail
