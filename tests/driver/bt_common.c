// SPDX-License-Identifier: Apache-2.0
/*
 * bt_common.c - helpers shared by the Beluga driver VM tests.  See
 * bt_common.h for the conventions (non-asserting bt_*() for children,
 * asserting bt_*_ok() for test bodies).
 */
#define _GNU_SOURCE
#include "bt_common.h"
#include "skip_report.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BT_KO_DEFAULT "/lib/beluga/beluga.ko"
#define BT_TEST_KO_DEFAULT "/lib/beluga/beluga_test.ko"
#define BT_PARAMS_FILE "/etc/beluga/params"

static size_t bt_skipped;
/* The group bt_main() runs and the case running now (for skip reports). */
static const struct CMUnitTest *bt_cases;
static size_t bt_nr_cases, bt_next_case;
static const char *bt_case_name = "(group set-up)";

void bt_note_skip(const char *fmt, ...)
{
	char why[512];
	va_list ap;

	bt_skipped++;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	beluga_skip_report(bt_case_name, why);
}

/*
 * Every case's setup in the group bt_main() runs: CMocka runs the cases in
 * order and calls the setup first, so the n-th call starts the n-th case.
 * Then the case's own setup, if any.
 */
static int bt_case_setup(void **state)
{
	size_t i = bt_next_case++;

	if (i >= bt_nr_cases) {
		bt_case_name = "(unknown case)";
		return 0;
	}
	bt_case_name = bt_cases[i].name;
	return bt_cases[i].setup_func ? bt_cases[i].setup_func(state) : 0;
}

int bt_main(const char *name, const struct CMUnitTest *tests, size_t n,
	    CMFixtureFunction setup, CMFixtureFunction teardown)
{
	struct CMUnitTest *cases;
	int failed;

	/*
	 * Outside the VM (no params file, no module file) there is nothing to
	 * test; inside it a driver that cannot be loaded is a failure.
	 */
	if (access(BELUGA_DEVICE_PATH, F_OK)) {
		int ret = bt_module_restore();

		if (ret == -ENOENT) {
			char why[128];

			snprintf(why, sizeof(why), "no %s and no driver to load",
				 BELUGA_DEVICE_PATH);
			beluga_skip_report(name, why);
			return BT_EXIT_SKIP;
		}
		if (ret) {
			printf("%s: loading beluga with '%s': %s\n", name,
			       bt_normal_params(), strerror(-ret));
			return 1;
		}
	}
	(void)bt_seed();
	cases = calloc(n, sizeof(*cases));
	if (!cases) {
		printf("%s: out of memory\n", name);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		cases[i] = tests[i];
		cases[i].setup_func = bt_case_setup;
	}
	bt_cases = tests;
	bt_nr_cases = n;
	failed = _cmocka_run_group_tests(name, cases, n, setup, teardown);
	bt_case_name = "(group tear-down)";
	free(cases);
	/* Leave the driver as the next program expects it. */
	if (bt_module_restore()) {
		printf("%s: could not restore beluga with '%s'\n", name,
		       bt_normal_params() ? bt_normal_params() : "(none)");
		return 1;
	}
	if (failed)
		return 1;
	return bt_skipped == n ? BT_EXIT_SKIP : 0;
}

