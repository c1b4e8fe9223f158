// SPDX-License-Identifier: Apache-2.0
/*
 * Description: fake beluga driver and fault-injecting ops (see fake_ops.h).
 *
 * The fake validates what the real driver validates (flags, zero padding
 * and reserved fields, names, sizes, modes), so the tests also prove the
 * library fills the UAPI structures correctly.
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

#include "fake_ops.h"

#define D (beluga_default_ops())

/* Count the call; fail it if it is the chosen one. */
#define INJECT(f, name)							\
	do {								\
		if (++(f)->calls == (f)->fail_at) {			\
			(f)->failed_op = (name);			\
			return -(f)->fail_errno;			\
		}							\
	} while (0)

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static bool name_ok(const char *n)
{
	size_t len = strnlen(n, BELUGA_NAME_MAX);

	if (!len || len == BELUGA_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789._-", n[i]))
			return false;
	/* the rest of the field must be zero */
	return all_zero(n + len, BELUGA_NAME_MAX - len);
}

static struct fake_region *by_name(struct fake *f, const char *name)
{
	for (int i = 0; i < FAKE_MAX_REGIONS; i++)
		if (f->r[i].used && !f->r[i].destroyed &&
		    !strncmp(f->r[i].name, name, BELUGA_NAME_MAX))
			return &f->r[i];
	return NULL;
}

static struct fake_region *by_fd(struct fake *f, int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return NULL;
	for (int i = 0; i < FAKE_MAX_REGIONS; i++)
		if (f->r[i].used && f->r[i].ino == st.st_ino)
			return &f->r[i];
	return NULL;
}

static int reopen(struct fake_region *r, bool rdonly)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->memfd);
	fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void fill_stat(struct fake *f, struct fake_region *r,
		      struct beluga_region_stat *s)
{
	(void)f;
	memset(s, 0, sizeof(*s));
	memcpy(s->name, r->name, sizeof(s->name));
	s->flags = r->flags | (r->destroyed ? BELUGA_REGION_F_DESTROYED : 0);
	s->mode = r->mode;
	s->uid = r->uid;
	s->gid = r->gid;
	s->source_kind = BELUGA_SOURCE_NODE;
	s->nr_chunks = (uint32_t)(r->size / BELUGA_CHUNK_SIZE);
	s->id = r->id;
	s->size = r->size;
	s->open_count = 1;
	s->shared_offset = r->shared_offset;
	s->shared_source = r->shared_source;
}

static int do_create(struct fake *f, struct beluga_region_create *c)
{
	bool eph = c->flags & BELUGA_CREATE_EPHEMERAL;
	struct fake_region *r = NULL;
	int fd;

	if ((c->flags & ~BELUGA_CREATE_FLAGS_ALL) || c->__pad || c->id ||
	    !all_zero(c->reserved, sizeof(c->reserved)) || c->fd)
		return -EINVAL;
	if (!(eph && all_zero(c->name, sizeof(c->name))) && !name_ok(c->name))
		return -EINVAL;
	if (!c->size || c->size % BELUGA_CHUNK_SIZE || c->mode > 0777 ||
	    c->source_kind != BELUGA_SOURCE_ANY || c->source_index < -1 ||
	    c->source_index > 1)
		return -EINVAL;
	if (!eph && by_name(f, c->name))
		return -EEXIST;
	for (int i = 0; i < FAKE_MAX_REGIONS && !r; i++)
		if (!f->r[i].used)
			r = &f->r[i];
	if (!r)
		return -ENOSPC;
	memset(r, 0, sizeof(*r));
	r->memfd = memfd_create("fake-region", MFD_CLOEXEC);
	if (r->memfd < 0 || ftruncate(r->memfd, (off_t)c->size))
		return -ENOMEM;
	struct stat st;
	fstat(r->memfd, &st);
	r->ino = st.st_ino;
	r->used = true;
	memcpy(r->name, c->name, sizeof(r->name));
	r->size = c->size;
	r->mode = c->mode;
	r->uid = geteuid();
	r->gid = getegid();
	r->flags = eph ? BELUGA_REGION_F_EPHEMERAL : 0;
	r->id = ++f->next_id;
	fd = reopen(r, false);
	if (fd < 0)
		return fd;
	c->fd = fd;
	c->id = r->id;
	return 0;
}

/*
 * SHARED_DEFINE: the driver's argument checks, then a region like any other
 * (the fake has no physical extents, overlaps or source kinds).
 */
