/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: test double for the libbeluga ops layer - an in-memory fake
 * of the beluga driver (/dev/beluga ioctls over memfd-backed regions) and
 * fault injection: the Nth call through the ops layer fails with a chosen
 * errno.  Everything else goes to the real system calls.
 */
#ifndef BELUGA_TEST_FAKE_OPS_H
#define BELUGA_TEST_FAKE_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include <beluga/beluga.h>
#include <linux/beluga.h>

#define FAKE_DEVICE "/fake/dev/beluga"
#define FAKE_MAX_REGIONS 32

struct fake_region {
	bool used;
	bool destroyed;
	char name[BELUGA_NAME_MAX];
	uint64_t size;
	uint64_t id;
	uint32_t mode, uid, gid, flags;
	uint64_t shared_offset;		/* BELUGA_REGION_F_SHARED only */
	uint32_t shared_source;
	int memfd;
	uint64_t ino;
};

struct fake {
	struct beluga_ops ops;		/* hand to beluga_pool_options.ops */
	int devfd;			/* a memfd standing in for /dev/beluga */
	uint64_t devino;
	struct beluga_info info;	/* INFO template: ABI, features, bytes */
	int cmd_errno[256];		/* force an errno for ioctl nr */
	struct fake_region r[FAKE_MAX_REGIONS];
	uint64_t next_id;
	/* Fault injection: call number fail_at (1-based) fails with fail_errno. */
	long calls;
	long fail_at;
	int fail_errno;
	const char *failed_op;		/* which op the injected failure hit */
	bool real_driver;		/* ioctls go to the real driver */
	long map_bytes;			/* mmap'ed minus munmap'ed (leak check) */
	/* GPU fake. */
	int gpus;			/* 0: -BELUGA_ENOGPU */
	int gpu_registered;		/* live registered chunks */
	long gpu_register_calls;
	long gpu_fail_register_at;	/* this register call fails (-ENOMEM) */
	int moved_node;			/* move_pages reports this node if >= 0 */
	int sync_calls;
	/* Driver GPU accounting (ABI 1.1, set BELUGA_FEAT_GPU_REGISTER). */
	uint32_t gpu_bdf;		/* the fake GPU's PCI address (domain 0) */
	uint64_t gpu_max_register_bytes;
	uint32_t gpu_socket;
	int driver_gpu_refs;
	/* Sources at run time (ABI 1.3): the last requests, as received. */
	struct beluga_source_add last_add;
	struct beluga_source_remove last_remove;
};

void fake_init(struct fake *f);
void fake_fini(struct fake *f);

/* Options for a pool on the fake driver (kernel backend). */
void fake_kernel_options(struct fake *f, struct beluga_pool_options *o);

/*
 * Options for a pool on the real driver (/dev/beluga) through @f's ops:
 * calls are counted and can fail by injection, ioctls reach the driver.
 */
void fake_driver_options(struct fake *f, struct beluga_pool_options *o);

/* Number of open file descriptors of this process. */
int count_fds(void);

#endif /* BELUGA_TEST_FAKE_OPS_H */
