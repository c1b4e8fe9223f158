// SPDX-License-Identifier: Apache-2.0
/*
 * fz_dev.c - structure-aware ioctls on /dev/beluga.
 *
 * Each generator builds a valid-ish structure, then applies a plan: either
 * nothing, or ONE ABI-rule break (the call must fail with EINVAL), or ONE
 * bad argument pointer (EFAULT; a read-only buffer must make every _IOWR
 * command fail).  Successful results are checked for consistency, zeroed
 * padding and reserved fields, and kernel-looking values.
 */
#define _GNU_SOURCE
#include "fz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Plan for one call: at most one thing is broken. */
struct fz_plan {
	bool must_fail;		/* an ABI rule is broken: EINVAL */
	enum fz_ptr ptr;	/* how the argument is passed */
	const char *what;	/* what was broken, for the trail */
};

static const uint32_t fz_uids[] = { 0, 65534, 1000, 1001, 0xffffffffU };

long fz_ioctl(int fd, unsigned long cmd, void *arg)
{
	long ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

static struct fz_plan fz_plan(struct fz_ctx *c)
{
	struct fz_plan p = { .ptr = FZ_PTR_GOOD, .what = "" };

	if (fz_pct(c, 20))
		p.must_fail = true;
	else
		p.ptr = fz_pick_ptr(c, 15);
	return p;
}

/* Set @len bytes at @field to a random non-zero value. */
static void fz_nonzero(struct fz_ctx *c, void *field, size_t len)
{
	uint8_t *b = field;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)fz_rand(c, 256);
	b[fz_rand(c, len)] |= (uint8_t)(1 + fz_rand(c, 255));
}

#define FZ_BREAK(c, p, field, label) \
	do { fz_nonzero((c), &(field), sizeof(field)); (p)->what = (label); } while (0)

/*
 * The errno rules every command shares.  @writes: the command copies a
 * result back (_IOWR), so a read-only argument must make it fail.
 */
static void fz_expect(struct fz_ctx *c, const char *cmd, long ret,
		      const struct fz_plan *p, bool writes)
{
	if (p->must_fail && ret != -EINVAL)
		fz_violation(c, "%s with %s: got %ld, want -EINVAL", cmd, p->what, ret);
	else if (p->ptr >= FZ_PTR_NULL && p->ptr <= FZ_PTR_STRADDLE && ret != -EFAULT)
		fz_violation(c, "%s with a %s argument: got %ld, want -EFAULT", cmd,
			     fz_ptr_name(p->ptr), ret);
	else if (p->ptr == FZ_PTR_RDONLY && writes && ret >= 0)
		fz_violation(c, "%s with a read-only argument succeeded", cmd);
}

static bool fz_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

void fz_name(struct fz_ctx *c, char name[BELUGA_NAME_MAX])
{
	memset(name, 0, BELUGA_NAME_MAX);
	if (fz_pct(c, 80))
		snprintf(name, BELUGA_NAME_MAX, "fz-%u", (unsigned int)fz_rand(c, FZ_SHARED_NAMES));
	else
		snprintf(name, BELUGA_NAME_MAX, "fz-p%d-%u-%u", (int)getpid(), c->thread,
			 c->name_seq++ % 8);
}

void fz_break_name(struct fz_ctx *c, char name[BELUGA_NAME_MAX])
{
	static const char bad[] = "/ *\x80\x7f\n:";
	size_t len = strnlen(name, BELUGA_NAME_MAX);

	switch (fz_rand(c, 4)) {
	case 0:		/* a forbidden character */
		name[fz_rand(c, len ? len : 1)] = bad[fz_rand(c, sizeof(bad) - 1)];
		break;
	case 1:		/* no terminating NUL */
		memset(name, 'a', BELUGA_NAME_MAX);
		break;
	case 2:		/* garbage after the NUL */
		name[len + 1 + fz_rand(c, BELUGA_NAME_MAX - len - 1)] = 'x';
		break;
	default:	/* empty */
		memset(name, 0, BELUGA_NAME_MAX);
		break;
	}
}

