// SPDX-License-Identifier: Apache-2.0
/*
 * fz_mm.c - memory-management sequences on region mappings, and process
 * events: mmap (kernel-chosen and MAP_FIXED into the arena), munmap (whole
 * and partial), mprotect, madvise (every advice that is not a root-only
 * poisoning one), mremap (shrink, move, misaligned move), msync, mlock,
 * touches, vmsplice into a pipe (page references that outlive mappings),
 * close, dup, SCM_RIGHTS, and fork with a child that is SIGKILLed at a
 * random moment.
 *
 * mmap rules checked: MAP_PRIVATE -> EINVAL, beyond the region -> EINVAL,
 * PROT_WRITE on a read-only fd -> EACCES, MAP_FIXED not congruent to the
 * offset modulo 2 MiB -> EINVAL, and a kernel-chosen address is congruent.
 */
#define _GNU_SOURCE
#include "fz.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static struct fz_map *fz_pick_map(struct fz_ctx *c)
{
	unsigned int i, start = (unsigned int)fz_rand(c, FZ_MAX_MAPS);

	for (i = 0; i < FZ_MAX_MAPS; i++) {
		struct fz_map *m = &c->maps[(start + i) % FZ_MAX_MAPS];

		if (m->addr)
			return m;
	}
	return NULL;
}

/* Forget a mapping slot, unmapping (or re-reserving, in the arena) it. */
static void fz_drop_map(struct fz_ctx *c, struct fz_map *m)
{
	if (m->in_arena)
		fz_arena_release(c, m->addr, m->len);
	else
		munmap(m->addr, m->len);
	m->addr = NULL;
}

static void fz_keep_map(struct fz_ctx *c, uint8_t *addr, uint64_t len, int prot)
{
	unsigned int i, slot = (unsigned int)fz_rand(c, FZ_MAX_MAPS);

	for (i = 0; i < FZ_MAX_MAPS; i++) {
		if (!c->maps[i].addr) {
			slot = i;
			break;
		}
	}
	if (c->maps[slot].addr)
		fz_drop_map(c, &c->maps[slot]);
	c->maps[slot] = (struct fz_map){ .addr = addr, .len = len, .prot = prot,
					 .in_arena = fz_in_arena(c, addr) };
}

/* A region size for the fd: what we recorded, or FD_STAT's answer. */
static uint64_t fz_fd_size(struct fz_ctx *c, struct fz_fd *f)
{
	struct beluga_region_stat st;

	if (f->size)
		return f->size;
	memset(&st, 0, sizeof(st));
	if (!fz_ioctl(f->fd, BELUGA_IOC_REGION_FD_STAT, &st))
		f->size = st.size;
	(void)c;
	return f->size;
}