static int do_shared(struct fake *f, struct beluga_shared_define *s)
{
	struct beluga_region_create c;
	struct fake_region *r;
	int ret;

	if ((s->flags & ~BELUGA_SHARED_FLAGS_ALL) || s->fd || s->id ||
	    !all_zero(s->reserved, sizeof(s->reserved)) ||
	    s->offset % BELUGA_CHUNK_SIZE || s->source_index >= f->info.nr_sources)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	memcpy(c.name, s->name, sizeof(c.name));
	c.size = s->size;
	c.mode = s->mode;
	c.source_index = -1;
	ret = do_create(f, &c);
	if (ret)
		return ret;
	r = by_name(f, s->name);
	r->flags |= BELUGA_REGION_F_SHARED;
	r->shared_offset = s->offset;
	r->shared_source = s->source_index;
	s->fd = c.fd;
	s->id = c.id;
	return 0;
}

static int do_open(struct fake *f, struct beluga_region_open *o)
{
	struct fake_region *r;
	int fd;

	if ((o->flags & ~BELUGA_OPEN_FLAGS_ALL) || o->fd || o->id ||
	    !all_zero(o->reserved, sizeof(o->reserved)) || !name_ok(o->name))
		return -EINVAL;
	r = by_name(f, o->name);
	if (!r)
		return -ENOENT;
	fd = reopen(r, o->flags & BELUGA_OPEN_RDONLY);
	if (fd < 0)
		return fd;
	o->fd = fd;
	o->id = r->id;
	return 0;
}

static int do_list(struct fake *f, struct beluga_region_list *l)
{
	struct beluga_region_stat *out = (void *)(uintptr_t)l->entries;
	uint32_t n = 0;

	if (l->flags || l->count || l->__pad || !all_zero(l->reserved, sizeof(l->reserved)))
		return -EINVAL;
	for (int i = 0; i < FAKE_MAX_REGIONS; i++) {
		if (!f->r[i].used || f->r[i].destroyed)
			continue;
		if (n < l->capacity)
			fill_stat(f, &f->r[i], &out[n]);
		n++;
	}
	l->count = n;
	return 0;
}

static int do_setattr(struct fake *f, struct beluga_region_setattr *a)
{
	struct fake_region *r;

	if (!a->flags || (a->flags & ~BELUGA_SETATTR_FLAGS_ALL) ||
	    !all_zero(a->reserved, sizeof(a->reserved)) || !name_ok(a->name) ||
	    a->mode > 0777)
		return -EINVAL;
	/* fields not selected by a flag must be zero, as in the driver */
	if ((!(a->flags & BELUGA_SETATTR_MODE) && a->mode) ||
	    (!(a->flags & BELUGA_SETATTR_UID) && a->uid) ||
	    (!(a->flags & BELUGA_SETATTR_GID) && a->gid))
		return -EINVAL;
	r = by_name(f, a->name);
	if (!r)
		return -ENOENT;
	if (a->flags & BELUGA_SETATTR_MODE)
		r->mode = a->mode;
	if (a->flags & BELUGA_SETATTR_UID)
		r->uid = a->uid;
	if (a->flags & BELUGA_SETATTR_GID)
		r->gid = a->gid;
	return 0;
}