void fz_keep_fd(struct fz_ctx *c, int fd, bool rdonly, uint64_t size)
{
	unsigned int i, slot = (unsigned int)fz_rand(c, FZ_MAX_FDS);

	for (i = 0; i < FZ_MAX_FDS; i++) {
		if (c->fds[i].fd < 0) {
			slot = i;
			break;
		}
	}
	if (c->fds[slot].fd >= 0)
		close(c->fds[slot].fd);
	c->fds[slot] = (struct fz_fd){ .fd = fd, .rdonly = rdonly, .size = size };
}

void fz_check_new_fd(struct fz_ctx *c, const char *what, int fd, bool cloexec)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		fz_violation(c, "%s returned fd %d that is not open (%d)", what, fd, errno);
	else if (!!(fl & FD_CLOEXEC) != cloexec)
		fz_violation(c, "%s: FD_CLOEXEC %d, asked for %d", what, !!(fl & FD_CLOEXEC), cloexec);
}

/* Check one region_stat as STAT, FD_STAT and LIST return it. */
static void fz_check_stat(struct fz_ctx *c, const char *what,
			  const struct beluga_region_stat *st)
{
	if (st->size != (uint64_t)st->nr_chunks * FZ_CHUNK || !st->size ||
	    st->mode > 0777 || (st->flags & ~3U) || st->__pad ||
	    !fz_zero(st->reserved, sizeof(st->reserved)) ||
	    strnlen(st->name, BELUGA_NAME_MAX) == BELUGA_NAME_MAX || !st->id ||
	    fz_kernel_like(st->id) || fz_kernel_like(st->size) ||
	    st->source_kind < BELUGA_SOURCE_NODE || st->source_kind > BELUGA_SOURCE_RANGE ||
	    st->pinned_chunks > st->nr_chunks)
		fz_violation(c, "%s: inconsistent stat: id %llu size %llu nr_chunks %u mode %o flags %#x kind %u pinned %u",
			     what, (unsigned long long)st->id, (unsigned long long)st->size,
			     st->nr_chunks, st->mode, st->flags, st->source_kind, st->pinned_chunks);
}

static void fz_info(struct fz_ctx *c)
{
	struct beluga_info *in = fz_arg_buf(c, sizeof(*in));
	struct fz_plan p = fz_plan(c);
	long ret;

	if (p.must_fail) {
		switch (fz_rand(c, 3)) {
		case 0: FZ_BREAK(c, &p, in->flags, "flags"); break;
		case 1: FZ_BREAK(c, &p, in->__pad, "__pad"); break;
		default: FZ_BREAK(c, &p, in->reserved[fz_rand(c, 6)], "reserved"); break;
		}
	}
	fz_trail(c, "INFO %s %s", p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_INFO, fz_arg_ptr(c, in, sizeof(*in), p.ptr));
	fz_count(c, FZ_OP_INFO, ret);
	fz_expect(c, "INFO", ret, &p, true);
	if (ret || p.ptr != FZ_PTR_GOOD)
		return;
	if (in->abi_version != BELUGA_ABI_CURRENT ||
	    in->min_abi_version != BELUGA_ABI_VERSION(1, 0) || in->chunk_size != FZ_CHUNK ||
	    in->total_bytes != c->env->pool_bytes || in->free_bytes > in->total_bytes ||
	    in->quarantined_bytes > in->total_bytes || in->nr_sources != c->env->nr_sources ||
	    in->flags || in->__pad || !fz_zero(in->reserved, sizeof(in->reserved)))
		fz_violation(c, "INFO: inconsistent result: abi %#x total %llu free %llu quarantined %llu sources %u",
			     in->abi_version, (unsigned long long)in->total_bytes,
			     (unsigned long long)in->free_bytes,
			     (unsigned long long)in->quarantined_bytes, in->nr_sources);
}

