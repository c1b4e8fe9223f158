// SPDX-License-Identifier: Apache-2.0
/*
 * fz_rfd.c - ioctls on region file descriptors, and the other syscalls a
 * region fd (or the device) may see: fstat, read/write, ftruncate, fchmod,
 * fallocate, lseek, fsync, flock, fcntl, re-open and exec via /proc.
 *
 * Rules checked: the same per-command ones as fz_dev.c (EINVAL for a broken
 * ABI rule, EFAULT for bad pointers), ENOTTY for unknown commands and for
 * device commands on a region fd, LAYOUT/FD_STAT results consistent, and a
 * region fd can never be re-opened or executed through /proc.
 */
#define _GNU_SOURCE
#include "fz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int fz_pick_fd(struct fz_ctx *c, struct fz_fd **slot)
{
	unsigned int i, start = (unsigned int)fz_rand(c, FZ_MAX_FDS);

	*slot = NULL;
	if (fz_pct(c, 3))
		return fz_pct(c, 50) ? 1000 + (int)fz_rand(c, 1000) : -1;	/* EBADF */
	for (i = 0; i < FZ_MAX_FDS; i++) {
		struct fz_fd *f = &c->fds[(start + i) % FZ_MAX_FDS];

		if (f->fd >= 0) {
			*slot = f;
			return f->fd;
		}
	}
	return -1;
}

static bool fz_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

/* EINVAL for a broken rule, EFAULT for a bad pointer, EBADF for a bad fd. */
static void fz_rfd_expect(struct fz_ctx *c, const char *cmd, long ret, int fd,
			  struct fz_fd *slot, bool must_fail, enum fz_ptr ptr, bool writes)
{
	if (!slot) {
		if (ret != -EBADF && fd >= 1000 && fd < 2000)
			return;	/* may be an fd some other code opened: no rule */
		if (ret != -EBADF && fd < 0)
			fz_violation(c, "%s on fd %d: got %ld, want -EBADF", cmd, fd, ret);
		return;
	}
	if (ret == -EBADF || ret == -ENOTTY)
		return;	/* another thread closed or replaced the fd */
	if (must_fail && ret != -EINVAL)
		fz_violation(c, "%s with a broken field: got %ld, want -EINVAL", cmd, ret);
	else if (!must_fail && ptr >= FZ_PTR_NULL && ptr <= FZ_PTR_STRADDLE && ret != -EFAULT)
		fz_violation(c, "%s with a %s argument: got %ld, want -EFAULT", cmd,
			     fz_ptr_name(ptr), ret);
	else if (!must_fail && ptr == FZ_PTR_RDONLY && writes && ret >= 0)
		fz_violation(c, "%s with a read-only argument succeeded", cmd);
}

static void fz_fd_stat(struct fz_ctx *c)
{
	struct beluga_region_stat *st = fz_arg_buf(c, sizeof(*st));
	bool must_fail = fz_pct(c, 20);
	enum fz_ptr ptr = must_fail ? FZ_PTR_GOOD : fz_pick_ptr(c, 15);
	struct fz_fd *slot;
	int fd = fz_pick_fd(c, &slot);
	long ret;

	if (must_fail)
		((uint8_t *)st)[fz_rand(c, sizeof(*st))] = (uint8_t)(1 + fz_rand(c, 255));
	fz_trail(c, "FD_STAT fd %d%s %s", fd, must_fail ? " non-zero input" : "", fz_ptr_name(ptr));
	ret = fz_ioctl(fd, BELUGA_IOC_REGION_FD_STAT, fz_arg_ptr(c, st, sizeof(*st), ptr));
	fz_count(c, FZ_OP_FD_STAT, ret);
	fz_rfd_expect(c, "FD_STAT", ret, fd, slot, must_fail, ptr, true);
	if (ret || ptr != FZ_PTR_GOOD || must_fail || !slot)
		return;
	if (st->size != (uint64_t)st->nr_chunks * FZ_CHUNK || !st->id || st->mode > 0777 ||
	    st->__pad || !fz_zero(st->reserved, sizeof(st->reserved)) || !st->open_count ||
	    (slot->size && st->size != slot->size))
		fz_violation(c, "FD_STAT: inconsistent: id %llu size %llu (fd had %llu) chunks %u open %u",
			     (unsigned long long)st->id, (unsigned long long)st->size,
			     (unsigned long long)slot->size, st->nr_chunks, st->open_count);
}

