// SPDX-License-Identifier: Apache-2.0
/*
 * Description: the user-space backend of the C API contract suite (a pool
 * directory of its own under /dev/shm, every call through the ops layer of
 * fake_ops.c), and the cases only the user backend has: the pool directory,
 * names as files and their modes, backend selection without a device, the
 * O_TMPFILE and hugetlbfs paths (hugetlbfs simulated on a tmpfs directory
 * through the ops layer), tolerated failures (mlock, mbind without NUMA, old
 * kernels without MADV_POPULATE_WRITE), and no memory another host can map.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c_contract.h"

#define D (beluga_default_ops())

/* ---- the backend ------------------------------------------------------------ */

static void options_in(struct fake *f, const char *dir, struct beluga_pool_options *o)
{
	beluga_pool_options_init(o);
	o->backend = BELUGA_BACKEND_USER;
	o->user_dir = dir;
	o->hugetlbfs_dir = "none";
	o->ops = &f->ops;
	o->log_level = 0;
}

static void user_options(struct c_ctx *c, struct beluga_pool_options *o)
{
	options_in(&c->f, c->dir, o);
}

static int user_open(struct fake *f, const char *dir, struct beluga_pool **pool)
{
	struct beluga_pool_options o;

	options_in(f, dir, &o);
	return beluga_pool_open(&o, pool);
}

/* Remove a pool directory; returns how many entries besides .lock it had. */
static int clean_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int stray = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char p[512];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (strcmp(e->d_name, ".lock") && strncmp(e->d_name, "beluga-", 7))
			stray++;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (!strncmp(e->d_name, "beluga-", 7))
			stray += clean_dir(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(path);
	return stray;
}

static int entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		     strcmp(e->d_name, ".lock");
	if (d)
		closedir(d);
	return n;
}

static int user_entries(struct fake *f, const char *dir)
{
	(void)f;
	return entries(dir);
}

static void user_clean(const char *dir)
{
	clean_dir(dir);
}

static const char *const user_tolerated[] = { "close", "munmap", "mlock", "flock", NULL };

const struct c_backend c_user_backend = {
	.name = "user",
	.id = BELUGA_BACKEND_USER,
	.open = user_open,
	.entries = user_entries,
	.clean = user_clean,
	.a_source = 0,
	.maps_aligned = true,
	.usage_counts = false,
	.tolerated = user_tolerated,
	.min_lifecycle_calls = 40,
	.other = &c_kernel_backend,
};

/* ---- pool ------------------------------------------------------------------- */

static void user_pool_open_makes_sticky_world_writable_dir(void **state)
{
	struct c_ctx *c = *state;
	struct stat st;

	assert_int_equal(stat(c->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 01777);
	assert_int_equal(beluga_pool_backend(c->pool), BELUGA_BACKEND_USER);
}

static void user_pool_open_rejects_bad_pool_name(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;

	(void)state;
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_USER;
	o.pool_name = "../etc";
	assert_int_equal(beluga_pool_open(&o, &pool), -EINVAL);
}

static void user_pool_open_on_a_file_is_enotdir(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	char path[] = "/tmp/beluga-notdir-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_USER;
	o.user_dir = path;
	assert_int_equal(beluga_pool_open(&o, &pool), -ENOTDIR);
	close(fd);
	unlink(path);
}

static void user_pool_open_in_missing_parent_is_enoent(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;

	(void)state;
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_USER;
	o.user_dir = "/nonexistent/beluga/pool";
	assert_int_equal(beluga_pool_open(&o, &pool), -ENOENT);
}

static void auto_backend_is_user_without_device(void **state)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool_options o;
	struct beluga_pool *pool;

	(void)state;
	user_options(c, &o);
	o.backend = BELUGA_BACKEND_AUTO;
	o.device_path = "/nonexistent/beluga";
	unsetenv("BELUGA_BACKEND");
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	assert_int_equal(beluga_pool_backend(pool), BELUGA_BACKEND_USER);
	beluga_pool_close(pool);
	/* BELUGA_BACKEND=user wins over a present device */
	o.device_path = FAKE_DEVICE;
	setenv("BELUGA_BACKEND", "user", 1);
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	unsetenv("BELUGA_BACKEND");
	assert_int_equal(beluga_pool_backend(pool), BELUGA_BACKEND_USER);
	beluga_pool_close(pool);
	fake_fini(&c->f);
	clean_dir(c->dir);
	free(c);
}

