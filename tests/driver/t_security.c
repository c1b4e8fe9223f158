// SPDX-License-Identifier: Apache-2.0
/*
 * t_security.c - the security model (Documentation/hardening.md), tested
 * as unprivileged users: tenant A is uid/gid 1000, tenant B 1001, neither
 * with supplementary groups or capabilities; /dev/beluga is opened to
 * everyone for the test (mode 0666, restored afterwards), as an operator
 * would with the 'beluga' group.
 *
 * Covers:
 *  - isolation: B cannot open (RDWR or RDONLY), destroy, chmod or chown A's
 *    0600 region; a RDONLY fd cannot be upgraded (PROT_WRITE mmap/mprotect,
 *    re-open of /proc/self/fd/N read-write); B can see A's region in STAT
 *    and LIST (metadata is public, like `ls -l`); an fd A passes over a unix
 *    socket works for B (fds are capabilities);
 *  - a region fd's inode cannot be used to change what the region is:
 *    fchmod, fchown and ftruncate fail with EPERM (root included) and
 *    change nothing (STAT and fstat agree on mode, owner and size);
 *  - zeroing between tenants: A fills a region and destroys it; B's new
 *    region reuses A's chunks (same pfns, checked by root through the
 *    test helper's page-table walk) and reads zero; chunks A still
 *    references through a pipe (vmsplice) are quarantined, not handed to B,
 *    and come back (zeroed for the next tenant) once A lets go;
 *  - quotas under concurrent creation: 8 processes of one uid racing
 *    creates get exactly max_regions (then exactly max_bytes worth), the
 *    rest EDQUOT; usage in QUOTA_GET and sysfs matches; all back to 0;
 *  - privileged operations refused: QUOTA_SET, SETATTR of uid/gid (EPERM);
 *  - a GPU registration by a reader (read-only fd) makes the owner's
 *    DESTROY fail with EBUSY until the reader unregisters or closes (the
 *    documented cost of letting readers register; root is refused too);
 *  - no kernel addresses: every u64 of every ioctl result B can get, every
 *    file under /sys/kernel/beluga and /sys/module/beluga B can read, and
 *    (when dmesg_restrict lets B read the log) every log line mentioning
 *    beluga; no physical address in files B can read; with dmesg_restrict=1
 *    B cannot read the log at all.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define UID_A 1000
#define UID_B 1001
#define SIZE (4 * BT_CHUNK)

static int group_setup(void **state)
{
	/* Everyone may use the pool for this test, as with the beluga group. */
	return bt_group_setup(state) || bt_dev_node_chmod(0666);
}

/* --- fd passing between tenants ------------------------------------------------ */