static void fz_layout(struct fz_ctx *c)
{
	struct beluga_region_layout *l = fz_arg_buf(c, sizeof(*l));
	int32_t *nodes = (int32_t *)c->big;
	uint32_t max = (uint32_t)(c->big_len / sizeof(*nodes)), i, n;
	bool must_fail = fz_pct(c, 20), bad_nodes = false;
	enum fz_ptr ptr = must_fail ? FZ_PTR_GOOD : fz_pick_ptr(c, 15);
	struct fz_fd *slot;
	int fd = fz_pick_fd(c, &slot);
	long ret;

	l->nodes = (uintptr_t)nodes;
	l->capacity = fz_pct(c, 10) ? 0 : (uint32_t)fz_rand(c, 64);
	memset(nodes, 0x7f, 64 * sizeof(*nodes));
	if (!must_fail && fz_pct(c, 8)) {
		l->nodes = fz_bad_uptr(c);
		l->capacity = 1 + (uint32_t)fz_rand(c, max);
		bad_nodes = true;
	}
	if (must_fail) {
		switch (fz_rand(c, 6)) {
		case 0: l->flags = 1 + (uint32_t)fz_rand(c, 0xffffffffU); break;
		case 1: l->nr_chunks = 1 + (uint32_t)fz_rand(c, 1000); break;
		case 2: l->__pad = 1; break;
		case 3: l->chunk_size = FZ_CHUNK; break;
		case 4: l->reserved[fz_rand(c, 4)] = fz_next(&c->rng) | 1; break;
		default: l->nodes = 0; l->capacity = 1 + (uint32_t)fz_rand(c, 100); break;
		}
	}
	fz_trail(c, "LAYOUT fd %d cap %u nodes %#llx%s %s", fd, l->capacity,
		 (unsigned long long)l->nodes, must_fail ? " broken" : "", fz_ptr_name(ptr));
	ret = fz_ioctl(fd, BELUGA_IOC_REGION_LAYOUT, fz_arg_ptr(c, l, sizeof(*l), ptr));
	fz_count(c, FZ_OP_LAYOUT, ret);
	fz_rfd_expect(c, "LAYOUT", ret, fd, slot, must_fail, ptr, true);
	if (bad_nodes && slot && !must_fail && ptr == FZ_PTR_GOOD && ret == 0 &&
	    l->nodes != (uintptr_t)c->guard - 4)
		fz_violation(c, "LAYOUT with a bad nodes pointer %#llx succeeded",
			     (unsigned long long)l->nodes);
	if (ret || ptr != FZ_PTR_GOOD || must_fail || bad_nodes || !slot)
		return;
	n = l->capacity < l->nr_chunks ? l->capacity : l->nr_chunks;
	if (l->chunk_size != FZ_CHUNK || !l->nr_chunks || l->__pad || l->flags ||
	    (slot->size && (uint64_t)l->nr_chunks * FZ_CHUNK != slot->size))
		fz_violation(c, "LAYOUT: nr_chunks %u chunk_size %llu", l->nr_chunks,
			     (unsigned long long)l->chunk_size);
	for (i = 0; i < n; i++)
		if (nodes[i] < 0 || nodes[i] > 1024)
			fz_violation(c, "LAYOUT: chunk %u on node %d", i, nodes[i]);
	if (n < 64 && nodes[n] != 0x7f7f7f7f)
		fz_violation(c, "LAYOUT wrote past min(capacity, nr_chunks) = %u", n);
}

static void fz_pci_addr(struct fz_ctx *c, uint32_t *domain, uint32_t *bdf)
{
	if (c->env->nr_pci && fz_pct(c, 85)) {
		unsigned int i = (unsigned int)fz_rand(c, c->env->nr_pci);

		*domain = c->env->pci[i][0];
		*bdf = c->env->pci[i][1];
	} else {
		*domain = (uint32_t)fz_rand(c, 2);
		*bdf = (uint32_t)fz_rand(c, 0x10000);
	}
}

