#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
#
# Guest setup of the demo profile (sourced by /init before beluga.ko loads):
# the loopback interface, for the redis-server the demo compares with.
ip link set lo up || ifconfig lo 127.0.0.1 up