static void user_info_is_the_library_abi_without_counters(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_pool_info i;
	struct beluga_pool_counters cnt;

	assert_int_equal(beluga_pool_get_info(c->pool, &i), 0);
	assert_int_equal(i.abi_version, beluga_abi_version());
	assert_int_equal(beluga_pool_get_counters(c->pool, &cnt), -EOPNOTSUPP);
}

/* ---- regions: files in the pool directory -------------------------------- */

static void user_create_sets_exact_mode_and_owner(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;
	char path[256];
	struct stat st;
	mode_t old = umask(077);

	assert_int_equal(beluga_region_create(c->pool, "m.ode_-1", 4 * MiB, 0644, 0, -1, &r), 0);
	umask(old);
	snprintf(path, sizeof(path), "%s/r.m.ode_-1", c->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, 4 * MiB);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(beluga_region_stat(c->pool, "m.ode_-1", &info), 0);
	assert_int_equal(info.mode, 0644);
	assert_int_equal(info.size, 4 * MiB);
	assert_int_equal(info.nr_chunks, 2);
	assert_int_equal(info.id, beluga_region_id(r));
	assert_int_equal(info.source_kind, BELUGA_SOURCE_KIND_NODE);
	assert_true(info.flags & BELUGA_INFO_NO_USAGE);
	assert_int_equal(info.flags & BELUGA_INFO_DESTROYED, 0);
	assert_int_equal(beluga_region_chmod(c->pool, "m.ode_-1", 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(beluga_region_chown(c->pool, "m.ode_-1", -1, getegid()), 0);
	beluga_region_close(r);
}

static void user_dot_names_are_plain_regions(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *a, *b;

	assert_int_equal(beluga_region_create(c->pool, ".", 2 * MiB, 0600, 0, -1, &a), 0);
	assert_int_equal(beluga_region_create(c->pool, "..", 2 * MiB, 0600, 0, -1, &b), 0);
	assert_int_equal(entries(c->dir), 2);
	assert_int_equal(beluga_region_destroy(c->pool, "."), 0);
	assert_int_equal(beluga_region_destroy(c->pool, ".."), 0);
	beluga_region_close(a);
	beluga_region_close(b);
}

static void user_non_region_file_is_einval(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/r.junk", c->dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, 12345), 0);
	close(fd);
	assert_int_equal(beluga_region_open(c->pool, "junk", 0, &r), -EINVAL);
	fd = open("/dev/shm", O_RDONLY);
	assert_int_equal(beluga_region_from_fd(c->pool, fd, &r), -EINVAL);
	close(fd);
}

static void user_ephemeral_leaves_no_file(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;
	size_t n;

	assert_int_equal(beluga_region_create(c->pool, NULL, 2 * MiB, 0600,
					      BELUGA_REGION_EPHEMERAL, -1, &r), 0);
	assert_int_equal(entries(c->dir), 0);
	assert_int_equal(beluga_region_list(c->pool, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_true(info.flags & BELUGA_INFO_EPHEMERAL);
	assert_string_equal(info.name, "");
	beluga_region_close(r);
}

/* ---- mappings ------------------------------------------------------------- */

static int fail_mlock(void *ctx, const void *a, size_t l)
{
	(void)ctx; (void)a; (void)l;
	return -ENOMEM;
}

static void user_map_survives_mlock_failure_with_warning(void **state)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct beluga_region *r;
	struct beluga_mapping *m;

	(void)state;
	c->f.ops.mlock = fail_mlock;
	user_options(c, &o);
	o.log_level = BELUGA_LOG_WARN;
	o.log_fn = c_capture_log;
	o.log_ctx = c->log;
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	assert_int_equal(beluga_region_create(pool, "ml", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_map(r, 0, 0, BELUGA_PROT_READ, &m), 0);
	assert_non_null(strstr(c->log, "RLIMIT_MEMLOCK"));
	assert_int_equal(beluga_region_destroy(pool, "ml"), 0);
	beluga_mapping_unmap(m);
	beluga_region_close(r);
	beluga_pool_close(pool);
	fake_fini(&c->f);
	assert_int_equal(clean_dir(c->dir), 0);
	free(c);
}

/* ---- creation paths -------------------------------------------------------- */

typedef void (*tweak_fn)(struct c_ctx *c);

/* Open a pool with tweaked ops, create "t" (and an ephemeral), check leftovers. */
static int create_with(tweak_fn tweak, int expect_files)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct beluga_region *r = NULL, *e = NULL;
	int ret;

	tweak(c);
	user_options(c, &o);
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	ret = beluga_region_create(pool, "t", 4 * MiB, 0640, 0, -1, &r);
	if (!ret)
		ret = beluga_region_create(pool, NULL, 2 * MiB, 0600,
					   BELUGA_REGION_EPHEMERAL, -1, &e);
	assert_int_equal(entries(c->dir), expect_files);
	if (r) {
		struct beluga_mapping *m;

		assert_int_equal(beluga_region_map(r, 0, 0, BELUGA_PROT_READ, &m), 0);
		assert_int_equal(((char *)beluga_mapping_addr(m))[4 * MiB - 1], 0);
		beluga_mapping_unmap(m);
	}
	beluga_region_close(e);
	beluga_region_close(r);
	beluga_pool_close(pool);
	assert_int_equal(c->f.map_bytes, 0);
	fake_fini(&c->f);
	clean_dir(c->dir);
	free(c);
	return ret;
}

static int madvise_enomem(void *ctx, void *a, size_t l, int adv)
{
	(void)ctx; (void)a; (void)l; (void)adv;
	return -ENOMEM;
}

static void tw_enomem(struct c_ctx *c) { c->f.ops.madvise = madvise_enomem; }

static void user_create_out_of_memory_is_enospc(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_enomem, 0), -ENOSPC);
}

static int mbind_enosys(void *ctx, void *a, size_t l, int m,
			const unsigned long *nm, unsigned long mx, unsigned int f)
{
	(void)ctx; (void)a; (void)l; (void)m; (void)nm; (void)mx; (void)f;
	return -ENOSYS;
}

static void tw_nonuma(struct c_ctx *c) { c->f.ops.mbind = mbind_enosys; }

static void user_create_without_numa_still_works(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_nonuma, 1), 0);
}

