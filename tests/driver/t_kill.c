// SPDX-License-Identifier: Apache-2.0
/*
 * t_kill.c - a process SIGKILLed while holding regions leaves nothing stuck.
 *
 * A forked child opens the device, opens a named region twice by name, maps
 * both fds, creates its own named region and an ephemeral one and maps them,
 * and (if the test helper is loaded) holds FOLL_LONGTERM pins through its
 * own /dev/beluga_test fd.  It is SIGKILLed mid-life.  Afterwards the named
 * regions report open_count 0, map_count 0 and pinned_chunks 0 (STAT and
 * sysfs), the ephemeral region is gone, and destroying the two named
 * regions gives every byte back to the pool.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (4 * BT_CHUNK)


struct victim {
	char shared[BELUGA_NAME_MAX];	/* created by the parent */
	char own[BELUGA_NAME_MAX];	/* created by the child */
	int ready;			/* pipe write end */
};

static void *victim_map(int fd)
{
	char *p = bt_map(fd, SIZE, PROT_READ | PROT_WRITE, 0);

	if (p != MAP_FAILED)
		bt_touch(p, SIZE);
	return p;
}

/* Runs in the child; never returns unless setup failed. */
static int victim(void *arg)
{
	struct victim *v = arg;
	struct beluga_test_pin pin;
	int d = bt_dev_open(), a, b, own, eph, tfd;
	void *pa, *pb, *po, *pe;

	if (d < 0)
		return 10;
	a = bt_open(d, v->shared, 0, NULL);
	b = bt_open(d, v->shared, 0, NULL);
	own = bt_create(d, v->own, SIZE, 0600, 0, NULL);
	eph = bt_create(d, NULL, SIZE, 0600, BELUGA_CREATE_EPHEMERAL, NULL);
	if (a < 0 || b < 0 || own < 0 || eph < 0)
		return 11;
	pa = victim_map(a);
	pb = victim_map(b);
	po = victim_map(own);
	pe = victim_map(eph);
	if (pa == MAP_FAILED || pb == MAP_FAILED || po == MAP_FAILED ||
	    pe == MAP_FAILED)
		return 12;
	tfd = open(BELUGA_TEST_DEVICE_PATH, O_RDWR);
	if (tfd >= 0 && (bt_pin(tfd, pa, SIZE, BELUGA_TEST_PIN_HOLD, &pin) ||
			 bt_pin(tfd, pe, SIZE, BELUGA_TEST_PIN_HOLD, &pin)))
		return 13;
	if (write(v->ready, "R", 1) != 1)
		return 14;
	for (;;)
		pause();
}

static void wait_region_idle(const char *name)
{
	struct beluga_region_stat st;
	uint64_t deadline = bt_now_ms() + BT_DEADLINE_MS;

	for (;;) {
		assert_int_equal(bt_stat(bt_dev, name, &st), 0);
		if (!st.open_count && !st.map_count && !st.pinned_chunks)
			break;
		if (bt_now_ms() > deadline)
			fail_msg("'%s' after SIGKILL: open %u map %u pinned %u",
				 name, st.open_count, st.map_count,
				 st.pinned_chunks);
		bt_sleep_ms(10);
	}
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/open_count",
					 (uint64_t)st.id), 0);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/map_count",
					 (uint64_t)st.id), 0);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/pinned_chunks",
					 (uint64_t)st.id), 0);
}

static void test_sigkill(void **state)
{
	struct beluga_info before, after;
	struct beluga_region_stat st;
	struct victim v;
	int pipefd[2], status, fd;
	char c;
	pid_t pid;

	(void)state;
	bt_info_ok(bt_dev, &before);
	bt_name(v.shared, "killshared");
	bt_name(v.own, "killown");
	bt_track_name(v.own);
	fd = bt_create_ok(bt_dev, v.shared, SIZE, 0600, NULL);
	bt_close(fd);
	assert_int_equal(pipe(pipefd), 0);
	v.ready = pipefd[1];
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(victim(&v));
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1) {
		waitpid(pid, &status, 0);
		fail_msg("victim failed to set up (exit %d)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	close(pipefd[0]);
	assert_int_equal(bt_stat(bt_dev, v.shared, &st), 0);
	assert_int_equal(st.open_count, 2);
	assert_int_equal(st.map_count, 2);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	wait_region_idle(v.shared);
	wait_region_idle(v.own);
	bt_info_ok(bt_dev, &after);
	assert_int_equal(after.nr_regions, before.nr_regions + 2);

	bt_destroy_ok(bt_dev, v.shared);
	bt_destroy_ok(bt_dev, v.own);
	bt_wait_pool_ok(bt_dev, before.free_bytes);
	bt_info_ok(bt_dev, &after);
	assert_int_equal(after.nr_regions, before.nr_regions);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = { T(test_sigkill) };

	return bt_main("drv_kill", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
