// SPDX-License-Identifier: Apache-2.0
/*
 * t_compat32.c - the ABI from a 32-bit process (compat_ioctl).
 *
 * Built with -m32 -static (no CMocka: Debian ships no 32-bit one), so the
 * guest runs it through the kernel's IA32 emulation and every ioctl goes
 * through the driver's compat_ioctl.  Covers: INFO, SOURCE_INFO, CREATE,
 * SHARED_DEFINE (refused on a node source), OPEN, STAT, FD_STAT, LIST and
 * LAYOUT (user pointers carried in __u64 fields), SETATTR, DESTROY, a
 * 2 MiB-aligned mmap shared with a 64-bit-sized view of the same region,
 * EINVAL for bad flags and ENOTTY for an unknown command, and that the pool
 * is whole again afterwards.
 * Exit: 0 pass, 77 skip (no /dev/beluga), 1 fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/beluga.h>

#define CHUNK BELUGA_CHUNK_SIZE

static int failures;

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: CHECK(%s) failed (errno %s)\n", \
				__FILE__, __LINE__, #cond, strerror(errno)); \
			failures++;					\
		}							\
	} while (0)

static int ioc(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static uint64_t free_bytes(int dev)
{
	struct beluga_info info;

	memset(&info, 0, sizeof(info));
	CHECK(ioc(dev, BELUGA_IOC_INFO, &info) == 0);
	return info.free_bytes;
}

static void check_info(int dev)
{
	struct beluga_source_info si;
	struct beluga_info info;

	memset(&info, 0, sizeof(info));
	CHECK(ioc(dev, BELUGA_IOC_INFO, &info) == 0);
	CHECK(info.abi_version >> 16 == BELUGA_ABI_MAJOR);
	CHECK(info.chunk_size == CHUNK);
	CHECK(info.nr_sources >= 1);
	CHECK(info.free_bytes <= info.total_bytes);
	memset(&si, 0, sizeof(si));
	CHECK(ioc(dev, BELUGA_IOC_SOURCE_INFO, &si) == 0);
	CHECK(si.kind == BELUGA_SOURCE_NODE);
	si.index = info.nr_sources;
	si.kind = si.node = 0;
	si.total_bytes = si.free_bytes = 0;
	si.flags = 0;
	CHECK(ioc(dev, BELUGA_IOC_SOURCE_INFO, &si) == -ENOENT);
	info.flags = 1;
	CHECK(ioc(dev, BELUGA_IOC_INFO, &info) == -EINVAL);
	CHECK(ioc(dev, _IO(BELUGA_IOC_MAGIC, 0x3f), NULL) == -ENOTTY);
	/* SHARED_DEFINE (1.2) reaches the driver: source 0 is a node source. */
	{
		struct beluga_shared_define sd;

		memset(&sd, 0, sizeof(sd));
		strcpy(sd.name, "c32-shared");
		sd.size = CHUNK;
		sd.mode = 0600;
		CHECK(ioc(dev, BELUGA_IOC_SHARED_DEFINE, &sd) == -EOPNOTSUPP);
	}
}

static int create(int dev, const char *name, uint64_t *id)
{
	struct beluga_region_create c;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.size = 2 * CHUNK;
	c.mode = 0600;
	c.source_index = -1;
	if (ioc(dev, BELUGA_IOC_REGION_CREATE, &c))
		return -1;
	*id = c.id;
	return c.fd;
}

static void check_list(int dev, uint64_t id)
{
	struct beluga_region_stat *e;
	struct beluga_region_list l;
	int found = 0;

	memset(&l, 0, sizeof(l));
	CHECK(ioc(dev, BELUGA_IOC_REGION_LIST, &l) == 0);
	CHECK(l.count >= 1);
	e = calloc(l.count + 1, sizeof(*e));
	if (!e)
		exit(1);
	l.entries = (uintptr_t)e;	/* a 32-bit pointer in a __u64 */
	l.capacity = l.count + 1;
	l.count = 0;
	CHECK(ioc(dev, BELUGA_IOC_REGION_LIST, &l) == 0);
	for (uint32_t i = 0; i < l.count; i++)
		found += e[i].id == id && e[i].size == 2 * CHUNK;
	CHECK(found == 1);
	free(e);
}