static void fz_mmap(struct fz_ctx *c)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE,
				     PROT_NONE, PROT_READ | PROT_EXEC };
	struct fz_fd *f;
	int fd = fz_pick_fd(c, &f), prot = prots[fz_rand(c, 5)], flags = MAP_SHARED;
	uint64_t size, len, off = 0;
	uint8_t *want = NULL, *p;
	const char *rule = NULL;
	long expect = 0;
	long ret;

	if (!f)
		return;
	size = fz_fd_size(c, f);
	if (!size)
		return;
	switch (fz_rand(c, 10)) {
	case 0: case 1: case 2: case 3: case 4:
		len = size;
		break;
	case 5: case 6: case 7:
		len = (1 + fz_rand(c, size / FZ_CHUNK)) * FZ_CHUNK;
		off = fz_rand(c, (size - len) / FZ_CHUNK + 1) * FZ_CHUNK;
		break;
	default:
		len = (1 + fz_rand(c, 1024)) * FZ_PAGE;
		off = fz_rand(c, size / FZ_PAGE + 2) * FZ_PAGE;
		break;
	}
	if (off + len > size) {
		rule = "beyond the region";
		expect = -EINVAL;
	}
	if (fz_pct(c, 8)) {
		flags = MAP_PRIVATE;
		rule = rule ? NULL : "MAP_PRIVATE";
		expect = -EINVAL;
	}
	if (len <= FZ_ARENA_BYTES / 2 && fz_pct(c, 25)) {
		want = fz_arena_addr(c, len) + (off & (FZ_CHUNK - 1));
		flags |= MAP_FIXED;
		if (fz_pct(c, 25)) {
			want += FZ_PAGE * (1 + fz_rand(c, 511));
			rule = rule ? NULL : "MAP_FIXED not congruent";
			expect = -EINVAL;
		}
	}
	/* The open mode, not the table's idea of it (fds arrive over sockets). */
	if ((prot & PROT_WRITE) && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY &&
	    (flags & MAP_SHARED)) {
		rule = rule ? NULL : "PROT_WRITE on a read-only fd";
		expect = -EACCES;
	}
	if (fz_pct(c, 10))
		flags |= MAP_POPULATE;
	fz_trail(c, "mmap fd %d len %#llx off %#llx prot %d flags %#x at %p%s%s", fd,
		 (unsigned long long)len, (unsigned long long)off, prot, flags, (void *)want,
		 rule ? " expecting failure: " : "", rule ? rule : "");
	p = mmap(want, len, prot, flags, fd, (off_t)off);
	ret = p == MAP_FAILED ? -errno : 0;
	fz_count(c, FZ_OP_MMAP, ret);
	if (rule && ret != expect)
		fz_violation(c, "mmap %s: got %ld, want %ld", rule, ret, expect);
	if (ret) {
		/* A MAP_FIXED failing in ->mmap has already unmapped the target. */
		if (want)
			fz_arena_release(c, (uint8_t *)((uintptr_t)want & ~(FZ_PAGE - 1)), len);
		return;
	}
	if (!rule && !want && ((uintptr_t)p - off) % FZ_CHUNK)
		fz_violation(c, "mmap: kernel-chosen address %p not congruent to offset %#llx",
			     (void *)p, (unsigned long long)off);
	if (rule) {
		munmap(p, len);
		return;
	}
	fz_keep_map(c, p, len, prot);
}

static void fz_munmap(struct fz_ctx *c)
{
	struct fz_map *m = fz_pick_map(c);
	uint64_t pages, first, n;
	long ret;

	if (!m)
		return;
	if (fz_pct(c, 60)) {
		fz_trail(c, "munmap %p len %#llx", (void *)m->addr, (unsigned long long)m->len);
		ret = m->in_arena ? 0 : (munmap(m->addr, m->len) ? -errno : 0);
		if (m->in_arena)
			fz_arena_release(c, m->addr, m->len);
		m->addr = NULL;
	} else {	/* head, tail or middle: splits the VMA, may split a PMD */
		pages = m->len / FZ_PAGE;
		first = fz_rand(c, pages);
		n = 1 + fz_rand(c, pages - first);
		fz_trail(c, "munmap part %p+%#llx len %#llx", (void *)m->addr,
			 (unsigned long long)(first * FZ_PAGE), (unsigned long long)(n * FZ_PAGE));
		if (m->in_arena) {
			fz_arena_release(c, m->addr + first * FZ_PAGE, n * FZ_PAGE);
			ret = 0;
		} else {
			ret = munmap(m->addr + first * FZ_PAGE, n * FZ_PAGE) ? -errno : 0;
		}
	}
	fz_count(c, FZ_OP_MUNMAP, ret);
}

/* A random page-aligned sub-range of @m. */
static void fz_subrange(struct fz_ctx *c, struct fz_map *m, uint8_t **p, uint64_t *len)
{
	uint64_t pages = m->len / FZ_PAGE, first;

	if (fz_pct(c, 50)) {
		*p = m->addr;
		*len = m->len;
		return;
	}
	first = fz_rand(c, pages);
	*p = m->addr + first * FZ_PAGE;
	*len = (1 + fz_rand(c, pages - first)) * FZ_PAGE;
}

