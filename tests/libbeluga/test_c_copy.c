// SPDX-License-Identifier: Apache-2.0
/*
 * Description: CMocka tests of the coherence and copy primitives and of
 * saving/loading a mapping with io_uring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <beluga/beluga.h>

#define MiB (1ULL << 20)

static void fill_random(unsigned char *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

static void copy_nt_matches_memcpy_at_every_alignment(void **state)
{
	unsigned char *src = malloc(1024), *dst = malloc(1024 + 64);

	(void)state;
	fill_random(src, 1024, 1);
	for (size_t len = 0; len <= 300; len += (len < 130 ? 1 : 17))
		for (size_t so = 0; so < 70; so += 3)
			for (size_t d = 0; d < 70; d += 5) {
				memset(dst, 0xee, 1024 + 64);
				beluga_copy_nt(dst + d, src + so, len);
				assert_memory_equal(dst + d, src + so, len);
				/* nothing written outside [d, d + len) */
				for (size_t i = 0; i < d; i++)
					assert_int_equal(dst[i], 0xee);
				assert_int_equal(dst[d + len], 0xee);
			}
	free(src);
	free(dst);
}

static void copy_nt_handles_large_buffers(void **state)
{
	size_t n = 5 * MiB + 13;
	unsigned char *src = malloc(n), *dst = malloc(n + 1);

	(void)state;
	fill_random(src, n, 2);
	dst[n] = 0x77;
	beluga_copy_nt(dst + 1, src, n - 1);
	assert_memory_equal(dst + 1, src, n - 1);
	assert_int_equal(dst[n], 0x77);
	free(src);
	free(dst);
}

static void flush_and_writeback_keep_data(void **state)
{
	unsigned char *p = malloc(4096 + 3);
	const char *m = beluga_cpu_flush_method();

	(void)state;
	fill_random(p, 4099, 3);
	unsigned char copy[4099];
	memcpy(copy, p, sizeof(copy));
	beluga_flush(p + 1, 4098);
	beluga_writeback(p + 3, 17);
	beluga_flush(p, 0);
	beluga_writeback(p, 0);
	beluga_fence_store();
	beluga_fence_load();
	beluga_fence_full();
	assert_memory_equal(copy, p, sizeof(copy));
	assert_true(!strcmp(m, "clflushopt+clwb") || !strcmp(m, "clflushopt") ||
		    !strcmp(m, "clflush") || !strcmp(m, "none"));
	free(p);
}

static void copy_bulk_matches_for_any_thread_count(void **state)
{
	static const unsigned int threads[] = { 0, 1, 3, 100 };
	size_t n = 64 * MiB + 4097;
	unsigned char *src = malloc(n), *dst = malloc(n);

	(void)state;
	fill_random(src, n, 4);
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		memset(dst, 0, n);
		assert_int_equal(beluga_copy_bulk(dst, src, n, threads[i]), 0);
		assert_memory_equal(dst, src, n);
	}
	assert_int_equal(beluga_copy_bulk(dst, src, 100, 4), 0);
	assert_int_equal(beluga_copy_bulk(NULL, src, 1, 0), -EINVAL);
	assert_int_equal(beluga_copy_bulk(dst, NULL, 1, 0), -EINVAL);
	assert_int_equal(beluga_copy_bulk(NULL, NULL, 0, 0), 0);
	free(src);
	free(dst);
}

/* ---- save/load --------------------------------------------------------- */

struct io_ctx {
	struct beluga_pool *pool;
	struct beluga_region *r;
	struct beluga_mapping *rw, *ro;
	char dir[96];
	char file[160];
};

static int io_setup(void **state)
{
	struct io_ctx *c = calloc(1, sizeof(*c));
	struct beluga_pool_options o;

	snprintf(c->dir, sizeof(c->dir), "/dev/shm/beluga-iotest-%d", getpid());
	/* a disk file system (O_DIRECT) when the build dir is on one */
	snprintf(c->file, sizeof(c->file), "beluga-iotest-%d.bin", getpid());
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_USER;
	o.user_dir = c->dir;
	o.hugetlbfs_dir = "none";
	assert_int_equal(beluga_pool_open(&o, &c->pool), 0);
	assert_int_equal(beluga_region_create(c->pool, "io", 6 * MiB, 0600, 0, -1, &c->r), 0);
	assert_int_equal(beluga_region_map(c->r, 0, 0, BELUGA_PROT_READ |
					   BELUGA_PROT_WRITE, &c->rw), 0);
	assert_int_equal(beluga_region_map(c->r, 0, 2 * MiB, BELUGA_PROT_READ, &c->ro), 0);
	*state = c;
	return 0;
}

