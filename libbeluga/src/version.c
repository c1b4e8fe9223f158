// SPDX-License-Identifier: Apache-2.0
/*
 * Description: library version and the two-way ABI check with the driver.
 *
 * The driver reports its ABI (abi_version) and the oldest user-space ABI it
 * still serves (min_abi_version).  The library needs a driver of at least its
 * own major and at least BELUGA_LIB_MIN_DRIVER_ABI; the driver must still
 * serve the library's own ABI (min_abi_version <= ours), whatever its major.  Failing the first is "driver too old",
 * failing the second "library too old".
 */
#include <linux/beluga.h>

#include "internal.h"

#ifndef BELUGA_LIB_VERSION
#define BELUGA_LIB_VERSION "0.0.0"
#endif

/* Oldest driver ABI this library can use: everything it calls exists in 1.0. */
#define BELUGA_LIB_MIN_DRIVER_ABI BELUGA_ABI_VERSION(1, 0)

const char *beluga_version(void)
{
	return BELUGA_LIB_VERSION;
}

uint32_t beluga_abi_version(void)
{
	return BELUGA_ABI_CURRENT;
}

int beluga_check_abi(uint32_t driver_abi, uint32_t driver_min_abi)
{
	uint32_t lib_major = BELUGA_ABI_CURRENT >> 16;

	if ((driver_abi >> 16) < lib_major ||
	    driver_abi < BELUGA_LIB_MIN_DRIVER_ABI)
		return -BELUGA_EDRIVER_TOO_OLD;
	if (driver_min_abi > BELUGA_ABI_CURRENT)
		return -BELUGA_ELIBRARY_TOO_OLD;
	return 0;
}