static void fz_mprotect(struct fz_ctx *c)
{
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
				     PROT_WRITE, PROT_READ | PROT_EXEC };
	struct fz_map *m = fz_pick_map(c);
	int prot = prots[fz_rand(c, 5)];
	uint8_t *p;
	uint64_t len;
	long ret;

	if (!m)
		return;
	fz_subrange(c, m, &p, &len);
	fz_trail(c, "mprotect %p len %#llx prot %d", (void *)p, (unsigned long long)len, prot);
	ret = mprotect(p, len, prot) ? -errno : 0;
	fz_count(c, FZ_OP_MPROTECT, ret);
	if (!ret && p == m->addr && len == m->len)
		m->prot = prot;
}

static void fz_madvise(struct fz_ctx *c)
{
	/* Not MADV_HWPOISON/SOFT_OFFLINE: root-only page poisoning, by design fatal. */
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED,
		MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP,
		MADV_DODUMP, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
		MADV_REMOVE, MADV_FREE, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_WIPEONFORK,
		MADV_KEEPONFORK, MADV_COLLAPSE,
	};
	struct fz_map *m = fz_pick_map(c);
	int adv = advice[fz_rand(c, sizeof(advice) / sizeof(advice[0]))];
	uint8_t *p;
	uint64_t len;
	long ret;

	if (!m)
		return;
	fz_subrange(c, m, &p, &len);
	fz_trail(c, "madvise %p len %#llx advice %d", (void *)p, (unsigned long long)len, adv);
	ret = madvise(p, len, adv) ? -errno : 0;
	fz_count(c, FZ_OP_MADVISE, ret);
}

static void fz_mremap(struct fz_ctx *c)
{
	struct fz_map *m = fz_pick_map(c);
	uint64_t new_len;
	uint8_t *p, *want = NULL;
	int flags = 0;
	long ret;

	if (!m)
		return;
	switch (fz_rand(c, 4)) {
	case 0:		/* shrink in place */
		new_len = (1 + fz_rand(c, m->len / FZ_PAGE)) * FZ_PAGE;
		break;
	case 1:		/* grow: VM_DONTEXPAND refuses */
		new_len = m->len + FZ_CHUNK;
		flags = MREMAP_MAYMOVE;
		break;
	default:	/* move into the arena, congruent or not */
		new_len = m->len;
		if (new_len > FZ_ARENA_BYTES / 2)
			return;
		flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		want = fz_arena_addr(c, new_len);
		if (fz_pct(c, 40))
			want += FZ_PAGE * (1 + fz_rand(c, 511));
		break;
	}
	fz_trail(c, "mremap %p len %#llx -> %#llx flags %d to %p", (void *)m->addr,
		 (unsigned long long)m->len, (unsigned long long)new_len, flags, (void *)want);
	p = mremap(m->addr, m->len, new_len, flags, want);
	ret = p == MAP_FAILED ? -errno : 0;
	fz_count(c, FZ_OP_MREMAP, ret);
	if (ret) {
		if (want)	/* MREMAP_FIXED unmaps the target before it can fail */
			fz_arena_release(c, want, new_len);
		return;
	}
	if (p != m->addr && m->in_arena)
		fz_arena_release(c, m->addr, m->len);	/* the hole it left */
	else if (p == m->addr && new_len < m->len && m->in_arena)
		fz_arena_release(c, m->addr + new_len, m->len - new_len);
	m->addr = p;
	m->len = new_len;
	m->in_arena = fz_in_arena(c, p);
}

static void fz_msync_mlock(struct fz_ctx *c, bool lock)
{
	static const int sync_flags[] = { MS_SYNC, MS_ASYNC, MS_INVALIDATE, MS_SYNC | MS_INVALIDATE };
	struct fz_map *m = fz_pick_map(c);
	uint8_t *p;
	uint64_t len;
	long ret;

	if (!m)
		return;
	fz_subrange(c, m, &p, &len);
	if (lock) {
		fz_trail(c, "mlock %p len %#llx", (void *)p, (unsigned long long)len);
		ret = (fz_pct(c, 50) ? mlock(p, len) : munlock(p, len)) ? -errno : 0;
		fz_count(c, FZ_OP_MLOCK, ret);
	} else {
		fz_trail(c, "msync %p len %#llx", (void *)p, (unsigned long long)len);
		ret = msync(p, len, sync_flags[fz_rand(c, 4)]) ? -errno : 0;
		fz_count(c, FZ_OP_MSYNC, ret);
	}
}