uint64_t bt_seed(void)
{
	static uint64_t seed;
	static bool done;
	const char *env;

	if (done)
		return seed;
	env = getenv("BELUGA_TEST_SEED");
	seed = env ? strtoull(env, NULL, 0) :
		(uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	printf("BELUGA_TEST_SEED=%" PRIu64 "\n", seed);
	fflush(stdout);
	done = true;
	return seed;
}

/* --- group set-up --------------------------------------------------------- */

int bt_dev = -1;
static struct stat bt_dev_st;
static bool bt_dev_chowned, bt_dev_chmodded;

int bt_group_setup(void **state)
{
	(void)state;
	bt_dev = bt_dev_open();
	if (bt_dev < 0) {
		printf("open %s: %s\n", BELUGA_DEVICE_PATH, strerror(-bt_dev));
		return 1;
	}
	if (stat(BELUGA_DEVICE_PATH, &bt_dev_st)) {
		perror("stat " BELUGA_DEVICE_PATH);
		return 1;
	}
	return 0;
}

const struct stat *bt_dev_node_at_setup(void)
{
	return &bt_dev_st;
}

int bt_dev_node_chown(uid_t uid, gid_t gid)
{
	if (chown(BELUGA_DEVICE_PATH, uid, gid))
		return -errno;
	bt_dev_chowned = true;
	return 0;
}

int bt_dev_node_chmod(mode_t mode)
{
	if (chmod(BELUGA_DEVICE_PATH, mode))
		return -errno;
	bt_dev_chmodded = true;
	return 0;
}

int bt_group_teardown(void **state)
{
	(void)state;
	if (bt_dev_chowned &&
	    chown(BELUGA_DEVICE_PATH, bt_dev_st.st_uid, bt_dev_st.st_gid))
		perror("restoring the owner of " BELUGA_DEVICE_PATH);
	if (bt_dev_chmodded &&
	    chmod(BELUGA_DEVICE_PATH, bt_dev_st.st_mode & 07777))
		perror("restoring the mode of " BELUGA_DEVICE_PATH);
	bt_dev_chowned = bt_dev_chmodded = false;
	if (bt_dev >= 0)
		close(bt_dev);
	bt_dev = -1;
	return 0;
}

/* --- /dev/beluga ------------------------------------------------------ */

int bt_dev_open(void)
{
	int fd = open(BELUGA_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int bt_dev_open_ok(void)
{
	int fd = bt_dev_open();

	if (fd < 0)
		fail_msg("open %s: %s", BELUGA_DEVICE_PATH, strerror(-fd));
	return fd;
}

int bt_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

void bt_info_ok(int dev, struct beluga_info *info)
{
	memset(info, 0, sizeof(*info));
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_INFO, info), 0);
}

void bt_source_ok(int dev, uint32_t index, struct beluga_source_info *si)
{
	memset(si, 0, sizeof(*si));
	si->index = index;
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_INFO, si), 0);
}

int bt_sources(int dev, struct bt_sources *s)
{
	struct beluga_info info = { 0 };
	int ret = bt_ioctl(dev, BELUGA_IOC_INFO, &info);

	memset(s, 0, sizeof(*s));
	if (ret)
		return ret;
	for (uint32_t i = 0; i < info.nr_sources && i < BT_MAX_SOURCES; i++) {
		s->si[i].index = i;
		ret = bt_ioctl(dev, BELUGA_IOC_SOURCE_INFO, &s->si[i]);
		if (ret)
			return ret;
		s->nr = i + 1;
	}
	return 0;
}

int bt_source_find(const struct bt_sources *s, uint32_t kind, unsigned int nth)
{
	for (uint32_t i = 0; i < s->nr; i++)
		if (s->si[i].kind == kind && nth-- == 0)
			return (int)i;
	return -1;
}

int bt_source_on_node(const struct bt_sources *s, int node)
{
	for (uint32_t i = 0; i < s->nr; i++)
		if (s->si[i].kind == BELUGA_SOURCE_NODE && s->si[i].node == node)
			return (int)i;
	return -1;
}

unsigned int bt_sources_count(const struct bt_sources *s, uint32_t kind)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < s->nr; i++)
		n += s->si[i].kind == kind;
	return n;
}

uint64_t bt_sources_free(const struct bt_sources *s, uint32_t kind)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < s->nr; i++)
		if (s->si[i].kind == kind)
			sum += s->si[i].free_bytes;
	return sum;
}

bool bt_slow_memory(void)
{
	return access(BT_CXL_DAX_FILE, F_OK) == 0;
}

uint64_t bt_first_range_start(void)
{
	const char *p = bt_normal_params();
	const char *r = p ? strstr(p, "ranges=") : NULL;

	return r ? strtoull(r + 7, NULL, 0) : 0;
}