static void fz_source_info(struct fz_ctx *c)
{
	struct beluga_source_info *si = fz_arg_buf(c, sizeof(*si));
	struct fz_plan p = fz_plan(c);
	uint32_t idx = (uint32_t)fz_rand(c, c->env->nr_sources + 3);
	long ret;

	if (fz_pct(c, 3))
		idx = (uint32_t)fz_next(&c->rng);
	si->index = idx;
	if (p.must_fail) {
		switch (fz_rand(c, 6)) {
		case 0: FZ_BREAK(c, &p, si->flags, "flags"); break;
		case 1: FZ_BREAK(c, &p, si->kind, "kind"); break;
		case 2: FZ_BREAK(c, &p, si->node, "node"); break;
		case 3: FZ_BREAK(c, &p, si->total_bytes, "total_bytes"); break;
		case 4: FZ_BREAK(c, &p, si->free_bytes, "free_bytes"); break;
		default: FZ_BREAK(c, &p, si->reserved[fz_rand(c, 4)], "reserved"); break;
		}
	}
	fz_trail(c, "SOURCE_INFO %u %s %s", idx, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_SOURCE_INFO, fz_arg_ptr(c, si, sizeof(*si), p.ptr));
	fz_count(c, FZ_OP_SOURCE_INFO, ret);
	fz_expect(c, "SOURCE_INFO", ret, &p, true);
	if (p.must_fail || p.ptr != FZ_PTR_GOOD)
		return;
	if (idx >= c->env->nr_sources) {
		if (ret != -ENOENT)
			fz_violation(c, "SOURCE_INFO %u past the end: got %ld, want -ENOENT", idx, ret);
		return;
	}
	if (ret || si->index != idx || si->kind != c->env->source_kind[idx] ||
	    si->free_bytes > si->total_bytes || !si->total_bytes || (si->flags & ~1U) ||
	    !fz_zero(si->reserved, sizeof(si->reserved)))
		fz_violation(c, "SOURCE_INFO %u: ret %ld kind %u total %llu free %llu", idx, ret,
			     si->kind, (unsigned long long)si->total_bytes,
			     (unsigned long long)si->free_bytes);
}

/* A region size: mostly small, sometimes too big, odd or absurd. */
static uint64_t fz_size(struct fz_ctx *c)
{
	switch (fz_rand(c, 40)) {
	case 0:
		return c->env->pool_bytes + FZ_CHUNK;	/* ENOSPC */
	case 1:
		return 1ULL << 62;			/* ENOSPC, no overflow */
	case 2:
		return 16 * FZ_CHUNK;
	default:
		return (1 + fz_rand(c, 4)) * FZ_CHUNK;
	}
}

