// SPDX-License-Identifier: Apache-2.0
/*
 * fz_mem.c - argument buffers, the MAP_FIXED arena and guarded touches.
 *
 * Argument page: one memfd page mapped twice, read-write and read-only,
 * with a PROT_NONE guard page after the read-write view.  Structures are
 * built at the end of the page so a pointer shifted by 8 bytes straddles
 * into the guard page (a partial copy_from_user), and the read-only view of
 * the same bytes makes every copy_to_user fail (the rollback paths).
 *
 * Arena: MAP_FIXED mappings go only into a PROT_NONE reservation made at
 * start, and leaving it means re-reserving (never munmap), so kernel-chosen
 * mappings, thread stacks and libc never land where a MAP_FIXED may strike.
 *
 * Touches of mappings other threads may have replaced or unmapped catch
 * SIGSEGV/SIGBUS with a per-thread sigjmp_buf.
 */
#define _GNU_SOURCE
#include "fz.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define FZ_BIG_BYTES (64 * 1024)
#define FZ_KERNEL_ADDR 0xffffffff81000000ULL

static __thread sigjmp_buf *fz_jmp;
static uint8_t *fz_arena_base;	/* per process (inherited by fork) */

static void fz_fault(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	char line[160];
	int n;

	if (fz_jmp)
		siglongjmp(*fz_jmp, 1);
	/*
	 * A fault outside a guarded touch is the fuzzer's own bug: say where
	 * (the instruction as an offset from fz_install_fault_handler, for
	 * addr2line) and die of the signal.
	 */
	n = snprintf(line, sizeof(line),
		     "beluga-fuzz: pid %d: fatal signal %d at address %p, ip fz_install_fault_handler%+lld\n",
		     (int)getpid(), sig, si->si_addr,
		     (long long)(uc->uc_mcontext.gregs[REG_RIP] - (uintptr_t)fz_install_fault_handler));
	if (write(STDOUT_FILENO, line, (size_t)n) < 0)
		n = 0;
	signal(sig, SIG_DFL);
	raise(sig);
}

void fz_install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fz_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

int fz_mem_proc_init(struct fz_ctx *proto)
{
	uint8_t *p = mmap(NULL, FZ_ARENA_BYTES + FZ_CHUNK, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	fz_arena_base = (uint8_t *)(((uintptr_t)p + FZ_CHUNK - 1) & ~(uintptr_t)(FZ_CHUNK - 1));
	proto->arena = fz_arena_base;
	return 0;
}

int fz_mem_thread_init(struct fz_ctx *c)
{
	int mfd = memfd_create("beluga-fuzz-arg", MFD_CLOEXEC);
	uint8_t *two;

	if (mfd < 0 || ftruncate(mfd, FZ_PAGE))
		return -errno;
	two = mmap(NULL, 2 * FZ_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (two == MAP_FAILED)
		return -errno;
	c->page = mmap(two, FZ_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0);
	c->ro_page = mmap(NULL, FZ_PAGE, PROT_READ, MAP_SHARED, mfd, 0);
	close(mfd);
	if (c->page == MAP_FAILED || c->ro_page == MAP_FAILED)
		return -errno;
	c->guard = two + FZ_PAGE;
	c->big_len = FZ_BIG_BYTES;
	c->big = mmap(NULL, c->big_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return c->big == MAP_FAILED ? -errno : 0;
}

void fz_mem_thread_fini(struct fz_ctx *c)
{
	munmap(c->page, 2 * FZ_PAGE);
	munmap(c->ro_page, FZ_PAGE);
	munmap(c->big, c->big_len);
}

void *fz_arg_buf(struct fz_ctx *c, size_t len)
{
	uint8_t *buf = c->page + ((FZ_PAGE - len) & ~7ULL);

	memset(buf, 0, len);
	return buf;
}

enum fz_ptr fz_pick_ptr(struct fz_ctx *c, unsigned int bad_pct)
{
	if (!fz_pct(c, bad_pct))
		return FZ_PTR_GOOD;
	return (enum fz_ptr)(FZ_PTR_NULL + fz_rand(c, FZ_PTR_RDONLY));
}

void *fz_arg_ptr(struct fz_ctx *c, void *buf, size_t len, enum fz_ptr mode)
{
	(void)len;
	switch (mode) {
	case FZ_PTR_NULL:
		return NULL;
	case FZ_PTR_KERNEL:
		return (void *)(uintptr_t)FZ_KERNEL_ADDR;
	case FZ_PTR_UNMAPPED:
		return c->guard;
	case FZ_PTR_STRADDLE:
		return (uint8_t *)buf + 8;
	case FZ_PTR_RDONLY:
		return c->ro_page + ((uint8_t *)buf - c->page);
	case FZ_PTR_GOOD:
	default:
		return buf;
	}
}

const char *fz_ptr_name(enum fz_ptr mode)
{
	static const char *const names[] = { "good", "NULL", "kernel", "unmapped",
					     "straddling", "read-only" };

	return mode <= FZ_PTR_RDONLY ? names[mode] : "?";
}

uint64_t fz_bad_uptr(struct fz_ctx *c)
{
	switch (fz_rand(c, 5)) {
	case 0:
		return FZ_KERNEL_ADDR;
	case 1:
		return (uintptr_t)c->guard;
	case 2:
		return (uintptr_t)c->ro_page;
	case 3:
		return (uintptr_t)c->guard - 4;	/* first element fits, then faults */
	default:
		return 0x10;
	}
}

bool fz_kernel_like(uint64_t v)
{
	return v >= 0xffff800000000000ULL;
}

int fz_touch(struct fz_ctx *c, volatile uint8_t *p, bool write)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		fz_jmp = NULL;
		__atomic_add_fetch(&c->env->sh->faults_caught, 1, __ATOMIC_RELAXED);
		return -EFAULT;
	}
	fz_jmp = &jb;
	if (write)
		*p = (uint8_t)fz_rand(c, 256);
	else
		(void)*p;
	fz_jmp = NULL;
	return 0;
}

/*
 * Callers may add up to 2 MiB (an offset's congruence, a deliberate
 * misalignment) to the address: leave that much room below the arena's end.
 */
uint8_t *fz_arena_addr(struct fz_ctx *c, uint64_t len)
{
	uint64_t room = len + 2 * FZ_CHUNK;
	uint64_t slots = room >= FZ_ARENA_BYTES ? 1 : (FZ_ARENA_BYTES - room) / FZ_CHUNK + 1;

	return c->arena + fz_rand(c, slots) * FZ_CHUNK;
}

bool fz_in_arena(struct fz_ctx *c, const uint8_t *p)
{
	return p >= c->arena && p < c->arena + FZ_ARENA_BYTES;
}

/* Only ever inside the arena: whatever lies beyond it is not ours to map. */
void fz_arena_release(struct fz_ctx *c, uint8_t *p, uint64_t len)
{
	uint8_t *end = p + len, *lim = c->arena + FZ_ARENA_BYTES;

	if (p < c->arena)
		p = c->arena;
	if (end > lim)
		end = lim;
	if (p < end)
		mmap(p, (size_t)(end - p), PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}