void bt_name(char name[BELUGA_NAME_MAX], const char *tag)
{
	static unsigned int n;

	memset(name, 0, BELUGA_NAME_MAX);
	snprintf(name, BELUGA_NAME_MAX, "bt-%.24s-%d-%u", tag, (int)getpid(),
		 n++);
}

int bt_create(int dev, const char *name, uint64_t size, uint32_t mode,
	      uint32_t flags, uint64_t *id)
{
	struct beluga_region_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	if (name)
		strncpy(c.name, name, sizeof(c.name) - 1);
	c.size = size;
	c.mode = mode;
	c.flags = flags;
	c.source_kind = BELUGA_SOURCE_ANY;
	c.source_index = -1;
	ret = bt_ioctl(dev, BELUGA_IOC_REGION_CREATE, &c);
	if (ret)
		return ret;
	if (id)
		*id = c.id;
	return c.fd;
}

int bt_create_ok(int dev, const char *name, uint64_t size, uint32_t mode,
		 uint64_t *id)
{
	int fd = bt_create(dev, name, size, mode, 0, id);

	if (fd < 0)
		fail_msg("create '%s' (%" PRIu64 " bytes): %s", name ? name : "",
			 size, strerror(-fd));
	if (name && *name)
		bt_track_name(name);
	bt_track_fd(fd);
	return fd;
}

int bt_create_on_source(int dev, const char *name, uint64_t size, uint32_t kind,
			int32_t index)
{
	struct beluga_region_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.size = size;
	c.mode = 0600;
	c.source_kind = kind;
	c.source_index = index;
	ret = bt_ioctl(dev, BELUGA_IOC_REGION_CREATE, &c);
	if (ret)
		return ret;
	bt_track_name(name);
	bt_track_fd(c.fd);
	return c.fd;
}

int bt_open(int dev, const char *name, uint32_t flags, uint64_t *id)
{
	struct beluga_region_open o;
	int ret;

	memset(&o, 0, sizeof(o));
	strncpy(o.name, name, sizeof(o.name) - 1);
	o.flags = flags;
	ret = bt_ioctl(dev, BELUGA_IOC_REGION_OPEN, &o);
	if (ret)
		return ret;
	if (id)
		*id = o.id;
	return o.fd;
}

int bt_destroy(int dev, const char *name)
{
	struct beluga_region_name d;

	memset(&d, 0, sizeof(d));
	strncpy(d.name, name, sizeof(d.name) - 1);
	return bt_ioctl(dev, BELUGA_IOC_REGION_DESTROY, &d);
}

int bt_stat(int dev, const char *name, struct beluga_region_stat *st)
{
	memset(st, 0, sizeof(*st));
	strncpy(st->name, name, sizeof(st->name) - 1);
	return bt_ioctl(dev, BELUGA_IOC_REGION_STAT, st);
}

int bt_fd_stat(int rfd, struct beluga_region_stat *st)
{
	memset(st, 0, sizeof(*st));
	return bt_ioctl(rfd, BELUGA_IOC_REGION_FD_STAT, st);
}

int bt_layout(int rfd, int32_t *nodes, uint32_t cap)
{
	struct beluga_region_layout l;
	int ret;

	memset(&l, 0, sizeof(l));
	l.nodes = (uintptr_t)nodes;
	l.capacity = cap;
	ret = bt_ioctl(rfd, BELUGA_IOC_REGION_LAYOUT, &l);
	return ret ? ret : (int)l.nr_chunks;
}

uint64_t bt_free_ok(int dev)
{
	struct beluga_info info;

	bt_info_ok(dev, &info);
	return info.free_bytes;
}

/* --- cleanup registry ------------------------------------------------ */

#define BT_MAX_TRACK 256

static char bt_names[BT_MAX_TRACK][BELUGA_NAME_MAX];
static int bt_fds[BT_MAX_TRACK];
static struct { void *p; uint64_t len; } bt_maps[BT_MAX_TRACK];
static size_t bt_nr_names, bt_nr_fds, bt_nr_maps;

