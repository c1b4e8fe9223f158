// SPDX-License-Identifier: Apache-2.0
/*
 * beluga-demo: what Beluga does, in one VM boot (`make demo`).
 *
 * Prints the pool, creates a named region, maps it, and starts an unrelated
 * process (fork + exec of this program: it inherits no descriptor and no
 * mapping) that opens the region by name; the two exchange messages through
 * the shared memory.  Then it passes the region fd to a third process over a
 * unix socket, which maps it and answers the same way.  Finally it destroys
 * the region and prints the pool again.  Uses only the UAPI header.
 *
 * Exit status 0 when every step worked and every write was seen by the other
 * side, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/beluga.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION_NAME "demo-kv-cache"
#define REGION_CHUNKS 4
#define MSG_MAX 96
#define WAIT_SECONDS 30

/* Layout of the shared region: one mailbox per chunk, so the messages land
 * on different NUMA nodes when the region is interleaved. */
struct mailbox {
	uint32_t seq;	/* written last, with release ordering */
	int32_t writer;	/* pid of the writer */
	char text[MSG_MAX];
};

static const char *role = "creator";

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("[%-8s pid %d] ", role, (int)getpid());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int fail(const char *what)
{
	fprintf(stderr, "[%-8s pid %d] FAILED: %s: %s\n", role, (int)getpid(), what,
		strerror(errno));
	return -1;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

static struct mailbox *box(void *base, unsigned int chunk)
{
	return (struct mailbox *)((char *)base + (size_t)chunk * BELUGA_CHUNK_SIZE);
}

static void post(struct mailbox *mb, uint32_t seq, const char *text)
{
	snprintf(mb->text, sizeof(mb->text), "%s", text);
	mb->writer = getpid();
	__atomic_store_n(&mb->seq, seq, __ATOMIC_RELEASE);
}

/* Wait until the other side posts @seq in @mb (polling: the memory itself is
 * the only thing the two processes share). */
static int await(struct mailbox *mb, uint32_t seq)
{
	struct timespec nap = { 0, 1000000 };
	time_t deadline = time(NULL) + WAIT_SECONDS;

	while (__atomic_load_n(&mb->seq, __ATOMIC_ACQUIRE) != seq) {
		if (time(NULL) > deadline) {
			errno = ETIMEDOUT;
			return fail("waiting for the other process");
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}

static int open_dev(void)
{
	int fd = open(BELUGA_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail("open " BELUGA_DEVICE_PATH " (is beluga.ko loaded?)");
	return fd;
}

static int print_pool(int dev, const char *when)
{
	struct beluga_info info = { 0 };
	uint32_t i;

	if (ioctl(dev, BELUGA_IOC_INFO, &info))
		return fail("BELUGA_IOC_INFO");
	printf("\nPool %s (driver ABI %u.%u, chunks of %.0f MiB):\n", when,
	       info.abi_version >> 16, info.abi_version & 0xffff, mib(info.chunk_size));
	printf("  total %.0f MiB, free %.0f MiB, %u region(s), %u source(s)\n",
	       mib(info.total_bytes), mib(info.free_bytes), info.nr_regions, info.nr_sources);
	for (i = 0; i < info.nr_sources; i++) {
		struct beluga_source_info src = { .index = i };

		if (ioctl(dev, BELUGA_IOC_SOURCE_INFO, &src))
			return fail("BELUGA_IOC_SOURCE_INFO");
		printf("  source %u: NUMA node %d, %.0f MiB total, %.0f MiB free (%s)\n", i,
		       src.node, mib(src.total_bytes), mib(src.free_bytes),
		       src.flags & BELUGA_SOURCE_F_HAS_CPUS ? "node with CPUs: ordinary DRAM"
							   : "CPU-less node: CXL memory");
	}
	printf("\n");
	fflush(stdout);
	return 0;
}

static void *map_region(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		fail("mmap of the region fd");
		return NULL;
	}
	say("mapped %zu MiB at %p (%s2 MiB aligned)", size >> 20, p,
	    (uintptr_t)p % BELUGA_CHUNK_SIZE ? "NOT " : "");
	return p;
}

/* Reply to the creator's messages in chunk 0 with our own in chunk @chunk. */
static int converse(void *base, unsigned int chunk, const char *reply)
{
	struct mailbox *in = box(base, 0), *out = box(base, chunk);

	if (await(in, 1))
		return -1;
	say("read \"%s\" (written by pid %d)", in->text, in->writer);
	say("writing \"%s\" into chunk %u", reply, chunk);
	post(out, 1, reply);
	return 0;
}

/* --peer: an unrelated process that finds the region by its name. */
static int run_peer(void)
{
	struct beluga_region_open op = { .name = REGION_NAME, .flags = BELUGA_OPEN_CLOEXEC };
	size_t size = REGION_CHUNKS * BELUGA_CHUNK_SIZE;
	int dev = open_dev();
	void *base;

	role = "peer";
	if (dev < 0)
		return 1;
	if (ioctl(dev, BELUGA_IOC_REGION_OPEN, &op))
		return fail("BELUGA_IOC_REGION_OPEN"), 1;
	say("opened region \"%s\" by name -> fd %d (region id %llu)", REGION_NAME, op.fd,
	    (unsigned long long)op.id);
	base = map_region(op.fd, size);
	if (!base || converse(base, 1, "hello back from the peer, who opened the region by name"))
		return 1;
	if (await(box(base, 0), 2))
		return 1;
	say("read \"%s\": the creator's second write is visible here too", box(base, 0)->text);
	return 0;
}

/* --receiver: gets the region fd itself over an abstract unix socket. */
static int recv_fd(const char *sock_name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(sizeof(int))], byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int s, fd;

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail("socket");
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "%s", sock_name);
	if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) ||
	    recvmsg(s, &msg, MSG_CMSG_CLOEXEC) != 1) {
		fail("receiving the region fd");
		close(s);
		return -1;
	}
	close(s);
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS) {
		errno = EPROTO;
		return fail("no SCM_RIGHTS message");
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

static int run_receiver(const char *sock_name)
{
	struct beluga_region_stat st = { 0 };
	int fd;
	void *base;

	role = "receiver";
	fd = recv_fd(sock_name);
	if (fd < 0)
		return 1;
	if (ioctl(fd, BELUGA_IOC_REGION_FD_STAT, &st))
		return fail("BELUGA_IOC_REGION_FD_STAT"), 1;
	say("received fd %d over a unix socket: region \"%s\", id %llu, %llu MiB", fd, st.name,
	    (unsigned long long)st.id, (unsigned long long)st.size >> 20);
	base = map_region(fd, st.size);
	if (!base || converse(base, 2, "hello from the receiver, who got the fd over a socket"))
		return 1;
	return 0;
}

/* Start this program again in @mode: exec drops every mapping, and every fd
 * of ours is close-on-exec, so the child shares nothing with us. */
static pid_t spawn(const char *mode, const char *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl("/proc/self/exe", "beluga-demo", mode, arg, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		fail("fork");
	else
		say("started pid %d with fork+exec (%s): it inherits no fd and no mapping", pid, mode);
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return fail("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		errno = ECHILD;
		return fail("the other process failed");
	}
	return 0;
}

static int share_by_name(void *base, int region)
{
	struct beluga_region_stat st = { 0 };
	pid_t pid = spawn("--peer", "");

	if (pid < 0)
		return -1;
	say("writing \"hello from the creator\" into chunk 0");
	post(box(base, 0), 1, "hello from the creator");
	if (await(box(base, 1), 1))
		return -1;
	say("read \"%s\" (written by pid %d): the peer's write is visible here",
	    box(base, 1)->text, box(base, 1)->writer);
	if (ioctl(region, BELUGA_IOC_REGION_FD_STAT, &st))
		return fail("BELUGA_IOC_REGION_FD_STAT");
	say("the region now has %u open fds and %u mappings (the creator's and the peer's)",
	    st.open_count, st.map_count);
	say("writing \"second message from the creator\" into chunk 0");
	post(box(base, 0), 2, "second message from the creator");
	return reap(pid);
}

static int send_fd(int conn, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	return sendmsg(conn, &msg, 0) == 1 ? 0 : fail("sendmsg SCM_RIGHTS");
}

static int share_by_fd_passing(void *base, int region)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char name[64];
	int s, conn, rc = -1;
	pid_t pid;

	snprintf(name, sizeof(name), "beluga-demo-%d", (int)getpid());
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "%s", name);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) || listen(s, 1))
		return fail("unix socket");
	say("writing \"hello again from the creator\" into chunk 0");
	post(box(base, 0), 1, "hello again from the creator");
	pid = spawn("--receiver", name);
	if (pid < 0)
		goto out;
	conn = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0 || send_fd(conn, region)) {
		fail("passing the fd");
		goto out;
	}
	close(conn);
	say("passed the region fd over the unix socket to pid %d", pid);
	if (reap(pid))
		goto out;
	say("read \"%s\" (written by pid %d): the receiver's write is visible here",
	    box(base, 2)->text, box(base, 2)->writer);
	rc = box(base, 2)->seq == 1 ? 0 : -1;