static void fz_touch_op(struct fz_ctx *c)
{
	struct fz_map *m = fz_pick_map(c);
	unsigned int i, n = 1 + (unsigned int)fz_rand(c, 16);
	long ret = 0;

	if (!m)
		return;
	fz_trail(c, "touch %p len %#llx x%u", (void *)m->addr, (unsigned long long)m->len, n);
	for (i = 0; i < n && !ret; i++)
		ret = fz_touch(c, m->addr + fz_rand(c, m->len), (m->prot & PROT_WRITE) && fz_pct(c, 50));
	fz_count(c, FZ_OP_TOUCH, ret);
}

/* Pages spliced into a pipe hold references after munmap and destroy. */
static void fz_vmsplice(struct fz_ctx *c)
{
	struct fz_map *m = fz_pick_map(c);
	struct iovec iov;
	char drain[4096];
	long ret;

	if (fz_pct(c, 40)) {	/* drain: drop the references again */
		while (read(c->pipe[0], drain, sizeof(drain)) > 0)
			;
		return;
	}
	if (!m)
		return;
	iov.iov_base = m->addr + fz_rand(c, m->len / FZ_PAGE) * FZ_PAGE;
	iov.iov_len = FZ_PAGE * (1 + fz_rand(c, 4));
	if ((uint8_t *)iov.iov_base + iov.iov_len > m->addr + m->len)
		iov.iov_len = FZ_PAGE;
	fz_trail(c, "vmsplice %p len %#zx", iov.iov_base, iov.iov_len);
	/* The pipe's O_NONBLOCK does not count for vmsplice: ask explicitly. */
	ret = vmsplice(c->pipe[1], &iov, 1, SPLICE_F_NONBLOCK) < 0 ? -errno : 0;
	fz_count(c, FZ_OP_VMSPLICE, ret);
}

void fz_mm_op(struct fz_ctx *c)
{
	unsigned int r = (unsigned int)fz_rand(c, 100);

	if (r < 28)
		fz_mmap(c);
	else if (r < 42)
		fz_munmap(c);
	else if (r < 50)
		fz_mprotect(c);
	else if (r < 62)
		fz_madvise(c);
	else if (r < 70)
		fz_mremap(c);
	else if (r < 74)
		fz_msync_mlock(c, false);
	else if (r < 78)
		fz_msync_mlock(c, true);
	else if (r < 94)
		fz_touch_op(c);
	else
		fz_vmsplice(c);
}