void bt_track_name(const char *name)
{
	if (bt_nr_names < BT_MAX_TRACK)
		snprintf(bt_names[bt_nr_names++], BELUGA_NAME_MAX, "%s", name);
}

void bt_track_fd(int fd)
{
	if (fd >= 0 && bt_nr_fds < BT_MAX_TRACK)
		bt_fds[bt_nr_fds++] = fd;
}

void bt_track_map(void *p, uint64_t len)
{
	if (p != MAP_FAILED && bt_nr_maps < BT_MAX_TRACK) {
		bt_maps[bt_nr_maps].p = p;
		bt_maps[bt_nr_maps++].len = len;
	}
}

void bt_close(int fd)
{
	for (size_t i = 0; i < bt_nr_fds; i++) {
		if (bt_fds[i] == fd) {
			bt_fds[i] = bt_fds[--bt_nr_fds];
			break;
		}
	}
	assert_int_equal(close(fd), 0);
}

void bt_unmap(void *p, uint64_t len)
{
	for (size_t i = 0; i < bt_nr_maps; i++) {
		if (bt_maps[i].p == p) {
			bt_maps[i] = bt_maps[--bt_nr_maps];
			break;
		}
	}
	assert_int_equal(munmap(p, len), 0);
}

static void bt_forget_name(const char *name)
{
	for (size_t i = 0; i < bt_nr_names; i++) {
		if (!strcmp(bt_names[i], name)) {
			memcpy(bt_names[i], bt_names[--bt_nr_names],
			       BELUGA_NAME_MAX);
			break;
		}
	}
}

void bt_destroy_ok(int dev, const char *name)
{
	int ret = bt_destroy(dev, name);

	if (ret)
		fail_msg("destroy '%s': %s", name, strerror(-ret));
	bt_forget_name(name);
}

int bt_open_ok(int dev, const char *name, uint32_t flags, uint64_t *id)
{
	int fd = bt_open(dev, name, flags, id);

	if (fd < 0)
		fail_msg("open region '%s': %s", name, strerror(-fd));
	bt_track_fd(fd);
	return fd;
}

int bt_cleanup(void **state)
{
	int dev;

	(void)state;
	while (bt_nr_maps) {
		bt_nr_maps--;
		munmap(bt_maps[bt_nr_maps].p, bt_maps[bt_nr_maps].len);
	}
	while (bt_nr_fds)
		close(bt_fds[--bt_nr_fds]);
	dev = bt_dev_open();
	while (bt_nr_names) {
		bt_nr_names--;
		if (dev >= 0)
			bt_destroy(dev, bt_names[bt_nr_names]);
	}
	if (dev >= 0)
		close(dev);
	return 0;
}

/* --- mappings and data ------------------------------------------------ */

void *bt_map(int rfd, uint64_t len, int prot, uint64_t off)
{
	return mmap(NULL, len, prot, MAP_SHARED, rfd, (off_t)off);
}

void *bt_map_ok(int rfd, uint64_t len, int prot, uint64_t off)
{
	void *p = bt_map(rfd, len, prot, off);

	if (p == MAP_FAILED)
		fail_msg("mmap %" PRIu64 " bytes at offset %" PRIu64 ": %s",
			 len, off, strerror(errno));
	bt_track_map(p, len);
	return p;
}

/* splitmix64: cheap, and every word differs from its neighbours. */
uint64_t bt_pattern(uint64_t salt, uint64_t off)
{
	uint64_t z = salt ^ bt_seed() ^ (off * 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31)) | 1;	/* never zero: zeroes mean "cleared" */
}

void bt_fill(void *p, uint64_t len, uint64_t salt)
{
	uint64_t *w = p;

	for (uint64_t i = 0; i < len / 8; i++)
		w[i] = bt_pattern(salt, i * 8);
}

uint64_t bt_check(const void *p, uint64_t len, uint64_t salt)
{
	const uint64_t *w = p;

	for (uint64_t i = 0; i < len / 8; i++)
		if (w[i] != bt_pattern(salt, i * 8))
			return i * 8;
	return UINT64_MAX;
}