static int send_fd(int sock, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'f';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;

	memset(u.buf, 0, sizeof(u.buf));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -errno;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* --- isolation ----------------------------------------------------------------- */

struct iso {
	char name[BELUGA_NAME_MAX];
	int sock[2];
	uint32_t mode;
};

/* Tenant A: create the region and hand B an fd to it. */
static int tenant_a_create(void *arg)
{
	struct iso *t = arg;
	int d = bt_dev_open(), fd;
	char *p;

	if (d < 0)
		return 10;
	fd = bt_create(d, t->name, SIZE, t->mode, 0, NULL);
	if (fd < 0)
		return 11;
	p = bt_map(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED)
		return 12;
	memset(p, 'A', BT_PAGE);
	return send_fd(t->sock[0], fd) ? 13 : 0;
}

/* Tenant B: everything that must be refused, and what must work. */
static int tenant_b_probe(void *arg)
{
	struct iso *t = arg;
	struct beluga_region_setattr sa;
	struct beluga_region_stat st;
	struct beluga_region_list l;
	static struct beluga_region_stat e[256];
	int d = bt_dev_open(), fd;
	uint32_t i, seen = 0;
	char *p;

	if (d < 0)
		return 20;
	if (bt_open(d, t->name, 0, NULL) != -EACCES)
		return 21;
	if (bt_open(d, t->name, BELUGA_OPEN_RDONLY, NULL) != -EACCES)
		return 22;
	if (bt_destroy(d, t->name) != -EPERM)
		return 23;
	memset(&sa, 0, sizeof(sa));
	strcpy(sa.name, t->name);
	sa.flags = BELUGA_SETATTR_MODE;
	sa.mode = 0666;
	if (bt_ioctl(d, BELUGA_IOC_REGION_SETATTR, &sa) != -EPERM)
		return 24;
	sa.flags = BELUGA_SETATTR_UID;
	sa.mode = 0;
	sa.uid = UID_B;
	if (bt_ioctl(d, BELUGA_IOC_REGION_SETATTR, &sa) != -EPERM)
		return 25;
	/* Metadata is public: STAT and LIST show A's region to B. */
	if (bt_stat(d, t->name, &st) || st.uid != UID_A || st.mode != t->mode)
		return 26;
	memset(&l, 0, sizeof(l));
	l.entries = (uintptr_t)e;
	l.capacity = 256;
	if (bt_ioctl(d, BELUGA_IOC_REGION_LIST, &l))
		return 27;
	for (i = 0; i < l.count && i < 256; i++)
		seen += !strcmp(e[i].name, t->name);
	if (seen != 1)
		return 28;
	/* An fd A passed is a capability: B maps it and sees A's data. */
	fd = recv_fd(t->sock[1]);
	if (fd < 0)
		return 29;
	p = bt_map(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED || p[0] != 'A')
		return 30;
	munmap(p, SIZE);
	/* fchmod/fchown by a non-owner: refused by the VFS. */
	if (!fchmod(fd, 0666) || !fchown(fd, UID_B, UID_B))
		return 31;
	return 0;
}

static void test_isolation(void **state)
{
	struct iso t;

	(void)state;
	memset(&t, 0, sizeof(t));
	bt_name(t.name, "secA");
	bt_track_name(t.name);
	t.mode = 0600;
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, t.sock), 0);
	assert_int_equal(bt_run_as(UID_A, UID_A, tenant_a_create, &t), 0);
	assert_int_equal(bt_run_as(UID_B, UID_B, tenant_b_probe, &t), 0);
	close(t.sock[0]);
	close(t.sock[1]);
	/* A still owns it and may destroy it. */
	bt_destroy_ok(bt_dev, t.name);
}

/* --- read-only fds stay read-only ------------------------------------------- */

