// SPDX-License-Identifier: Apache-2.0
/*
 * t_fault.c - fault injection on every allocation and user-copy path of
 * the driver (debug kernel only: skipped where /sys/kernel/debug/failslab
 * does not exist, i.e. on Debian's own kernel).
 *
 * Two methods:
 *  - fail-nth sweeps (/proc/thread-self/fail-nth): for N = 1, 2, ... the
 *    N-th fault point of one operation fails - a slab allocation
 *    (failslab), a page allocation (fail_page_alloc, order 0 and up) or a
 *    user copy (fail_usercopy) - until the operation runs out of fault
 *    points and succeeds.  Every injected failure must give a clean errno
 *    (ENOMEM or EFAULT; module load: any errno) and leave nothing behind:
 *    region count, free bytes, sysfs region directories, open fds, open
 *    and map counts, GPU registrations all as before.  Swept: REGION_CREATE
 *    (named, ephemeral, on a range source when there is one, and by a uid
 *    with no quota entry yet, so the entry's creation fails too),
 *    REGION_OPEN, REGION_LIST, GPU_REGISTER, QUOTA_SET of a new uid, mmap
 *    of a region fd (the core mm failing after ->mmap), the usercopy-only
 *    queries, and module load (parsing, carving, sysfs, range claiming)
 *    with the node's free memory and /proc/iomem checked after each
 *    failed load;
 *  - task-filtered random injection (make-it-fail): a child with
 *    make-it-fail=1 runs random operations while 20 % of its slab
 *    allocations and user copies and 5 % of its page allocations fail.
 * Leaks are caught by kmemleak: the VM harness scans after the suite and
 * the debug profiles fail on any report.  Kernel messages of injected
 * allocation failures (FAULT_INJECTION lines, warn_alloc dumps) are
 * expected; tests/vm/judge.py accepts exactly those.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DBG "/sys/kernel/debug"
#define SIZE (2 * BT_CHUNK)
#define MAX_POINTS 400		/* a sweep that never ends is a failure */

static int nth_fd = -1;		/* /proc/thread-self/fail-nth */
static bool have_fi;
static const char *const attrs[] = { "failslab", "fail_page_alloc", "fail_usercopy" };

/* --- fault-injection plumbing ------------------------------------------------ */

static int fi_write(const char *attr, const char *file, const char *val)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), DBG "/%s/%s", attr, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Every allocation counts, not only the ones that may not sleep, from order
 * 0 up; one message per injected failure, without a stack dump, never
 * rate-limited (tests/vm/judge.py pairs each with the warn_alloc it causes).
 */
static void fi_configure(bool on)
{
	unsigned int i;

	fi_write("failslab", "ignore-gfp-wait", on ? "N" : "Y");
	fi_write("fail_page_alloc", "ignore-gfp-wait", on ? "N" : "Y");
	fi_write("fail_page_alloc", "ignore-gfp-highmem", on ? "N" : "Y");
	fi_write("fail_page_alloc", "min-order", on ? "0" : "1");
	for (i = 0; i < 3; i++) {
		fi_write(attrs[i], "verbose", on ? "1" : "2");
		fi_write(attrs[i], "verbose_ratelimit_burst", on ? "1000000" : "10");
		fi_write(attrs[i], "probability", "0");
		fi_write(attrs[i], "task-filter", "N");
		fi_write(attrs[i], "times", "1");
	}
}

static int group_setup(void **state)
{
	if (bt_group_setup(state))
		return 1;
	if (access(DBG "/failslab", F_OK))
		mount("debugfs", DBG, "debugfs", 0, NULL);
	have_fi = !access(DBG "/failslab", F_OK) && !access(DBG "/fail_page_alloc", F_OK);
	if (!have_fi)
		return 0;
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (nth_fd < 0)
		return 1;
	fi_configure(true);
	bt_dev_node_chmod(0666);	/* the new-uid sweep */
	return 0;
}

static int group_teardown(void **state)
{
	if (have_fi)
		fi_configure(false);
	return bt_group_teardown(state);
}

static void need_fi(void)
{
	if (!have_fi)
		bt_skip("no " DBG "/failslab: not a fault-injection (debug) kernel");
}