uint64_t bt_check_zero(const void *p, uint64_t len)
{
	const uint64_t *w = p;

	for (uint64_t i = 0; i < len / 8; i++)
		if (w[i])
			return i * 8;
	return UINT64_MAX;
}

void bt_touch(void *p, uint64_t len)
{
	volatile char *c = p;

	for (uint64_t off = 0; off < len; off += BT_PAGE)
		c[off] = c[off];
}

/* --- /sys/kernel/beluga ----------------------------------------------- */

static int bt_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

static int bt_vsysfs_str(char *buf, size_t len, const char *fmt, va_list ap)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "%s/", BT_SYSFS);

	vsnprintf(path + n, sizeof(path) - n, fmt, ap);
	return bt_read_file(path, buf, len);
}

int bt_sysfs_str(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = bt_vsysfs_str(buf, len, fmt, ap);
	va_end(ap);
	return ret;
}

static int bt_parse_u64(const char *s, uint64_t *val)
{
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*val = strtoull(s, &end, 10);
	return (errno || *end) ? -EINVAL : 0;
}

static int bt_vsysfs_u64(uint64_t *val, const char *fmt, va_list ap)
{
	char buf[64];
	int ret = bt_vsysfs_str(buf, sizeof(buf), fmt, ap);

	return ret ? ret : bt_parse_u64(buf, val);
}

int bt_sysfs_u64(uint64_t *val, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = bt_vsysfs_u64(val, fmt, ap);
	va_end(ap);
	return ret;
}

uint64_t bt_sysfs_u64_ok(const char *fmt, ...)
{
	uint64_t val = 0;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = bt_vsysfs_u64(&val, fmt, ap);
	va_end(ap);
	if (ret)
		fail_msg("sysfs %s: %s", fmt, strerror(-ret));
	return val;
}

int bt_sysfs_wait_eq(uint64_t want, uint64_t *last, const char *fmt, ...)
{
	uint64_t deadline = bt_now_ms() + BT_DEADLINE_MS, val = 0;
	va_list ap;
	int ret;

	for (;;) {
		va_start(ap, fmt);
		ret = bt_vsysfs_u64(&val, fmt, ap);
		va_end(ap);
		if (last)
			*last = val;
		if (ret)
			return ret;
		if (val == want)
			return 0;
		if (bt_now_ms() > deadline)
			return -ETIMEDOUT;
		bt_sleep_ms(10);
	}
}

void bt_wait_pool_ok(int dev, uint64_t free_bytes)
{
	uint64_t deadline = bt_now_ms() + BT_DEADLINE_MS;
	struct beluga_info info;

	for (;;) {
		bt_info_ok(dev, &info);
		if (info.free_bytes == free_bytes && !info.quarantined_bytes)
			break;
		if (bt_now_ms() > deadline)
			fail_msg("pool not back after %d ms: free %" PRIu64
				 " want %" PRIu64 ", quarantined %" PRIu64,
				 BT_DEADLINE_MS, (uint64_t)info.free_bytes,
				 free_bytes, (uint64_t)info.quarantined_bytes);
		bt_sleep_ms(10);
	}
	assert_int_equal(bt_sysfs_u64_ok("free_bytes"), free_bytes);
	assert_int_equal(bt_sysfs_u64_ok("quarantined_bytes"), 0);
}

/* --- processes ---------------------------------------------------------- */

int bt_drop_privileges(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
	    setresuid(uid, uid, uid))
		return -errno;
	if (geteuid() != uid || getegid() != gid)
		return -EPERM;
	return 0;
}

int bt_run_as(uid_t uid, gid_t gid, bt_child_fn fn, void *arg)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int ret = 0;

		if (uid || gid)
			ret = bt_drop_privileges(uid, gid);
		if (ret) {
			fprintf(stderr, "drop to %d/%d: %s\n", (int)uid,
				(int)gid, strerror(-ret));
			_exit(250);
		}
		ret = fn(arg);
		fflush(NULL);
		_exit(ret & 0xff);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