static void fz_gpu_register(struct fz_ctx *c)
{
	struct beluga_gpu_register *g = fz_arg_buf(c, sizeof(*g));
	int32_t *nodes = (int32_t *)c->big;
	bool must_fail = fz_pct(c, 20), bad_nodes = false;
	enum fz_ptr ptr = must_fail ? FZ_PTR_GOOD : fz_pick_ptr(c, 15);
	struct fz_fd *slot;
	int fd = fz_pick_fd(c, &slot);
	long ret;

	fz_pci_addr(c, &g->pci_domain, &g->pci_bdf);
	g->capacity = (uint32_t)fz_rand(c, 64);
	g->nodes = (uintptr_t)nodes;
	if (!must_fail && fz_pct(c, 8)) {
		g->nodes = fz_bad_uptr(c);
		g->capacity = 1 + (uint32_t)fz_rand(c, 64);
		bad_nodes = true;
	}
	if (must_fail) {
		switch (fz_rand(c, 11)) {
		case 0: g->flags = 1 + (uint32_t)fz_rand(c, 1000); break;
		case 1: g->gpu_node = 1 + (int32_t)fz_rand(c, 1000); break;
		case 2: g->socket = 1 + (uint32_t)fz_rand(c, 3); break;
		case 3: g->nr_chunks = 1; break;
		case 4: g->registrations = 1; break;
		case 5: g->chunk_size = FZ_CHUNK; break;
		case 6: g->max_register_bytes = 1; break;
		case 7: g->reserved[fz_rand(c, 4)] = 1; break;
		case 8: g->nodes = 0; g->capacity = 1 + (uint32_t)fz_rand(c, 10); break;
		case 9: g->pci_domain = 0x10000 + (uint32_t)fz_rand(c, 0xfff0000); break;
		default: g->pci_bdf = 0x10000 + (uint32_t)fz_rand(c, 0xfff0000); break;
		}
	}
	fz_trail(c, "GPU_REGISTER fd %d pci %04x:%02x:%02x.%x cap %u%s %s", fd, g->pci_domain,
		 g->pci_bdf >> 8, (g->pci_bdf >> 3) & 31, g->pci_bdf & 7, g->capacity,
		 must_fail ? " broken" : "", fz_ptr_name(ptr));
	ret = fz_ioctl(fd, BELUGA_IOC_GPU_REGISTER, fz_arg_ptr(c, g, sizeof(*g), ptr));
	fz_count(c, FZ_OP_GPU_REGISTER, ret);
	fz_rfd_expect(c, "GPU_REGISTER", ret, fd, slot, must_fail, ptr, true);
	if (ret || ptr != FZ_PTR_GOOD || must_fail || bad_nodes || !slot)
		return;
	if (!g->nr_chunks || g->chunk_size != FZ_CHUNK || !g->registrations ||
	    g->socket > BELUGA_GPU_SOCKET_MIXED || g->gpu_node < -1 ||
	    !g->max_register_bytes || fz_kernel_like(g->max_register_bytes) ||
	    (slot->size && (uint64_t)g->nr_chunks * FZ_CHUNK != slot->size) ||
	    !fz_zero(g->reserved, sizeof(g->reserved)))
		fz_violation(c, "GPU_REGISTER: odd result chunks %u regs %u socket %u node %d",
			     g->nr_chunks, g->registrations, g->socket, g->gpu_node);
}

static void fz_gpu_unregister(struct fz_ctx *c)
{
	struct beluga_gpu_unregister *u = fz_arg_buf(c, sizeof(*u));
	bool must_fail = fz_pct(c, 20);
	enum fz_ptr ptr = must_fail ? FZ_PTR_GOOD : fz_pick_ptr(c, 12);
	struct fz_fd *slot;
	int fd = fz_pick_fd(c, &slot);
	long ret;

	if (ptr == FZ_PTR_RDONLY)
		ptr = FZ_PTR_GOOD;	/* _IOW */
	fz_pci_addr(c, &u->pci_domain, &u->pci_bdf);
	if (must_fail) {
		switch (fz_rand(c, 5)) {
		case 0: u->flags = 1 + (uint32_t)fz_rand(c, 1000); break;
		case 1: u->__pad = 1; break;
		case 2: u->reserved[fz_rand(c, 4)] = 1; break;
		case 3: u->pci_domain = 0x10000; break;
		default: u->pci_bdf = 0x10000 + (uint32_t)fz_rand(c, 100); break;
		}
	}
	fz_trail(c, "GPU_UNREGISTER fd %d pci %04x:%04x%s %s", fd, u->pci_domain, u->pci_bdf,
		 must_fail ? " broken" : "", fz_ptr_name(ptr));
	ret = fz_ioctl(fd, BELUGA_IOC_GPU_UNREGISTER, fz_arg_ptr(c, u, sizeof(*u), ptr));
	fz_count(c, FZ_OP_GPU_UNREGISTER, ret);
	fz_rfd_expect(c, "GPU_UNREGISTER", ret, fd, slot, must_fail, ptr, false);
}

