// SPDX-License-Identifier: Apache-2.0
/*
 * t_gpu.c - GPU registration of regions (BELUGA_IOC_GPU_REGISTER).
 *
 * The "ranges-gpu" boot has two sockets (CPU nodes 0 and 1), a CPU-less node
 * next to each (2 near 0, 3 near 1) and a QEMU 'edu' PCI device behind a pxb
 * bridge on each socket standing in for a GPU.  Elsewhere the tests skip.
 * Covers: the socket answer (SAME, OTHER, MIXED) from the device's node and
 * the node distance table; per-chunk nodes, chunk size, registration limit;
 * ENODEV for an unknown PCI address, EINVAL for bad input, EFAULT for a bad
 * nodes pointer (with nothing left registered); a registration makes
 * destroy fail with EBUSY until it is unregistered, the fd is closed, or
 * the process holding it is killed; ENOENT for unregistering what this fd
 * does not hold; sysfs gpu_registrations.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_GPUS 4

struct gpu {
	uint32_t domain, bdf;
	int node;
};

static struct gpu gpus[MAX_GPUS];
static int nr_gpus;
static int src_near0 = -1, src_near1 = -1;	/* node sources by socket */

static int read_int(const char *path, int *v)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%i", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/* The stand-in GPUs: QEMU's edu device, vendor 0x1234 device 0x11e8. */
static void find_gpus(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;

	while (d && (de = readdir(d)) && nr_gpus < MAX_GPUS) {
		char path[512];
		unsigned int dom, bus, slot, fn;
		int vendor, device, node;

		if (sscanf(de->d_name, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
		if (read_int(path, &vendor) || vendor != 0x1234)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
		if (read_int(path, &device) || device != 0x11e8)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", de->d_name);
		if (read_int(path, &node))
			node = -1;
		gpus[nr_gpus++] = (struct gpu){ dom, bus << 8 | slot << 3 | fn, node };
		printf("  stand-in GPU %s on node %d\n", de->d_name, node);
	}
	if (d)
		closedir(d);
}

static int group_setup(void **state)
{
	struct bt_sources s;

	if (bt_group_setup(state) || bt_sources(bt_dev, &s))
		return 1;
	src_near0 = bt_source_on_node(&s, 2);
	src_near1 = bt_source_on_node(&s, 3);
	find_gpus();
	return 0;
}

static struct gpu *gpu_on(int node)
{
	int i;

	for (i = 0; i < nr_gpus; i++)
		if (gpus[i].node == node)
			return &gpus[i];
	return NULL;
}

static void need_topology(void)
{
	if (!gpu_on(0) || !gpu_on(1) || src_near0 < 0 || src_near1 < 0)
		bt_skip("needs the ranges-gpu boot (stand-in GPUs on nodes 0 and 1, sources on nodes 2 and 3)");
}

static int create_on(char name[BELUGA_NAME_MAX], uint64_t size, int index)
{
	int fd;

	bt_name(name, "gpu");
	fd = bt_create_on_source(bt_dev, name, size, BELUGA_SOURCE_NODE, index);
	if (fd < 0)
		fail_msg("create: %s", strerror(-fd));
	return fd;
}

static int gpu_register(int fd, const struct gpu *g, struct beluga_gpu_register *r,
			int32_t *nodes, uint32_t cap)
{
	memset(r, 0, sizeof(*r));
	r->pci_domain = g->domain;
	r->pci_bdf = g->bdf;
	r->nodes = (uintptr_t)nodes;
	r->capacity = cap;
	return bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, r);
}

static int gpu_unregister(int fd, const struct gpu *g)
{
	struct beluga_gpu_unregister u = { .pci_domain = g->domain, .pci_bdf = g->bdf };

	return bt_ioctl(fd, BELUGA_IOC_GPU_UNREGISTER, &u);
}

static void test_socket_answer(void **state)
{
	struct beluga_gpu_register r;
	char a[BELUGA_NAME_MAX], b[BELUGA_NAME_MAX], m[BELUGA_NAME_MAX];
	int32_t nodes[4];
	int fa, fb, fm;

	(void)state;
	need_topology();
	fa = create_on(a, 2 * BT_CHUNK, src_near0);
	fb = create_on(b, 2 * BT_CHUNK, src_near1);
	fm = create_on(m, 2 * BT_CHUNK, -1);

	assert_int_equal(gpu_register(fa, gpu_on(0), &r, nodes, 4), 0);
	assert_int_equal(r.socket, BELUGA_GPU_SOCKET_SAME);
	assert_int_equal(r.gpu_node, 0);
	assert_int_equal(r.nr_chunks, 2);
	assert_int_equal(r.chunk_size, BT_CHUNK);
	assert_true(r.max_register_bytes >= BT_CHUNK);
	assert_int_equal(r.registrations, 1);
	assert_int_equal(nodes[0], 2);
	assert_int_equal(nodes[1], 2);
	assert_int_equal(gpu_register(fa, gpu_on(1), &r, NULL, 0), 0);
	assert_int_equal(r.socket, BELUGA_GPU_SOCKET_OTHER);

	assert_int_equal(gpu_register(fb, gpu_on(1), &r, NULL, 0), 0);
	assert_int_equal(r.socket, BELUGA_GPU_SOCKET_SAME);
	assert_int_equal(gpu_register(fm, gpu_on(0), &r, nodes, 4), 0);
	assert_int_equal(r.socket, BELUGA_GPU_SOCKET_MIXED);
	assert_int_not_equal(nodes[0], nodes[1]);
	/* Registering twice counts. */
	assert_int_equal(gpu_register(fm, gpu_on(0), &r, NULL, 0), 0);
	assert_int_equal(r.registrations, 2);
}

static void test_errors(void **state)
{
	struct beluga_gpu_register r;
	struct beluga_gpu_unregister u;
	char name[BELUGA_NAME_MAX];
	struct gpu bogus = { 0, 0xff << 8, -1 }, *g;
	int fd;

	(void)state;
	need_topology();
	g = gpu_on(0);
	fd = create_on(name, BT_CHUNK, src_near0);
	assert_int_equal(gpu_register(fd, &bogus, &r, NULL, 0), -ENODEV);
	memset(&r, 0, sizeof(r));
	r.pci_bdf = 0x10000;	/* not a bus/devfn */
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &r), -EINVAL);
	memset(&r, 0, sizeof(r));
	r.pci_bdf = g->bdf;
	r.flags = 1;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &r), -EINVAL);
	memset(&r, 0, sizeof(r));
	r.pci_bdf = g->bdf;
	r.reserved[3] = 1;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &r), -EINVAL);
	memset(&r, 0, sizeof(r));
	r.pci_bdf = g->bdf;
	r.capacity = 1;		/* capacity without a pointer */
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &r), -EINVAL);
	r.nodes = 16;		/* unmapped */
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_REGISTER, &r), -EFAULT);
	/* Nothing was registered by the failures: destroy works. */
	memset(&u, 0, sizeof(u));
	u.pci_bdf = g->bdf;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_UNREGISTER, &u), -ENOENT);
	u.__pad = 1;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_GPU_UNREGISTER, &u), -EINVAL);
	bt_destroy_ok(bt_dev, name);
}