out:
	close(s);
	return rc;
}

static int print_layout(int region)
{
	int32_t nodes[REGION_CHUNKS];
	struct beluga_region_layout lay = { .nodes = (uintptr_t)nodes, .capacity = REGION_CHUNKS };
	char line[128] = "";
	uint32_t i;

	if (ioctl(region, BELUGA_IOC_REGION_LAYOUT, &lay))
		return fail("BELUGA_IOC_REGION_LAYOUT");
	for (i = 0; i < lay.nr_chunks && i < REGION_CHUNKS; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " %d", nodes[i]);
	say("its %u chunks of 2 MiB live on NUMA nodes:%s (round-robin interleaving)",
	    lay.nr_chunks, line);
	return 0;
}

static int demo(int dev)
{
	struct beluga_region_create cr = {
		.name = REGION_NAME, .size = REGION_CHUNKS * BELUGA_CHUNK_SIZE,
		.flags = BELUGA_CREATE_CLOEXEC, .mode = 0600,
		.source_kind = BELUGA_SOURCE_ANY, .source_index = -1,
	};
	struct beluga_region_name destroy = { .name = REGION_NAME };
	void *base;
	int rc = -1;

	if (ioctl(dev, BELUGA_IOC_REGION_CREATE, &cr))
		return fail("BELUGA_IOC_REGION_CREATE");
	say("created region \"%s\": %llu MiB, mode 0600, id %llu -> region fd %d", REGION_NAME,
	    (unsigned long long)cr.size >> 20, (unsigned long long)cr.id, cr.fd);
	base = map_region(cr.fd, cr.size);
	if (base && !print_layout(cr.fd) && !share_by_name(base, cr.fd) &&
	    !share_by_fd_passing(base, cr.fd))
		rc = 0;
	if (base)
		munmap(base, cr.size);
	close(cr.fd);
	if (ioctl(dev, BELUGA_IOC_REGION_DESTROY, &destroy))
		return fail("BELUGA_IOC_REGION_DESTROY");
	say("unmapped, closed and destroyed the region: its memory goes back to the pool");
	return rc;
}

int main(int argc, char **argv)
{
	int dev, rc;

	if (argc == 3 && !strcmp(argv[1], "--peer"))
		return run_peer();
	if (argc == 3 && !strcmp(argv[1], "--receiver"))
		return run_receiver(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: %s   (--peer and --receiver are internal)\n", argv[0]);
		return 2;
	}
	printf("Beluga demo: processes sharing CXL memory through " BELUGA_DEVICE_PATH "\n");
	dev = open_dev();
	if (dev < 0 || print_pool(dev, "at start"))
		return 1;
	rc = demo(dev);
	if (print_pool(dev, "at the end"))
		rc = -1;
	close(dev);
	if (rc) {
		printf("Demo FAILED (see the messages above).\n");
		return 1;
	}
	printf("Demo OK: an unrelated process opened the region by name, another got its fd over\n"
	       "a unix socket, and every process saw the others' writes in the same CXL memory.\n");
	return 0;
}