/* Device commands and unknown ones on a region fd: ENOTTY. */
static void fz_rfd_unknown(struct fz_ctx *c)
{
	static const unsigned long dev_cmds[] = {
		BELUGA_IOC_INFO, BELUGA_IOC_SOURCE_INFO, BELUGA_IOC_REGION_CREATE,
		BELUGA_IOC_REGION_OPEN, BELUGA_IOC_REGION_DESTROY, BELUGA_IOC_REGION_STAT,
		BELUGA_IOC_REGION_LIST, BELUGA_IOC_REGION_SETATTR, BELUGA_IOC_QUOTA_GET,
		BELUGA_IOC_QUOTA_SET,
	};
	struct fz_fd *slot;
	int fd = fz_pick_fd(c, &slot);
	unsigned long cmd;
	long ret;

	if (!slot)
		return;
	if (fz_pct(c, 40)) {
		cmd = dev_cmds[fz_rand(c, 10)];
	} else {
		cmd = _IOC(fz_rand(c, 4), BELUGA_IOC_MAGIC, 0x44 + fz_rand(c, 188), fz_rand(c, 512));
	}
	fz_trail(c, "region ioctl unknown %#lx on fd %d", cmd, fd);
	ret = fz_ioctl(fd, cmd, c->page);
	fz_count(c, FZ_OP_RFD_UNKNOWN, ret);
	if (ret != -ENOTTY && ret != -EBADF)
		fz_violation(c, "command %#lx on a region fd: got %ld, want -ENOTTY", cmd, ret);
}

/* The generic file syscalls; the driver gives region fds no read/write. */
void fz_fd_syscall(struct fz_ctx *c)
{
	struct fz_fd *slot;
	int fd = fz_pick_fd(c, &slot);
	unsigned int what = (unsigned int)fz_rand(c, 13);
	char path[64], buf[16];
	struct stat st;
	long ret = 0;

	if (!slot)
		return;
	fz_trail(c, "fd syscall %u on fd %d", what, fd);
	switch (what) {
	case 0:
		ret = fstat(fd, &st) ? -errno : 0;
		if (!ret && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
			fz_violation(c, "fstat of a region fd: mode %o", st.st_mode);
		break;
	case 1:
		ret = read(fd, buf, sizeof(buf)) < 0 ? -errno : 0;
		if (ret == 0)
			fz_violation(c, "read(2) of a region fd succeeded");
		break;
	case 2:
		ret = write(fd, buf, sizeof(buf)) < 0 ? -errno : 0;
		if (ret == 0)
			fz_violation(c, "write(2) to a region fd succeeded");
		break;
	case 3:
		ret = ftruncate(fd, (off_t)fz_rand(c, 4) * (off_t)FZ_CHUNK) ? -errno : 0;
		break;
	case 4:
		ret = fchmod(fd, (mode_t)fz_rand(c, 01000)) ? -errno : 0;
		break;
	case 5:
		ret = fallocate(fd, 0, 0, (off_t)FZ_CHUNK) ? -errno : 0;
		break;
	case 6:
		ret = lseek(fd, (off_t)fz_rand(c, 1 << 30), SEEK_SET) < 0 ? -errno : 0;
		break;
	case 7:
		ret = (fz_pct(c, 50) ? fsync(fd) : fdatasync(fd)) ? -errno : 0;
		break;
	case 8:
		ret = flock(fd, (fz_pct(c, 50) ? LOCK_SH : LOCK_EX) | LOCK_NB) ? -errno : 0;
		if (!ret)
			flock(fd, LOCK_UN);
		break;
	case 9:
		ret = fcntl(fd, F_SETFL, fz_pct(c, 50) ? O_NONBLOCK : O_APPEND) ? -errno : 0;
		break;
	case 10:	/* pseudo-fs inodes have no open(): never re-openable */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ret = open(path, fz_pct(c, 50) ? O_RDONLY : O_RDWR);
		if (ret >= 0) {
			close((int)ret);
			fz_violation(c, "a region fd was re-opened through %s", path);
		}
		ret = ret < 0 ? -errno : 0;
		break;
	case 11: {	/* nor executable */
		char *const argv[] = { "beluga-fuzz-exec", NULL };

		ret = syscall(SYS_execveat, fd, "", argv, argv, AT_EMPTY_PATH) ? -errno : 0;
		if (!ret)
			fz_violation(c, "execveat of a region fd returned 0");
		break;
	}
	default:
		ret = fchown(fd, (uid_t)-1, (gid_t)fz_rand(c, 2) * 65534) ? -errno : 0;
		break;
	}
	fz_count(c, FZ_OP_FD_SYSCALL, ret);
}

void fz_rfd_op(struct fz_ctx *c)
{
	unsigned int r = (unsigned int)fz_rand(c, 100);

	if (r < 20)
		fz_fd_stat(c);
	else if (r < 40)
		fz_layout(c);
	else if (r < 62)
		fz_gpu_register(c);
	else if (r < 78)
		fz_gpu_unregister(c);
	else if (r < 86)
		fz_rfd_unknown(c);
	else
		fz_fd_syscall(c);
}
