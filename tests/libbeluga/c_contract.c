// SPDX-License-Identifier: Apache-2.0
/*
 * Description: the C API contract every backend keeps, run once per backend
 * (see c_contract.h): names and arguments checked before the backend is
 * asked, create/open/stat/list/chmod/chown/destroy, EEXIST and ENOENT,
 * ephemeral regions, handles and mappings outliving destroy and the pool,
 * mapping bounds and protections, layouts, passing a region over a unix
 * socket (and refusing one of the other backend), pool info, and a
 * fault-injection sweep over every call of a region's life.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "c_contract.h"

/* ---- fixtures ------------------------------------------------------------ */

static int seq;

struct c_ctx *c_ctx_new(const struct c_backend *b)
{
	struct c_ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->b = b;
	fake_init(&c->f);
	snprintf(c->dir, sizeof(c->dir), "/dev/shm/beluga-ctest-%d-%d", getpid(), ++seq);
	snprintf(c->huge, sizeof(c->huge), "/dev/shm/beluga-ctest-%d-%d-huge",
		 getpid(), seq);
	return c;
}

void c_ctx_free(struct c_ctx *c)
{
	beluga_pool_close(c->pool);
	fake_fini(&c->f);
	if (c->b->clean) {
		c->b->clean(c->dir);
		c->b->clean(c->huge);
	}
	free(c);
}

int c_setup_nopool(void **state)
{
	*state = c_ctx_new(*state);
	return 0;
}

int c_setup(void **state)
{
	struct c_ctx *c = c_ctx_new(*state);

	assert_int_equal(c->b->open(&c->f, c->dir, &c->pool), 0);
	*state = c;
	return 0;
}

int c_teardown(void **state)
{
	c_ctx_free(*state);
	return 0;
}

void c_capture_log(void *ctx, int level, const char *msg)
{
	(void)level;
	snprintf(ctx, 512, "%s", msg);
}

/* ---- pool ---------------------------------------------------------------- */