static int madvise_einval(void *ctx, void *a, size_t l, int adv)
{
	(void)ctx; (void)a; (void)l; (void)adv;
	return -EINVAL;
}

static void tw_oldkernel(struct c_ctx *c) { c->f.ops.madvise = madvise_einval; }

static void user_create_touches_pages_on_old_kernels(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_oldkernel, 1), 0);
}

static int openat_no_tmpfile(void *ctx, int d, const char *p, int fl, unsigned int m)
{
	(void)ctx;
	if ((fl & O_TMPFILE) == O_TMPFILE)
		return -EOPNOTSUPP;
	return D->openat(NULL, d, p, fl, m);
}

static void tw_notmpfile(struct c_ctx *c) { c->f.ops.openat = openat_no_tmpfile; }

static void user_create_without_o_tmpfile_uses_named_temp(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_notmpfile, 1), 0);
}

static int linkat_enoent(void *ctx, int od, const char *op, int nd,
			 const char *np, int f)
{
	(void)ctx; (void)od; (void)op; (void)nd; (void)np; (void)f;
	return -ENOENT;
}

static void tw_noproc(struct c_ctx *c) { c->f.ops.linkat = linkat_enoent; }

static void user_create_link_failure_leaves_nothing(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_noproc, 0), -ENOENT);
}

static int fchmod_eio(void *ctx, int fd, unsigned int m)
{
	(void)ctx;
	return m == 0644 ? D->fchmod(NULL, fd, m) : -EIO;	/* 0644: the .lock file */
}

static void tw_fchmod(struct c_ctx *c) { c->f.ops.fchmod = fchmod_eio; }

static void user_create_reports_chmod_failure(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_fchmod, 0), -EIO);
}

static int flock_eio(void *ctx, int fd, int op)
{
	(void)ctx;
	return op == LOCK_EX ? -EIO : D->flock(NULL, fd, op);
}

static void tw_flock(struct c_ctx *c) { c->f.ops.flock = flock_eio; }

static void user_create_reports_lock_failure(void **state)
{
	(void)state;
	assert_int_equal(create_with(tw_flock, 0), -EIO);
}

/* ---- simulated hugetlbfs ---------------------------------------------------- */

