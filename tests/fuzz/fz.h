/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fz.h - the Beluga ioctl/mmap fuzzer (beluga-fuzz), shared declarations.
 *
 * Layout (one concern per file):
 *   fz_main.c   command line, worker processes and threads, final checks
 *   fz_stats.c  per-op / per-errno counters in shared memory, oracle
 *               violations, the per-thread trail of recent operations
 *   fz_mem.c    argument buffers (good, NULL, kernel, unmapped, straddling,
 *               read-only), the MAP_FIXED arena, fault-guarded touches
 *   fz_dev.c    structure-aware /dev/beluga ioctls
 *   fz_rfd.c    region-fd ioctls and the other syscalls on region fds
 *   fz_mm.c     mmap/munmap/mprotect/madvise/mremap/msync/mlock/vmsplice,
 *               fork with SIGKILL, fd passing, close
 *
 * Generation: every ioctl starts from a valid-ish structure; with some
 * probability exactly ONE thing is broken: a field the ABI says must be
 * rejected (the call must then fail with EINVAL), or the argument pointer
 * (EFAULT; a read-only buffer must make every _IOWR command fail and leave
 * nothing behind).  Unknown commands must fail with ENOTTY.  Successful
 * results are checked too: output padding and reserved fields zero, sizes
 * consistent, no value that looks like a kernel address.  A broken rule is
 * an "oracle violation": printed with the thread's recent operations and
 * counted; the run then fails.
 *
 * Every thread draws from its own generator seeded from (--seed, process,
 * thread), so --procs 1 --threads 1 replays exactly; with more workers the
 * per-thread sequences replay and only the interleaving differs.
 */
#ifndef FZ_H
#define FZ_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/beluga.h>

#define FZ_MIB (1ULL << 20)
#define FZ_CHUNK BELUGA_CHUNK_SIZE
#define FZ_PAGE 4096ULL
#define FZ_MAX_FDS 8		/* region fds a thread keeps */
#define FZ_MAX_MAPS 16		/* mappings a thread keeps */
#define FZ_SHARED_NAMES 16	/* names every worker uses: collisions wanted */
#define FZ_ARENA_BYTES (256 * FZ_MIB)	/* per process, for MAP_FIXED */
#define FZ_TRAIL 32		/* recent operations kept per thread */
#define FZ_MAX_ERRNO 134	/* errno slots; larger values count as 134 */
#define FZ_MAX_PCI 32		/* PCI addresses found in sysfs */
#define FZ_MAX_SOURCES 16

/* Operations, for the counters. */
enum fz_op {
	FZ_OP_INFO, FZ_OP_SOURCE_INFO, FZ_OP_CREATE, FZ_OP_OPEN, FZ_OP_DESTROY,
	FZ_OP_STAT, FZ_OP_LIST, FZ_OP_SETATTR, FZ_OP_QUOTA_GET, FZ_OP_QUOTA_SET,
	FZ_OP_DEV_UNKNOWN, FZ_OP_FD_STAT, FZ_OP_LAYOUT, FZ_OP_GPU_REGISTER,
	FZ_OP_GPU_UNREGISTER, FZ_OP_RFD_UNKNOWN, FZ_OP_MMAP, FZ_OP_MUNMAP,
	FZ_OP_MPROTECT, FZ_OP_MADVISE, FZ_OP_MREMAP, FZ_OP_MSYNC, FZ_OP_MLOCK,
	FZ_OP_TOUCH, FZ_OP_VMSPLICE, FZ_OP_CLOSE, FZ_OP_DUP, FZ_OP_PASS_FD,
	FZ_OP_FORK, FZ_OP_FD_SYSCALL, FZ_OP_DEV_SYSCALL, FZ_OP_SHARED_DEFINE,
	FZ_OP_COUNT
};

/* Counters shared by every worker process (MAP_SHARED | MAP_ANONYMOUS). */
struct fz_shared {
	uint64_t calls;			/* total operations, all workers */
	uint64_t stop;			/* set when the budget is spent */
	uint64_t violations;
	uint64_t faults_caught;		/* SIGSEGV/SIGBUS in guarded touches */
	uint64_t kills;			/* forked children SIGKILLed */
	uint64_t count[FZ_OP_COUNT][FZ_MAX_ERRNO + 1];	/* [op][0 = ok, errno] */
};

/* What every thread of every process knows about the machine. */
struct fz_env {
	uint64_t seed;
	uint64_t max_calls;		/* 0: no limit */
	uint64_t deadline_ms;		/* CLOCK_MONOTONIC; 0: no limit */
	uint64_t pool_bytes;
	uint32_t nr_sources;
	uint32_t source_kind[FZ_MAX_SOURCES];
	uint32_t nr_pci;
	uint32_t pci[FZ_MAX_PCI][2];	/* domain, bus << 8 | devfn */
	bool unpriv;			/* this process dropped to uid 65534 */
	bool verbose;
	struct fz_shared *sh;
};

struct fz_fd {
	int fd;				/* -1: free slot */
	bool rdonly;
	uint64_t size;			/* region size when it was obtained */
};

struct fz_map {
	uint8_t *addr;			/* NULL: free slot */
	uint64_t len;
	int prot;
	bool in_arena;
};

