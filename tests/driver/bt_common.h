/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bt_common.h - helpers shared by the Beluga driver VM tests (tests/driver/).
 *
 * Every test program runs as root inside the QEMU guest with beluga.ko and
 * beluga_test.ko loaded (tests/vm/).  Helpers come in two flavours:
 *  - bt_*() return -errno (or a value) and never assert, so forked children,
 *    where a CMocka failure must not longjmp, can use them;
 *  - bt_*_ok() assert with CMocka and are for the test bodies.
 * A program exits 0 (pass), 77 (skip: everything skipped) or 1 (failure):
 * see bt_main().  A case skips with bt_skip("reason"), which reports it by
 * name with the reason (tests/common/skip_report.h), so that the VM suite
 * lists and counts the cases skipped inside passing programs.
 */
#ifndef BT_COMMON_H
#define BT_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cmocka.h>

#include <linux/beluga.h>
#include "beluga_test_uapi.h"

#define BT_MIB (1ULL << 20)
#define BT_CHUNK BELUGA_CHUNK_SIZE
#define BT_PAGE 4096ULL
#define BT_NOBODY 65534		/* uid/gid of the unprivileged tests */
#define BT_SYSFS "/sys/kernel/beluga"
#define BT_DEADLINE_MS 30000	/* generous: the guest runs under TCG */
#define BT_EXIT_SKIP 77

/* Program entry: runs the group, maps failures/skips to the exit code. */
int bt_main(const char *name, const struct CMUnitTest *tests, size_t n,
	    CMFixtureFunction setup, CMFixtureFunction teardown);
/*
 * Mark the current test skipped (counted, so all-skipped exits 77) and
 * report it with its name and the printf-style reason.  bt_note_skip()
 * reports only; the caller then calls CMocka's skip().
 */
#define bt_skip(...) do { bt_note_skip(__VA_ARGS__); skip(); } while (0)
void bt_note_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Group set-up shared by the programs: bt_group_setup() opens /dev/beluga
 * into bt_dev (the group fails when it cannot) and records the device
 * node's owner and mode; bt_group_teardown() gives back what
 * bt_dev_node_chown()/bt_dev_node_chmod() changed and closes bt_dev.  Pass
 * them to bt_main(), or call them first/last from a program's own.
 */
extern int bt_dev;
int bt_group_setup(void **state);
int bt_group_teardown(void **state);
/* The device node as bt_group_setup() found it. */
const struct stat *bt_dev_node_at_setup(void);
/* Change the device node for the rest of the group; 0 or -errno. */
int bt_dev_node_chown(uid_t uid, gid_t gid);
int bt_dev_node_chmod(mode_t mode);

/* Seed for random patterns: BELUGA_TEST_SEED or time; printed once. */
uint64_t bt_seed(void);

/* --- /dev/beluga ------------------------------------------------------ */
int bt_dev_open(void);			/* fd or -errno */
int bt_dev_open_ok(void);		/* asserts */
/* ioctl() returning 0 or -errno. */
int bt_ioctl(int fd, unsigned long cmd, void *arg);
void bt_info_ok(int dev, struct beluga_info *info);
void bt_source_ok(int dev, uint32_t index, struct beluga_source_info *si);
/* INFO and SOURCE_INFO of every source (at most BT_MAX_SOURCES). */
#define BT_MAX_SOURCES 16
struct bt_sources {
	uint32_t nr;
	struct beluga_source_info si[BT_MAX_SOURCES];
};
int bt_sources(int dev, struct bt_sources *s);	/* 0 or -errno */
/* Index of the @nth (from 0) source of @kind (BELUGA_SOURCE_*), or -1. */
int bt_source_find(const struct bt_sources *s, uint32_t kind, unsigned int nth);
/* Index of the node source on NUMA node @node, or -1. */
int bt_source_on_node(const struct bt_sources *s, int node);
/* Number of sources of @kind. */
unsigned int bt_sources_count(const struct bt_sources *s, uint32_t kind);
/* Sum of free_bytes over the sources of @kind. */
uint64_t bt_sources_free(const struct bt_sources *s, uint32_t kind);
/*
 * The cxl boot writes the name of the devdax device whose range it released
 * to Beluga here; its range source is QEMU-emulated CXL memory, where every
 * access is MMIO: bt_slow_memory() tells the tests to do fewer rounds.
 */
#define BT_CXL_DAX_FILE "/etc/beluga/cxl-dax"
bool bt_slow_memory(void);
/* Physical start of the first range in the boot's ranges= (0: none). */
uint64_t bt_first_range_start(void);
/* Unique region name "bt-<tag>-<pid>-<n>" (fits in 63 bytes). */
void bt_name(char name[BELUGA_NAME_MAX], const char *tag);
/* REGION_CREATE with defaults (mode 0600, any source); -errno or fd. */
int bt_create(int dev, const char *name, uint64_t size, uint32_t mode,
	      uint32_t flags, uint64_t *id);
int bt_create_ok(int dev, const char *name, uint64_t size, uint32_t mode,
		 uint64_t *id);