static void fz_create(struct fz_ctx *c)
{
	static const uint32_t modes[] = { 0600, 0644, 0666, 0660, 0640, 0, 0400 };
	struct beluga_region_create *r = fz_arg_buf(c, sizeof(*r));
	struct fz_plan p = fz_plan(c);
	long ret;

	if (fz_pct(c, 20))
		r->flags |= BELUGA_CREATE_EPHEMERAL;
	if (fz_pct(c, 30))
		r->flags |= BELUGA_CREATE_CLOEXEC;
	if (!(r->flags & BELUGA_CREATE_EPHEMERAL) || fz_pct(c, 50))
		fz_name(c, r->name);
	if (p.ptr == FZ_PTR_RDONLY)	/* private name: its absence is checked */
		snprintf(r->name, BELUGA_NAME_MAX, "fz-ro-%d-%u", (int)getpid(), c->thread);
	r->size = fz_size(c);
	r->mode = modes[fz_rand(c, 7)];
	r->source_kind = fz_pct(c, 70) ? BELUGA_SOURCE_ANY : (uint32_t)fz_rand(c, 3);
	r->source_index = fz_pct(c, 80) ? -1 : (int32_t)fz_rand(c, c->env->nr_sources);
	if (p.must_fail) {
		switch (fz_rand(c, 11)) {
		case 0: r->flags |= 1U << (2 + fz_rand(c, 30)); p.what = "unknown flag"; break;
		case 1: FZ_BREAK(c, &p, r->__pad, "__pad"); break;
		case 2: FZ_BREAK(c, &p, r->fd, "fd"); break;
		case 3: FZ_BREAK(c, &p, r->id, "id"); break;
		case 4: FZ_BREAK(c, &p, r->reserved[fz_rand(c, 4)], "reserved"); break;
		case 5: r->mode |= 01000U << fz_rand(c, 20); p.what = "mode"; break;
		case 6: r->size = fz_pct(c, 50) ? 0 : r->size + FZ_PAGE * (1 + fz_rand(c, 511));
			p.what = "size"; break;
		case 7: r->source_kind = 3 + (uint32_t)fz_rand(c, 1000); p.what = "source_kind"; break;
		case 8: r->source_index = fz_pct(c, 50) ? -2 - (int32_t)fz_rand(c, 1000)
						       : (int32_t)(c->env->nr_sources + fz_rand(c, 100));
			p.what = "source_index"; break;
		default:
			r->flags &= ~BELUGA_CREATE_EPHEMERAL;
			if (!r->name[0])
				fz_name(c, r->name);
			fz_break_name(c, r->name);
			p.what = "name";
			break;
		}
	}
	fz_trail(c, "CREATE '%.20s' %lluM flags %#x mode %o kind %u idx %d %s %s", r->name,
		 (unsigned long long)(r->size >> 20), r->flags, r->mode, r->source_kind,
		 r->source_index, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_CREATE, fz_arg_ptr(c, r, sizeof(*r), p.ptr));
	fz_count(c, FZ_OP_CREATE, ret);
	fz_expect(c, "CREATE", ret, &p, true);
	if (p.ptr == FZ_PTR_RDONLY && ret < 0) {
		/* The failed copy-out must have rolled the region back. */
		struct beluga_region_stat st;

		memset(&st, 0, sizeof(st));
		memcpy(st.name, r->name, BELUGA_NAME_MAX);
		ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_STAT, &st);
		if (ret != -ENOENT && !(r->flags & BELUGA_CREATE_EPHEMERAL))
			fz_violation(c, "CREATE '%s' failed on copy-out but the region exists (STAT %ld)",
				     r->name, ret);
		return;
	}
	if (ret || p.ptr != FZ_PTR_GOOD)
		return;
	if (!r->id || fz_kernel_like(r->id) || !fz_zero(r->reserved, sizeof(r->reserved)) || r->__pad)
		fz_violation(c, "CREATE: bad output id %llu", (unsigned long long)r->id);
	fz_check_new_fd(c, "CREATE", r->fd, r->flags & BELUGA_CREATE_CLOEXEC);
	fz_keep_fd(c, r->fd, false, r->size);
}

static void fz_open(struct fz_ctx *c)
{
	struct beluga_region_open *o = fz_arg_buf(c, sizeof(*o));
	struct fz_plan p = fz_plan(c);
	long ret;

	fz_name(c, o->name);
	o->flags = (uint32_t)fz_rand(c, 4);	/* RDONLY, CLOEXEC */
	if (p.must_fail) {
		switch (fz_rand(c, 5)) {
		case 0: o->flags |= 1U << (2 + fz_rand(c, 30)); p.what = "unknown flag"; break;
		case 1: FZ_BREAK(c, &p, o->fd, "fd"); break;
		case 2: FZ_BREAK(c, &p, o->id, "id"); break;
		case 3: FZ_BREAK(c, &p, o->reserved[fz_rand(c, 4)], "reserved"); break;
		default: fz_break_name(c, o->name); p.what = "name"; break;
		}
	}
	fz_trail(c, "OPEN '%.20s' flags %#x %s %s", o->name, o->flags, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_OPEN, fz_arg_ptr(c, o, sizeof(*o), p.ptr));
	fz_count(c, FZ_OP_OPEN, ret);
	fz_expect(c, "OPEN", ret, &p, true);
	if (ret || p.ptr != FZ_PTR_GOOD)
		return;
	if (!o->id || fz_kernel_like(o->id) || !fz_zero(o->reserved, sizeof(o->reserved)))
		fz_violation(c, "OPEN: bad output id %llu", (unsigned long long)o->id);
	fz_check_new_fd(c, "OPEN", o->fd, o->flags & BELUGA_OPEN_CLOEXEC);
	fz_keep_fd(c, o->fd, o->flags & BELUGA_OPEN_RDONLY, 0);
}

