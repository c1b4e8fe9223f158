// SPDX-License-Identifier: Apache-2.0
/*
 * t_race.c - concurrency: control paths racing from many threads and
 * processes, destroy while mapped, processes killed mid-operation.
 *
 * Covers:
 *  - create/destroy/open/stat racing on four shared names from 8 threads:
 *    per name, successful creates minus successful destroys equals whether
 *    the name exists at the end (the namespace never holds two regions of a
 *    name and never loses one), and every returned fd is a region of that
 *    name;
 *  - mmap/munmap/touch of one fd from 6 threads with fork() in between:
 *    map_count back to 0, data written by one thread visible to all;
 *  - GPU register/unregister on a shared fd racing with DESTROY (EBUSY
 *    while registered) and close: registrations never go negative and the
 *    name can be destroyed once every registration is gone;
 *  - destroy while mapped by another process that keeps writing: its data
 *    stays intact, a region recreated under the name is zero, and the old
 *    memory returns to the pool only after that process unmaps;
 *  - 4 processes x 2 threads doing random create/open/map/touch/GPU
 *    register/destroy/close, and 24 children SIGKILLed at random moments in
 *    such loops (each after a random number of operations, whatever the
 *    machine's speed).
 * Every test ends with the pool whole: no region left, free and quarantined
 * bytes as before, one sysfs directory per region.
 * Random choices come from bt_seed() (BELUGA_TEST_SEED replays them);
 * nothing asserts on timing.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NAMES 4
#define THREADS 8
#define ROUNDS 150

static struct beluga_info base;
static uint32_t pci_domain, pci_bdf;
static bool have_pci;

/* splitmix64: per-thread streams from the test seed. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Any PCI device will do for GPU registration: the driver only looks it up. */
static void find_pci(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	unsigned int dom, bus, slot, fn;

	while (d && (de = readdir(d))) {
		if (sscanf(de->d_name, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) == 4) {
			pci_domain = dom;
			pci_bdf = bus << 8 | slot << 3 | fn;
			have_pci = true;
			break;
		}
	}
	if (d)
		closedir(d);
}

static int group_setup(void **state)
{
	if (bt_group_setup(state))
		return 1;
	find_pci();
	(void)bt_seed();
	return 0;
}

static int count_region_dirs(void)
{
	DIR *d = opendir(BT_SYSFS "/regions");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void snapshot(void **state)
{
	(void)state;
	bt_info_ok(bt_dev, &base);
}

/* The invariant every test ends with. */
static void pool_whole(void)
{
	struct beluga_info now;

	bt_wait_pool_ok(bt_dev, base.free_bytes);
	bt_info_ok(bt_dev, &now);
	assert_int_equal(now.nr_regions, base.nr_regions);
	assert_int_equal(bt_sysfs_u64_ok("nr_regions"), base.nr_regions);
	assert_int_equal(count_region_dirs(), (int)base.nr_regions);
}

static int gpu_register(int fd, uint32_t *regs)
{
	struct beluga_gpu_register g;
	int ret;

	memset(&g, 0, sizeof(g));
	g.pci_domain = pci_domain;
	g.pci_bdf = pci_bdf;
	ret = bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &g);
	if (!ret && regs)
		*regs = g.registrations;
	return ret;
}

static int gpu_unregister(int fd)
{
	struct beluga_gpu_unregister u;

	memset(&u, 0, sizeof(u));
	u.pci_domain = pci_domain;
	u.pci_bdf = pci_bdf;
	return bt_ioctl(fd, BELUGA_IOC_GPU_UNREGISTER, &u);
}

/* --- namespace races ---------------------------------------------------- */

struct ns_race {
	char names[NAMES][BELUGA_NAME_MAX];
	uint64_t created[NAMES], destroyed[NAMES];	/* atomics */
	uint64_t bad;					/* unexpected results */
	char what[128];
	uint64_t seed, next;				/* next: thread streams */
};

static void ns_bad(struct ns_race *r, const char *op, int ret)
{
	if (__atomic_fetch_add(&r->bad, 1, __ATOMIC_RELAXED) == 0)
		snprintf(r->what, sizeof(r->what), "%s: %s", op, strerror(-ret));
}