static int memfd_with(const char *text)
{
	int fd = memfd_create("fake-file", MFD_CLOEXEC);

	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static char fake_mounts[512];

/* 100 free huge pages everywhere, and a /proc/mounts naming our test dir. */
static int openat_huge(void *ctx, int d, const char *p, int fl, unsigned int m)
{
	(void)ctx;
	if (strstr(p, "free_hugepages"))
		return memfd_with("100\n");
	if (!strcmp(p, "/proc/mounts"))
		return memfd_with(fake_mounts);
	return D->openat(NULL, d, p, fl, m);
}

static int mmap_huge_enomem(void *ctx, void *a, size_t l, int p, int fl, int fd,
			    int64_t o, void **out)
{
	char proc[64], path[256];
	ssize_t n;

	(void)ctx;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = fd >= 0 ? readlink(proc, path, sizeof(path) - 1) : -1;
	if (n > 0 && (path[n] = 0, strstr(path, "-huge/")))
		return -ENOMEM;	/* no huge page reservation possible */
	return D->mmap(NULL, a, l, p, fl, fd, o, out);
}

static struct beluga_pool *open_huge(struct c_ctx *c, const char *hugetlbfs)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;

	c->f.ops.openat = openat_huge;
	user_options(c, &o);
	o.hugetlbfs_dir = hugetlbfs;
	o.log_level = BELUGA_LOG_WARN;
	o.log_fn = c_capture_log;
	o.log_ctx = c->log;
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	return pool;
}