static void fz_destroy(struct fz_ctx *c)
{
	struct beluga_region_name *n = fz_arg_buf(c, sizeof(*n));
	struct fz_plan p = fz_plan(c);
	long ret;

	fz_name(c, n->name);
	if (p.must_fail) {
		switch (fz_rand(c, 4)) {
		case 0: FZ_BREAK(c, &p, n->flags, "flags"); break;
		case 1: FZ_BREAK(c, &p, n->__pad, "__pad"); break;
		case 2: FZ_BREAK(c, &p, n->reserved[fz_rand(c, 4)], "reserved"); break;
		default: fz_break_name(c, n->name); p.what = "name"; break;
		}
	}
	if (p.ptr == FZ_PTR_RDONLY)	/* _IOW: a read-only argument is fine */
		p.ptr = FZ_PTR_GOOD;
	fz_trail(c, "DESTROY '%.20s' %s %s", n->name, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_DESTROY, fz_arg_ptr(c, n, sizeof(*n), p.ptr));
	fz_count(c, FZ_OP_DESTROY, ret);
	fz_expect(c, "DESTROY", ret, &p, false);
}

static void fz_stat(struct fz_ctx *c)
{
	struct beluga_region_stat *st = fz_arg_buf(c, sizeof(*st));
	struct fz_plan p = fz_plan(c);
	long ret;

	fz_name(c, st->name);
	if (p.must_fail) {
		if (fz_pct(c, 70)) {
			((uint8_t *)st)[BELUGA_NAME_MAX + fz_rand(c, sizeof(*st) - BELUGA_NAME_MAX)] =
				(uint8_t)(1 + fz_rand(c, 255));
			p.what = "output field";
		} else {
			fz_break_name(c, st->name);
			p.what = "name";
		}
	}
	fz_trail(c, "STAT '%.20s' %s %s", st->name, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_STAT, fz_arg_ptr(c, st, sizeof(*st), p.ptr));
	fz_count(c, FZ_OP_STAT, ret);
	fz_expect(c, "STAT", ret, &p, true);
	if (!ret && p.ptr == FZ_PTR_GOOD)
		fz_check_stat(c, "STAT", st);
}

static void fz_list(struct fz_ctx *c)
{
	struct beluga_region_list *l = fz_arg_buf(c, sizeof(*l));
	struct beluga_region_stat *e = (struct beluga_region_stat *)c->big;
	uint32_t max = (uint32_t)(c->big_len / sizeof(*e)), i, n;
	struct fz_plan p = fz_plan(c);
	bool bad_entries = false;
	long ret;

	l->capacity = fz_pct(c, 20) ? 0 : (uint32_t)fz_rand(c, max + 1);
	l->entries = (uintptr_t)e;
	if (fz_pct(c, 8) && !p.must_fail) {
		l->entries = fz_bad_uptr(c);
		bad_entries = true;
	}
	if (p.must_fail) {
		switch (fz_rand(c, 5)) {
		case 0: FZ_BREAK(c, &p, l->flags, "flags"); break;
		case 1: FZ_BREAK(c, &p, l->count, "count"); break;
		case 2: FZ_BREAK(c, &p, l->__pad, "__pad"); break;
		case 3: FZ_BREAK(c, &p, l->reserved[fz_rand(c, 4)], "reserved"); break;
		default: l->entries = 0; l->capacity = 1 + (uint32_t)fz_rand(c, max);
			p.what = "capacity with NULL entries"; break;
		}
	}
	fz_trail(c, "LIST cap %u entries %#llx %s %s", l->capacity,
		 (unsigned long long)l->entries, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_LIST, fz_arg_ptr(c, l, sizeof(*l), p.ptr));
	fz_count(c, FZ_OP_LIST, ret);
	fz_expect(c, "LIST", ret, &p, true);
	if (ret || p.ptr != FZ_PTR_GOOD || bad_entries)
		return;
	n = l->count < l->capacity ? l->count : l->capacity;
	for (i = 0; i < n; i++) {
		if (!e[i].id)
			break;	/* regions freed between the count and the snapshot */
		fz_check_stat(c, "LIST", &e[i]);
		if (i && e[i].id <= e[i - 1].id)
			fz_violation(c, "LIST: ids not ascending at %u", i);
	}
}