static void *ns_thread(void *arg)
{
	struct ns_race *r = arg;
	uint64_t s = r->seed + __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
	int d = bt_dev_open(), i;

	for (i = 0; d >= 0 && i < ROUNDS; i++) {
		unsigned int n = rnd(&s) % NAMES;
		struct beluga_region_stat st;
		int fd;

		switch (rnd(&s) % 4) {
		case 0:
			fd = bt_create(d, r->names[n], BT_CHUNK, 0600, 0, NULL);
			if (fd >= 0) {
				__atomic_add_fetch(&r->created[n], 1, __ATOMIC_RELAXED);
				close(fd);
			} else if (fd != -EEXIST && fd != -ENOSPC) {
				ns_bad(r, "create", fd);
			}
			break;
		case 1:
			fd = bt_destroy(d, r->names[n]);
			if (!fd)
				__atomic_add_fetch(&r->destroyed[n], 1, __ATOMIC_RELAXED);
			else if (fd != -ENOENT)
				ns_bad(r, "destroy", fd);
			break;
		case 2:
			fd = bt_open(d, r->names[n], 0, NULL);
			if (fd >= 0) {
				/* The fd must be a region that had this name. */
				if (bt_fd_stat(fd, &st) || strcmp(st.name, r->names[n]))
					ns_bad(r, "open gave another region", -EINVAL);
				close(fd);
			} else if (fd != -ENOENT) {
				ns_bad(r, "open", fd);
			}
			break;
		default:
			fd = bt_stat(d, r->names[n], &st);
			if (!fd && (strcmp(st.name, r->names[n]) || st.size != BT_CHUNK))
				ns_bad(r, "stat", -EINVAL);
			else if (fd && fd != -ENOENT)
				ns_bad(r, "stat", fd);
			break;
		}
	}
	if (d >= 0)
		close(d);
	return NULL;
}

static void test_namespace_race(void **state)
{
	static struct ns_race r;
	pthread_t t[THREADS];
	struct beluga_region_stat st;
	unsigned int i;

	snapshot(state);
	memset(&r, 0, sizeof(r));
	r.seed = bt_seed();
	for (i = 0; i < NAMES; i++) {
		bt_name(r.names[i], "nsrace");
		bt_track_name(r.names[i]);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ns_thread, &r), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	if (r.bad)
		fail_msg("%" PRIu64 " unexpected results, first: %s", r.bad, r.what);
	for (i = 0; i < NAMES; i++) {
		int exists = bt_stat(bt_dev, r.names[i], &st) == 0;

		print_message("name %u: %" PRIu64 " creates, %" PRIu64 " destroys, exists %d\n",
			      i, r.created[i], r.destroyed[i], exists);
		assert_int_equal(r.created[i] - r.destroyed[i], (uint64_t)exists);
		if (exists)
			bt_destroy_ok(bt_dev, r.names[i]);
	}
	pool_whole();
}

/* --- one fd mapped and unmapped from many threads --------------------------- */

struct map_race {
	int fd;
	uint64_t size;
	uint64_t seed, next;
	uint64_t bad;
	char what[96];
};

static void *map_thread(void *arg)
{
	struct map_race *m = arg;
	uint64_t s = m->seed + __atomic_fetch_add(&m->next, 1, __ATOMIC_RELAXED);
	int i;

	for (i = 0; i < 60; i++) {
		uint64_t len = (1 + rnd(&s) % (m->size / BT_CHUNK)) * BT_CHUNK;
		uint64_t off = (rnd(&s) % (m->size / BT_CHUNK - len / BT_CHUNK + 1)) * BT_CHUNK;
		uint64_t *p = bt_map(m->fd, len, PROT_READ | PROT_WRITE, off);
		uint64_t j;

		if (p == MAP_FAILED) {
			if (__atomic_fetch_add(&m->bad, 1, __ATOMIC_RELAXED) == 0)
				snprintf(m->what, sizeof(m->what), "mmap: %s", strerror(errno));
			continue;
		}
		/* Every word holds its own offset: any thread's write is checkable. */
		for (j = 0; j < len; j += BT_PAGE * 37) {
			uint64_t *w = p + j / sizeof(*p);

			if (*w && *w != off + j) {
				if (__atomic_fetch_add(&m->bad, 1, __ATOMIC_RELAXED) == 0)
					snprintf(m->what, sizeof(m->what),
						 "word at %#" PRIx64 " holds %#" PRIx64, off + j, *w);
			}
			*w = off + j;
		}
		if (rnd(&s) % 8 == 0)
			madvise(p, len, MADV_DONTNEED);
		munmap(p, len);
	}
	return NULL;
}