static void user_hugetlbfs_dir_holds_regions_when_pages_are_free(void **state)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool *pool;
	struct beluga_region *r, *o;
	struct beluga_region_info info;
	struct beluga_pool_info pi;
	char hdir[200];
	size_t n;

	(void)state;
	mkdir(c->huge, 0755);
	pool = open_huge(c, c->huge);
	snprintf(hdir, sizeof(hdir), "%s/beluga-default", c->huge);
	assert_int_equal(beluga_region_create(pool, "h", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(entries(hdir), 1);
	assert_int_equal(entries(c->dir), 0);
	assert_int_equal(beluga_region_stat(pool, "h", &info), 0);
	assert_true(info.flags & BELUGA_INFO_HUGETLB);
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_true(info.flags & BELUGA_INFO_HUGETLB);
	assert_int_equal(beluga_region_open(pool, "h", 0, &o), 0);
	assert_int_equal(beluga_region_list(pool, &info, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(beluga_pool_get_info(pool, &pi), 0);
	assert_true(pi.features & BELUGA_FEATURE_PMD_MAPPINGS);
	assert_int_equal(beluga_region_destroy(pool, "h"), 0);
	assert_int_equal(entries(hdir), 0);
	beluga_region_close(o);
	beluga_region_close(r);
	beluga_pool_close(pool);
	fake_fini(&c->f);
	assert_int_equal(clean_dir(c->dir) + clean_dir(c->huge), 0);
	free(c);
}

static void user_names_are_unique_across_both_dirs(void **state)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool *pool;
	struct beluga_region *r, *r2;
	char path[256];
	int fd;

	(void)state;
	mkdir(c->huge, 0755);
	pool = open_huge(c, c->huge);
	/* a region already in the tmpfs directory */
	snprintf(path, sizeof(path), "%s/r.both", c->dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, 2 * MiB), 0);
	close(fd);
	assert_int_equal(beluga_region_create(pool, "both", 2 * MiB, 0600, 0, -1, &r), -EEXIST);
	assert_int_equal(beluga_region_create(pool, "new", 2 * MiB, 0600, 0, -1, &r), 0);
	unlink(path);
	c->f.ops.mmap = mmap_huge_enomem;	/* ignored: ops were copied */
	assert_int_equal(beluga_region_create(pool, "new", 2 * MiB, 0600, 0, -1, &r2), -EEXIST);
	beluga_region_close(r);
	beluga_pool_close(pool);
	fake_fini(&c->f);
	assert_int_equal(clean_dir(c->dir) + clean_dir(c->huge), 1);
	free(c);
}

static void user_hugetlbfs_failure_falls_back_to_tmpfs(void **state)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool *pool;
	struct beluga_region *r;
	struct beluga_region_info info;
	char hdir[200];

	(void)state;
	mkdir(c->huge, 0755);
	c->f.ops.mmap = mmap_huge_enomem;
	pool = open_huge(c, c->huge);
	snprintf(hdir, sizeof(hdir), "%s/beluga-default", c->huge);
	assert_int_equal(beluga_region_create(pool, "fb", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(entries(hdir), 0);
	assert_int_equal(entries(c->dir), 1);
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_int_equal(info.flags & BELUGA_INFO_HUGETLB, 0);
	beluga_region_close(r);
	beluga_pool_close(pool);
	fake_fini(&c->f);
	clean_dir(c->dir);
	clean_dir(c->huge);
	free(c);
}

static void user_hugetlbfs_found_in_proc_mounts(void **state)
{
	struct c_ctx *c = c_ctx_new(&c_user_backend);
	struct beluga_pool *pool;
	struct beluga_pool_info pi;
	char hdir[200];
	struct stat st;

	(void)state;
	mkdir(c->huge, 0755);
	snprintf(fake_mounts, sizeof(fake_mounts),
		 "proc /proc proc rw 0 0\n"
		 "hugetlbfs /dev/hugepages1G hugetlbfs rw,pagesize=1024M 0 0\n"
		 "hugetlbfs %s hugetlbfs rw,relatime,pagesize=2M 0 0\n", c->huge);
	pool = open_huge(c, NULL);
	assert_int_equal(beluga_pool_get_info(pool, &pi), 0);
	assert_true(pi.features & BELUGA_FEATURE_PMD_MAPPINGS);
	snprintf(hdir, sizeof(hdir), "%s/beluga-default", c->huge);
	assert_int_equal(stat(hdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01777);
	beluga_pool_close(pool);
	/* an unusable mount: a warning, and tmpfs only */
	snprintf(fake_mounts, sizeof(fake_mounts),
		 "hugetlbfs /nonexistent/huge hugetlbfs rw,pagesize=2M 0 0\n");
	pool = open_huge(c, NULL);
	assert_non_null(strstr(c->log, "unusable"));
	assert_int_equal(beluga_pool_get_info(pool, &pi), 0);
	assert_int_equal(pi.features & BELUGA_FEATURE_PMD_MAPPINGS, 0);
	beluga_pool_close(pool);
	fake_fini(&c->f);
	clean_dir(c->dir);
	clean_dir(c->huge);
	free(c);
}

/* ---- shared regions ------------------------------------------------------------ */

static void user_shared_define_is_eopnotsupp(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r = NULL;

	assert_int_equal(beluga_shared_define(c->pool, "s", 0, 0, BELUGA_REGION_ALIGN, 0600, &r),
			 -EOPNOTSUPP);
	assert_null(r);
}

/* ---- the table --------------------------------------------------------------- */

#define U(f) cmocka_unit_test_prestate(f, (void *)&c_user_backend)
#define UPOOL(f) cmocka_unit_test_prestate_setup_teardown(f, c_setup, c_teardown, \
							  (void *)&c_user_backend)

static const struct CMUnitTest user_cases[] = {
	UPOOL(user_pool_open_makes_sticky_world_writable_dir),
	U(user_pool_open_rejects_bad_pool_name),
	U(user_pool_open_on_a_file_is_enotdir),
	U(user_pool_open_in_missing_parent_is_enoent),
	U(auto_backend_is_user_without_device),
	UPOOL(user_info_is_the_library_abi_without_counters),
	UPOOL(user_create_sets_exact_mode_and_owner),
	UPOOL(user_dot_names_are_plain_regions),
	UPOOL(user_non_region_file_is_einval),
	UPOOL(user_ephemeral_leaves_no_file),
	U(user_map_survives_mlock_failure_with_warning),
	U(user_create_out_of_memory_is_enospc),
	U(user_create_without_numa_still_works),
	U(user_create_touches_pages_on_old_kernels),
	U(user_create_without_o_tmpfile_uses_named_temp),
	U(user_create_link_failure_leaves_nothing),
	U(user_create_reports_chmod_failure),
	U(user_create_reports_lock_failure),
	U(user_hugetlbfs_dir_holds_regions_when_pages_are_free),
	U(user_names_are_unique_across_both_dirs),
	U(user_hugetlbfs_failure_falls_back_to_tmpfs),
	U(user_hugetlbfs_found_in_proc_mounts),
	UPOOL(user_shared_define_is_eopnotsupp),
};

size_t c_user_cases(struct CMUnitTest *out, size_t cap)
{
	assert_true(NELEM(user_cases) <= cap);
	memcpy(out, user_cases, sizeof(user_cases));
	return NELEM(user_cases);
}