static void fz_setattr(struct fz_ctx *c)
{
	struct beluga_region_setattr *s = fz_arg_buf(c, sizeof(*s));
	struct fz_plan p = fz_plan(c);
	bool ids_ok;
	long ret;

	fz_name(c, s->name);
	s->flags = 1 + (uint32_t)fz_rand(c, 7);
	if (s->flags & BELUGA_SETATTR_MODE)
		s->mode = (uint32_t)fz_rand(c, 01000);
	if (s->flags & BELUGA_SETATTR_UID)
		s->uid = fz_uids[fz_rand(c, 4)];
	if (s->flags & BELUGA_SETATTR_GID)
		s->gid = fz_uids[fz_rand(c, 4)];
	ids_ok = true;
	if (p.must_fail) {
		switch (fz_rand(c, 6)) {
		case 0: s->flags = fz_pct(c, 50) ? 0 : s->flags | 8U << fz_rand(c, 28);
			p.what = "flags"; break;
		case 1: s->flags &= ~BELUGA_SETATTR_MODE; s->flags |= s->flags ? 0 : BELUGA_SETATTR_UID;
			FZ_BREAK(c, &p, s->mode, "mode without its flag"); break;
		case 2: s->flags |= BELUGA_SETATTR_MODE; s->mode = 01000 + (uint32_t)fz_rand(c, 100000);
			p.what = "mode > 0777"; break;
		case 3: FZ_BREAK(c, &p, s->reserved[fz_rand(c, 4)], "reserved"); break;
		case 4: s->flags &= ~BELUGA_SETATTR_GID; s->flags |= s->flags ? 0 : BELUGA_SETATTR_MODE;
			FZ_BREAK(c, &p, s->gid, "gid without its flag"); break;
		default: fz_break_name(c, s->name); p.what = "name"; break;
		}
	}
	if (p.ptr == FZ_PTR_RDONLY)
		p.ptr = FZ_PTR_GOOD;
	fz_trail(c, "SETATTR '%.20s' flags %#x mode %o uid %u gid %u %s %s", s->name, s->flags,
		 s->mode, s->uid, s->gid, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_REGION_SETATTR, fz_arg_ptr(c, s, sizeof(*s), p.ptr));
	fz_count(c, FZ_OP_SETATTR, ret);
	fz_expect(c, "SETATTR", ret, &p, false);
	/* Only CAP_SYS_ADMIN changes owners: checked before the name is looked up. */
	if (c->env->unpriv && !p.must_fail && p.ptr == FZ_PTR_GOOD && ids_ok &&
	    (s->flags & (BELUGA_SETATTR_UID | BELUGA_SETATTR_GID)) && ret != -EPERM)
		fz_violation(c, "SETATTR owner change by an unprivileged user: got %ld, want -EPERM", ret);
}