static int tenant_b_readonly(void *arg)
{
	const char *name = arg;
	char path[64];
	int d = bt_dev_open(), fd, fd2;
	char *p;

	if (d < 0)
		return 40;
	if (bt_open(d, name, 0, NULL) != -EACCES)
		return 41;		/* 0644: no write for others */
	fd = bt_open(d, name, BELUGA_OPEN_RDONLY, NULL);
	if (fd < 0)
		return 42;
	p = bt_map(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	if (p != MAP_FAILED || errno != EACCES)
		return 43;
	p = bt_map(fd, SIZE, PROT_READ, 0);
	if (p == MAP_FAILED || p[0] != 'R')
		return 44;
	if (!mprotect(p, SIZE, PROT_READ | PROT_WRITE) || errno != EACCES)
		return 45;
	/* Not through /proc either: region inodes cannot be opened at all. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR);
	if (fd2 >= 0)
		return 46;
	fd2 = open(path, O_RDONLY);
	if (fd2 >= 0)
		return 47;
	if (!ftruncate(fd, 0))
		return 48;
	return 0;
}

static void test_readonly_fd(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd, status;
	char *p;

	(void)state;
	bt_name(name, "secro");
	bt_track_name(name);
	fd = bt_create_ok(bt_dev, name, SIZE, 0644, NULL);
	bt_track_fd(fd);
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	memset(p, 'R', BT_PAGE);
	status = bt_run_as(UID_B, UID_B, tenant_b_readonly, name);
	if (status)
		fail_msg("tenant B step %d", status);
	assert_int_equal(p[0], 'R');
}

/* --- the region inode cannot change the region behind the driver's back ------ */

static void test_inode_attrs(void **state)
{
	char name[BELUGA_NAME_MAX];
	struct beluga_region_stat st;
	struct stat fst;
	int fd, ret;
	char *p;

	(void)state;
	bt_name(name, "secattr");
	bt_track_name(name);
	fd = bt_create_ok(bt_dev, name, SIZE, 0600, NULL);
	bt_track_fd(fd);
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	memset(p, 'S', SIZE);

	/*
	 * chmod, chown and truncate of the fd: refused with EPERM (as root
	 * too), and nothing changes: owner and mode belong to REGION_SETATTR.
	 */
	ret = fchmod(fd, 0666);
	if (ret != -1 || errno != EPERM)
		fail_msg("fchmod(0666) on a region fd: %d (%s), expected EPERM", ret, strerror(errno));
	ret = fchown(fd, 1234, 1234);
	if (ret != -1 || errno != EPERM)
		fail_msg("fchown on a region fd: %d (%s), expected EPERM", ret, strerror(errno));
	ret = ftruncate(fd, 0);
	if (ret != -1 || errno != EPERM)
		fail_msg("ftruncate(0) on a region fd: %d (%s), expected EPERM", ret, strerror(errno));
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(fstat(fd, &fst), 0);
	assert_int_equal(st.mode, 0600);
	assert_int_equal(fst.st_mode & 0777, 0600);
	assert_int_equal(st.uid, getuid());
	assert_int_equal(fst.st_uid, getuid());
	assert_int_equal(fst.st_size, SIZE);
	assert_int_equal(p[SIZE - 1], 'S');
}

/* --- zeroing between tenants ------------------------------------------------ */

struct zero_job {
	char name[BELUGA_NAME_MAX];
	uint64_t size;
	int pipe_fd;		/* >= 0: vmsplice a page of the mapping into it */
};

/* Tenant: create @name, fill it with a pattern, keep it (named). */
static int tenant_fill(void *arg)
{
	struct zero_job *z = arg;
	int d = bt_dev_open(), fd;
	uint8_t *p;

	if (d < 0)
		return 50;
	fd = bt_create(d, z->name, z->size, 0600, 0, NULL);
	if (fd < 0)
		return 51;
	p = bt_map(fd, z->size, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED)
		return 52;
	bt_fill(p, z->size, 0xa11ce);
	if (z->pipe_fd >= 0) {
		/* The pipe keeps references to the page after everything else. */
		struct iovec iov = { .iov_base = p, .iov_len = BT_PAGE };

		if (vmsplice(z->pipe_fd, &iov, 1, 0) != (ssize_t)BT_PAGE)
			return 53;
	}
	return 0;
}

static int tenant_destroy(void *arg)
{
	struct zero_job *z = arg;
	int d = bt_dev_open();

	return d < 0 ? 55 : bt_destroy(d, z->name) ? 56 : 0;
}

/* Tenant: create @name and check every byte is zero. */
static int tenant_create_check_zero(void *arg)
{
	struct zero_job *z = arg;
	int d = bt_dev_open(), fd;
	uint8_t *p;

	if (d < 0)
		return 60;
	fd = bt_create(d, z->name, z->size, 0600, 0, NULL);
	if (fd < 0)
		return 61;
	p = bt_map(fd, z->size, PROT_READ, 0);
	if (p == MAP_FAILED)
		return 62;
	return bt_check_zero(p, z->size) == UINT64_MAX ? 0 : 63;
}

/*
 * pfn of the first page of every chunk of @name, as root sees it through
 * the helper's page-table walk; with @salt, also check the tenant's pattern.
 */
static void region_pfns(int tfd, const char *name, uint64_t size, uint64_t *pfns,
			bool check_pattern)
{
	struct beluga_test_walk_entry e[16];
	uint64_t i, n = size / BT_CHUNK;
	int fd = bt_open_ok(bt_dev, name, BELUGA_OPEN_RDONLY, NULL);
	volatile uint8_t *p = bt_map_ok(fd, size, PROT_READ, 0);

	assert_true(n <= 16);
	for (i = 0; i < size; i += BT_PAGE)
		(void)p[i];
	if (check_pattern)
		assert_int_equal(bt_check((const void *)p, size, 0xa11ce), UINT64_MAX);
	assert_int_equal(bt_walk(tfd, (const void *)p, size, e), 0);
	for (i = 0; i < n; i++)
		pfns[i] = e[i].pfn;
	bt_unmap((void *)p, size);
	bt_close(fd);
}

static void test_zeroing_between_tenants(void **state)
{
	struct zero_job za, zb;
	uint64_t pfn_a[16], pfn_b[16], i, j, reused = 0;
	int tfd = bt_test_open();

	(void)state;
	memset(&za, 0, sizeof(za));
	za.size = SIZE;
	za.pipe_fd = -1;
	zb = za;
	bt_name(za.name, "zeroA");
	bt_name(zb.name, "zeroB");
	bt_track_name(za.name);
	bt_track_name(zb.name);

	assert_int_equal(bt_run_as(UID_A, UID_A, tenant_fill, &za), 0);
	region_pfns(tfd, za.name, za.size, pfn_a, true);
	assert_int_equal(bt_run_as(UID_A, UID_A, tenant_destroy, &za), 0);
	/* Same size again: the LIFO free lists hand B what A had. */
	assert_int_equal(bt_run_as(UID_B, UID_B, tenant_create_check_zero, &zb), 0);
	region_pfns(tfd, zb.name, zb.size, pfn_b, false);
	bt_destroy_ok(bt_dev, zb.name);
	for (i = 0; i < SIZE / BT_CHUNK; i++)
		for (j = 0; j < SIZE / BT_CHUNK; j++)
			reused += pfn_a[i] && pfn_a[i] == pfn_b[j];
	print_message("%" PRIu64 " of %llu chunks went from tenant A to tenant B\n", reused,
		      SIZE / BT_CHUNK);
	assert_int_equal(reused, SIZE / BT_CHUNK);
}

static void test_quarantine_between_tenants(void **state)
{
	struct zero_job za, zb;
	struct beluga_info before, mid;
	int pipefd[2];

	(void)state;
	bt_info_ok(bt_dev, &before);
	memset(&za, 0, sizeof(za));
	za.size = SIZE;
	bt_name(za.name, "quarA");
	zb = za;
	bt_name(zb.name, "quarB");
	bt_track_name(za.name);
	bt_track_name(zb.name);
	assert_int_equal(pipe(pipefd), 0);
	za.pipe_fd = pipefd[1];
	zb.pipe_fd = -1;
	assert_int_equal(bt_run_as(UID_A, UID_A, tenant_fill, &za), 0);
	assert_int_equal(bt_run_as(UID_A, UID_A, tenant_destroy, &za), 0);
	/* A is gone; the pipe still holds a page of A's first chunk. */
	bt_info_ok(bt_dev, &mid);
	assert_int_equal(mid.quarantined_bytes, BT_CHUNK);
	assert_int_equal(mid.free_bytes, before.free_bytes - BT_CHUNK);
	assert_int_equal(bt_run_as(UID_B, UID_B, tenant_create_check_zero, &zb), 0);
	bt_destroy_ok(bt_dev, zb.name);
	close(pipefd[0]);
	close(pipefd[1]);
	bt_wait_pool_ok(bt_dev, before.free_bytes);
	/* Back in the pool, zeroed for whoever gets it next. */
	assert_int_equal(bt_run_as(UID_B, UID_B, tenant_create_check_zero, &zb), 0);
	bt_destroy_ok(bt_dev, zb.name);
	bt_wait_pool_ok(bt_dev, before.free_bytes);
}

/* --- quotas under concurrent creation ----------------------------------------- */

static int quota_set(uint32_t uid, uint64_t max_bytes, uint32_t max_regions)
{
	struct beluga_quota q;

	memset(&q, 0, sizeof(q));
	q.uid = uid;
	q.flags = BELUGA_QUOTA_SET_ALL;
	q.max_bytes = max_bytes;
	q.max_regions = max_regions;
	return bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_SET, &q);
}

static void quota_get(uint32_t uid, struct beluga_quota *q)
{
	memset(q, 0, sizeof(*q));
	q->uid = uid;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_GET, q), 0);
}