static void check_region_fd(int fd, uint64_t id)
{
	struct beluga_region_layout l;
	struct beluga_region_stat st;
	int32_t nodes[4] = { -9, -9, -9, -9 };

	memset(&st, 0, sizeof(st));
	CHECK(ioc(fd, BELUGA_IOC_REGION_FD_STAT, &st) == 0);
	CHECK(st.id == id && st.nr_chunks == 2 && st.open_count == 2);
	memset(&l, 0, sizeof(l));
	l.nodes = (uintptr_t)nodes;
	l.capacity = 4;
	CHECK(ioc(fd, BELUGA_IOC_REGION_LAYOUT, &l) == 0);
	CHECK(l.nr_chunks == 2 && l.chunk_size == CHUNK);
	CHECK(nodes[0] >= 0 && nodes[1] >= 0 && nodes[2] == -9);
}

static void check_mmap(int fd, int fd2)
{
	char *a = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	char *b = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, fd2,
		       CHUNK);

	CHECK(a != MAP_FAILED && b != MAP_FAILED);
	if (a == MAP_FAILED || b == MAP_FAILED)
		return;
	CHECK((uintptr_t)a % CHUNK == 0 && (uintptr_t)b % CHUNK == 0);
	CHECK(a[0] == 0 && a[2 * CHUNK - 1] == 0);
	a[CHUNK + 77] = 'z';
	CHECK(b[77] == 'z');
	CHECK(mmap(NULL, CHUNK, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED);
	munmap(a, 2 * CHUNK);
	munmap(b, CHUNK);
}

int main(void)
{
	struct beluga_region_setattr sa;
	struct beluga_region_stat st;
	struct beluga_region_name d;
	char name[BELUGA_NAME_MAX];
	uint64_t id, free0;
	int dev, fd, fd2;

	dev = open(BELUGA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("%s: %s: skipped\n", BELUGA_DEVICE_PATH, strerror(errno));
		return 77;
	}
	printf("32-bit process, sizeof(long) = %zu\n", sizeof(long));
	check_info(dev);
	free0 = free_bytes(dev);
	snprintf(name, sizeof(name), "bt-compat32-%d", (int)getpid());
	fd = create(dev, name, &id);
	CHECK(fd >= 0);
	if (fd < 0)
		return 1;
	{
		struct beluga_region_open o;

		memset(&o, 0, sizeof(o));
		snprintf(o.name, sizeof(o.name), "%s", name);
		CHECK(ioc(dev, BELUGA_IOC_REGION_OPEN, &o) == 0);
		CHECK(o.id == id);
		fd2 = o.fd;
	}
	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	CHECK(ioc(dev, BELUGA_IOC_REGION_STAT, &st) == 0);
	CHECK(st.id == id && st.size == 2 * CHUNK && st.mode == 0600);
	check_list(dev, id);
	check_region_fd(fd, id);
	check_mmap(fd, fd2);
	memset(&sa, 0, sizeof(sa));
	snprintf(sa.name, sizeof(sa.name), "%s", name);
	sa.flags = BELUGA_SETATTR_MODE;
	sa.mode = 0640;
	CHECK(ioc(dev, BELUGA_IOC_REGION_SETATTR, &sa) == 0);
	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "%s", name);
	CHECK(ioc(dev, BELUGA_IOC_REGION_DESTROY, &d) == 0);
	CHECK(ioc(dev, BELUGA_IOC_REGION_DESTROY, &d) == -ENOENT);
	close(fd);
	close(fd2);
	/* Freed on last close; allow the driver a moment (30 s deadline). */
	for (int i = 0; i < 3000 && free_bytes(dev) != free0; i++)
		usleep(10000);
	CHECK(free_bytes(dev) == free0);
	close(dev);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
