// SPDX-License-Identifier: Apache-2.0
/*
 * Description: beluga_strerror - error codes to sentences that say what to do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

static const char *const lib_errors[] = {
	[BELUGA_EDRIVER_TOO_OLD - BELUGA_ERRNO_BASE] =
		"the beluga driver is too old for this library: install a newer "
		"beluga.ko (or use the user-space backend: BELUGA_BACKEND=user)",
	[BELUGA_ELIBRARY_TOO_OLD - BELUGA_ERRNO_BASE] =
		"libbeluga is too old for the loaded beluga driver: upgrade "
		"libbeluga (and the programs linked with it)",
	[BELUGA_ENODRIVER - BELUGA_ERRNO_BASE] =
		"the beluga driver is not loaded (no /dev/beluga): load it with "
		"'modprobe beluga' or use the user-space backend (BELUGA_BACKEND=user)",
	[BELUGA_ENOGPU - BELUGA_ERRNO_BASE] =
		"no usable GPU: the NVIDIA driver is not loaded or no CUDA device "
		"is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)",
	[BELUGA_ENOCUDA - BELUGA_ERRNO_BASE] =
		"libbeluga was built without CUDA support: rebuild it with the CUDA "
		"toolkit installed",
	[BELUGA_EPLACEMENT - BELUGA_ERRNO_BASE] =
		"pages left the region's NUMA node when pinned (ZONE_MOVABLE memory?): "
		"online the CXL node with 'daxctl reconfigure-device --no-movable'",
};

/* errno values the library gives a specific meaning. */
static const char *errno_hint(int err)
{
	switch (err) {
	case EEXIST:
		return "a region with that name already exists (pick another name "
		       "or destroy the old region)";
	case ENOENT:
		return "no region with that name (list regions with 'beluga-tool ls')";
	case EACCES:
		return "permission denied: the region's mode does not let you open it "
		       "(or you cannot open /dev/beluga: join its group)";
	case EPERM:
		return "operation not permitted: only the region's owner or root may "
		       "do this (chown needs root)";
	case ENOSPC:
		return "not enough free memory in the pool for that size (check "
		       "'beluga-tool info', destroy unused regions)";
	case EINVAL:
		return "invalid argument (region names are 1-63 of [A-Za-z0-9._-], "
		       "sizes a non-zero multiple of 2 MiB, modes at most 0777)";
	case ENODEV:
		return "no such GPU, or one the beluga driver does not know (list "
		       "GPUs with 'beluga-tool gpu')";
	case EDQUOT:
		return "over your quota of pool memory or regions (ask the "
		       "administrator, or destroy regions you no longer need)";
	case ENXIO:
		return "range past the end of the region (or a shared extent past "
		       "the end of its source)";
	case EBUSY:
		return "resource busy: the region is still mapped or pinned (a shared "
		       "region is destroyed only when no fd or mapping holds it; a "
		       "shared extent cannot take memory a private region holds)";
	case EADDRINUSE:
		return "that extent overlaps a shared region already defined on this "
		       "host (list them with 'beluga-tool shared list')";
	default:
		return NULL;
	}
}

const char *beluga_strerror(int err)
{
	const char *hint;

	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err > BELUGA_ERRNO_BASE && err <= BELUGA_ERRNO_LAST)
		return lib_errors[err - BELUGA_ERRNO_BASE];
	hint = errno_hint(err);
	if (hint)
		return hint;
	hint = strerrordesc_np(err);
	return hint ? hint : "unknown error";
}
