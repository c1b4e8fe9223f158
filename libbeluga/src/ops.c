// SPDX-License-Identifier: Apache-2.0
/*
 * Description: the default (real) system-call layer and its resolution.
 *
 * Every kernel call of the library goes through struct beluga_ops so tests
 * can inject any failure without mock globals in the production code.  The
 * wrappers here turn the libc convention (-1 and errno) into -errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gpu_ops.h"
#include "internal.h"

#define RET(expr) do { long r_ = (expr); return r_ < 0 ? -errno : r_; } while (0)

static int d_open(void *c, const char *p, int f, unsigned int m)
{ (void)c; RET(open(p, f, m)); }
static int d_openat(void *c, int d, const char *p, int f, unsigned int m)
{ (void)c; RET(openat(d, p, f, m)); }
static int d_close(void *c, int fd)
{ (void)c; RET(close(fd)); }
static int d_fcntl(void *c, int fd, int cmd, long arg)
{ (void)c; RET(fcntl(fd, cmd, arg)); }
static int d_ioctl(void *c, int fd, unsigned long req, void *arg)
{ (void)c; RET(ioctl(fd, req, arg)); }
static ssize_t d_read(void *c, int fd, void *buf, size_t len)
{ (void)c; RET(read(fd, buf, len)); }
static int d_munmap(void *c, void *a, size_t l)
{ (void)c; RET(munmap(a, l)); }
static int d_madvise(void *c, void *a, size_t l, int adv)
{ (void)c; RET(madvise(a, l, adv)); }
static int d_mlock(void *c, const void *a, size_t l)
{ (void)c; RET(mlock(a, l)); }
static int d_fstat(void *c, int fd, struct stat *st)
{ (void)c; RET(fstat(fd, st)); }
static int d_fstatat(void *c, int d, const char *p, struct stat *st, int f)
{ (void)c; RET(fstatat(d, p, st, f)); }
static int d_ftruncate(void *c, int fd, int64_t len)
{ (void)c; RET(ftruncate(fd, len)); }
static int d_fchmod(void *c, int fd, unsigned int m)
{ (void)c; RET(fchmod(fd, m)); }
static int d_fchmodat(void *c, int d, const char *p, unsigned int m)
{ (void)c; RET(fchmodat(d, p, m, 0)); }
static int d_fchownat(void *c, int d, const char *p, uid_t u, gid_t g)
{ (void)c; RET(fchownat(d, p, u, g, AT_SYMLINK_NOFOLLOW)); }
static int d_mkdirat(void *c, int d, const char *p, unsigned int m)
{ (void)c; RET(mkdirat(d, p, m)); }
static int d_linkat(void *c, int od, const char *op, int nd, const char *np,
		    int f)
{ (void)c; RET(linkat(od, op, nd, np, f)); }
static int d_unlinkat(void *c, int d, const char *p, int f)
{ (void)c; RET(unlinkat(d, p, f)); }
static int d_flock(void *c, int fd, int op)
{ (void)c; RET(flock(fd, op)); }
static ssize_t d_getdents(void *c, int fd, void *buf, size_t len)
{ (void)c; RET(syscall(SYS_getdents64, fd, buf, len)); }
static ssize_t d_readlink(void *c, const char *p, char *buf, size_t len)
{ (void)c; RET(readlink(p, buf, len)); }
static ssize_t d_sendmsg(void *c, int fd, const struct msghdr *m, int f)
{ (void)c; RET(sendmsg(fd, m, f)); }
static ssize_t d_recvmsg(void *c, int fd, struct msghdr *m, int f)
{ (void)c; RET(recvmsg(fd, m, f)); }

static int d_mmap(void *c, void *addr, size_t len, int prot, int flags, int fd,
		  int64_t off, void **out)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	(void)c;
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

/* mbind/move_pages come from libnuma's numaif.h: thin, silent syscall wrappers. */
static int d_mbind(void *c, void *addr, size_t len, int mode,
		   const unsigned long *mask, unsigned long maxnode,
		   unsigned int flags)
{ (void)c; RET(mbind(addr, len, mode, mask, maxnode, flags)); }

static int d_move_pages(void *c, unsigned long count, void **pages, int *status)
{ (void)c; RET(move_pages(0, count, pages, NULL, status, 0)); }

static const struct beluga_ops default_ops = {
	.size = sizeof(struct beluga_ops),
	.open = d_open, .openat = d_openat, .close = d_close, .fcntl = d_fcntl,
	.ioctl = d_ioctl,
	.read = d_read, .mmap = d_mmap, .munmap = d_munmap,
	.madvise = d_madvise, .mlock = d_mlock, .mbind = d_mbind,
	.move_pages = d_move_pages, .fstat = d_fstat, .fstatat = d_fstatat,
	.ftruncate = d_ftruncate, .fchmod = d_fchmod, .fchmodat = d_fchmodat,
	.fchownat = d_fchownat, .mkdirat = d_mkdirat, .linkat = d_linkat,
	.unlinkat = d_unlinkat, .flock = d_flock, .getdents = d_getdents,
	.readlink = d_readlink, .sendmsg = d_sendmsg, .recvmsg = d_recvmsg,
	.gpu_count = beluga_cuda_count,
	.gpu_register = beluga_cuda_register,
	.gpu_unregister = beluga_cuda_unregister,
	.gpu_synchronize = beluga_cuda_synchronize,
	.gpu_device_pointer = beluga_cuda_device_pointer,
	.gpu_pci_id = beluga_cuda_pci_id,
};

const struct beluga_ops *beluga_default_ops(void)
{
	return &default_ops;
}

void beluga_ops_init(struct beluga_ops *ops)
{
	if (!ops)
		return;
	memset(ops, 0, sizeof(*ops));
	ops->size = sizeof(*ops);
}

/*
 * Fill @dst from the caller's @src: members beyond the caller's struct size
 * (an older caller) and NULL members get the real call.
 */
void beluga_ops_resolve(struct beluga_ops *dst, const struct beluga_ops *src)
{
	typedef void (*fn_t)(void);
	const size_t first = offsetof(struct beluga_ops, open);
	size_t known = src ? src->size : 0;
	fn_t *d = (fn_t *)((char *)dst + first);
	const fn_t *def = (const fn_t *)((const char *)&default_ops + first);
	size_t n = (sizeof(*dst) - first) / sizeof(fn_t);

	memset(dst, 0, sizeof(*dst));
	if (src && known >= offsetof(struct beluga_ops, ctx) + sizeof(void *))
		dst->ctx = src->ctx;
	if (known > sizeof(*dst))
		known = sizeof(*dst);
	if (src && known > first)
		memcpy(d, (const char *)src + first, known - first);
	dst->size = sizeof(*dst);
	for (size_t i = 0; i < n; i++)
		if (!d[i])
			d[i] = def[i];
}