/* Send a region fd to ourselves over a unix socket; keep the received copy. */
static void fz_pass_fd(struct fz_ctx *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct fz_fd *f;
	int fd = fz_pick_fd(c, &f), got = -1;
	char byte = 'b';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	long ret;

	if (!f)
		return;
	memset(u.buf, 0, sizeof(u.buf));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	fz_trail(c, "SCM_RIGHTS fd %d", fd);
	ret = sendmsg(c->sock[0], &msg, MSG_DONTWAIT) < 0 ? -errno : 0;
	if (!ret) {
		msg.msg_controllen = sizeof(u.buf);
		ret = recvmsg(c->sock[1], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0 ? -errno : 0;
		cm = CMSG_FIRSTHDR(&msg);
		if (!ret && cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	}
	fz_count(c, FZ_OP_PASS_FD, ret);
	/*
	 * Not necessarily the fd just sent: a forked child killed between its
	 * sendmsg and recvmsg leaves its message queued.  Size unknown (0).
	 */
	if (got >= 0)
		fz_keep_fd(c, got, false, 0);
}

/* The child of a fork: a few operations of its own, then exit or be killed. */
static void fz_fork(struct fz_ctx *c)
{
	struct timespec ts = { 0, 0 };
	pid_t pid;
	int status;

	if (c->child)
		return;
	fz_trail(c, "fork");
	pid = fork();
	if (pid < 0) {
		fz_count(c, FZ_OP_FORK, -errno);
		return;
	}
	if (!pid) {
		c->child = true;
		fz_run(c, 20 + fz_rand(c, 200));
		_exit(0);
	}
	fz_count(c, FZ_OP_FORK, 0);
	if (fz_pct(c, 60)) {
		/* A random moment, not a timing assertion: wherever it is, stop it. */
		ts.tv_nsec = (long)fz_rand(c, 3000000);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		__atomic_add_fetch(&c->env->sh->kills, 1, __ATOMIC_RELAXED);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		fz_violation(c, "forked child died of signal %d", WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status))
		fz_violation(c, "forked child exited %d", WEXITSTATUS(status));
}

void fz_proc_op(struct fz_ctx *c)
{
	unsigned int r = (unsigned int)fz_rand(c, 100);
	struct fz_fd *f;
	int fd;

	if (r < 35) {
		fd = fz_pick_fd(c, &f);
		if (!f)
			return;
		fz_trail(c, "close %d", fd);
		fz_count(c, FZ_OP_CLOSE, close(fd) ? -errno : 0);
		f->fd = -1;
	} else if (r < 55) {
		fd = fz_pick_fd(c, &f);
		if (!f)
			return;
		fz_trail(c, "dup %d", fd);
		fd = dup(fd);
		fz_count(c, FZ_OP_DUP, fd < 0 ? -errno : 0);
		if (fd >= 0)
			fz_keep_fd(c, fd, f->rdonly, f->size);
	} else if (r < 75) {
		fz_pass_fd(c);
	} else {
		fz_fork(c);
	}
}

/* The device fd: no mmap, no read or write. */
static void fz_dev_syscall(struct fz_ctx *c)
{
	char buf[8];
	void *p;
	long ret;

	switch (fz_rand(c, 3)) {
	case 0:
		fz_trail(c, "mmap /dev/beluga");
		p = mmap(NULL, FZ_CHUNK, PROT_READ, MAP_SHARED, c->dev, 0);
		ret = p == MAP_FAILED ? -errno : 0;
		if (!ret) {
			munmap(p, FZ_CHUNK);
			fz_violation(c, "mmap of /dev/beluga succeeded");
		}
		break;
	case 1:
		fz_trail(c, "read /dev/beluga");
		ret = read(c->dev, buf, sizeof(buf)) < 0 ? -errno : 0;
		break;
	default:
		fz_trail(c, "write /dev/beluga");
		ret = write(c->dev, buf, sizeof(buf)) < 0 ? -errno : 0;
		break;
	}
	fz_count(c, FZ_OP_DEV_SYSCALL, ret);
}

void fz_run(struct fz_ctx *c, uint64_t max_ops)
{
	uint64_t n;

	for (n = 0; (!max_ops || n < max_ops) && !fz_tick(c); n++) {
		unsigned int r = (unsigned int)fz_rand(c, 100);

		if (r < 45)
			fz_dev_op(c);
		else if (r < 60)
			fz_rfd_op(c);
		else if (r < 90)
			fz_mm_op(c);
		else if (r < 98)
			fz_proc_op(c);
		else
			fz_dev_syscall(c);
	}
}

void fz_release_all(struct fz_ctx *c)
{
	unsigned int i;

	for (i = 0; i < FZ_MAX_MAPS; i++)
		if (c->maps[i].addr)
			fz_drop_map(c, &c->maps[i]);
	for (i = 0; i < FZ_MAX_FDS; i++) {
		if (c->fds[i].fd >= 0)
			close(c->fds[i].fd);
		c->fds[i].fd = -1;
	}
}
