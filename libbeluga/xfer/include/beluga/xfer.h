/* SPDX-License-Identifier: Apache-2.0 */
/*
 * beluga/xfer.h - moving KV blocks between a paged KV cache and pool blocks on
 * the CPU: a deliberately naive reference (the oracle that tests compare every
 * fast path with) and the fast CPU data path used on hosts without a GPU.
 * Layouts: beluga/kv_layout.h.  The GPU data path: beluga/xfer_cuda.h.
 *
 * Every function returns 0 or a negative errno and leaves errno alone.
 */
#ifndef BELUGA_XFER_H
#define BELUGA_XFER_H

#include <beluga/kv_layout.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The reference: plain loops, one element (dtype-size bytes) at a time.
 * Slow on purpose; correctness only.  -EINVAL if the transfer is malformed.
 */
int beluga_kv_ref_copy(const struct beluga_kv_xfer *xfer);

enum beluga_kv_nt_mode {
	BELUGA_KV_NT_AUTO = 0,   /* non-temporal stores for gather (pool writes) of at least nt_min_bytes */
	BELUGA_KV_NT_ALWAYS = 1, /* for every destination */
	BELUGA_KV_NT_NEVER = 2,
};
/* Whatever the mode, a gather (a pool write) returns with every byte it
 * wrote on its way to memory: non-temporal stores, or ordinary stores whose
 * lines are then written back (clwb), followed by a store fence. */

struct beluga_kv_cpu_opts {
	uint32_t threads;     /* worker threads including the caller; 0: all online CPUs, capped at 16 */
	uint32_t nt_mode;     /* enum beluga_kv_nt_mode */
	size_t nt_min_bytes;  /* AUTO: a transfer this large bypasses the cache; 0: default 256 KiB */
	size_t mt_min_bytes;  /* a transfer this large is split across threads; 0: default 1 MiB */
};

struct beluga_kv_cpu;

/*
 * A CPU copier: a small thread pool plus options.  opts may be NULL (defaults).
 * 0, -EINVAL, or -ENOMEM / -EAGAIN when threads cannot be made.
 */
int beluga_kv_cpu_create(const struct beluga_kv_cpu_opts *opts, struct beluga_kv_cpu **out);
void beluga_kv_cpu_destroy(struct beluga_kv_cpu *cpu);

/*
 * Copy with memcpy of the longest contiguous runs the layout allows, split
 * across the pool's threads for large transfers, with non-temporal stores as
 * configured.  When it returns, every store (non-temporal ones included) is
 * globally visible: each thread fences before reporting completion, so a
 * caller may publish the blocks right away.  `cpu` may be NULL: the calling
 * thread does the whole copy with default options.  One copy at a time per
 * copier (concurrent calls on one copier are serialised).
 */
int beluga_kv_cpu_copy(struct beluga_kv_cpu *cpu, const struct beluga_kv_xfer *xfer);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_XFER_H */
