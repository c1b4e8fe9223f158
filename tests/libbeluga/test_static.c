// SPDX-License-Identifier: Apache-2.0
/*
 * Description: a program linked against libbeluga.a (not the .so) opens a
 * user-backend pool, creates, maps and destroys a region - proof that the
 * static library carries its dependencies (liburing, libnuma, CUDA runtime).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <beluga/beluga.h>

#define CHECK(expr)							\
	do {								\
		int ret_ = (expr);					\
		if (ret_ < 0) {						\
			fprintf(stderr, "%s: %s\n", #expr, beluga_strerror(ret_)); \
			return 1;					\
		}							\
	} while (0)

int main(void)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct beluga_region *r;
	struct beluga_mapping *m;
	char dir[64];
	int n;

	snprintf(dir, sizeof(dir), "/dev/shm/beluga-static-%d", getpid());
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_USER;
	o.user_dir = dir;
	o.hugetlbfs_dir = "none";
	CHECK(beluga_pool_open(&o, &pool));
	CHECK(beluga_region_create(pool, "static", 2 << 20, 0600, 0, BELUGA_ALL_SOURCES, &r));
	CHECK(beluga_region_map(r, 0, 0, BELUGA_PROT_READ | BELUGA_PROT_WRITE, &m));
	memset(beluga_mapping_addr(m), 1, 4096);
	n = beluga_gpu_count(pool, &n);	/* any answer but a crash will do */
	CHECK(beluga_region_destroy(pool, "static"));
	beluga_mapping_unmap(m);
	beluga_region_close(r);
	beluga_pool_close(pool);
	snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/.lock");
	unlink(dir);
	dir[strlen(dir) - 6] = '\0';
	rmdir(dir);
	printf("libbeluga.a %s: ok (gpu: %s)\n", beluga_version(), beluga_strerror(n));
	return 0;
}