/* One worker thread (or a forked child running a copy of it). */
struct fz_ctx {
	const struct fz_env *env;
	uint64_t rng;
	unsigned int proc, thread;
	int dev;			/* /dev/beluga */
	struct fz_fd fds[FZ_MAX_FDS];
	struct fz_map maps[FZ_MAX_MAPS];
	int pipe[2];			/* vmsplice target, O_NONBLOCK */
	int sock[2];			/* SCM_RIGHTS to ourselves */
	uint8_t *page;			/* RW view of the argument page */
	uint8_t *ro_page;		/* read-only view of the same page */
	uint8_t *guard;			/* PROT_NONE page right after @page */
	uint8_t *big;			/* LIST/LAYOUT output buffer */
	size_t big_len;
	uint8_t *arena;			/* this process's MAP_FIXED arena */
	unsigned int name_seq;
	bool child;			/* a forked child: no forks of its own */
	/* Trail of recent operations, printed with a violation. */
	char trail[FZ_TRAIL][96];
	unsigned int trail_pos;
};

/* --- random numbers (splitmix64: tiny, good enough, replayable) --------- */
static inline uint64_t fz_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t fz_rand(struct fz_ctx *c, uint64_t n)
{
	return n ? fz_next(&c->rng) % n : 0;
}

/* True with probability @pct percent. */
static inline bool fz_pct(struct fz_ctx *c, unsigned int pct)
{
	return fz_rand(c, 100) < pct;
}

/* --- fz_stats.c ----------------------------------------------------------- */
const char *fz_op_name(enum fz_op op);
/* Count @op's outcome: @ret >= 0 is success, else -errno. */
void fz_count(struct fz_ctx *c, enum fz_op op, long ret);
/* Remember one line about what the thread is doing (printf-style). */
void fz_trail(struct fz_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An oracle violation: print it with the trail, count it. */
void fz_violation(struct fz_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Whether the run should stop (budget spent); counts one call. */
bool fz_tick(struct fz_ctx *c);
void fz_report(const struct fz_shared *sh, uint64_t elapsed_ms);
uint64_t fz_now_ms(void);

/* --- fz_mem.c ------------------------------------------------------------- */
int fz_mem_proc_init(struct fz_ctx *proto);	/* arena, per process */
int fz_mem_thread_init(struct fz_ctx *c);	/* argument pages */
void fz_mem_thread_fini(struct fz_ctx *c);
void fz_install_fault_handler(void);

/* How an ioctl argument is passed. */
enum fz_ptr {
	FZ_PTR_GOOD,		/* valid, writable */
	FZ_PTR_NULL,
	FZ_PTR_KERNEL,		/* a kernel address */
	FZ_PTR_UNMAPPED,	/* the guard page */
	FZ_PTR_STRADDLE,	/* starts in the page, ends in the guard page */
	FZ_PTR_RDONLY,		/* readable, not writable */
};
/*
 * Where to build an argument of @len bytes: inside the argument page, placed
 * so that FZ_PTR_STRADDLE can cross into the guard page.
 */
void *fz_arg_buf(struct fz_ctx *c, size_t len);
/* Pick a pointer mode: mostly GOOD; @bad_pct percent one of the others. */
enum fz_ptr fz_pick_ptr(struct fz_ctx *c, unsigned int bad_pct);
/* The user pointer to pass for a struct built at @buf (@len bytes). */
void *fz_arg_ptr(struct fz_ctx *c, void *buf, size_t len, enum fz_ptr mode);
const char *fz_ptr_name(enum fz_ptr mode);
/* A bad user pointer for an embedded pointer field (entries, nodes). */
uint64_t fz_bad_uptr(struct fz_ctx *c);
/* Whether a 64-bit output value looks like a kernel address. */
bool fz_kernel_like(uint64_t v);
/*
 * Read or write one byte at @p with SIGSEGV/SIGBUS caught.  Returns 0, or
 * -EFAULT if the access faulted (counted as caught, not as an error).
 */
int fz_touch(struct fz_ctx *c, volatile uint8_t *p, bool write);
/* A 2 MiB-aligned address inside the arena with room for @len bytes. */
uint8_t *fz_arena_addr(struct fz_ctx *c, uint64_t len);
bool fz_in_arena(struct fz_ctx *c, const uint8_t *p);
/* Turn [p, p+len) of the arena back into the PROT_NONE reservation. */
void fz_arena_release(struct fz_ctx *c, uint8_t *p, uint64_t len);

/* --- fz_dev.c --------------------------------------------------------------- */
void fz_dev_op(struct fz_ctx *c);
/* A name: mostly one of the shared ones, sometimes private to the thread. */
void fz_name(struct fz_ctx *c, char name[BELUGA_NAME_MAX]);
/* Break a valid name so the ABI must refuse it. */
void fz_break_name(struct fz_ctx *c, char name[BELUGA_NAME_MAX]);
/* Remember a new region fd (closing one if the table is full). */
void fz_keep_fd(struct fz_ctx *c, int fd, bool rdonly, uint64_t size);
/* Check a CLOEXEC flag and fd validity after create/open. */
void fz_check_new_fd(struct fz_ctx *c, const char *what, int fd, bool cloexec);

/* --- fz_rfd.c ------------------------------------------------------------- */
void fz_rfd_op(struct fz_ctx *c);
void fz_fd_syscall(struct fz_ctx *c);
/* A region fd from the table (or, rarely, a bad fd number); -1 if none. */
int fz_pick_fd(struct fz_ctx *c, struct fz_fd **slot);

/* --- fz_mm.c -------------------------------------------------------------- */
void fz_mm_op(struct fz_ctx *c);
void fz_proc_op(struct fz_ctx *c);	/* close, dup, fd passing, fork */
/* Run random operations until the budget or @max_ops is spent. */
void fz_run(struct fz_ctx *c, uint64_t max_ops);
void fz_release_all(struct fz_ctx *c);

/* Issue an ioctl; returns 0/value or -errno. */
long fz_ioctl(int fd, unsigned long cmd, void *arg);

#endif /* FZ_H */