static void fz_quota(struct fz_ctx *c, bool set)
{
	struct beluga_quota *q = fz_arg_buf(c, sizeof(*q));
	struct fz_plan p = fz_plan(c);
	const char *cmd = set ? "QUOTA_SET" : "QUOTA_GET";
	long ret;

	/* SET never targets root or nobody: the tests around us rely on them. */
	q->uid = set ? fz_uids[2 + fz_rand(c, 3)] : fz_uids[fz_rand(c, 5)];
	if (set) {
		q->flags = 1 + (uint32_t)fz_rand(c, 3);
		if (q->flags & BELUGA_QUOTA_SET_BYTES)
			q->max_bytes = fz_pct(c, 50) ? 0 : (1 + fz_rand(c, 64)) * FZ_CHUNK;
		if (q->flags & BELUGA_QUOTA_SET_REGIONS)
			q->max_regions = fz_pct(c, 50) ? 0 : 1 + (uint32_t)fz_rand(c, 16);
	}
	if (p.must_fail) {
		switch (fz_rand(c, set ? 6 : 5)) {
		case 0: if (set) { q->flags = fz_pct(c, 50) ? 0 : q->flags | 4U << fz_rand(c, 29);
				   p.what = "flags"; }
			else FZ_BREAK(c, &p, q->flags, "flags");
			break;
		case 1: FZ_BREAK(c, &p, q->used_bytes, "used_bytes"); break;
		case 2: FZ_BREAK(c, &p, q->used_regions, "used_regions"); break;
		case 3: FZ_BREAK(c, &p, q->reserved[fz_rand(c, 4)], "reserved"); break;
		case 4: if (set) { q->flags = BELUGA_QUOTA_SET_REGIONS;
				   FZ_BREAK(c, &p, q->max_bytes, "max_bytes without its flag"); }
			else FZ_BREAK(c, &p, q->max_bytes, "max_bytes");
			break;
		default: q->flags = BELUGA_QUOTA_SET_BYTES;
			FZ_BREAK(c, &p, q->max_regions, "max_regions without its flag"); break;
		}
	}
	fz_trail(c, "%s uid %u flags %#x max %llu/%u %s %s", cmd, q->uid, q->flags,
		 (unsigned long long)q->max_bytes, q->max_regions, p.what, fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, set ? BELUGA_IOC_QUOTA_SET : BELUGA_IOC_QUOTA_GET,
		       fz_arg_ptr(c, q, sizeof(*q), p.ptr));
	fz_count(c, set ? FZ_OP_QUOTA_SET : FZ_OP_QUOTA_GET, ret);
	fz_expect(c, cmd, ret, &p, true);
	if (p.must_fail || p.ptr != FZ_PTR_GOOD)
		return;
	if (q->uid == 0xffffffffU) {
		if (ret != -EINVAL)
			fz_violation(c, "%s of uid -1: got %ld, want -EINVAL", cmd, ret);
	} else if (set && c->env->unpriv) {
		if (ret != -EPERM)
			fz_violation(c, "QUOTA_SET by an unprivileged user: got %ld, want -EPERM", ret);
	} else if (!ret && (q->used_regions > 1000000 || fz_kernel_like(q->used_bytes) ||
			    fz_kernel_like(q->max_bytes) || !fz_zero(q->reserved, sizeof(q->reserved)))) {
		fz_violation(c, "%s uid %u: odd result used %llu/%u", cmd, q->uid,
			     (unsigned long long)q->used_bytes, q->used_regions);
	}
}

/*
 * SHARED_DEFINE (1.2), never a request the driver would grant: the pool
 * checks count every chunk, and a shared region would take a fixed extent
 * for the rest of the run.  A broken rule is EINVAL for anyone; an
 * unprivileged process with a valid request gets EPERM.
 */