static int dev_ioctl(struct fake *f, unsigned long req, void *arg)
{
	struct fake_region *r;

	switch (req) {
	case BELUGA_IOC_INFO: {
		struct beluga_info *i = arg;

		if (i->flags || i->__pad || !all_zero(i->reserved, sizeof(i->reserved)))
			return -EINVAL;
		*i = f->info;
		for (int k = 0; k < FAKE_MAX_REGIONS; k++)
			i->nr_regions += f->r[k].used && !f->r[k].destroyed;
		return 0;
	}
	case BELUGA_IOC_SOURCE_INFO: {
		struct beluga_source_info *s = arg;

		if (s->flags || !all_zero(s->reserved, sizeof(s->reserved)))
			return -EINVAL;
		if (s->index >= f->info.nr_sources)
			return -ENOENT;
		s->kind = BELUGA_SOURCE_NODE;
		s->node = (int)s->index + 1;
		s->total_bytes = f->info.total_bytes / f->info.nr_sources;
		s->free_bytes = f->info.free_bytes / f->info.nr_sources;
		return 0;
	}
	case BELUGA_IOC_REGION_CREATE:
		return do_create(f, arg);
	case BELUGA_IOC_REGION_OPEN:
		return do_open(f, arg);
	case BELUGA_IOC_REGION_DESTROY: {
		struct beluga_region_name *n = arg;

		if (n->flags || n->__pad || !all_zero(n->reserved, sizeof(n->reserved)) ||
		    !name_ok(n->name))
			return -EINVAL;
		r = by_name(f, n->name);
		if (!r)
			return -ENOENT;
		if (f->driver_gpu_refs)
			return -EBUSY;	/* the fake has one region per GPU test */
		r->destroyed = true;
		return 0;
	}
	case BELUGA_IOC_REGION_STAT: {
		struct beluga_region_stat *s = arg;

		if (s->flags || !name_ok(s->name))
			return -EINVAL;
		r = by_name(f, s->name);
		if (!r)
			return -ENOENT;
		fill_stat(f, r, s);
		return 0;
	}
	case BELUGA_IOC_REGION_LIST:
		return do_list(f, arg);
	case BELUGA_IOC_REGION_SETATTR:
		return do_setattr(f, arg);
	case BELUGA_IOC_SHARED_DEFINE:
		return do_shared(f, arg);
	case BELUGA_IOC_SOURCE_ADD:
		f->last_add = *(struct beluga_source_add *)arg;
		((struct beluga_source_add *)arg)->index = f->info.nr_sources;
		return 0;
	case BELUGA_IOC_SOURCE_REMOVE:
		f->last_remove = *(struct beluga_source_remove *)arg;
		return 0;
	default:
		return -ENOTTY;
	}
}

static int region_ioctl(struct fake *f, int fd, unsigned long req, void *arg)
{
	struct fake_region *r = by_fd(f, fd);

	if (!r)
		return -ENOTTY;
	if (req == BELUGA_IOC_REGION_FD_STAT) {
		struct beluga_region_stat *s = arg;

		if (!all_zero(s, sizeof(*s)))
			return -EINVAL;
		fill_stat(f, r, s);
		return 0;
	}
	if (req == BELUGA_IOC_GPU_REGISTER) {
		struct beluga_gpu_register *g = arg;
		int32_t *nodes = (void *)(uintptr_t)g->nodes;

		if (g->flags || !all_zero(g->reserved, sizeof(g->reserved)))
			return -EINVAL;
		if (g->pci_domain != 0 || g->pci_bdf != f->gpu_bdf)
			return -ENODEV;
		g->nr_chunks = (uint32_t)(r->size / BELUGA_CHUNK_SIZE);
		for (uint32_t i = 0; i < g->capacity && i < g->nr_chunks; i++)
			nodes[i] = (int32_t)(i % 2) + 1;
		g->gpu_node = 1;
		g->socket = f->gpu_socket;
		g->chunk_size = BELUGA_CHUNK_SIZE;
		g->max_register_bytes = f->gpu_max_register_bytes;
		g->registrations = (uint32_t)++f->driver_gpu_refs;
		return 0;
	}
	if (req == BELUGA_IOC_GPU_UNREGISTER) {
		struct beluga_gpu_unregister *u = arg;

		if (u->flags || u->__pad || !all_zero(u->reserved, sizeof(u->reserved)))
			return -EINVAL;
		if (u->pci_bdf != f->gpu_bdf || !f->driver_gpu_refs)
			return -ENOENT;
		f->driver_gpu_refs--;
		return 0;
	}
	if (req == BELUGA_IOC_REGION_LAYOUT) {
		struct beluga_region_layout *l = arg;
		int32_t *nodes = (void *)(uintptr_t)l->nodes;

		if (l->flags || l->__pad || l->nr_chunks || l->chunk_size ||
		    !all_zero(l->reserved, sizeof(l->reserved)) || (l->capacity && !l->nodes))
			return -EINVAL;
		l->nr_chunks = (uint32_t)(r->size / BELUGA_CHUNK_SIZE);
		l->chunk_size = BELUGA_CHUNK_SIZE;
		for (uint32_t i = 0; i < l->capacity && i < l->nr_chunks; i++)
			nodes[i] = (int32_t)(i % 2) + 1;
		return 0;
	}
	return -ENOTTY;
}

static bool is_dev(struct fake *f, int fd)
{
	struct stat st;

	return !fstat(fd, &st) && (uint64_t)st.st_ino == f->devino;
}

static int f_ioctl(void *c, int fd, unsigned long req, void *arg)
{
	struct fake *f = c;

	INJECT(f, "ioctl");
	if (_IOC_TYPE(req) == BELUGA_IOC_MAGIC && f->cmd_errno[_IOC_NR(req)])
		return -f->cmd_errno[_IOC_NR(req)];
	if (f->real_driver)
		return D->ioctl(NULL, fd, req, arg);
	if (is_dev(f, fd))
		return dev_ioctl(f, req, arg);
	return region_ioctl(f, fd, req, arg);
}