/*
 * REGION_CREATE on source @kind/@index (BELUGA_SOURCE_*, -1 for any index
 * of that kind), mode 0600; the name and fd are tracked.  fd or -errno.
 */
int bt_create_on_source(int dev, const char *name, uint64_t size, uint32_t kind,
			int32_t index);
int bt_open(int dev, const char *name, uint32_t flags, uint64_t *id);
int bt_destroy(int dev, const char *name);
int bt_stat(int dev, const char *name, struct beluga_region_stat *st);
int bt_fd_stat(int rfd, struct beluga_region_stat *st);
/* LAYOUT into @nodes (capacity @cap); returns nr_chunks or -errno. */
int bt_layout(int rfd, int32_t *nodes, uint32_t cap);
/* Free bytes by INFO; asserting. */
uint64_t bt_free_ok(int dev);

/*
 * Cleanup registry: what a test creates is undone by bt_cleanup() (use it
 * as the CMocka teardown), so one failed test does not leak regions, fds or
 * mappings into the next.  Release early with bt_close()/bt_unmap()/
 * bt_destroy_ok(), which also forget the object.
 */
void bt_track_name(const char *name);
void bt_track_fd(int fd);
void bt_track_map(void *p, uint64_t len);
void bt_close(int fd);
void bt_unmap(void *p, uint64_t len);
void bt_destroy_ok(int dev, const char *name);
int bt_open_ok(int dev, const char *name, uint32_t flags, uint64_t *id);
int bt_cleanup(void **state);

/* --- mappings and data ------------------------------------------------ */
/* mmap(MAP_SHARED) of a region fd; MAP_FAILED and errno on failure. */
void *bt_map(int rfd, uint64_t len, int prot, uint64_t off);
void *bt_map_ok(int rfd, uint64_t len, int prot, uint64_t off);
/* Pattern word for byte offset @off under @salt (64-bit words). */
uint64_t bt_pattern(uint64_t salt, uint64_t off);
void bt_fill(void *p, uint64_t len, uint64_t salt);
/* Offset of the first mismatch, or UINT64_MAX if all match. */
uint64_t bt_check(const void *p, uint64_t len, uint64_t salt);
/* Offset of the first non-zero byte, or UINT64_MAX. */
uint64_t bt_check_zero(const void *p, uint64_t len);
/* Touch (write one word in) every 4 KiB page. */
void bt_touch(void *p, uint64_t len);

/* --- /sys/kernel/beluga ----------------------------------------------- */
/* Read a file under BT_SYSFS (printf-style path); 0 or -errno. */
int bt_sysfs_str(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int bt_sysfs_u64(uint64_t *val, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
uint64_t bt_sysfs_u64_ok(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* Poll a sysfs value until it equals @want or BT_DEADLINE_MS passes. */
int bt_sysfs_wait_eq(uint64_t want, uint64_t *last, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Poll INFO/sysfs until free_bytes and quarantined_bytes are as given. */
void bt_wait_pool_ok(int dev, uint64_t free_bytes);

/* --- processes ---------------------------------------------------------- */
typedef int (*bt_child_fn)(void *arg);
/*
 * Fork; the child drops to @uid/@gid (if not 0) with no supplementary
 * groups, runs @fn and exits with its return value.  Returns that value
 * (0..255) or -1 if the child died otherwise.
 */
int bt_run_as(uid_t uid, gid_t gid, bt_child_fn fn, void *arg);
int bt_drop_privileges(uid_t uid, gid_t gid);
/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t bt_now_ms(void);
void bt_sleep_ms(unsigned int ms);

/* --- test helper module /dev/beluga_test -------------------------------- */
int bt_test_open(void);		/* fd, or skips the test if absent */
/* WALK [addr, addr+len); @e must hold len / 2 MiB entries. */
int bt_walk(int tfd, const void *addr, uint64_t len,
	    struct beluga_test_walk_entry *e);
int bt_pin(int tfd, const void *addr, uint64_t len, uint32_t flags,
	   struct beluga_test_pin *out);
int bt_unpin(int tfd, uint32_t handle, uint32_t flags, uint64_t *nr);

/* --- module load/unload (beluga.ko) ------------------------------------ */
#define BT_MODULE "beluga"
bool bt_module_loaded(void);
int bt_module_unload(void);		/* 0 or -errno (delete_module) */
int bt_module_load(const char *params);	/* 0 or -errno (finit_module) */
/* Parameters the guest booted with (/etc/beluga/params). */
const char *bt_normal_params(void);
/* Make sure beluga is loaded with the normal parameters. */
int bt_module_restore(void);

/* --- kernel log --------------------------------------------------------- */
/* Open /dev/kmsg positioned at its end; fd or -errno. */
int bt_kmsg_open(void);
/*
 * Count new records containing @needle; copy the first into @first and the
 * most severe level seen (0 emerg .. 7 debug) into @level (may be NULL).
 */
int bt_kmsg_count(int kfd, const char *needle, char *first, size_t len,
		  int *level);

#endif /* BT_COMMON_H */