#define RACERS 8

/*
 * RACERS processes of uid A wait on a pipe, then each creates two one-chunk
 * regions.  Returns how many creates succeeded; every failure must be
 * EDQUOT.  The regions stay until destroy_racers().
 */
static int race_creates(char names[RACERS][2][BELUGA_NAME_MAX])
{
	int go[2], i, ok = 0, status;
	pid_t pids[RACERS];

	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	for (i = 0; i < RACERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (!pids[i]) {
			int d, k, n = 0, fd;
			char c;

			close(go[1]);
			if (bt_drop_privileges(UID_A, UID_A))
				_exit(100);
			d = bt_dev_open();
			if (d < 0 || read(go[0], &c, 1) != 0)	/* EOF: go */
				_exit(101);
			for (k = 0; k < 2; k++) {
				fd = bt_create(d, names[i][k], BT_CHUNK, 0600, 0, NULL);
				if (fd >= 0)
					n++;
				else if (fd != -EDQUOT)
					_exit(102);
			}
			_exit(n);
		}
	}
	close(go[0]);
	close(go[1]);	/* everyone starts at once */
	for (i = 0; i < RACERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) <= 2);
		ok += WEXITSTATUS(status);
	}
	return ok;
}

static void destroy_racers(char names[RACERS][2][BELUGA_NAME_MAX])
{
	int i, k;

	for (i = 0; i < RACERS; i++)
		for (k = 0; k < 2; k++)
			bt_destroy(bt_dev, names[i][k]);
}