static void test_map_race(void **state)
{
	static struct map_race m;
	pthread_t t[6];
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	unsigned int i;
	pid_t pid;
	int status;

	snapshot(state);
	memset(&m, 0, sizeof(m));
	bt_name(name, "maprace");
	bt_track_name(name);
	m.size = 4 * BT_CHUNK;
	m.fd = bt_create_ok(bt_dev, name, m.size, 0600, NULL);
	m.seed = bt_seed();
	for (i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, map_thread, &m), 0);
	/* A fork in the middle copies every VMA (vm_open) and drops them again. */
	fflush(NULL);
	pid = fork();
	if (!pid) {
		map_thread(&m);
		_exit(m.bad ? 1 : 0);
	}
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (m.bad)
		fail_msg("%" PRIu64 " problems, first: %s", m.bad, m.what);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(bt_fd_stat(m.fd, &st), 0);
	assert_int_equal(st.map_count, 0);
	assert_int_equal(st.open_count, 1);
	bt_close(m.fd);
	bt_destroy_ok(bt_dev, name);
	pool_whole();
}

/* --- GPU registration racing with destroy and close -------------------------- */

struct gpu_race {
	int fd;
	char name[BELUGA_NAME_MAX];
	uint64_t registered, unregistered, busy, destroyed, bad;
	char what[96];
	uint64_t seed, next;
};

static void *gpu_thread(void *arg)
{
	struct gpu_race *g = arg;
	uint64_t s = g->seed + __atomic_fetch_add(&g->next, 1, __ATOMIC_RELAXED);
	int i, ret;

	for (i = 0; i < 200; i++) {
		if (rnd(&s) % 2) {
			ret = gpu_register(g->fd, NULL);
			if (!ret)
				__atomic_add_fetch(&g->registered, 1, __ATOMIC_RELAXED);
		} else {
			ret = gpu_unregister(g->fd);
			if (!ret)
				__atomic_add_fetch(&g->unregistered, 1, __ATOMIC_RELAXED);
			else if (ret == -ENOENT)
				ret = 0;
		}
		if (ret && __atomic_fetch_add(&g->bad, 1, __ATOMIC_RELAXED) == 0)
			snprintf(g->what, sizeof(g->what), "gpu: %s", strerror(-ret));
	}
	return NULL;
}

static void *destroyer_thread(void *arg)
{
	struct gpu_race *g = arg;
	int d = bt_dev_open(), i, ret;

	for (i = 0; d >= 0 && i < 300 && !__atomic_load_n(&g->destroyed, __ATOMIC_RELAXED); i++) {
		ret = bt_destroy(d, g->name);
		if (!ret)
			__atomic_store_n(&g->destroyed, 1, __ATOMIC_RELAXED);
		else if (ret == -EBUSY)
			__atomic_add_fetch(&g->busy, 1, __ATOMIC_RELAXED);
		else if (__atomic_fetch_add(&g->bad, 1, __ATOMIC_RELAXED) == 0)
			snprintf(g->what, sizeof(g->what), "destroy: %s", strerror(-ret));
	}
	if (d >= 0)
		close(d);
	return NULL;
}

static void test_gpu_race(void **state)
{
	static struct gpu_race g;
	pthread_t t[4], killer;
	struct beluga_region_stat st;
	uint64_t regs;
	unsigned int i;

	if (!have_pci)
		bt_skip("no PCI device in this guest");
	snapshot(state);
	memset(&g, 0, sizeof(g));
	bt_name(g.name, "gpurace");
	bt_track_name(g.name);
	g.fd = bt_create_ok(bt_dev, g.name, 2 * BT_CHUNK, 0600, NULL);
	g.seed = bt_seed();
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, gpu_thread, &g), 0);
	assert_int_equal(pthread_create(&killer, NULL, destroyer_thread, &g), 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pthread_join(killer, NULL);
	if (g.bad)
		fail_msg("%" PRIu64 " problems, first: %s", g.bad, g.what);
	regs = g.registered - g.unregistered;
	print_message("%" PRIu64 " registrations, %" PRIu64 " unregistrations, %" PRIu64
		      " EBUSY destroys, destroyed %" PRIu64 "\n", g.registered,
		      g.unregistered, g.busy, g.destroyed);
	assert_int_equal(bt_fd_stat(g.fd, &st), 0);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/gpu_registrations",
					 (uint64_t)st.id), regs);
	if (!g.destroyed) {
		/* Still registered: EBUSY; one more register then close drops all. */
		if (regs)
			assert_int_equal(bt_destroy(bt_dev, g.name), -EBUSY);
		bt_close(g.fd);
		bt_destroy_ok(bt_dev, g.name);
	} else {
		bt_close(g.fd);
	}
	pool_whole();
}