static int io_teardown(void **state)
{
	struct io_ctx *c = *state;
	char path[256];

	beluga_mapping_unmap(c->ro);
	beluga_mapping_unmap(c->rw);
	beluga_region_destroy(c->pool, "io");
	beluga_region_close(c->r);
	beluga_pool_close(c->pool);
	unlink(c->file);
	snprintf(path, sizeof(path), "%s/.lock", c->dir);
	unlink(path);
	rmdir(c->dir);
	free(c);
	return 0;
}

static void roundtrip(struct io_ctx *c, const char *path)
{
	size_t n = beluga_mapping_size(c->rw);
	unsigned char *p = beluga_mapping_addr(c->rw), *want = malloc(n);

	fill_random(want, n, 5);
	memcpy(p, want, n);
	assert_int_equal(beluga_mapping_save(c->rw, path), 0);
	memset(p, 0, n);
	assert_int_equal(beluga_mapping_load(c->rw, path), 0);
	assert_memory_equal(p, want, n);
	free(want);
}

static void save_load_roundtrip_on_disk(void **state)
{
	roundtrip(*state, ((struct io_ctx *)*state)->file);
}

static void save_load_roundtrip_on_tmpfs(void **state)
{
	struct io_ctx *c = *state;
	char path[200];

	snprintf(path, sizeof(path), "%s-file", c->dir);
	roundtrip(c, path);
	unlink(path);
}

static void load_short_file_fills_only_its_bytes(void **state)
{
	struct io_ctx *c = *state;
	unsigned char buf[5000], *p = beluga_mapping_addr(c->rw);
	int fd = open(c->file, O_CREAT | O_TRUNC | O_WRONLY, 0600);

	fill_random(buf, sizeof(buf), 6);
	assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	close(fd);
	memset(p, 0xaa, 3 * 4096);
	assert_int_equal(beluga_mapping_load(c->rw, c->file), 0);
	assert_memory_equal(p, buf, sizeof(buf));
	/* O_DIRECT may zero up to the next 4 KiB boundary, never further */
	assert_int_equal(p[2 * 4096], 0xaa);
	assert_int_equal(p[3 * 4096 - 1], 0xaa);
}

static void load_and_save_report_errors(void **state)
{
	struct io_ctx *c = *state;

	/* the 6 MiB file does not fit the 2 MiB read-only mapping, which can't be written anyway */
	assert_int_equal(beluga_mapping_save(c->rw, c->file), 0);
	assert_int_equal(beluga_mapping_load(c->ro, c->file), -EACCES);
	assert_int_equal(beluga_mapping_save(c->ro, c->file), 0);
	{
		struct beluga_mapping *small;

		assert_int_equal(beluga_region_map(c->r, 0, 2 * MiB, BELUGA_PROT_WRITE |
						   BELUGA_PROT_READ, &small), 0);
		assert_int_equal(beluga_mapping_save(c->rw, c->file), 0);
		assert_int_equal(beluga_mapping_load(small, c->file), -EFBIG);
		beluga_mapping_unmap(small);
	}
	assert_int_equal(beluga_mapping_load(c->rw, "/nonexistent/file"), -ENOENT);
	assert_int_equal(beluga_mapping_save(c->rw, "/nonexistent/dir/file"), -ENOENT);
	assert_int_equal(beluga_mapping_save(NULL, c->file), -EINVAL);
	assert_int_equal(beluga_mapping_load(c->rw, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(copy_nt_matches_memcpy_at_every_alignment),
		cmocka_unit_test(copy_nt_handles_large_buffers),
		cmocka_unit_test(flush_and_writeback_keep_data),
		cmocka_unit_test(copy_bulk_matches_for_any_thread_count),
		cmocka_unit_test_setup_teardown(save_load_roundtrip_on_disk, io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(save_load_roundtrip_on_tmpfs, io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(load_short_file_fills_only_its_bytes, io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(load_and_save_report_errors, io_setup, io_teardown),
	};

	return cmocka_run_group_tests_name("libbeluga copy, flush and file I/O",
					   tests, NULL, NULL);
}