uint64_t bt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void bt_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* --- test helper module ------------------------------------------------- */

static int bt_load_file(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params, 0))
		ret = -errno;
	close(fd);
	return ret;
}

int bt_test_open(void)
{
	int fd = open(BELUGA_TEST_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		const char *ko = getenv("BELUGA_TEST_KO");

		bt_load_file(ko ? ko : BT_TEST_KO_DEFAULT, "");
		fd = open(BELUGA_TEST_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0) {
		bt_skip("%s: %s (beluga_test.ko not loaded)",
			BELUGA_TEST_DEVICE_PATH, strerror(errno));
	}
	bt_track_fd(fd);
	return fd;
}

int bt_walk(int tfd, const void *addr, uint64_t len,
	    struct beluga_test_walk_entry *e)
{
	struct beluga_test_walk w;
	int ret;

	memset(&w, 0, sizeof(w));
	w.addr = (uintptr_t)addr;
	w.length = len;
	w.entries = (uintptr_t)e;
	w.capacity = (uint32_t)(len / BELUGA_TEST_STEP);
	ret = bt_ioctl(tfd, BELUGA_TEST_IOC_WALK, &w);
	if (!ret && w.count != w.capacity)
		ret = -EPROTO;
	return ret;
}

int bt_pin(int tfd, const void *addr, uint64_t len, uint32_t flags,
	   struct beluga_test_pin *out)
{
	memset(out, 0, sizeof(*out));
	out->addr = (uintptr_t)addr;
	out->length = len;
	out->flags = flags;
	return bt_ioctl(tfd, BELUGA_TEST_IOC_PIN, out);
}

int bt_unpin(int tfd, uint32_t handle, uint32_t flags, uint64_t *nr)
{
	struct beluga_test_unpin u;
	int ret;

	memset(&u, 0, sizeof(u));
	u.handle = handle;
	u.flags = flags;
	ret = bt_ioctl(tfd, BELUGA_TEST_IOC_UNPIN, &u);
	if (!ret && nr)
		*nr = u.nr_unpinned;
	return ret;
}

/* --- module load/unload ------------------------------------------------- */

bool bt_module_loaded(void)
{
	return access("/sys/module/" BT_MODULE "/initstate", F_OK) == 0;
}

int bt_module_unload(void)
{
	return syscall(SYS_delete_module, BT_MODULE, O_NONBLOCK) ? -errno : 0;
}

int bt_module_load(const char *params)
{
	const char *ko = getenv("BELUGA_KO");

	return bt_load_file(ko ? ko : BT_KO_DEFAULT, params ? params : "");
}

const char *bt_normal_params(void)
{
	static char params[256];
	static bool done;
	const char *env = getenv("BELUGA_PARAMS");

	if (env)
		return env;
	if (!done && bt_read_file(BT_PARAMS_FILE, params, sizeof(params)))
		return NULL;
	done = true;
	return params;
}

int bt_module_restore(void)
{
	if (bt_module_loaded())
		return 0;
	if (!bt_normal_params())
		return -ENOENT;
	return bt_module_load(bt_normal_params());
}

/* --- kernel log --------------------------------------------------------- */

int bt_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

int bt_kmsg_count(int kfd, const char *needle, char *first, size_t len,
		  int *level)
{
	char rec[2048];
	int count = 0;

	if (level)
		*level = 8;

	for (;;) {
		ssize_t n = read(kfd, rec, sizeof(rec) - 1);
		char *msg, *nl;

		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: keep going */
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		nl = strchr(msg, '\n');
		if (nl)
			*nl = '\0';
		if (!strstr(msg, needle))
			continue;
		/* Out-of-tree taint notices are not the driver's messages. */
		if (strstr(msg, "taints kernel") ||
		    strstr(msg, "module verification failed"))
			continue;
		if (!count && first)
			snprintf(first, len, "%s", msg);
		/* "prio,seq,usec,flags;": prio is facility * 8 + level. */
		if (level && atoi(rec) % 8 < *level)
			*level = atoi(rec) % 8;
		count++;
	}
	return count;
}
