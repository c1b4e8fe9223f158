// SPDX-License-Identifier: Apache-2.0
/*
 * Description: user-space backend - finding a 2 MiB hugetlbfs mount and
 * counting its free pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "user_internal.h"

#define HUGE_2M "hugepages-2048kB"

/* Does a hugetlbfs mount with these options use 2 MiB pages? */
static bool is_2m(struct beluga_pool *pool, const char *opts)
{
	const char *p = strstr(opts, "pagesize=");
	char buf[4096];

	if (p)
		return !strncmp(p + 9, "2M", 2) || !strncmp(p + 9, "2048K", 5) ||
		       !strncmp(p + 9, "2097152", 7);
	/* No pagesize=: the default huge page size applies. */
	if (beluga_read_file(pool, AT_FDCWD, "/proc/meminfo", buf, sizeof(buf)) < 0)
		return false;
	p = strstr(buf, "Hugepagesize:");
	return p && strtoull(p + 13, NULL, 10) == 2048;
}

/* First 2 MiB hugetlbfs mount point in /proc/mounts; -ENOENT if none. */
int user_find_hugetlbfs(struct beluga_pool *pool, char *mnt, size_t len)
{
	char *mounts, *line, *save = NULL;
	int ret;

	mounts = malloc(1 << 16);
	if (!mounts)
		return -ENOMEM;
	ret = beluga_read_file(pool, AT_FDCWD, "/proc/mounts", mounts, 1 << 16);
	for (line = ret < 0 ? NULL : strtok_r(mounts, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char dev[256], dir[PATH_MAX], type[64], opts[1024];

		if (sscanf(line, "%255s %4095s %63s %1023s", dev, dir, type, opts) != 4)
			continue;
		if (strcmp(type, "hugetlbfs") || strchr(dir, '\\') ||
		    !is_2m(pool, opts) || strlen(dir) >= len)
			continue;
		strcpy(mnt, dir);
		free(mounts);
		return 0;
	}
	free(mounts);
	return ret < 0 ? ret : -ENOENT;
}

/* Free 2 MiB huge pages on @node (or everywhere for node < 0). */
uint64_t user_free_hugepages(struct beluga_pool *pool, int node)
{
	char path[128];
	uint64_t n = 0;

	if (node < 0)
		snprintf(path, sizeof(path),
			 "/sys/kernel/mm/hugepages/" HUGE_2M "/free_hugepages");
	else
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/"
			 "hugepages/" HUGE_2M "/free_hugepages", node);
	if (beluga_read_u64(pool, AT_FDCWD, path, &n))
		return 0;
	return n;
}