static void pool_info_is_consistent(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_pool_info i;
	struct beluga_pool_source_info s;
	struct beluga_region *r;

	assert_int_equal(beluga_pool_backend(c->pool), c->b->id);
	assert_int_equal(beluga_region_create(c->pool, "i", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_pool_get_info(c->pool, &i), 0);
	assert_int_equal(i.backend, c->b->id);
	assert_int_equal(i.chunk_size, 2 * MiB);
	assert_true(i.nr_sources >= 1);
	assert_true(i.total_bytes > 0);
	assert_true(i.free_bytes <= i.total_bytes);
	assert_int_equal(i.nr_regions, 1);
	assert_int_equal(!!(i.features & BELUGA_FEATURE_USAGE_COUNTS), c->b->usage_counts);
	assert_int_equal(beluga_pool_get_source(c->pool, 0, &s), 0);
	assert_int_equal(s.kind, BELUGA_SOURCE_KIND_NODE);
	assert_true(s.total_bytes > 0);
	assert_int_equal(beluga_pool_get_source(c->pool, i.nr_sources, &s), -ENOENT);
	assert_int_equal(beluga_pool_get_info(c->pool, NULL), -EINVAL);
	assert_int_equal(beluga_pool_get_info(NULL, &i), -EINVAL);
	beluga_region_close(r);
}

/* ---- region arguments ---------------------------------------------------- */

static void region_create_rejects_invalid_names(void **state)
{
	static const char *const bad[] = {
		"", "a/b", "a b", "caf\xc3\xa9", "x\n",
		"0123456789012345678901234567890123456789012345678901234567890123",
	};
	struct c_ctx *c = *state;
	struct beluga_region *r = (void *)1;

	for (size_t i = 0; i < NELEM(bad); i++)
		assert_int_equal(beluga_region_create(c->pool, bad[i], 2 * MiB,
						      0600, 0, -1, &r), -EINVAL);
	assert_null(r);
	assert_int_equal(beluga_region_create(c->pool, NULL, 2 * MiB, 0600, 0,
					      -1, &r), -EINVAL);
	assert_int_equal(c->b->entries(&c->f, c->dir), 0);
	/* 63 bytes is the longest valid name */
	assert_int_equal(beluga_region_create(c->pool,
		"012345678901234567890123456789012345678901234567890123456789._-",
		2 * MiB, 0600, 0, -1, &r), 0);
	beluga_region_close(r);
	assert_int_equal(c->f.calls > 0, 1);
}

/*
 * Every byte value 0x01..0xff, alone and between two letters: only
 * [A-Za-z0-9._-] passes (the driver's rule, ASCII only).  The library must
 * reject before the backend sees the name, and pass every valid name on.
 */
static void region_names_are_ascii_only(void **state)
{
	static const char allowed[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	struct c_ctx *c = *state;
	struct beluga_region_info info;
	int nr_valid = 0;

	for (int b = 1; b <= 0xff; b++) {
		const char alone[2] = { (char)b, 0 };
		const char mid[4] = { 'a', (char)b, 'z', 0 };
		bool valid = memchr(allowed, b, sizeof(allowed) - 1) != NULL;

		for (int k = 0; k < 2; k++) {
			const char *name = k ? mid : alone;
			long calls = c->f.calls;
			int ret = beluga_region_stat(c->pool, name, &info);

			if (valid && (ret != -ENOENT || c->f.calls == calls))
				fail_msg("byte 0x%02x (%s): %d, backend %scalled; want -ENOENT from the backend",
					 b, k ? "mid" : "alone", ret,
					 c->f.calls == calls ? "not " : "");
			if (!valid && (ret != -EINVAL || c->f.calls != calls))
				fail_msg("byte 0x%02x (%s): %d, backend %scalled; want -EINVAL before the backend",
					 b, k ? "mid" : "alone", ret,
					 c->f.calls == calls ? "not " : "");
		}
		nr_valid += valid;
	}
	assert_int_equal(nr_valid, 26 + 26 + 10 + 3);
	/* empty, NULL, 63 bytes (longest) and 64 bytes (too long) */
	assert_int_equal(beluga_region_stat(c->pool, "", &info), -EINVAL);
	assert_int_equal(beluga_region_stat(c->pool, NULL, &info), -EINVAL);
	assert_int_equal(beluga_region_stat(c->pool,
		"012345678901234567890123456789012345678901234567890123456789._-",
		&info), -ENOENT);
	assert_int_equal(beluga_region_stat(c->pool,
		"0123456789012345678901234567890123456789012345678901234567890123",
		&info), -EINVAL);
}

static void region_create_rejects_bad_size_mode_flags_source(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_pool_info pi;
	struct beluga_region *r;

	assert_int_equal(beluga_region_create(c->pool, "a", 0, 0600, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", MiB, 0600, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 3 * MiB, 0600, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 01000, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 2, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0, -2, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0, -1, NULL), -EINVAL);
	assert_int_equal(beluga_region_create(NULL, "a", 2 * MiB, 0600, 0, -1, &r), -EINVAL);
	/* a source the backend does not have: its EINVAL comes back */
	assert_int_equal(beluga_pool_get_info(c->pool, &pi), 0);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0,
					      (int32_t)pi.nr_sources, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0, 9999, &r), -EINVAL);
	assert_int_equal(c->b->entries(&c->f, c->dir), 0);
}

static void region_calls_reject_bad_arguments(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_open(c->pool, "a", 4, &r), -EINVAL);
	assert_int_equal(beluga_region_open(c->pool, "a", 0x10, &r), -EINVAL);
	assert_int_equal(beluga_region_open(c->pool, "a/b", 0, &r), -EINVAL);
	assert_int_equal(beluga_region_destroy(c->pool, ""), -EINVAL);
	assert_int_equal(beluga_region_stat(c->pool, "a", NULL), -EINVAL);
	assert_int_equal(beluga_region_chmod(c->pool, "a", 01777), -EINVAL);
	assert_int_equal(beluga_region_chown(c->pool, "a", -1, -1), -EINVAL);
	assert_int_equal(beluga_region_fstat(NULL, &info), -EINVAL);
	assert_int_equal(beluga_region_from_fd(c->pool, -1, &r), -EINVAL);
	assert_int_equal(c->b->entries(&c->f, c->dir), 0);
}

/* ---- regions --------------------------------------------------------------- */

static void region_create_open_stat_list(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r, *o;
	struct beluga_region_info info, list[4];
	size_t count;

	assert_int_equal(beluga_region_create(c->pool, "kv", 4 * MiB, 0640, 0,
					      c->b->a_source, &r), 0);
	assert_string_equal(beluga_region_name(r), "kv");
	assert_int_equal(beluga_region_size(r), 4 * MiB);
	assert_true(beluga_region_fd(r) >= 0);
	assert_true(fcntl(beluga_region_fd(r), F_GETFD) & FD_CLOEXEC);
	assert_int_equal(beluga_region_open(c->pool, "kv", 0, &o), 0);
	assert_int_equal(beluga_region_size(o), 4 * MiB);
	assert_int_equal(beluga_region_id(o), beluga_region_id(r));
	assert_int_equal(beluga_region_stat(c->pool, "kv", &info), 0);
	assert_string_equal(info.name, "kv");
	assert_int_equal(info.id, beluga_region_id(r));
	assert_int_equal(info.size, 4 * MiB);
	assert_int_equal(info.mode, 0640);
	assert_int_equal(info.nr_chunks, 2);
	assert_int_equal(info.uid, geteuid());
	assert_int_equal(info.source_kind, BELUGA_SOURCE_KIND_NODE);
	assert_int_equal(!(info.flags & BELUGA_INFO_NO_USAGE), c->b->usage_counts);
	assert_int_equal(info.flags & BELUGA_INFO_DESTROYED, 0);
	assert_int_equal(beluga_region_list(c->pool, NULL, 0, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(beluga_region_list(c->pool, list, 4, &count), 0);
	assert_string_equal(list[0].name, "kv");
	assert_int_equal(beluga_region_list(c->pool, NULL, 4, &count), -EINVAL);
	assert_int_equal(beluga_region_list(c->pool, list, 4, NULL), -EINVAL);
	assert_int_equal(beluga_region_fstat(o, &info), 0);
	assert_int_equal(info.size, 4 * MiB);
	beluga_region_close(o);
	beluga_region_close(r);
}

static void region_list_is_sorted_by_id(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r[3];
	struct beluga_region_info v[3];
	size_t n;

	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "l%d", 2 - i);
		assert_int_equal(beluga_region_create(c->pool, name, 2 * MiB, 0600,
						      0, -1, &r[i]), 0);
	}
	assert_int_equal(beluga_region_list(c->pool, v, 2, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(beluga_region_list(c->pool, v, 3, &n), 0);
	assert_true(v[0].id < v[1].id && v[1].id < v[2].id);
	for (int i = 0; i < 3; i++)
		beluga_region_close(r[i]);
}

static void region_create_existing_name_is_eexist(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r, *r2 = (void *)1;

	assert_int_equal(beluga_region_create(c->pool, "dup", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_create(c->pool, "dup", 2 * MiB, 0600, 0, -1, &r2), -EEXIST);
	assert_null(r2);
	assert_int_equal(c->b->entries(&c->f, c->dir), 1);
	beluga_region_close(r);
}

static void region_create_ephemeral_needs_no_name(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_create(c->pool, NULL, 2 * MiB, 0600,
					      BELUGA_REGION_EPHEMERAL, -1, &r), 0);
	assert_string_equal(beluga_region_name(r), "");
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_true(info.flags & BELUGA_INFO_EPHEMERAL);
	assert_string_equal(info.name, "");
	beluga_region_close(r);
}

static void region_unknown_name_is_enoent(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_open(c->pool, "nope", 0, &r), -ENOENT);
	assert_int_equal(beluga_region_destroy(c->pool, "nope"), -ENOENT);
	assert_int_equal(beluga_region_stat(c->pool, "nope", &info), -ENOENT);
	assert_int_equal(beluga_region_chmod(c->pool, "nope", 0600), -ENOENT);
	assert_int_equal(beluga_region_chown(c->pool, "nope", 1, 1), -ENOENT);
	assert_int_equal(beluga_region_chown(c->pool, "nope", 0, 0), -ENOENT);
}

static void region_chmod_chown_change_stat(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_create(c->pool, "m", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_chmod(c->pool, "m", 0644), 0);
	assert_int_equal(beluga_region_chown(c->pool, "m", -1, getegid()), 0);
	assert_int_equal(beluga_region_stat(c->pool, "m", &info), 0);
	assert_int_equal(info.mode, 0644);
	assert_int_equal(info.uid, geteuid());
	assert_int_equal(info.gid, getegid());
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_int_equal(info.mode, 0644);
	beluga_region_close(r);
}

static void region_destroy_keeps_handles_and_mappings(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_mapping *m;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_create(c->pool, "gone", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_map(r, 0, 0, BELUGA_PROT_READ | BELUGA_PROT_WRITE, &m), 0);
	memset(beluga_mapping_addr(m), 7, 4096);
	assert_int_equal(beluga_region_destroy(c->pool, "gone"), 0);
	assert_int_equal(beluga_region_stat(c->pool, "gone", &info), -ENOENT);
	assert_int_equal(beluga_region_destroy(c->pool, "gone"), -ENOENT);
	assert_int_equal(c->b->entries(&c->f, c->dir), 0);
	assert_int_equal(((char *)beluga_mapping_addr(m))[100], 7);
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_string_equal(info.name, "gone");
	assert_true(info.flags & BELUGA_INFO_DESTROYED);
	beluga_mapping_unmap(m);
	beluga_region_close(r);
	assert_int_equal(c->f.map_bytes, 0);
}

static void from_fd_rejects_non_regions(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_int_equal(beluga_region_from_fd(c->pool, fd, &r), -EINVAL);
	close(fd);
	fd = open("/dev/shm", O_RDONLY | O_CLOEXEC);
	assert_int_equal(beluga_region_from_fd(c->pool, fd, &r), -EINVAL);
	close(fd);
	assert_int_equal(beluga_region_from_fd(c->pool, 12345, &r), -EBADF);
}

/* ---- mappings -------------------------------------------------------------- */

static void map_rejects_bad_ranges(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r, *ro;
	struct beluga_mapping *m = (void *)1;
	const uint32_t rw = BELUGA_PROT_READ | BELUGA_PROT_WRITE;

	assert_int_equal(beluga_region_create(c->pool, "map", 4 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_map(r, MiB, 0, rw, &m), -EINVAL);
	assert_null(m);
	assert_int_equal(beluga_region_map(r, 0, 100, rw, &m), -EINVAL);
	assert_int_equal(beluga_region_map(r, 0, 0, 0, &m), -EINVAL);
	assert_int_equal(beluga_region_map(r, 0, 0, 8, &m), -EINVAL);
	assert_int_equal(beluga_region_map(r, 4 * MiB, 0, rw, &m), -ENXIO);
	assert_int_equal(beluga_region_map(r, 2 * MiB, 4 * MiB, rw, &m), -ENXIO);
	assert_int_equal(beluga_region_map(r, 0, 0, rw, NULL), -EINVAL);
	assert_int_equal(beluga_region_open(c->pool, "map", BELUGA_REGION_RDONLY, &ro), 0);
	assert_int_equal(beluga_region_map(ro, 0, 0, rw, &m), -EACCES);
	assert_int_equal(beluga_region_map(ro, 0, 0, BELUGA_PROT_WRITE, &m), -EACCES);
	assert_int_equal(beluga_region_map(ro, 0, 0, BELUGA_PROT_READ, &m), 0);
	beluga_mapping_unmap(m);
	beluga_region_close(ro);
	beluga_region_close(r);
	assert_int_equal(c->f.map_bytes, 0);
}

/*
 * Two handles map the same bytes (where the backend places mappings on 2 MiB
 * boundaries, at aligned addresses); handles and the pool may be released in
 * any order while mappings stay valid.
 */
static void map_shares_bytes_between_handles(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r, *o;
	struct beluga_mapping *a, *t, *b;

	assert_int_equal(beluga_region_create(c->pool, "share", 6 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_open(c->pool, "share", BELUGA_REGION_RDONLY, &o), 0);
	assert_int_equal(beluga_region_map(r, 2 * MiB, 2 * MiB, BELUGA_PROT_WRITE, &a), 0);
	assert_int_equal(beluga_mapping_size(a), 2 * MiB);
	assert_int_equal(beluga_mapping_offset(a), 2 * MiB);
	assert_int_equal(beluga_region_map(r, 4 * MiB, 0, BELUGA_PROT_READ, &t), 0);
	assert_int_equal(beluga_mapping_size(t), 2 * MiB);
	assert_int_equal(beluga_mapping_offset(t), 4 * MiB);
	assert_int_equal(beluga_region_map(o, 0, 0, BELUGA_PROT_READ, &b), 0);
	assert_int_equal(beluga_mapping_size(b), 6 * MiB);
	if (c->b->maps_aligned) {
		assert_int_equal((uintptr_t)beluga_mapping_addr(a) % (2 * MiB), 0);
		assert_int_equal((uintptr_t)beluga_mapping_addr(t) % (2 * MiB), 0);
		assert_int_equal((uintptr_t)beluga_mapping_addr(b) % (2 * MiB), 0);
	}
	memset(beluga_mapping_addr(a), 0x5a, 2 * MiB);
	assert_int_equal(((unsigned char *)beluga_mapping_addr(b))[2 * MiB + 17], 0x5a);
	assert_int_equal(((unsigned char *)beluga_mapping_addr(b))[99], 0);
	assert_int_equal(((unsigned char *)beluga_mapping_addr(t))[99], 0);
	beluga_mapping_unmap(t);
	beluga_region_close(r);
	beluga_region_close(o);
	beluga_pool_close(c->pool);
	c->pool = NULL;
	assert_int_equal(((unsigned char *)beluga_mapping_addr(a))[5], 0x5a);
	beluga_mapping_unmap(b);
	beluga_mapping_unmap(a);
	assert_int_equal(c->f.map_bytes, 0);
}

static void layout_has_one_node_per_chunk(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	int32_t nodes[8];
	size_t n;

	assert_int_equal(beluga_region_create(c->pool, "lay", 6 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_layout(r, NULL, 0, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(beluga_region_layout(r, nodes, 8, &n), 0);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++)
		assert_true(nodes[i] >= 0);
	assert_int_equal(beluga_region_layout(r, NULL, 3, &n), -EINVAL);
	beluga_region_close(r);
}

/* ---- passing regions ------------------------------------------------------- */

static void send_recv_passes_the_region(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r, *got;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(beluga_region_create(c->pool, "pass", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_send(r, sv[0]), 0);
	assert_int_equal(beluga_region_recv(c->pool, sv[1], &got), 0);
	assert_string_equal(beluga_region_name(got), "pass");
	assert_int_equal(beluga_region_id(got), beluga_region_id(r));
	assert_int_equal(beluga_region_size(got), 2 * MiB);
	beluga_region_close(got);
	/* garbage, then a closed peer */
	assert_int_equal(write(sv[0], "hello, world!!!!", 16), 16);
	assert_int_equal(beluga_region_recv(c->pool, sv[1], &got), -EPROTO);
	close(sv[0]);
	assert_int_equal(beluga_region_recv(c->pool, sv[1], &got), -ECONNRESET);
	close(sv[1]);
	assert_int_equal(beluga_region_send(r, -1), -EBADF);
	beluga_region_close(r);
}

/* A pool of the other backend refuses the region cleanly. */
static void recv_refuses_a_region_of_the_other_backend(void **state)
{
	struct c_ctx *c = *state;
	struct c_ctx *o = c_ctx_new(c->b->other);
	struct beluga_region *r, *got = (void *)1;
	int sv[2];

	assert_int_equal(o->b->open(&o->f, o->dir, &o->pool), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(beluga_region_create(c->pool, "pass", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_send(r, sv[0]), 0);
	assert_int_equal(beluga_region_recv(o->pool, sv[1], &got), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	beluga_region_close(r);
	c_ctx_free(o);
}

/* ---- fault-injection sweep ------------------------------------------------- */

struct sweep_arg {
	const struct c_backend *b;
	char dir[160];
};

/* Every call of a region's life, failing one at a time. */
static int sc_lifecycle(struct fake *f, void *arg)
{
	const struct sweep_arg *a = arg;
	struct beluga_pool *pool;
	struct beluga_region *r = NULL, *o = NULL, *e = NULL, *got = NULL;
	struct beluga_mapping *m = NULL;
	struct beluga_region_info info;
	struct beluga_pool_info pi;
	int32_t nodes[2];
	size_t n;
	int sv[2], ret;

	if (a->b->clean)
		a->b->clean(a->dir);
	ret = a->b->open(f, a->dir, &pool);
	if (ret)
		return ret;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		beluga_pool_close(pool);
		return -errno;
	}
	ret = beluga_region_create(pool, "life", 4 * MiB, 0600, 0, -1, &r);
	if (!ret)
		ret = beluga_region_create(pool, NULL, 2 * MiB, 0600,
					   BELUGA_REGION_EPHEMERAL, 0, &e);
	if (!ret)
		ret = beluga_region_open(pool, "life", BELUGA_REGION_RDONLY, &o);
	if (!ret)
		ret = beluga_region_map(o, 0, 0, BELUGA_PROT_READ, &m);
	if (!ret)
		ret = beluga_region_stat(pool, "life", &info);
	if (!ret)
		ret = beluga_region_fstat(o, &info);
	if (!ret)
		ret = beluga_region_layout(r, nodes, 2, &n);
	if (!ret)
		ret = beluga_region_list(pool, &info, 1, &n);
	if (!ret)
		ret = beluga_pool_get_info(pool, &pi);
	if (!ret)
		ret = beluga_region_chmod(pool, "life", 0640);
	if (!ret)
		ret = beluga_region_send(r, sv[0]);
	if (!ret)
		ret = beluga_region_recv(pool, sv[1], &got);
	if (!ret)
		ret = beluga_region_destroy(pool, "life");
	close(sv[0]);
	close(sv[1]);
	beluga_region_close(got);
	beluga_mapping_unmap(m);
	beluga_region_close(o);
	beluga_region_close(e);
	beluga_region_close(r);
	beluga_pool_close(pool);
	/* Whatever failed, nothing but the region itself may remain. */
	if (a->b->entries(f, a->dir) > (ret ? 1 : 0))
		fail_msg("stray entries in the %s pool after ret %d", a->b->name, ret);
	return ret;
}

static void every_failure_of_region_lifecycle_is_reported(void **state)
{
	struct c_ctx *c = *state;
	struct sweep_arg a = { .b = c->b };

	snprintf(a.dir, sizeof(a.dir), "%s-sweep", c->dir);
	assert_true(sweep(sc_lifecycle, &a, c->b->tolerated) >= c->b->min_lifecycle_calls);
	if (c->b->clean)
		c->b->clean(a.dir);
}

/* ---- the table --------------------------------------------------------------- */

#define POOL(f) cmocka_unit_test_setup_teardown(f, c_setup, c_teardown)
#define NOPOOL(f) cmocka_unit_test_setup_teardown(f, c_setup_nopool, c_teardown)

static const struct CMUnitTest contract[] = {
	POOL(pool_info_is_consistent),
	POOL(region_create_rejects_invalid_names),
	POOL(region_names_are_ascii_only),
	POOL(region_create_rejects_bad_size_mode_flags_source),
	POOL(region_calls_reject_bad_arguments),
	POOL(region_create_open_stat_list),
	POOL(region_list_is_sorted_by_id),
	POOL(region_create_existing_name_is_eexist),
	POOL(region_create_ephemeral_needs_no_name),
	POOL(region_unknown_name_is_enoent),
	POOL(region_chmod_chown_change_stat),
	POOL(region_destroy_keeps_handles_and_mappings),
	POOL(from_fd_rejects_non_regions),
	POOL(map_rejects_bad_ranges),
	POOL(map_shares_bytes_between_handles),
	POOL(layout_has_one_node_per_chunk),
	POOL(send_recv_passes_the_region),
	POOL(recv_refuses_a_region_of_the_other_backend),
	NOPOOL(every_failure_of_region_lifecycle_is_reported),
};

size_t c_contract_cases(const struct c_backend *b, struct CMUnitTest *out, size_t cap)
{
	size_t n = NELEM(contract);

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		out[i] = contract[i];
		out[i].initial_state = (void *)b;
	}
	return n;
}