/* Arm: the @n-th fault point from now fails.  Keep this path allocation-free. */
static inline void fi_arm(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (pwrite(fd, buf, (size_t)len, 0) != len)
		abort();
}

/*
 * Disarm; true if the armed failure was injected by the operation.  The
 * read and write of fail-nth are fault points themselves (their user
 * copies): a read failing with EFAULT means one point was left, i.e. the
 * operation did not reach it; a write may fail the same way once.
 */
static bool fi_disarm(int fd)
{
	char buf[16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	bool fired;
	int i;

	if (n < 0 && errno != EFAULT)
		abort();
	if (n > 0) {
		buf[n] = '\0';
		fired = strtoul(buf, NULL, 10) == 0;
	} else {
		fired = false;
	}
	for (i = 0; pwrite(fd, "0", 1, 0) != 1; i++)
		if (errno != EFAULT || i == 2)
			abort();
	return fired;
}

/* --- what must not change when an operation fails ------------------------------ */

struct state {
	uint32_t nr_regions;
	uint64_t free_bytes, quarantined;
	int region_dirs, fds;
};

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void state_get(struct state *s)
{
	struct beluga_info info;

	bt_info_ok(bt_dev, &info);
	s->nr_regions = info.nr_regions;
	s->free_bytes = info.free_bytes;
	s->quarantined = info.quarantined_bytes;
	s->region_dirs = count_dir(BT_SYSFS "/regions");
	s->fds = count_dir("/proc/self/fd");
}

static void state_same(const char *what, unsigned int n, long ret, const struct state *a)
{
	struct state b;

	state_get(&b);
	if (a->nr_regions != b.nr_regions || a->free_bytes != b.free_bytes ||
	    a->quarantined != b.quarantined || a->region_dirs != b.region_dirs ||
	    a->fds != b.fds)
		fail_msg("%s: fault point %u failed it with %ld but left state behind: regions %u->%u,"
			 " free %" PRIu64 "->%" PRIu64 ", quarantined %" PRIu64 "->%" PRIu64
			 ", sysfs dirs %d->%d, fds %d->%d", what, n, ret, a->nr_regions,
			 b.nr_regions, a->free_bytes, b.free_bytes, a->quarantined, b.quarantined,
			 a->region_dirs, b.region_dirs, a->fds, b.fds);
}

/* --- the sweep ----------------------------------------------------------------- */

struct op {
	const char *what;
	long (*run)(struct op *o);		/* >= 0 success, -errno */
	void (*undo)(struct op *o, long ret);	/* after a success */
	void (*check)(struct op *o);		/* extra invariants after a failure */
	char name[BELUGA_NAME_MAX];
	int fd;					/* a region fd the op works on */
	uint32_t flags, kind;
	uint64_t value;
};

static bool errno_ok(long ret)
{
	return ret == -ENOMEM || ret == -EFAULT;
}

/*
 * Inject at fault point 1, 2, ... until the operation succeeds with the
 * armed point never reached.  Returns the number of fault points.
 */
static unsigned int sweep(struct op *o)
{
	unsigned int n, failed = 0, tolerated = 0;
	struct state before;
	long ret;

	for (n = 1; n <= MAX_POINTS; n++) {
		bool fired;

		state_get(&before);
		fi_arm(nth_fd, n);
		ret = o->run(o);
		fired = fi_disarm(nth_fd);
		if (!fired) {
			if (ret < 0)
				fail_msg("%s failed with %ld without an injected fault", o->what, ret);
			o->undo(o, ret);
			print_message("%s: %u fault points; %u injected failures returned an errno,"
				      " %u were absorbed\n", o->what, n - 1, failed, tolerated);
			return n - 1;
		}
		if (ret >= 0) {	/* absorbed (e.g. kvmalloc fell back to vmalloc) */
			tolerated++;
			o->undo(o, ret);
			continue;
		}
		failed++;
		if (!errno_ok(ret))
			fail_msg("%s: fault point %u gave %ld (%s), want ENOMEM or EFAULT", o->what,
				 n, ret, strerror((int)-ret));
		state_same(o->what, n, ret, &before);
		if (o->check)
			o->check(o);
	}
	fail_msg("%s: still failing after %d fault points", o->what, MAX_POINTS);
	return 0;
}

/* --- operations ---------------------------------------------------------------- */

static long op_create(struct op *o)
{
	struct beluga_region_create c;

	memset(&c, 0, sizeof(c));
	if (!(o->flags & BELUGA_CREATE_EPHEMERAL))
		memcpy(c.name, o->name, BELUGA_NAME_MAX);
	c.size = SIZE;
	c.mode = 0600;
	c.flags = o->flags;
	c.source_kind = o->kind;
	c.source_index = -1;
	if (ioctl(bt_dev, BELUGA_IOC_REGION_CREATE, &c))
		return -errno;
	return c.fd;
}

static void undo_create(struct op *o, long ret)
{
	close((int)ret);
	if (!(o->flags & BELUGA_CREATE_EPHEMERAL))
		bt_destroy_ok(bt_dev, o->name);
}

static void check_no_name(struct op *o)
{
	struct beluga_region_stat st;

	if (!(o->flags & BELUGA_CREATE_EPHEMERAL))
		assert_int_equal(bt_stat(bt_dev, o->name, &st), -ENOENT);
}

static void sweep_create(uint32_t flags, uint32_t kind, const char *what)
{
	struct op o = { .what = what, .run = op_create, .undo = undo_create,
			.check = check_no_name, .flags = flags, .kind = kind };

	bt_name(o.name, "fcreate");
	bt_track_name(o.name);
	assert_true(sweep(&o) > 3);
}

static void test_create(void **state)
{
	(void)state;
	need_fi();
	sweep_create(0, BELUGA_SOURCE_ANY, "REGION_CREATE (named)");
	sweep_create(BELUGA_CREATE_EPHEMERAL | BELUGA_CREATE_CLOEXEC, BELUGA_SOURCE_ANY,
		     "REGION_CREATE (ephemeral)");
}

static bool has_kind(uint32_t kind)
{
	struct beluga_info info;
	struct beluga_source_info si;
	uint32_t i;

	bt_info_ok(bt_dev, &info);
	for (i = 0; i < info.nr_sources; i++) {
		bt_source_ok(bt_dev, i, &si);
		if (si.kind == kind)
			return true;
	}
	return false;
}

static void test_create_range(void **state)
{
	(void)state;
	need_fi();
	if (!has_kind(BELUGA_SOURCE_RANGE))
		bt_skip("no range source in this boot");
	sweep_create(0, BELUGA_SOURCE_RANGE, "REGION_CREATE (range source)");
}

/* A uid with no quota entry yet, so create must also make the entry. */
struct newuid_result {
	long ret;
	bool fired;
};

static long op_create_newuid(struct op *o)
{
	struct newuid_result *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned int n = (unsigned int)o->value;
	uid_t uid = 40000 + (uid_t)o->flags++;
	int status;
	long ret;
	pid_t pid;

	if (res == MAP_FAILED)
		return -ENOMEM;
	memset(res, 0, sizeof(*res));	/* shared page present before arming */
	fflush(NULL);
	pid = fork();
	if (!pid) {
		struct beluga_region_create c;
		/* Before the uid change, which makes our /proc files root's. */
		int fd = open("/proc/thread-self/fail-nth", O_RDWR), d;
		long r;

		if (fd < 0 || bt_drop_privileges(uid, uid))
			_exit(1);
		d = bt_dev_open();
		if (d < 0)
			_exit(2);
		/* Nothing between arm and disarm but the ioctl (no page faults). */
		memset(&c, 0, sizeof(c));
		memcpy(c.name, o->name, BELUGA_NAME_MAX);
		c.size = SIZE;
		c.mode = 0600;
		c.source_index = -1;
		fi_arm(fd, n);
		r = ioctl(d, BELUGA_IOC_REGION_CREATE, &c) ? -errno : 0;
		res->fired = fi_disarm(fd);
		res->ret = r;
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ret = WIFEXITED(status) && !WEXITSTATUS(status) ? res->ret : -ECHILD;
	/* Report the child's injection through our own fail-nth: fire it now. */
	o->value = res->fired;
	munmap(res, sizeof(*res));
	return ret;
}

/*
 * The new-uid sweep runs its fault points in a child, so it drives its own
 * loop (the generic sweep arms the parent's fail-nth).
 */
static void test_create_new_uid(void **state)
{
	struct op o = { .what = "REGION_CREATE (uid without a quota entry)" };
	struct beluga_region_stat st;
	struct state before;
	unsigned int n, failed = 0;
	long ret;

	(void)state;
	need_fi();
	bt_name(o.name, "fnewuid");
	bt_track_name(o.name);
	for (n = 1; n <= MAX_POINTS; n++) {
		state_get(&before);
		o.value = n;
		ret = op_create_newuid(&o);
		if (ret == -ECHILD)
			fail_msg("%s: the child failed at fault point %u", o.what, n);
		if (!o.value) {		/* not fired: done */
			assert_int_equal(ret, 0);
			bt_destroy_ok(bt_dev, o.name);
			break;
		}
		if (ret >= 0) {
			bt_destroy_ok(bt_dev, o.name);
			continue;
		}
		failed++;
		if (!errno_ok(ret))
			fail_msg("%s: fault point %u gave %ld", o.what, n, ret);
		/* The child's fds closed with it: compare all but our fd count. */
		before.fds = count_dir("/proc/self/fd");
		state_same(o.what, n, ret, &before);
		assert_int_equal(bt_stat(bt_dev, o.name, &st), -ENOENT);
	}
	print_message("%s: %u fault points, %u failed cleanly\n", o.what, n - 1, failed);
	assert_true(n <= MAX_POINTS);
}

static long op_open(struct op *o)
{
	return bt_open(bt_dev, o->name, 0, NULL);
}

static void undo_close(struct op *o, long ret)
{
	(void)o;
	close((int)ret);
}

static void check_open_count(struct op *o)
{
	struct beluga_region_stat st;

	assert_int_equal(bt_stat(bt_dev, o->name, &st), 0);
	assert_int_equal(st.open_count, o->value);
}

static void test_open(void **state)
{
	struct op o = { .what = "REGION_OPEN", .run = op_open, .undo = undo_close,
			.check = check_open_count };
	int fd;

	(void)state;
	need_fi();
	bt_name(o.name, "fopen");
	bt_track_name(o.name);
	fd = bt_create_ok(bt_dev, o.name, SIZE, 0600, NULL);
	bt_track_fd(fd);
	o.value = 1;
	assert_true(sweep(&o) > 2);
}

static long op_list(struct op *o)
{
	static struct beluga_region_stat e[64];
	struct beluga_region_list l;

	(void)o;
	memset(&l, 0, sizeof(l));
	l.entries = (uintptr_t)e;
	l.capacity = 64;
	return ioctl(bt_dev, BELUGA_IOC_REGION_LIST, &l) ? -errno : (long)l.count;
}

static void undo_nothing(struct op *o, long ret)
{
	(void)o;
	(void)ret;
}

static void test_list(void **state)
{
	struct op o = { .what = "REGION_LIST", .run = op_list, .undo = undo_nothing };
	char names[3][BELUGA_NAME_MAX];
	int i;

	(void)state;
	need_fi();
	for (i = 0; i < 3; i++) {
		bt_name(names[i], "flist");
		bt_track_name(names[i]);
		bt_track_fd(bt_create_ok(bt_dev, names[i], BT_CHUNK, 0600, NULL));
	}
	assert_true(op_list(&o) >= 3);	/* fault in the output array first */
	assert_true(sweep(&o) >= 2);
}

static bool find_pci(uint32_t *domain, uint32_t *bdf)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	unsigned int dom, bus, slot, fn;
	bool found = false;

	while (d && !found && (de = readdir(d))) {
		if (sscanf(de->d_name, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) == 4) {
			*domain = dom;
			*bdf = bus << 8 | slot << 3 | fn;
			found = true;
		}
	}
	if (d)
		closedir(d);
	return found;
}

static long op_gpu(struct op *o)
{
	struct beluga_gpu_register g;
	int32_t nodes[4];

	memset(&g, 0, sizeof(g));
	g.pci_domain = o->flags;
	g.pci_bdf = o->kind;
	g.nodes = (uintptr_t)nodes;
	g.capacity = 4;
	return ioctl(o->fd, BELUGA_IOC_GPU_REGISTER, &g) ? -errno : 0;
}

static void undo_gpu(struct op *o, long ret)
{
	struct beluga_gpu_unregister u;

	(void)ret;
	memset(&u, 0, sizeof(u));
	u.pci_domain = o->flags;
	u.pci_bdf = o->kind;
	assert_int_equal(bt_ioctl(o->fd, BELUGA_IOC_GPU_UNREGISTER, &u), 0);
}

static void check_gpu(struct op *o)
{
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/gpu_registrations", o->value), 0);
}

static void test_gpu_register(void **state)
{
	struct op o = { .what = "GPU_REGISTER", .run = op_gpu, .undo = undo_gpu,
			.check = check_gpu };

	(void)state;
	need_fi();
	if (!find_pci(&o.flags, &o.kind))
		bt_skip("no PCI device");
	bt_name(o.name, "fgpu");
	bt_track_name(o.name);
	o.fd = bt_create_ok(bt_dev, o.name, SIZE, 0600, &o.value);
	bt_track_fd(o.fd);
	assert_true(sweep(&o) >= 1);
	/* Nothing registered is left: destroy is not EBUSY. */
	bt_destroy_ok(bt_dev, o.name);
}

static long op_quota_set(struct op *o)
{
	struct beluga_quota q;

	memset(&q, 0, sizeof(q));
	q.uid = 50000 + (uint32_t)o->value++;	/* a new entry each time */
	q.flags = BELUGA_QUOTA_SET_REGIONS;
	q.max_regions = 7;
	return ioctl(bt_dev, BELUGA_IOC_QUOTA_SET, &q) ? -errno : 0;
}

static void test_quota_set(void **state)
{
	struct op o = { .what = "QUOTA_SET (new uid)", .run = op_quota_set,
			.undo = undo_nothing };

	(void)state;
	need_fi();
	assert_true(sweep(&o) >= 1);
}

static long op_mmap(struct op *o)
{
	void *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, o->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	o->value = (uintptr_t)p;
	return 0;
}

static void undo_mmap(struct op *o, long ret)
{
	(void)ret;
	assert_int_equal(munmap((void *)(uintptr_t)o->value, SIZE), 0);
}

/* A failed mmap must not leave the driver counting a mapping. */
static void check_map_count(struct op *o)
{
	struct beluga_region_stat st;

	assert_int_equal(bt_fd_stat(o->fd, &st), 0);
	assert_int_equal(st.map_count, 0);
}

static void test_mmap(void **state)
{
	struct op o = { .what = "mmap of a region fd", .run = op_mmap, .undo = undo_mmap,
			.check = check_map_count };

	(void)state;
	need_fi();
	bt_name(o.name, "fmmap");
	bt_track_name(o.name);
	o.fd = bt_create_ok(bt_dev, o.name, SIZE, 0600, NULL);
	bt_track_fd(o.fd);
	assert_true(sweep(&o) >= 1);
	check_map_count(&o);
}

/* Queries: their only fault points are the user copies. */
static long op_queries(struct op *o)
{
	struct beluga_info info;
	struct beluga_region_stat st;
	struct beluga_region_layout lay;
	struct beluga_source_info si;
	int32_t nodes[2];

	memset(&info, 0, sizeof(info));
	if (ioctl(bt_dev, BELUGA_IOC_INFO, &info))
		return -errno;
	memset(&si, 0, sizeof(si));
	if (ioctl(bt_dev, BELUGA_IOC_SOURCE_INFO, &si))
		return -errno;
	memset(&st, 0, sizeof(st));
	memcpy(st.name, o->name, BELUGA_NAME_MAX);
	if (ioctl(bt_dev, BELUGA_IOC_REGION_STAT, &st))
		return -errno;
	memset(&st, 0, sizeof(st));
	if (ioctl(o->fd, BELUGA_IOC_REGION_FD_STAT, &st))
		return -errno;
	memset(&lay, 0, sizeof(lay));
	lay.nodes = (uintptr_t)nodes;
	lay.capacity = 2;
	return ioctl(o->fd, BELUGA_IOC_REGION_LAYOUT, &lay) ? -errno : 0;
}

static void test_queries(void **state)
{
	struct op o = { .what = "INFO/SOURCE_INFO/STAT/FD_STAT/LAYOUT", .run = op_queries,
			.undo = undo_nothing };

	(void)state;
	need_fi();
	bt_name(o.name, "fquery");
	bt_track_name(o.name);
	o.fd = bt_create_ok(bt_dev, o.name, SIZE, 0600, NULL);
	bt_track_fd(o.fd);
	assert_true(sweep(&o) >= 10);
}

/* --- module load ------------------------------------------------------------- */

/*
 * Free memory of a node in KiB, pages on the per-CPU lists included: freed
 * 2 MiB chunks often wait there (6.1 caches order-9 pages per CPU), and
 * MemFree does not count them.  From /proc/zoneinfo: "pages free" plus
 * every "count:" of the node's zones.
 */
static uint64_t node_free_kib(int nid)
{
	char line[256];
	uint64_t pages = 0, v;
	int node = -1;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone", &node) == 1)
			continue;
		if (node != nid)
			continue;
		if (sscanf(line, " pages free %" SCNu64, &v) == 1 ||
		    sscanf(line, " count: %" SCNu64, &v) == 1)
			pages += v;
	}
	fclose(f);
	return pages * (BT_PAGE / 1024);
}

