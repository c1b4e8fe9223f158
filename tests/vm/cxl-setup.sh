#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
#
# Guest setup of the cxl profile (sourced by /init before beluga.ko loads):
# turn QEMU's CXL type-3 device into a devdax namespace the way an operator
# would, and hand it to Beluga the operator's way: beluga-tool source add
# releases it from device-dax (sysfs unbind) and gives its range to a module
# loaded without sources.  The suite's tests unload and reload the module
# with the boot's parameters, so the module is then unloaded again (the
# device stays released) and /init loads it with ranges= the device's range.
# Sets BELUGA_PARAMS; records the dax device in /etc/beluga/cxl-dax so the
# range tests can give it back to device-dax and check Beluga's refusal.
# Two variables (from the image's /etc/beluga/env) change that for the
# multi-host profile, whose guests share the device:
#   CXL_NAMESPACE_MAP=mem  struct pages of the namespace in guest RAM, not
#                          on the device (every guest would overwrite the
#                          others' with its own)
#   CXL_KEEP_DAX=1         leave the device with device-dax (/dev/daxX.Y) and
#                          BELUGA_PARAMS as the profile set them

# cxl_wait PATH-GLOB: wait for a sysfs path that a driver's probe creates.
# The limit (60 s) is there to end a hang only: under TCG on a loaded host a
# probe takes many times its usual time, and a short limit would fail the
# whole cxl boot.
cxl_wait() {
	i=0
	while [ $i -lt 600 ]; do
		# shellcheck disable=SC2086 # a glob
		ls -d $1 >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "cxl-setup: timed out waiting for $1"
	return 1
}

for m in cxl_acpi cxl_pci cxl_mem cxl_pmem nd_pmem dax_pmem device_dax; do
	modprobe "$m" || echo "cxl-setup: modprobe $m failed"
done
cxl_wait /sys/bus/cxl/devices/mem0 &&
	cxl create-region -m -t pmem -d decoder0.0 -w 1 -g 256 mem0 &&
	cxl_wait '/sys/bus/nd/devices/region*/driver' &&
	ndctl create-namespace -r "$(cd /sys/bus/nd/devices && ls -d region* | head -n1)" \
		-m devdax ${CXL_NAMESPACE_MAP:+-M "$CXL_NAMESPACE_MAP"} -a 2M >/dev/null &&
	cxl_wait '/sys/bus/dax/devices/dax*'
dax=$(ls /sys/bus/dax/devices 2>/dev/null | head -n1)
if [ -n "$dax" ] && [ "${CXL_KEEP_DAX:-0}" = 1 ]; then
	echo "$dax" >/etc/beluga/cxl-dax
	echo "cxl-setup: /dev/$dax ($(cat "/sys/bus/dax/devices/$dax/resource")," \
		"$(cat "/sys/bus/dax/devices/$dax/size") bytes) left with device-dax"
elif [ -n "$dax" ]; then
	start=$(cat "/sys/bus/dax/devices/$dax/resource")
	size=$(cat "/sys/bus/dax/devices/$dax/size")
	tool=/opt/beluga/tools/beluga-tool
	if [ ! -x $tool ]; then
		echo "cxl-setup: $tool is not in the image: list tools/beluga-tool in one of the profile's lists"
	elif insmod /lib/beluga/beluga.ko; then
		$tool --backend kernel source add "$dax" ||
			echo "cxl-setup: beluga-tool source add $dax failed"
		rmmod beluga
	fi
	# Still bound to device_dax if the hand-off failed: loading with
	# ranges= then fails, naming the owner.
	BELUGA_PARAMS="ranges=$start+$((size / 2097152 * 2097152))"
	echo "$dax" >/etc/beluga/cxl-dax
	echo "cxl-setup: $dax ($start, $size bytes) released to Beluga: $BELUGA_PARAMS"
else
	echo "cxl-setup: no dax device; the CXL chain did not come up"
	BELUGA_PARAMS="ranges=0x0+0"	# makes harness/load-beluga fail loudly
fi