static void test_quota_race(void **state)
{
	static char names[RACERS][2][BELUGA_NAME_MAX];
	struct beluga_quota saved, q;
	int i, k, ok;

	(void)state;
	quota_get(UID_A, &saved);
	for (i = 0; i < RACERS; i++) {
		for (k = 0; k < 2; k++) {
			bt_name(names[i][k], "quota");
			bt_track_name(names[i][k]);
		}
	}
	/* Region limit. */
	assert_int_equal(quota_set(UID_A, 0, 3), 0);
	ok = race_creates(names);
	quota_get(UID_A, &q);
	print_message("max_regions 3: %d of %d creates succeeded\n", ok, 2 * RACERS);
	assert_int_equal(ok, 3);
	assert_int_equal(q.used_regions, 3);
	assert_int_equal(q.used_bytes, 3 * BT_CHUNK);
	assert_int_equal(bt_sysfs_u64_ok("quotas/%d/used_regions", UID_A), 3);
	destroy_racers(names);
	quota_get(UID_A, &q);
	assert_int_equal(q.used_regions, 0);
	assert_int_equal(q.used_bytes, 0);

	/* Byte limit. */
	assert_int_equal(quota_set(UID_A, 5 * BT_CHUNK, 0), 0);
	ok = race_creates(names);
	quota_get(UID_A, &q);
	print_message("max_bytes 5 chunks: %d of %d creates succeeded\n", ok, 2 * RACERS);
	assert_int_equal(ok, 5);
	assert_int_equal(q.used_bytes, 5 * BT_CHUNK);
	assert_int_equal(bt_sysfs_u64_ok("quotas/%d/used_bytes", UID_A), 5 * BT_CHUNK);
	destroy_racers(names);
	assert_int_equal(quota_set(UID_A, saved.max_bytes, saved.max_regions), 0);
	quota_get(UID_A, &q);
	assert_int_equal(q.used_regions, 0);
	assert_int_equal(q.used_bytes, 0);
}

/* --- privileged operations -------------------------------------------------------- */

static int tenant_privileged(void *arg)
{
	char name[BELUGA_NAME_MAX];
	struct beluga_region_setattr sa;
	struct beluga_quota q;
	int d = bt_dev_open(), fd, ret = 0;

	(void)arg;
	if (d < 0)
		return 70;
	memset(&q, 0, sizeof(q));
	q.uid = UID_B;
	q.flags = BELUGA_QUOTA_SET_REGIONS;
	q.max_regions = 1000;
	if (bt_ioctl(d, BELUGA_IOC_QUOTA_SET, &q) != -EPERM)
		return 71;
	bt_name(name, "secpriv");
	fd = bt_create(d, name, BT_CHUNK, 0600, 0, NULL);
	if (fd < 0)
		return 72;
	memset(&sa, 0, sizeof(sa));
	strcpy(sa.name, name);
	sa.flags = BELUGA_SETATTR_UID;
	sa.uid = UID_A;
	if (bt_ioctl(d, BELUGA_IOC_REGION_SETATTR, &sa) != -EPERM)
		ret = 73;
	sa.flags = BELUGA_SETATTR_GID;
	sa.uid = 0;
	sa.gid = 0;
	if (!ret && bt_ioctl(d, BELUGA_IOC_REGION_SETATTR, &sa) != -EPERM)
		ret = 74;
	/* Its own mode: allowed. */
	sa.flags = BELUGA_SETATTR_MODE;
	sa.gid = 0;
	sa.mode = 0640;
	if (!ret && bt_ioctl(d, BELUGA_IOC_REGION_SETATTR, &sa))
		ret = 75;
	if (bt_destroy(d, name))
		ret = ret ? ret : 76;
	return ret;
}

static void test_privileged_ops(void **state)
{
	(void)state;
	assert_int_equal(bt_run_as(UID_B, UID_B, tenant_privileged, NULL), 0);
}

/* --- GPU registration by a reader --------------------------------------------- */

struct reader_gpu {
	char name[BELUGA_NAME_MAX];
	int go[2], done[2];
	uint32_t domain, bdf;
};

