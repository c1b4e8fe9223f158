// SPDX-License-Identifier: Apache-2.0
/*
 * t_share.c - two unrelated processes share one region.
 *
 * The peer is this binary started again with fork + exec ("--child"), so it
 * inherits no mapping and no region fd (every Beluga fd here is CLOEXEC):
 *  - by name: the peer opens the region with REGION_OPEN;
 *  - by fd: the region is ephemeral (it has no name at all) and its fd
 *    travels over a unix socket with SCM_RIGHTS.
 * In both, each side writes a pattern the other then reads through the
 * mapping it already has (live sharing, not a copy at open), and
 * open_count/map_count show both processes.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (4 * BT_CHUNK)
#define HALF (SIZE / 2)


/* --- the peer (runs after exec, without CMocka) ------------------------ */

static int recv_fd(int sock)
{
	char data, ctrl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctrl, .msg_controllen = sizeof(ctrl),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

static int wait_byte(int fd, char want)
{
	char c = 0;

	return read(fd, &c, 1) == 1 && c == want ? 0 : -1;
}

/*
 * argv: --child name <name> <rfd> <wfd>   or   --child sock <sock>
 * Exit: 0 ok, 2x setup failed, 3x data mismatch, 4x protocol.
 */
static int child_main(int argc, char **argv)
{
	int rfd, wfd, fd, devfd;
	char *p;

	if (argc < 4)
		return 20;
	if (!strcmp(argv[2], "name") && argc == 6) {
		rfd = atoi(argv[4]);
		wfd = atoi(argv[5]);
		devfd = bt_dev_open();
		if (devfd < 0)
			return 21;
		fd = bt_open(devfd, argv[3], 0, NULL);
		if (fd < 0) {
			fprintf(stderr, "peer: open '%s': %s\n", argv[3],
				strerror(-fd));
			return 22;
		}
	} else {
		rfd = wfd = atoi(argv[3]);
		fd = recv_fd(rfd);
		if (fd < 0)
			return 23;
	}
	p = bt_map(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED)
		return 24;
	if (wait_byte(rfd, 'A'))
		return 40;
	if (bt_check(p, HALF, 1) != UINT64_MAX)
		return 30;
	bt_fill(p + HALF, HALF, 2);
	if (write(wfd, "B", 1) != 1 || wait_byte(rfd, 'C'))
		return 41;
	if (bt_check(p, HALF, 3) != UINT64_MAX)
		return 31;
	return 0;
}

/* --- the tests ---------------------------------------------------------- */

/* fork + exec this binary as a peer (non-CLOEXEC fds stay open in it). */
static pid_t spawn_peer(char *const args[])
{
	char seed[32];
	pid_t pid;

	snprintf(seed, sizeof(seed), "%" PRIu64, bt_seed());
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("BELUGA_TEST_SEED", seed, 1);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	return pid;
}

static int wait_peer(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/*
 * Drive the A/B/C exchange with a peer mapping the same region: the peer
 * checks our pattern 1, writes its pattern 2, then checks our pattern 3.
 */
static void exchange(char *p, int rfd, int wfd, const char *name)
{
	struct beluga_region_stat st;

	bt_fill(p, HALF, 1);
	assert_int_equal(write(wfd, "A", 1), 1);
	assert_int_equal(wait_byte(rfd, 'B'), 0);
	assert_int_equal(bt_check(p + HALF, HALF, 2), UINT64_MAX);
	if (name) {
		assert_int_equal(bt_stat(bt_dev, name, &st), 0);
		assert_int_equal(st.open_count, 2);
		assert_int_equal(st.map_count, 2);
	}
	bt_fill(p, HALF, 3);
	assert_int_equal(write(wfd, "C", 1), 1);
}

static void test_share_by_name(void **state)
{
	char name[BELUGA_NAME_MAX], rbuf[16], wbuf[16];
	int to_peer[2], to_us[2], fd;
	char *p;
	pid_t pid;

	(void)state;
	bt_name(name, "share");
	fd = bt_create(bt_dev, name, SIZE, 0600, BELUGA_CREATE_CLOEXEC, NULL);
	assert_true(fd >= 0);
	bt_track_name(name);
	bt_track_fd(fd);
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	assert_int_equal(pipe(to_peer), 0);
	assert_int_equal(pipe(to_us), 0);
	fcntl(to_peer[1], F_SETFD, FD_CLOEXEC);	/* our ends stay ours */
	fcntl(to_us[0], F_SETFD, FD_CLOEXEC);
	snprintf(rbuf, sizeof(rbuf), "%d", to_peer[0]);
	snprintf(wbuf, sizeof(wbuf), "%d", to_us[1]);
	{
		char *const args[] = { "drv_share", "--child", "name", name,
				       rbuf, wbuf, NULL };

		pid = spawn_peer(args);
	}
	close(to_peer[0]);
	close(to_us[1]);
	exchange(p, to_us[0], to_peer[1], name);
	assert_int_equal(wait_peer(pid), 0);
	close(to_peer[1]);
	close(to_us[0]);
}

static void send_fd(int sock, int fd)
{
	char ctrl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "F", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctrl, .msg_controllen = sizeof(ctrl),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	assert_int_equal(sendmsg(sock, &msg, 0), 1);
}

static void test_share_fd_over_socket(void **state)
{
	struct beluga_region_stat st;
	uint64_t free_b = bt_free_ok(bt_dev);
	char sbuf[16];
	int sv[2], fd;
	char *p;
	pid_t pid;

	(void)state;
	/* Ephemeral and nameless: the socket is the only way in. */
	fd = bt_create(bt_dev, NULL, SIZE, 0600,
		       BELUGA_CREATE_EPHEMERAL | BELUGA_CREATE_CLOEXEC, NULL);
	assert_true(fd >= 0);
	bt_track_fd(fd);
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	snprintf(sbuf, sizeof(sbuf), "%d", sv[1]);
	{
		char *const args[] = { "drv_share", "--child", "sock", sbuf,
				       NULL };

		pid = spawn_peer(args);
	}
	close(sv[1]);
	send_fd(sv[0], fd);
	exchange(p, sv[0], sv[0], NULL);
	assert_int_equal(wait_peer(pid), 0);
	close(sv[0]);
	/* The peer's references died with it; ours are the last. */
	assert_int_equal(bt_fd_stat(fd, &st), 0);
	assert_int_equal(st.open_count, 1);
	assert_int_equal(st.map_count, 1);
	bt_unmap(p, SIZE);
	bt_close(fd);
	bt_wait_pool_ok(bt_dev, free_b);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_share_by_name), T(test_share_fd_over_socket),
	};

	if (argc > 1 && !strcmp(argv[1], "--child"))
		return child_main(argc, argv);
	return bt_main("drv_share", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