static bool iomem_has_beluga(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/iomem", "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, "beluga") != NULL;
	if (f)
		fclose(f);
	return found;
}

static long load_armed(int ko, const char *params, unsigned int n, bool *fired)
{
	long ret;

	fi_arm(nth_fd, n);
	ret = syscall(SYS_finit_module, ko, params, 0) ? -errno : 0;
	*fired = fi_disarm(nth_fd);
	return ret;
}

/*
 * Fault points 1..40 of the load one by one (the loader's first steps),
 * then 30 spread over the rest (module memory, parsing, carving 2 MiB
 * chunk after chunk, sysfs, the device), then a clean load.  The node's free memory must come
 * back after each failed load (8 MiB slack for unrelated allocations), no
 * range may stay claimed, and the module must not stay half-loaded.
 */
static void test_module_load(void **state)
{
	const char *ko_path = getenv("BELUGA_KO") ? getenv("BELUGA_KO") : "/lib/beluga/beluga.ko";
	const char *params = bt_normal_params();
	unsigned int n, total, failed = 0, points[64], np = 0, i;
	uint64_t free1, now;
	bool fired;
	long ret;
	int ko;

	(void)state;
	need_fi();
	assert_non_null(params);
	ko = open(ko_path, O_RDONLY | O_CLOEXEC);
	assert_true(ko >= 0);
	close(bt_dev);
	bt_dev = -1;
	assert_int_equal(bt_module_unload(), 0);
	free1 = node_free_kib(1);

	/* How many fault points a whole load has: arm far away, see what is left. */
	fi_arm(nth_fd, 1000000);
	ret = syscall(SYS_finit_module, ko, params, 0) ? -errno : 0;
	{
		char buf[16];
		ssize_t r = pread(nth_fd, buf, sizeof(buf) - 1, 0);

		assert_true(r > 0);
		buf[r] = '\0';
		total = 1000000 - (unsigned int)strtoul(buf, NULL, 10);
		assert_int_equal(pwrite(nth_fd, "0", 1, 0), 1);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(bt_module_unload(), 0);
	print_message("module load: %u fault points\n", total);

	for (n = 1; n <= 40 && n <= total; n++)
		points[np++] = n;
	for (i = 1; i <= 30 && total > 40; i++)
		points[np++] = 40 + (unsigned int)((uint64_t)(total - 40) * i / 31);

	for (i = 0; i < np; i++) {
		n = points[i];
		ret = load_armed(ko, params, n, &fired);
		if (!ret) {
			/* Absorbed: a clean module that must unload. */
			assert_int_equal(bt_module_unload(), 0);
			continue;
		}
		failed++;
		if (bt_module_loaded())
			fail_msg("load failed at fault point %u (%ld) but the module stayed", n, ret);
		if (access(BT_SYSFS, F_OK) == 0 || access(BELUGA_DEVICE_PATH, F_OK) == 0)
			fail_msg("load failed at fault point %u but %s or the device stayed", n,
				 BT_SYSFS);
		if (iomem_has_beluga())
			fail_msg("load failed at fault point %u but a range stays claimed", n);
		now = node_free_kib(1);
		if (free1 && now + 8192 < free1)
			fail_msg("load failed at fault point %u (%ld): node 1 free %" PRIu64
				 " KiB, was %" PRIu64 " KiB", n, ret, now, free1);
	}
	print_message("module load: %u injected failures, all clean\n", failed);
	close(ko);
	assert_int_equal(bt_module_load(params), 0);
	bt_dev = bt_dev_open_ok();
}

/* --- random, task-filtered injection -------------------------------------------- */

static int chaos_child(void *arg)
{
	uint64_t s = *(uint64_t *)arg;
	char name[BELUGA_NAME_MAX];
	int fds[4] = { -1, -1, -1, -1 }, d, i, fd, bad = 0;
	int mif = open("/proc/self/make-it-fail", O_WRONLY);

	if (mif < 0 || write(mif, "1", 1) != 1)
		return 2;
	close(mif);
	/* open(2) itself may be failed for us (the path copy, the file). */
	for (i = 0, d = -1; d < 0 && i < 100; i++)
		d = open(BELUGA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (d < 0)
		return 3;
	for (i = 0; i < 400; i++) {
		unsigned int slot;
		long ret = 0;
		void *p;

		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		slot = (unsigned int)(s >> 33) % 4;
		snprintf(name, sizeof(name), "fchaos-%u", (unsigned int)(s >> 40) % 3);
		switch ((s >> 20) % 5) {
		case 0:
			fd = bt_create(d, name, BT_CHUNK, 0600, (s >> 50) & 1 ? BELUGA_CREATE_EPHEMERAL : 0,
				       NULL);
			ret = fd < 0 ? fd : 0;
			if (ret == -EEXIST)
				ret = 0;
			break;
		case 1:
			fd = bt_open(d, name, 0, NULL);
			ret = fd < 0 ? fd : 0;
			if (ret == -ENOENT)
				ret = 0;
			break;
		case 2:
			ret = bt_destroy(d, name);
			if (ret == -ENOENT)
				ret = 0;
			fd = -1;
			break;
		case 3:
			fd = -1;
			if (fds[slot] >= 0) {
				p = mmap(NULL, BT_CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, fds[slot], 0);
				if (p == MAP_FAILED)
					ret = -errno;
				else
					munmap(p, BT_CHUNK);
			}
			break;
		default:
			fd = -1;
			if (fds[slot] >= 0)
				close(fds[slot]);
			fds[slot] = -1;
			break;
		}
		if (ret && ret != -ENOMEM && ret != -EFAULT && ret != -ENOSPC)
			bad++;
		if (fd >= 0) {
			if (fds[slot] >= 0)
				close(fds[slot]);
			fds[slot] = fd;
		}
	}
	return bad ? 10 : 0;
}

static void test_random_task_filtered(void **state)
{
	uint64_t seed = bt_seed();
	struct beluga_info before;
	unsigned int i;
	int ret;

	(void)state;
	need_fi();
	bt_info_ok(bt_dev, &before);
	for (i = 0; i < 3; i++) {
		fi_write(attrs[i], "task-filter", "Y");
		fi_write(attrs[i], "interval", "1");
		fi_write(attrs[i], "times", "-1");
		fi_write(attrs[i], "probability", i == 1 ? "5" : "20");
	}
	ret = bt_run_as(0, 0, chaos_child, &seed);
	for (i = 0; i < 3; i++) {
		fi_write(attrs[i], "probability", "0");
		fi_write(attrs[i], "task-filter", "N");
		fi_write(attrs[i], "times", "1");
	}
	assert_int_equal(ret, 0);
	for (i = 0; i < 3; i++) {
		char name[BELUGA_NAME_MAX];

		snprintf(name, sizeof(name), "fchaos-%u", i);
		bt_destroy(bt_dev, name);
	}
	bt_wait_pool_ok(bt_dev, before.free_bytes);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create),
		T(test_create_range),
		T(test_create_new_uid),
		T(test_open),
		T(test_list),
		T(test_gpu_register),
		T(test_quota_set),
		T(test_mmap),
		T(test_queries),
		T(test_random_task_filtered),
		T(test_module_load),
	};

	return bt_main("drv_fault", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, group_teardown);
}