/* --- destroy while mapped by another process ------------------------------- */

static void test_destroy_while_mapped(void **state)
{
	char name[BELUGA_NAME_MAX];
	int pipe_go[2], pipe_done[2], fd, status;
	uint64_t size = 4 * BT_CHUNK, salt = bt_seed();
	struct beluga_info mid;
	char c;
	pid_t pid;

	snapshot(state);
	bt_name(name, "dwm");
	bt_track_name(name);
	fd = bt_create_ok(bt_dev, name, size, 0600, NULL);
	assert_int_equal(pipe(pipe_go), 0);
	assert_int_equal(pipe(pipe_done), 0);
	fflush(NULL);
	pid = fork();
	if (!pid) {
		/* Keep writing through the destroy; check everything afterwards. */
		uint8_t *m = bt_map(fd, size, PROT_READ | PROT_WRITE, 0);
		int rounds;

		if (m == MAP_FAILED || write(pipe_go[1], "m", 1) != 1)
			_exit(10);
		for (rounds = 0; rounds < 4; rounds++)
			bt_fill(m, size, salt + rounds);
		if (read(pipe_done[0], &c, 1) != 1)
			_exit(11);
		bt_fill(m, size, salt);
		_exit(bt_check(m, size, salt) == UINT64_MAX ? 0 : 12);
	}
	assert_int_equal(read(pipe_go[0], &c, 1), 1);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);	/* the child still maps it */
	/* The name is free at once; a new region under it is zero. */
	fd = bt_create_ok(bt_dev, name, size, 0600, NULL);
	bt_track_name(name);
	{
		uint8_t *m = bt_map_ok(fd, size, PROT_READ, 0);

		assert_int_equal(bt_check_zero(m, size), UINT64_MAX);
		bt_unmap(m, size);
	}
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);
	/* The old region's memory is still the child's. */
	bt_info_ok(bt_dev, &mid);
	assert_true(mid.free_bytes <= base.free_bytes - size);
	assert_int_equal(write(pipe_done[1], "d", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(pipe_go[0]);
	close(pipe_go[1]);
	close(pipe_done[0]);
	close(pipe_done[1]);
	pool_whole();
}

/* --- many processes, and processes killed mid-operation ---------------------- */

/*
 * Random operations on shared names until @rounds are done (or SIGKILL).
 * With @ready >= 0, one byte is written to it once @ready_after operations
 * are done, and the fd is closed.
 */
static int chaos(uint64_t seed, char (*names)[BELUGA_NAME_MAX], int rounds,
		 int ready, int ready_after)
{
	uint64_t s = seed;
	int d = bt_dev_open(), fds[4] = { -1, -1, -1, -1 }, i;
	void *maps[4] = { NULL, NULL, NULL, NULL };

	if (d < 0)
		return 20;
	for (i = 0; i < rounds; i++) {
		unsigned int n = rnd(&s) % NAMES, slot = rnd(&s) % 4;
		int fd;

		if (ready >= 0 && i == ready_after) {
			if (write(ready, "r", 1) != 1)
				return 21;
			close(ready);
			ready = -1;
		}

		switch (rnd(&s) % 7) {
		case 0:
			fd = bt_create(d, names[n], BT_CHUNK * (1 + rnd(&s) % 2), 0600,
				       rnd(&s) % 4 ? 0 : BELUGA_CREATE_EPHEMERAL, NULL);
			break;
		case 1:
			fd = bt_open(d, names[n], 0, NULL);
			break;
		case 2:
			bt_destroy(d, names[n]);
			continue;
		case 3:
			if (fds[slot] >= 0 && !maps[slot]) {
				maps[slot] = bt_map(fds[slot], BT_CHUNK, PROT_READ | PROT_WRITE, 0);
				if (maps[slot] == MAP_FAILED)
					maps[slot] = NULL;
				else
					memset(maps[slot], 0x5a, BT_PAGE);
			}
			continue;
		case 4:
			if (fds[slot] >= 0 && have_pci && !gpu_register(fds[slot], NULL) &&
			    rnd(&s) % 2)
				gpu_unregister(fds[slot]);
			continue;
		case 5:
			if (maps[slot]) {
				munmap(maps[slot], BT_CHUNK);
				maps[slot] = NULL;
			}
			continue;
		default:
			if (fds[slot] >= 0)
				close(fds[slot]);
			fds[slot] = -1;
			continue;
		}
		if (fd >= 0) {
			if (maps[slot])
				munmap(maps[slot], BT_CHUNK);
			maps[slot] = NULL;
			if (fds[slot] >= 0)
				close(fds[slot]);
			fds[slot] = fd;
		}
	}
	return 0;
}

struct chaos_arg {
	uint64_t seed;
	char (*names)[BELUGA_NAME_MAX];
};

static void *chaos_thread(void *arg)
{
	struct chaos_arg *a = arg;

	return (void *)(intptr_t)chaos(a->seed, a->names, 120, -1, 0);
}

static void destroy_names(char (*names)[BELUGA_NAME_MAX])
{
	unsigned int i;

	for (i = 0; i < NAMES; i++)
		bt_destroy(bt_dev, names[i]);
}

static void test_processes(void **state)
{
	char names[NAMES][BELUGA_NAME_MAX];
	pid_t pids[4];
	unsigned int i;
	int status;

	snapshot(state);
	for (i = 0; i < NAMES; i++) {
		bt_name(names[i], "procs");
		bt_track_name(names[i]);
	}
	fflush(NULL);
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (!pids[i]) {
			struct chaos_arg a[2] = { { bt_seed() + 2 * i, names },
						  { bt_seed() + 2 * i + 1, names } };
			pthread_t t;
			void *ret;

			pthread_create(&t, NULL, chaos_thread, &a[1]);
			status = (int)(intptr_t)chaos_thread(&a[0]);
			pthread_join(t, &ret);
			_exit(status | (int)(intptr_t)ret);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	destroy_names(names);
	pool_whole();
}

static void test_killed_mid_operation(void **state)
{
	char names[NAMES][BELUGA_NAME_MAX];
	uint64_t s = bt_seed() ^ 0x6b696c6cULL;
	unsigned int i;
	int status;

	snapshot(state);
	for (i = 0; i < NAMES; i++) {
		bt_name(names[i], "killed");
		bt_track_name(names[i]);
	}
	fflush(NULL);
	for (i = 0; i < 24; i++) {
		/*
		 * Whatever it is doing at a random moment, stop it; but only
		 * after it has done a random number of operations (1 to 64):
		 * a kill after a fixed delay lands, on a slow or loaded
		 * machine, before the child has done anything.
		 */
		uint64_t seed = rnd(&s) + i;
		int after = 1 + (int)(rnd(&s) % 64), ready[2];
		struct timespec ts = { 0, (long)(rnd(&s) % 20000000) };
		pid_t pid;
		char c;

		assert_int_equal(pipe(ready), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (!pid) {
			close(ready[0]);
			_exit(chaos(seed, names, 1000000, ready[1], after));
		}
		close(ready[1]);
		if (read(ready[0], &c, 1) != 1) {
			assert_int_equal(waitpid(pid, &status, 0), pid);
			fail_msg("child %u ended before %d operations (status %#x)", i, after,
				 status);
		}
		close(ready[0]);
		nanosleep(&ts, NULL);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		/* Our SIGKILL: not an exit, not a signal of its own. */
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("child %u: status %#x, want killed by SIGKILL", i, status);
	}
	destroy_names(names);
	pool_whole();
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_namespace_race),
		T(test_map_race),
		T(test_gpu_race),
		T(test_destroy_while_mapped),
		T(test_processes),
		T(test_killed_mid_operation),
	};

	return bt_main("drv_race", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