static void fz_shared(struct fz_ctx *c)
{
	struct beluga_shared_define *s = fz_arg_buf(c, sizeof(*s));
	struct fz_plan p = fz_plan(c);
	long ret;

	snprintf(s->name, sizeof(s->name), "fz-shared");
	s->size = FZ_CHUNK;
	s->mode = 0600;
	s->source_index = (uint32_t)fz_rand(c, c->env->nr_sources);
	if (!c->env->unpriv && !p.must_fail) {
		p.must_fail = true;
		p.ptr = FZ_PTR_GOOD;
	}
	if (p.must_fail) {
		switch (fz_rand(c, 4)) {
		case 0: s->flags |= 2U << fz_rand(c, 31); p.what = "flags"; break;
		case 1: FZ_BREAK(c, &p, s->fd, "fd"); break;
		case 2: FZ_BREAK(c, &p, s->id, "id"); break;
		default: FZ_BREAK(c, &p, s->reserved[fz_rand(c, 4)], "reserved"); break;
		}
	}
	fz_trail(c, "SHARED_DEFINE source %u %s %s", s->source_index, p.what,
		 fz_ptr_name(p.ptr));
	ret = fz_ioctl(c->dev, BELUGA_IOC_SHARED_DEFINE, fz_arg_ptr(c, s, sizeof(*s), p.ptr));
	fz_count(c, FZ_OP_SHARED_DEFINE, ret);
	fz_expect(c, "SHARED_DEFINE", ret, &p, true);
	if (!p.must_fail && p.ptr == FZ_PTR_GOOD && ret != -EPERM)
		fz_violation(c, "SHARED_DEFINE by an unprivileged user: got %ld, want -EPERM", ret);
}

/* A command with Beluga's magic that is not one of the device's. */
static void fz_dev_unknown(struct fz_ctx *c)
{
	static const unsigned long region_cmds[] = {
		BELUGA_IOC_REGION_FD_STAT, BELUGA_IOC_REGION_LAYOUT,
		BELUGA_IOC_GPU_REGISTER, BELUGA_IOC_GPU_UNREGISTER,
	};
	static const unsigned long known[] = {
		BELUGA_IOC_INFO, BELUGA_IOC_SOURCE_INFO, BELUGA_IOC_REGION_CREATE,
		BELUGA_IOC_REGION_OPEN, BELUGA_IOC_REGION_DESTROY, BELUGA_IOC_REGION_STAT,
		BELUGA_IOC_REGION_LIST, BELUGA_IOC_REGION_SETATTR, BELUGA_IOC_QUOTA_GET,
		BELUGA_IOC_QUOTA_SET, BELUGA_IOC_SHARED_DEFINE,
		/* Never by chance: they change the pool's sources (root). */
		BELUGA_IOC_SOURCE_ADD, BELUGA_IOC_SOURCE_REMOVE,
	};
	unsigned long cmd;
	unsigned int i;
	long ret;

	if (fz_pct(c, 30)) {
		cmd = region_cmds[fz_rand(c, 4)];
	} else {
		do {
			cmd = _IOC(fz_rand(c, 4), BELUGA_IOC_MAGIC, fz_rand(c, 256),
				   fz_pct(c, 50) ? fz_rand(c, 256) : fz_rand(c, _IOC_SIZEMASK + 1));
			for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
				if (cmd == known[i])
					cmd = 0;
		} while (!cmd);
	}
	fz_trail(c, "dev ioctl unknown %#lx", cmd);
	ret = fz_ioctl(c->dev, cmd, fz_pct(c, 50) ? (void *)c->page : (void *)(uintptr_t)fz_next(&c->rng));
	fz_count(c, FZ_OP_DEV_UNKNOWN, ret);
	if (ret != -ENOTTY)
		fz_violation(c, "unknown device command %#lx: got %ld, want -ENOTTY", cmd, ret);
}

void fz_dev_op(struct fz_ctx *c)
{
	unsigned int r = (unsigned int)fz_rand(c, 100);

	if (r < 22)
		fz_create(c);
	else if (r < 36)
		fz_open(c);
	else if (r < 50)
		fz_destroy(c);
	else if (r < 57)
		fz_stat(c);
	else if (r < 64)
		fz_list(c);
	else if (r < 72)
		fz_setattr(c);
	else if (r < 78)
		fz_info(c);
	else if (r < 84)
		fz_source_info(c);
	else if (r < 89)
		fz_quota(c, false);
	else if (r < 93)
		fz_quota(c, true);
	else if (r < 95)
		fz_shared(c);
	else
		fz_dev_unknown(c);
}