/* Reader: open RDONLY, register, tell the parent, wait, exit (drops it). */
static int tenant_reader_gpu(void *arg)
{
	struct reader_gpu *r = arg;
	struct beluga_gpu_register g;
	int d = bt_dev_open(), fd;
	char c;

	if (d < 0)
		return 100;
	fd = bt_open(d, r->name, BELUGA_OPEN_RDONLY, NULL);
	if (fd < 0)
		return 101;
	memset(&g, 0, sizeof(g));
	g.pci_domain = r->domain;
	g.pci_bdf = r->bdf;
	if (bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &g))
		return 102;
	if (write(r->go[1], "r", 1) != 1 || read(r->done[0], &c, 1) != 1)
		return 103;
	return 0;
}

static void test_gpu_registration_by_reader(void **state)
{
	struct reader_gpu r;
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	unsigned int dom, bus, slot, fn;
	bool found = false;
	int fd, status;
	char c;
	pid_t pid;

	(void)state;
	memset(&r, 0, sizeof(r));
	while (d && !found && (de = readdir(d)))
		if (sscanf(de->d_name, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) == 4) {
			r.domain = dom;
			r.bdf = bus << 8 | slot << 3 | fn;
			found = true;
		}
	if (d)
		closedir(d);
	if (!found)
		bt_skip("no PCI device");
	bt_name(r.name, "secgpu");
	bt_track_name(r.name);
	fd = bt_create_ok(bt_dev, r.name, SIZE, 0644, NULL);
	bt_close(fd);
	assert_int_equal(pipe(r.go), 0);
	assert_int_equal(pipe(r.done), 0);
	fflush(NULL);
	pid = fork();
	if (!pid)
		_exit(bt_drop_privileges(UID_B, UID_B) ? 99 : tenant_reader_gpu(&r));
	assert_int_equal(read(r.go[0], &c, 1), 1);
	/* Even the owner with CAP_SYS_ADMIN waits for the reader. */
	assert_int_equal(bt_destroy(bt_dev, r.name), -EBUSY);
	assert_int_equal(write(r.done[1], "d", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	bt_destroy_ok(bt_dev, r.name);
	close(r.go[0]);
	close(r.go[1]);
	close(r.done[0]);
	close(r.done[1]);
}

/* --- no kernel addresses ---------------------------------------------------------- */

static regex_t kva_re, phys_re;

static void compile_patterns(void)
{
	static bool done;

	if (done)
		return;
	/* A kernel virtual address on x86-64, with or without 0x. */
	assert_int_equal(regcomp(&kva_re, "(^|[^0-9a-fA-F])(0x)?ffff[89a-f][0-9a-f]{11}([^0-9a-fA-F]|$)",
				 REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
	/* A physical address as %pa prints it (0x + 16 hex digits). */
	assert_int_equal(regcomp(&phys_re, "0x[0-9a-f]{16}", REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
	done = true;
}

struct leak_scan {
	int files, unreadable;
	bool phys_too;		/* also refuse physical addresses */
	char bad[256];
};

static void scan_text(struct leak_scan *s, const char *where, const char *text)
{
	if (!s->bad[0] && !regexec(&kva_re, text, 0, NULL, 0))
		snprintf(s->bad, sizeof(s->bad), "kernel address in %s: %.120s", where, text);
	if (!s->bad[0] && s->phys_too && !regexec(&phys_re, text, 0, NULL, 0))
		snprintf(s->bad, sizeof(s->bad), "physical address in %s: %.120s", where, text);
}

/* Read every file under @dir that the caller can read. */
static void scan_tree(struct leak_scan *s, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[512], buf[4096];
		struct stat st;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) || S_ISLNK(st.st_mode))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < 6)
				scan_tree(s, path, depth + 1);
			continue;
		}
		fd = open(path, O_RDONLY | O_NONBLOCK);
		if (fd < 0) {
			s->unreadable++;
			continue;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			continue;
		buf[n] = '\0';
		s->files++;
		scan_text(s, path, buf);
	}
	closedir(d);
}

static bool kernel_like(uint64_t v)
{
	return v >= 0xffff800000000000ULL;
}

/* Tenant B: collect every u64 it can get from the driver and scan sysfs. */
static int tenant_scan(void *arg)
{
	struct leak_scan *s = arg;
	struct beluga_info info;
	struct beluga_region_stat st;
	struct beluga_region_layout lay;
	struct beluga_quota q;
	char name[BELUGA_NAME_MAX];
	int32_t nodes[8];
	int d = bt_dev_open(), fd;
	uint32_t i;

	if (d < 0)
		return 80;
	memset(&info, 0, sizeof(info));
	if (bt_ioctl(d, BELUGA_IOC_INFO, &info))
		return 81;
	if (kernel_like(info.features) || kernel_like(info.total_bytes) ||
	    kernel_like(info.free_bytes) || kernel_like(info.quarantined_bytes))
		return 82;
	for (i = 0; i < info.nr_sources; i++) {
		struct beluga_source_info si = { .index = i };

		if (bt_ioctl(d, BELUGA_IOC_SOURCE_INFO, &si) || kernel_like(si.total_bytes) ||
		    kernel_like(si.free_bytes))
			return 83;
	}
	bt_name(name, "secscan");
	fd = bt_create(d, name, BT_CHUNK, 0600, 0, NULL);
	if (fd < 0 || bt_fd_stat(fd, &st) || kernel_like(st.id) || kernel_like(st.size))
		return 84;
	memset(&lay, 0, sizeof(lay));
	lay.nodes = (uintptr_t)nodes;
	lay.capacity = 8;
	if (bt_ioctl(fd, BELUGA_IOC_REGION_LAYOUT, &lay) || kernel_like(lay.chunk_size))
		return 85;
	memset(&q, 0, sizeof(q));
	q.uid = UID_B;
	if (bt_ioctl(d, BELUGA_IOC_QUOTA_GET, &q) || kernel_like(q.used_bytes) ||
	    kernel_like(q.max_bytes))
		return 86;
	/*
	 * The driver's own files promise neither kernel nor physical addresses;
	 * /sys/module/beluga holds the load parameters (ranges= is what the
	 * admin typed, also on /proc/cmdline as memmap=): kernel addresses only.
	 */
	s->phys_too = true;
	scan_tree(s, BT_SYSFS, 0);
	s->phys_too = false;
	scan_tree(s, "/sys/module/beluga", 0);
	bt_destroy(d, name);
	return 0;
}

static void test_no_kernel_addresses(void **state)
{
	struct leak_scan s, *shared;

	(void)state;
	compile_patterns();
	/* The child's findings come back through a shared mapping. */
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, sizeof(*shared));
	assert_int_equal(bt_run_as(UID_B, UID_B, tenant_scan, shared), 0);
	s = *shared;
	munmap(shared, sizeof(*shared));
	print_message("read %d files as uid %d (%d not readable)\n", s.files, UID_B, s.unreadable);
	assert_true(s.files > 10);
	if (s.bad[0])
		fail_msg("%s", s.bad);
}

struct dmesg_scan {
	struct leak_scan s;
	bool restricted;	/* kernel.dmesg_restrict */
	int status;
};

/* dmesg: unreadable for B, or readable without kernel addresses in our lines. */
static int tenant_dmesg(void *arg)
{
	struct dmesg_scan *m = arg;
	static char log[1 << 20];
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, sizeof(log) - 1);
	char *line, *save;

	if (m->restricted)
		return n < 0 && errno == EPERM ? 0 : 90;
	if (n < 0)
		return 91;
	log[n] = '\0';
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, "beluga"))
			continue;
		m->s.files++;
		scan_text(&m->s, "a log line", line);
	}
	return 0;
}

static void test_dmesg(void **state)
{
	struct dmesg_scan *m;
	FILE *f = fopen("/proc/sys/kernel/dmesg_restrict", "r");
	int restricted = -1, ret;

	(void)state;
	compile_patterns();
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &restricted), 1);
	fclose(f);
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	memset(m, 0, sizeof(*m));
	m->restricted = restricted != 0;
	ret = bt_run_as(UID_B, UID_B, tenant_dmesg, m);
	print_message("dmesg_restrict=%d; %d beluga log lines readable by uid %d\n",
		      restricted, m->s.files, UID_B);
	if (ret)
		fail_msg("dmesg check step %d", ret);
	if (m->s.bad[0])
		fail_msg("%s", m->s.bad);
	munmap(m, sizeof(*m));
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_isolation),
		T(test_readonly_fd),
		T(test_inode_attrs),
		T(test_zeroing_between_tenants),
		T(test_quarantine_between_tenants),
		T(test_quota_race),
		T(test_privileged_ops),
		T(test_gpu_registration_by_reader),
		T(test_no_kernel_addresses),
		T(test_dmesg),
	};

	return bt_main("drv_security", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