/* Like Linux, a failing close still releases the descriptor. */
static int f_close(void *c, int fd)
{
	struct fake *f = c;

	if (++f->calls == f->fail_at) {
		f->failed_op = "close";
		close(fd);
		return -f->fail_errno;
	}
	return D->close(NULL, fd);
}

static int f_open(void *c, const char *p, int fl, unsigned int m)
{
	struct fake *f = c;

	INJECT(f, "open");
	if (!strcmp(p, FAKE_DEVICE)) {
		int fd = fcntl(f->devfd, F_DUPFD_CLOEXEC, 0);

		return fd < 0 ? -errno : fd;
	}
	return D->open(NULL, p, fl, m);
}

static int f_fstatat(void *c, int d, const char *p, struct stat *st, int fl)
{
	struct fake *f = c;

	INJECT(f, "fstatat");
	if (d == AT_FDCWD && !strcmp(p, FAKE_DEVICE))
		return fstat(f->devfd, st) ? -errno : 0;
	return D->fstatat(NULL, d, p, st, fl);
}

static int f_mmap(void *c, void *a, size_t l, int p, int fl, int fd, int64_t o,
		  void **out)
{
	struct fake *f = c;
	int ret;

	INJECT(f, "mmap");
	if (fd >= 0 && by_fd(f, fd) && !(fl & MAP_SHARED))
		return -EINVAL;
	ret = D->mmap(NULL, a, l, p, fl, fd, o, out);
	if (!ret && !(fl & MAP_FIXED))	/* MAP_FIXED replaces a reservation */
		f->map_bytes += (long)l;
	return ret;
}

static int f_munmap(void *c, void *a, size_t l)
{
	struct fake *f = c;
	int ret;

	INJECT(f, "munmap");
	ret = D->munmap(NULL, a, l);
	if (!ret)
		f->map_bytes -= (long)l;
	return ret;
}

static int f_move_pages(void *c, unsigned long n, void **pages, int *status)
{
	struct fake *f = c;

	INJECT(f, "move_pages");
	if (f->moved_node >= 0) {
		for (unsigned long i = 0; i < n; i++)
			status[i] = f->moved_node;
		return 0;
	}
	return D->move_pages(NULL, n, pages, status);
}

static int f_gpu_count(void *c, int *count)
{
	struct fake *f = c;

	INJECT(f, "gpu_count");
	*count = f->gpus;
	return f->gpus ? 0 : -BELUGA_ENOGPU;
}

static int f_gpu_register(void *c, int dev, void *a, size_t l, unsigned int fl)
{
	struct fake *f = c;

	(void)dev; (void)a; (void)l; (void)fl;
	INJECT(f, "gpu_register");
	if (++f->gpu_register_calls == f->gpu_fail_register_at)
		return -ENOMEM;
	f->gpu_registered++;
	return 0;
}

static int f_gpu_unregister(void *c, int dev, void *a)
{
	struct fake *f = c;

	(void)dev; (void)a;
	INJECT(f, "gpu_unregister");
	f->gpu_registered--;
	return 0;
}

static int f_gpu_synchronize(void *c, int dev)
{
	struct fake *f = c;

	(void)dev;
	INJECT(f, "gpu_synchronize");
	f->sync_calls++;
	return 0;
}

static int f_gpu_device_pointer(void *c, int dev, void *host, void **out)
{
	struct fake *f = c;

	(void)dev;
	INJECT(f, "gpu_device_pointer");
	*out = host;
	return 0;
}

static int f_gpu_pci_id(void *c, int dev, uint32_t *domain, uint32_t *bdf)
{
	struct fake *f = c;

	(void)dev;
	INJECT(f, "gpu_pci_id");
	*domain = 0;
	*bdf = f->gpu_bdf;
	return 0;
}

