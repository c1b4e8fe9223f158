// SPDX-License-Identifier: Apache-2.0
/*
 * Description: user-space backend - NUMA nodes as sources, and binding a
 * new region's chunks to them with mbind.
 *
 * Sources are the NUMA nodes with memory, read from sysfs (libnuma's own
 * parsers may print warnings, and a library must stay silent).  Chunks are
 * bound round-robin per 2 MiB, like the driver interleaves them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "user_internal.h"

#define NODE_SYSFS "/sys/devices/system/node"

static uint64_t meminfo_kb(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

int user_node_bytes(struct beluga_pool *pool, int node, uint64_t *total,
		    uint64_t *free, bool *has_cpus)
{
	char path[96], buf[4096];
	int ret;

	snprintf(path, sizeof(path), NODE_SYSFS "/node%d/meminfo", node);
	ret = beluga_read_file(pool, AT_FDCWD, path, buf, sizeof(buf));
	if (ret == -ENOENT && node == 0) {	/* kernel without NUMA */
		ret = beluga_read_file(pool, AT_FDCWD, "/proc/meminfo", buf,
				       sizeof(buf));
	}
	if (ret < 0)
		return ret;
	*total = meminfo_kb(buf, "MemTotal:") << 10;
	*free = meminfo_kb(buf, "MemFree:") << 10;
	if (pool->u.hugefd >= 0)
		*free += user_free_hugepages(pool, node) * BELUGA_CHUNK;
	snprintf(path, sizeof(path), NODE_SYSFS "/node%d/cpulist", node);
	ret = beluga_read_file(pool, AT_FDCWD, path, buf, sizeof(buf));
	*has_cpus = ret > 0 && buf[0] != '\n';
	return ret < 0 && ret != -ENOENT ? ret : 0;
}

static int add_node(void *arg, const char *name)
{
	struct beluga_pool *pool = arg;
	uint64_t total = 0, free = 0;
	bool cpus;
	char *end;
	long n;
	int ret;

	if (strncmp(name, "node", 4))
		return 0;
	n = strtol(name + 4, &end, 10);
	if (*end || n < 0 || n >= BELUGA_MAX_NODES)
		return 0;
	ret = user_node_bytes(pool, (int)n, &total, &free, &cpus);
	if (ret)
		return ret == -ENOENT ? 0 : ret;	/* gone meanwhile */
	if (!total)
		return 0;	/* memoryless (CPU-only) node: not a source */
	pool->u.nodes[pool->u.nr_nodes++] = (int)n;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int user_scan_nodes(struct beluga_pool *pool)
{
	int ret;

	pool->u.nr_nodes = 0;
	ret = beluga_for_each_dirent(pool, AT_FDCWD, NODE_SYSFS, add_node, pool);
	if (ret && ret != -ENOENT)
		return ret;
	if (!pool->u.nr_nodes) {	/* no NUMA in the kernel: node 0 */
		pool->u.nodes[0] = 0;
		pool->u.nr_nodes = 1;
	}
	qsort(pool->u.nodes, (size_t)pool->u.nr_nodes, sizeof(int), cmp_int);
	return 0;
}

static int bind_range(struct beluga_pool *pool, void *addr, uint64_t len,
		      int node)
{
	unsigned long mask[BELUGA_MAX_NODES / (8 * sizeof(unsigned long))] = { 0 };
	const size_t bits = 8 * sizeof(unsigned long);

	mask[node / bits] |= 1UL << (node % bits);
	/* maxnode counts one past the last bit the kernel reads. */
	return pool->ops.mbind(pool->ops.ctx, addr, len, MPOL_BIND, mask,
			       BELUGA_MAX_NODES + 1, 0);
}

/*
 * Bind a fresh mapping before it is populated: one source takes every
 * chunk, BELUGA_ALL_SOURCES deals chunks round-robin.  A kernel without
 * NUMA (ENOSYS) leaves placement to the kernel, with a warning.
 */
int user_bind(struct beluga_pool *pool, void *addr, uint64_t size,
	      int32_t source)
{
	int n = pool->u.nr_nodes;
	int ret = 0;

	if (source >= n)
		return -EINVAL;
	if (source >= 0 || n == 1)
		ret = bind_range(pool, addr, size,
				 pool->u.nodes[source >= 0 ? source : 0]);
	else
		for (uint64_t off = 0, i = 0; off < size && !ret;
		     off += BELUGA_CHUNK, i++)
			ret = bind_range(pool, (char *)addr + off, BELUGA_CHUNK,
					 pool->u.nodes[i % (uint64_t)n]);
	if (ret == -ENOSYS) {
		blog_warn(pool, "mbind: no NUMA support in the kernel; region not bound");
		return 0;
	}
	if (ret)
		blog_err(pool, "mbind: %s", strerror(-ret));
	return ret;
}