static void test_blocks_destroy(void **state)
{
	struct beluga_gpu_register r;
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX], id[24];
	int fd;

	(void)state;
	need_topology();
	fd = create_on(name, BT_CHUNK, src_near0);
	assert_int_equal(gpu_register(fd, gpu_on(0), &r, NULL, 0), 0);
	assert_int_equal(bt_fd_stat(fd, &st), 0);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)st.id);
	assert_int_equal(bt_sysfs_u64_ok("regions/%s/gpu_registrations", id), 1);
	assert_int_equal(bt_destroy(bt_dev, name), -EBUSY);
	assert_int_equal(gpu_unregister(fd, gpu_on(0)), 0);
	assert_int_equal(gpu_unregister(fd, gpu_on(0)), -ENOENT);
	assert_int_equal(bt_sysfs_u64_ok("regions/%s/gpu_registrations", id), 0);
	bt_destroy_ok(bt_dev, name);
}

static void test_close_releases(void **state)
{
	struct beluga_gpu_register r;
	char name[BELUGA_NAME_MAX];
	int fd, other;

	(void)state;
	need_topology();
	fd = create_on(name, BT_CHUNK, src_near0);
	other = bt_open_ok(bt_dev, name, 0, NULL);
	assert_int_equal(gpu_register(other, gpu_on(0), &r, NULL, 0), 0);
	/* Another fd of the same region does not hold that registration. */
	assert_int_equal(gpu_unregister(fd, gpu_on(0)), -ENOENT);
	assert_int_equal(bt_destroy(bt_dev, name), -EBUSY);
	bt_close(other);
	bt_destroy_ok(bt_dev, name);
}

struct kill_arg {
	const char *name;
	int ready[2];
};

static int child_register_and_wait(void *p)
{
	struct kill_arg *a = p;
	struct beluga_gpu_register r;
	int d = bt_dev_open(), fd;
	char c = 1;

	fd = d < 0 ? d : bt_open(d, a->name, 0, NULL);
	if (fd < 0 || gpu_register(fd, gpu_on(0), &r, NULL, 0))
		c = 0;
	if (write(a->ready[1], &c, 1) != 1)
		return 2;
	pause();
	return 0;
}

static void test_killed_process_releases(void **state)
{
	char name[BELUGA_NAME_MAX], c = 0;
	struct kill_arg a;
	pid_t pid;
	int fd, status;

	(void)state;
	need_topology();
	fd = create_on(name, BT_CHUNK, src_near0);
	(void)fd;
	a.name = name;
	assert_int_equal(pipe(a.ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_register_and_wait(&a));
	assert_int_equal(read(a.ready[0], &c, 1), 1);
	assert_int_equal(c, 1);
	assert_int_equal(bt_destroy(bt_dev, name), -EBUSY);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(a.ready[0]);
	close(a.ready[1]);
	bt_destroy_ok(bt_dev, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_socket_answer, bt_cleanup),
		cmocka_unit_test_teardown(test_errors, bt_cleanup),
		cmocka_unit_test_teardown(test_blocks_destroy, bt_cleanup),
		cmocka_unit_test_teardown(test_close_releases, bt_cleanup),
		cmocka_unit_test_teardown(test_killed_process_releases, bt_cleanup),
	};

	return bt_main("gpu", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