/* Plain pass-through wrappers that only count and inject. */
#define PASS(name, ret_t, params, args)					\
	static ret_t f_##name params					\
	{								\
		struct fake *f = c;					\
		INJECT(f, #name);					\
		return D->name args;					\
	}
PASS(openat, int, (void *c, int d, const char *p, int fl, unsigned int m), (NULL, d, p, fl, m))
PASS(fcntl, int, (void *c, int fd, int cmd, long arg), (NULL, fd, cmd, arg))
PASS(read, ssize_t, (void *c, int fd, void *b, size_t l), (NULL, fd, b, l))
PASS(madvise, int, (void *c, void *a, size_t l, int adv), (NULL, a, l, adv))
PASS(mlock, int, (void *c, const void *a, size_t l), (NULL, a, l))
PASS(mbind, int, (void *c, void *a, size_t l, int m, const unsigned long *nm,
		  unsigned long mx, unsigned int fl), (NULL, a, l, m, nm, mx, fl))
PASS(fstat, int, (void *c, int fd, struct stat *st), (NULL, fd, st))
PASS(ftruncate, int, (void *c, int fd, int64_t l), (NULL, fd, l))
PASS(fchmod, int, (void *c, int fd, unsigned int m), (NULL, fd, m))
PASS(fchmodat, int, (void *c, int d, const char *p, unsigned int m), (NULL, d, p, m))
PASS(fchownat, int, (void *c, int d, const char *p, uid_t u, gid_t g), (NULL, d, p, u, g))
PASS(mkdirat, int, (void *c, int d, const char *p, unsigned int m), (NULL, d, p, m))
PASS(linkat, int, (void *c, int od, const char *op, int nd, const char *np, int fl),
     (NULL, od, op, nd, np, fl))
PASS(unlinkat, int, (void *c, int d, const char *p, int fl), (NULL, d, p, fl))
PASS(flock, int, (void *c, int fd, int op), (NULL, fd, op))
PASS(getdents, ssize_t, (void *c, int fd, void *b, size_t l), (NULL, fd, b, l))
PASS(readlink, ssize_t, (void *c, const char *p, char *b, size_t l), (NULL, p, b, l))
PASS(sendmsg, ssize_t, (void *c, int fd, const struct msghdr *m, int fl), (NULL, fd, m, fl))
PASS(recvmsg, ssize_t, (void *c, int fd, struct msghdr *m, int fl), (NULL, fd, m, fl))

void fake_init(struct fake *f)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	beluga_ops_init(&f->ops);
	f->ops.ctx = f;
#define SET(n) f->ops.n = f_##n
	SET(open); SET(openat); SET(close); SET(fcntl); SET(ioctl); SET(read);
	SET(mmap); SET(munmap); SET(madvise); SET(mlock); SET(mbind);
	SET(move_pages); SET(fstat); SET(fstatat); SET(ftruncate); SET(fchmod);
	SET(fchmodat); SET(fchownat); SET(mkdirat); SET(linkat); SET(unlinkat);
	SET(flock); SET(getdents); SET(readlink); SET(sendmsg); SET(recvmsg);
	SET(gpu_count); SET(gpu_register); SET(gpu_unregister);
	SET(gpu_synchronize); SET(gpu_device_pointer); SET(gpu_pci_id);
#undef SET
	f->devfd = memfd_create("fake-beluga-dev", MFD_CLOEXEC);
	fstat(f->devfd, &st);
	f->devino = st.st_ino;
	f->info.abi_version = BELUGA_ABI_CURRENT;
	f->info.min_abi_version = BELUGA_ABI_VERSION(1, 0);
	f->info.features = BELUGA_FEAT_NODE_SOURCES | BELUGA_FEAT_EPHEMERAL |
			   BELUGA_FEAT_PMD_MAPPINGS | BELUGA_FEAT_LONGTERM_PIN |
			   BELUGA_FEAT_SHARED_REGIONS;
	f->info.chunk_size = BELUGA_CHUNK_SIZE;
	f->info.total_bytes = 512ULL << 20;
	f->info.free_bytes = 256ULL << 20;
	f->info.nr_sources = 2;
	f->moved_node = -1;
	f->gpu_bdf = 0x41 << 8;
	f->gpu_socket = BELUGA_GPU_SOCKET_SAME;
}

void fake_fini(struct fake *f)
{
	for (int i = 0; i < FAKE_MAX_REGIONS; i++)
		if (f->r[i].used)
			close(f->r[i].memfd);
	close(f->devfd);
}

void fake_kernel_options(struct fake *f, struct beluga_pool_options *o)
{
	beluga_pool_options_init(o);
	o->backend = BELUGA_BACKEND_KERNEL;
	o->device_path = FAKE_DEVICE;
	o->ops = &f->ops;
	o->log_level = 0;
}

void fake_driver_options(struct fake *f, struct beluga_pool_options *o)
{
	f->real_driver = true;
	beluga_pool_options_init(o);
	o->backend = BELUGA_BACKEND_KERNEL;
	o->ops = &f->ops;
	o->log_level = 0;
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}
