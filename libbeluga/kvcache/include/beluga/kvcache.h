/* SPDX-License-Identifier: Apache-2.0 */
/*
 * beluga/kvcache.h - Beluga-KVCache: a shared store of KV-cache blocks that
 * lives entirely inside one memory region (CXL memory through the beluga
 * driver, or shared memory), with no server on the lookup path.
 *
 * Every process that maps the region sees the same cache: the index, the
 * allocator, leases and statistics are all kept in the region, as offsets.
 * The on-media format is documented in Documentation/kvcache-format.md, the
 * usage in Documentation/kvcache.md.
 *
 * Model:
 *  - a block is named by a 32-byte key: the engine's own block hash passed
 *    through unchanged (vLLM's sha256 / sha256_cbor block hashes), or one
 *    computed here with beluga_kvc_hash_*() (byte-identical to vLLM's
 *    sha256_cbor chain);
 *  - one pool block holds one engine KV block: all layers, K then V, in the
 *    order of beluga/kv_layout.h; every block carries a sequence number and
 *    a checksum that readers verify after copying (a mismatch is a miss);
 *  - the region is split into host partitions: a host (a cache-coherence
 *    domain: one machine) writes only its own partition and its own host
 *    area, so no cache line has two writing hosts (CXL 2.0 has no coherence
 *    between hosts); it reads everybody's;
 *  - every attached process holds a session (a lease) in its host area;
 *    pins and in-flight reservations are recorded there, so whatever a
 *    SIGKILLed process held is reclaimed by the next process of its host.
 *
 * Conventions: functions return 0 (or a non-negative count) on success and a
 * negative error code on failure: -errno or -BELUGA_KVC_E* (below).  When a
 * call fails, beluga_kvc_last_error() gives a sentence for the calling
 * thread's latest failure (e.g. which fingerprint field differs).  Handles
 * may be used by several threads at once; a handle must not be used in a
 * child after fork() (attach again in the child).
 */
#ifndef BELUGA_KVCACHE_H
#define BELUGA_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <beluga/kv_layout.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BELUGA_KVC_API __attribute__((visibility("default")))
#else
#define BELUGA_KVC_API
#endif

/* ------------------------------------------------------------------------ */
/* Constants                                                                 */
/* ------------------------------------------------------------------------ */

#define BELUGA_KVC_KEY_BYTES		32
#define BELUGA_KVC_FORMAT_MAJOR		3	/* on-media format version */
#define BELUGA_KVC_FORMAT_MINOR		0
#define BELUGA_KVC_MAX_HOSTS		64

/* Error codes (returned negated), above libbeluga's (1001..1099). */
#define BELUGA_KVC_EFINGERPRINT	1101	/* cache made for another model/layout/hash */
#define BELUGA_KVC_EFORMAT	1102	/* not a Beluga KV cache, or a damaged header */
#define BELUGA_KVC_EVERSION	1103	/* on-media format version not supported */
#define BELUGA_KVC_ENOTREADY	1104	/* region still being formatted */

/* Pool block layouts (struct beluga_kvc_fingerprint.layout). */
#define BELUGA_KVC_LAYOUT_OPAQUE	0	/* bytes the store does not interpret */
#define BELUGA_KVC_LAYOUT_KV_BLOCK	1	/* beluga/kv_layout.h: [layers][K,V][tokens][heads][head_size] */

/* Coherence modes (struct beluga_kvc_attach_opts.coherence). */
enum beluga_kvc_coherence {
	BELUGA_KVC_AUTO = 0,		/* COHERENT with one host, else NONCOHERENT */
	BELUGA_KVC_COHERENT = 1,	/* one host or hardware-coherent memory: no flushes */
	BELUGA_KVC_NONCOHERENT = 2,	/* CXL 2.0 sharing: write back after writing, invalidate before reading */
	BELUGA_KVC_SIMULATE = 3,	/* test mode: this handle sees its own stale copy of the
					   region until it flushes or invalidates (see kvcache.md) */
};

/* Per-item results of the batch calls (besides 0 and -errno). */
#define BELUGA_KVC_EXISTS	1	/* put: the key was already cached; nothing written */

/* ------------------------------------------------------------------------ */
/* Keys: vLLM-compatible chained SHA-256 over CBOR                           */
/* ------------------------------------------------------------------------ */

/* A CBOR value, for extra keys (LoRA name, multi-modal hashes, cache salt). */
enum beluga_kvc_item_type {
	BELUGA_KVC_ITEM_NULL = 0,	/* CBOR null (Python None) */
	BELUGA_KVC_ITEM_INT = 1,	/* integer (Python int), @i */
	BELUGA_KVC_ITEM_TEXT = 2,	/* UTF-8 text (Python str), @ptr/@len */
	BELUGA_KVC_ITEM_BYTES = 3,	/* byte string (Python bytes), @ptr/@len */
	BELUGA_KVC_ITEM_ARRAY = 4,	/* array (Python tuple/list) of @len items at @ptr */
};

struct beluga_kvc_item {
	uint32_t type;			/* enum beluga_kvc_item_type */
	uint32_t reserved;		/* must be 0 */
	int64_t i;
	const void *ptr;
	size_t len;
};

/*
 * beluga_kvc_root_key - the parent key of a chain's first block: SHA-256 of
 * the CBOR text string @seed.  Equals vLLM's NONE_HASH for sha256_cbor when
 * PYTHONHASHSEED=@seed.  Errors: -EINVAL NULL argument.
 */
BELUGA_KVC_API int beluga_kvc_root_key(const char *seed, uint8_t out[BELUGA_KVC_KEY_BYTES]);

/*
 * beluga_kvc_hash_block - one block's key: SHA-256 of the canonical CBOR
 * encoding of the 3-element array [parent (bytes), tokens (array of
 * unsigned integers), extra (@extra, or null when NULL)], exactly vLLM's
 * hash_block_tokens(sha256_cbor, parent, tokens, extra_keys).
 * @extra: NULL or an item (vLLM passes a tuple: a BELUGA_KVC_ITEM_ARRAY).
 * Errors: -EINVAL NULL pointer, bad item type, nesting deeper than 16;
 * -ENOMEM.
 */
BELUGA_KVC_API int beluga_kvc_hash_block(const uint8_t parent[BELUGA_KVC_KEY_BYTES],
					 const uint32_t *tokens, size_t ntokens,
					 const struct beluga_kvc_item *extra,
					 uint8_t out[BELUGA_KVC_KEY_BYTES]);

/*
 * beluga_kvc_hash_tokens - keys of every full @block_size-token block of
 * @tokens, chained from @root (no extra keys).  Writes min(blocks, @max_keys)
 * keys and returns the number of full blocks.
 * Errors: -EINVAL NULL pointer or @block_size 0.
 */
BELUGA_KVC_API long beluga_kvc_hash_tokens(const uint8_t root[BELUGA_KVC_KEY_BYTES],
					   const uint32_t *tokens, size_t ntokens,
					   uint32_t block_size,
					   uint8_t (*keys)[BELUGA_KVC_KEY_BYTES], size_t max_keys);

/* ------------------------------------------------------------------------ */
/* Namespace fingerprint, creation and attachment                           */
/* ------------------------------------------------------------------------ */

/*
 * struct beluga_kvc_fingerprint - what makes two instances' blocks
 * interchangeable.  Stored in the region header; attaching with any field
 * different fails with -BELUGA_KVC_EFINGERPRINT and a message naming the
 * field (the silent 0 % hit rate of mismatched instances becomes an error).
 * Strings are NUL-terminated and compared byte for byte; zero the struct
 * before filling it.
 * @model_id:  model name and revision, e.g. "meta-llama/Llama-3.1-8B@0e9e39f".
 * @hash_fn:   how the keys are made, e.g. "sha256_cbor" (vLLM's
 *             --prefix-caching-hash-algo, or this library's).
 * @hash_seed: the chain's seed (vLLM: PYTHONHASHSEED), "" if none.
 * @shape:     the TP rank's KV block shape (beluga/kv_layout.h).
 * @tp_rank, @tp_size: tensor-parallel rank and size (0, 1 without TP).
 * @layout:    BELUGA_KVC_LAYOUT_*.
 * @payload_bytes: bytes per block: with LAYOUT_KV_BLOCK 0 (computed from
 *             @shape) or exactly beluga_kv_block_bytes(@shape); with
 *             LAYOUT_OPAQUE any non-zero size.
 */
struct beluga_kvc_fingerprint {
	char model_id[128];
	char hash_fn[32];
	char hash_seed[64];
	struct beluga_kv_shape shape;
	uint32_t tp_rank;
	uint32_t tp_size;
	uint32_t layout;
	uint32_t reserved0;
	uint64_t payload_bytes;
	uint64_t reserved[6];		/* must be 0 */
};

/*
 * struct beluga_kvc_config - geometry chosen when a cache is formatted.
 * Fill with beluga_kvc_config_init() first.
 * @max_hosts:    host partitions, 1..BELUGA_KVC_MAX_HOSTS (default 1).  Each
 *                host can store into its own 1/max_hosts of the region.
 * @max_sessions: processes attached at once per host (default 64).
 * @max_pins:     blocks one process can hold pinned at once (default 1024).
 * @max_batch:    blocks one process can have reserved at once (default 64);
 *                larger put batches are done in steps of this size;
 *                beluga_kvc_reserve() holds at most max_batch - 1.
 * @high_watermark_pct, @low_watermark_pct: eviction thresholds, in percent
 *                of @capacity_blocks (defaults 95 and 85): a put that would
 *                take a host's occupancy above the high watermark first
 *                evicts down to the low one.  Each host can change its own
 *                later (beluga_kvc_set_eviction).
 * @eviction:     BELUGA_KVC_EVICT_* policy of every host (default CLOCK).
 * @capacity_blocks: blocks each host may hold, 0 for all its slots (more
 *                than its slots is -EINVAL at format).
 */
struct beluga_kvc_config {
	size_t size;
	struct beluga_kvc_fingerprint fingerprint;
	uint32_t max_hosts;
	uint32_t max_sessions;
	uint32_t max_pins;
	uint32_t max_batch;
	uint32_t high_watermark_pct;
	uint32_t low_watermark_pct;
	uint32_t eviction;
	uint32_t reserved0;		/* must be 0 */
	uint64_t capacity_blocks;
	uint64_t reserved[2];		/* must be 0 */
};

/* Eviction policies (struct beluga_kvc_config.eviction, beluga_kvc_eviction.policy). */
#define BELUGA_KVC_EVICT_CLOCK	0	/* CLOCK (second chance) over every host's read times */
#define BELUGA_KVC_EVICT_NONE	1	/* never evict: a full host answers -ENOSPC */
#define BELUGA_KVC_EVICT_LRU	2	/* sampled LRU: the least recently read of 16 random blocks */

/*
 * struct beluga_kvc_attach_opts - how this process uses the cache.
 * Fill with beluga_kvc_attach_opts_init() first.
 * @host_id:      this host's partition, 0..max_hosts-1 (default 0).  Every
 *                process of one machine uses the same id; two machines
 *                must never share one.
 * @coherence:    enum beluga_kvc_coherence.
 * @copy_threads: threads for large copies, including the caller (0: up to 4,
 *                at most the online CPUs; 1: the calling thread only).
 * @nt_min_bytes: puts of at least this many bytes use non-temporal stores
 *                (0: 64 KiB).
 * @lease_ms:     several hosts: how long other hosts honour this process's
 *                pins after it stopped renewing them, and how long they
 *                wait for this host's heartbeat to move before they may
 *                judge it dead (0: 30000).  Measured on the host's own
 *                clock (leases) and on each observer's monotonic clock
 *                (heartbeats): hosts never compare clocks.  The heartbeat
 *                period is lease_ms / 8, at most 1 s.  Processes of the
 *                same host are checked directly (pid, start time, boot id).
 * @ready_wait_ms: how long to wait for another process or host that is
 *                formatting the region (beluga_kvc_open: 0 means 5000;
 *                beluga_kvc_attach: 0 means no wait).  Observers do not wait.
 * @flags:        BELUGA_KVC_ATTACH_OBSERVE: a read-only observer (tools,
 *                metrics exporters): takes no session and writes nothing to
 *                the region; @fp may be NULL (any fingerprint is accepted);
 *                lookups, statistics, info, check and the block listing
 *                work, every call that stores, reads blocks, pins, removes,
 *                evicts or reclaims fails with -EPERM.  beluga_kvc_open()
 *                then opens and maps the region read-only.
 *                BELUGA_KVC_ATTACH_FORMAT: beluga_kvc_open() formats the
 *                region when it holds no cache yet, also when another
 *                host created it (beluga_kvc_format_once); without it
 *                only the process that created the region formats it and
 *                every other one waits for the cache (@ready_wait_ms).
 *
 * Several hosts (max_hosts > 1): attaching claims @host_id for this host
 * (its boot, identified by the kernel's boot id, and its machine, by
 * /etc/machine-id; name: $BELUGA_KVC_HOST_NAME or the node name).  Another
 * host holding the same index is refused with -EADDRINUSE naming it
 * (kvcache-format.md, "Host identity and liveness"); claiming a free index
 * waits about two heartbeat periods twice.
 */
struct beluga_kvc_attach_opts {
	size_t size;
	uint32_t host_id;
	uint32_t coherence;
	uint32_t copy_threads;
	uint32_t lease_ms;
	uint64_t nt_min_bytes;
	uint32_t ready_wait_ms;
	uint32_t flags;
	uint64_t reserved[4];
};

#define BELUGA_KVC_ATTACH_OBSERVE	(1U << 0)	/* read-only observer, see above */
/*
 * Read every page of the region once while attaching, so that the page
 * tables (and a hypervisor's) are built at startup instead of on the first
 * read of each block: with 4 KiB pages (the user-space backend without
 * hugetlbfs) a first read costs one fault per page.
 */
#define BELUGA_KVC_ATTACH_PREFAULT	(1U << 1)
#define BELUGA_KVC_ATTACH_FORMAT	(1U << 2)	/* this process may format (see above) */

struct beluga_kvc;			/* an attached cache (opaque) */
struct beluga_pool;			/* beluga/beluga.h */

/* beluga_kvc_config_init - defaults (fingerprint zeroed). Never fails. */
BELUGA_KVC_API void beluga_kvc_config_init(struct beluga_kvc_config *cfg);

/* beluga_kvc_attach_opts_init - defaults. Never fails. */
BELUGA_KVC_API void beluga_kvc_attach_opts_init(struct beluga_kvc_attach_opts *opts);

/*
 * beluga_kvc_format - lay out an empty cache in [@base, @base + @size),
 * which every process will map (shared); overwrites whatever is there.
 * The memory must be zeroed (fresh regions are) and 4096-byte aligned.
 * Errors: -EINVAL bad config, fingerprint or alignment; -ENOSPC @size too
 * small for one block per host.
 */
BELUGA_KVC_API int beluga_kvc_format(void *base, size_t size,
				     const struct beluga_kvc_config *cfg);

/*
 * beluga_kvc_format_once - format [@base, @base + @size) unless a cache is
 * there or being formatted: of the processes of one host that call it at
 * once, exactly one formats (a compare-and-swap on the header's format
 * lock) and the others wait for it (up to 10 s).  Exactly one host of a
 * multi-host deployment may call it (its configuration names it): hosts
 * have no atomics between them.  Returns 0 formatted here, BELUGA_KVC_EXISTS
 * a cache was (or has now been) formatted by someone else, or an error of
 * beluga_kvc_format; -BELUGA_KVC_ENOTREADY the other formatter did not
 * finish in time.
 */
BELUGA_KVC_API int beluga_kvc_format_once(void *base, size_t size,
					  const struct beluga_kvc_config *cfg);

/*
 * beluga_kvc_attach - use the cache formatted at @base.
 * @fp:   this instance's fingerprint; must equal the stored one (NULL only
 *        for an observer, which then accepts any).
 * @opts: NULL for defaults.
 * @out:  release with beluga_kvc_detach().
 * Attaching reclaims what dead processes of this host left (sessions,
 * reservations, pins), then takes a session.
 * Errors: -EINVAL NULL or bad option, @host_id out of range;
 * -BELUGA_KVC_EFORMAT not a cache or damaged header; -BELUGA_KVC_EVERSION;
 * -BELUGA_KVC_ENOTREADY formatting not finished (after waiting
 * ready_wait_ms); -BELUGA_KVC_EFINGERPRINT; -BELUGA_KVC_EVERSION also when
 * the cache's format is newer than this library's; -EADDRINUSE @host_id is
 * held by another host (the message names it); -EBUSY every session of
 * this host taken by live processes; -ENOMEM.
 */
BELUGA_KVC_API int beluga_kvc_attach(void *base, size_t size,
				     const struct beluga_kvc_fingerprint *fp,
				     const struct beluga_kvc_attach_opts *opts,
				     struct beluga_kvc **out);

/*
 * beluga_kvc_detach - release this process's pins and session and free the
 * handle (and, for beluga_kvc_open(), unmap and close the region).  NULL is
 * ignored.  Never fails.
 */
BELUGA_KVC_API void beluga_kvc_detach(struct beluga_kvc *kv);

/*
 * beluga_kvc_open - the cache in the libbeluga region @name (either
 * backend), attached with fingerprint @fp.  With @cfg, the region is created
 * (@region_bytes, permission @mode) and formatted with @cfg (whose
 * fingerprint is replaced by @fp) when it does not exist yet; without @cfg
 * it must exist.  With @cfg and @region_bytes 0 the region is never
 * created: it must exist (a shared region, defined on every host), and it
 * is formatted with @cfg when it holds no cache yet only with
 * BELUGA_KVC_ATTACH_FORMAT.  A process that finds the region still being
 * formatted waits up to ready_wait_ms.  The region stays open and mapped
 * until beluga_kvc_detach().
 * Errors: those of beluga_region_create/open/map (-ENOENT, -EACCES,
 * -ENOSPC, ...), beluga_kvc_format and beluga_kvc_attach; -EOPNOTSUPP the
 * library was built without libbeluga.
 */
BELUGA_KVC_API int beluga_kvc_open(struct beluga_pool *pool, const char *name,
				   const struct beluga_kvc_fingerprint *fp,
				   const struct beluga_kvc_config *cfg,
				   uint64_t region_bytes, uint32_t mode,
				   const struct beluga_kvc_attach_opts *opts,
				   struct beluga_kvc **out);

/* ------------------------------------------------------------------------ */
/* Blocks                                                                    */
/* ------------------------------------------------------------------------ */

/* One block to store: @len bytes at @data (at most payload_bytes). */
struct beluga_kvc_put {
	uint8_t key[BELUGA_KVC_KEY_BYTES];
	const void *data;
	size_t len;
};

/* One block to load into @dst (@cap bytes). */
struct beluga_kvc_get {
	uint8_t key[BELUGA_KVC_KEY_BYTES];
	void *dst;
	size_t cap;
};

/*
 * A pinned block, for zero-copy access: @data (read-only, @len bytes) stays
 * valid and unchanged until beluga_kvc_unpin().  Layer slices sit at
 * beluga_kv_layer_offset() of the fingerprint's shape.  The other fields
 * belong to the library.
 */
struct beluga_kvc_ref {
	const void *data;
	size_t len;
	uint64_t gen;
	uint32_t host;
	uint32_t slot;
	uint32_t pin;
	uint32_t reserved;
};

/*
 * beluga_kvc_put_batch - store blocks in this host's partition.
 * Per item (@results[i]): 0 stored; BELUGA_KVC_EXISTS already cached (by any
 * host); -EINVAL NULL data or @len 0 or above payload_bytes; -ENOSPC the
 * host holds capacity_blocks blocks and none can be evicted (policy NONE,
 * or every block pinned or being written).  A put that would take the
 * host above its high watermark first evicts down to the low watermark
 * (beluga_kvc_set_eviction).  Each block is reserved, copied
 * (non-temporal stores for large blocks, several threads), made visible,
 * then published in the index: readers never see a partial block.
 * Returns the number of items stored, or -EINVAL for a NULL array.
 */
BELUGA_KVC_API long beluga_kvc_put_batch(struct beluga_kvc *kv,
					 const struct beluga_kvc_put *items, size_t n,
					 int *results);

/*
 * beluga_kvc_get_batch - load blocks into caller buffers.
 * Per item: the block's length; -ENOENT not cached, or the copy failed its
 * sequence/checksum check (counted in checksum_failures); -ENOBUFS @cap
 * smaller than the block; -EINVAL NULL @dst; -ENOBUFS no free pin entry.
 * Returns the number of hits, or -EINVAL.
 */
BELUGA_KVC_API long beluga_kvc_get_batch(struct beluga_kvc *kv,
					 const struct beluga_kvc_get *items, size_t n,
					 int *results);

/*
 * beluga_kvc_lookup_prefix - how many leading keys of @keys are cached (by
 * any host), without taking a lock or writing anything shared.  Answers
 * from the index alone: a key matches an entry with its 64-bit index hash
 * (tag and check word), and the block is not read, so a get may still miss
 * a key reported here (evicted or removed meanwhile, a damaged block, or a
 * 2^-64 hash match); gets and pins compare the whole key.
 * Returns 0..@n, or -EINVAL.
 */
BELUGA_KVC_API long beluga_kvc_lookup_prefix(struct beluga_kvc *kv,
					     const uint8_t (*keys)[BELUGA_KVC_KEY_BYTES],
					     size_t n);

#define BELUGA_KVC_PIN_VERIFY	(1U << 0)	/* read the block once and check its checksum */

/*
 * beluga_kvc_pin - pin blocks for zero-copy reading: while pinned a block is
 * never removed, reused or evicted.  Per item: 0 pinned (@refs[i] filled);
 * -ENOENT not cached (or failed verification with BELUGA_KVC_PIN_VERIFY);
 * -ENOBUFS no free pin entry (max_pins).
 * Returns the number pinned, or -EINVAL (NULL array, unknown flags).
 */
BELUGA_KVC_API long beluga_kvc_pin(struct beluga_kvc *kv,
				   const uint8_t (*keys)[BELUGA_KVC_KEY_BYTES], size_t n,
				   uint32_t flags, struct beluga_kvc_ref *refs, int *results);

/*
 * beluga_kvc_unpin - release pins taken by beluga_kvc_pin().
 * Errors: -EINVAL NULL or a ref this handle does not hold (nothing released
 * for that ref; the others are).
 */
BELUGA_KVC_API int beluga_kvc_unpin(struct beluga_kvc *kv, struct beluga_kvc_ref *refs,
				    size_t n);

/*
 * beluga_kvc_remove - drop blocks from the index.  Only this host's
 * partition: per item 0 removed, -ENOENT not in this host's partition,
 * -EXDEV cached only by another host (that host must remove it), -EBUSY
 * this host's block is being stored or removed by another of its processes
 * right now (or its descriptor's owner word is damaged).  A pinned
 * block stays readable by its pin holders; its memory is reused once the
 * last pin is gone.  Returns the number removed, or -EINVAL.
 */
BELUGA_KVC_API long beluga_kvc_remove(struct beluga_kvc *kv,
				      const uint8_t (*keys)[BELUGA_KVC_KEY_BYTES], size_t n,
				      int *results);

/* ------------------------------------------------------------------------ */
/* Zero-copy stores: reserve slots, write the payload in place, commit       */
/* ------------------------------------------------------------------------ */

/*
 * Feature test: defined when this header declares beluga_kvc_reserve(),
 * _commit() and _abort().  The on-media format is unchanged by them (a
 * reservation is what a put holds while it copies), so caches are shared
 * with libraries that lack them.
 */
#define BELUGA_KVC_HAVE_RESERVE	1

/*
 * One block stored in place.  The caller fills @key and @len, reserves,
 * writes exactly @len bytes at @data (CPU stores, or a device's copy into
 * the region at @offset), then commits or aborts.  The other fields are
 * the library's; zero the struct before filling it.
 * @key:    in.
 * @len:    in: the block's size, 1..payload_bytes (reserve and commit).
 * @sum:    in, for beluga_kvc_commit() with BELUGA_KVC_COMMIT_CHECKSUM:
 *          beluga_kvc_checksum() of the @len bytes written.
 * @data:   out: the slot's payload, 64-byte aligned; NULL when the item
 *          holds no reservation (not reserved, committed or aborted).
 * @offset: out: @data's offset from the start of the region (the base the
 *          cache was attached at): a device that maps the region (e.g. a
 *          GPU that registered it) writes at its own base + @offset.
 */
struct beluga_kvc_reservation {
	uint8_t key[BELUGA_KVC_KEY_BYTES];
	size_t len;
	uint64_t sum;
	void *data;
	uint64_t offset;
	uint64_t gen;
	uint32_t slot;
	uint32_t entry;
	uint64_t reserved[2];
};

/*
 * beluga_kvc_reserve - reserve a slot in this host's partition for each
 * item, to be written in place (one copy instead of a put's two when the
 * payload is gathered from elsewhere).  One index lookup per key.
 * Per item (@results[i]): 0 reserved (@data and @offset set);
 * BELUGA_KVC_EXISTS already cached (by any host): nothing reserved;
 * -EINVAL @len 0 or above payload_bytes; -ENOSPC as beluga_kvc_put_batch()
 * (a reservation evicts like a put); -ENOBUFS this process already holds
 * max_batch - 1 reservations (the last entry is kept for puts, removals and
 * evictions): commit or abort some first, or format with a larger
 * max_batch.  A reservation ends with beluga_kvc_commit() or
 * beluga_kvc_abort() (beluga_kvc_detach() aborts what is left).  Readers
 * never see a reserved block; a process killed while holding reservations
 * leaves them to be reclaimed like a put killed mid-copy: the slots go back
 * to the allocator, never published.
 * Returns the number reserved, or -EINVAL (NULL array), -EPERM (observer),
 * -ESTALE (this host was taken over).
 */
BELUGA_KVC_API long beluga_kvc_reserve(struct beluga_kvc *kv,
				       struct beluga_kvc_reservation *items, size_t n,
				       int *results);

#define BELUGA_KVC_COMMIT_CHECKSUM	(1U << 0)	/* @sum is given: the payload is not read */

/*
 * beluga_kvc_commit - publish reserved blocks.  Each block's checksum is
 * computed over its slot (unless BELUGA_KVC_COMMIT_CHECKSUM: then @sum is
 * stored as given, and readers that verify miss a block whose payload does
 * not match it), the payload is written back from this host's caches
 * (non-coherent modes), and the block is committed and indexed as a put
 * does.  The writes into @data must be complete (a device copy:
 * synchronized) before the call.  The reservation ends, whatever the result.
 * Per item: 0 stored; BELUGA_KVC_EXISTS another process stored the key
 * meanwhile (this copy is dropped); -ENOSPC the index is full; -ENOENT the
 * item holds no reservation (@data NULL); -EINVAL not a reservation of
 * this handle (fields changed), or @len 0 or above payload_bytes: nothing
 * done for it (it may still be aborted).  Afterwards @data is NULL for
 * every item whose reservation ended.
 * Returns the number stored, or -EINVAL (NULL array, unknown flags),
 * -EPERM, -ESTALE.
 */
BELUGA_KVC_API long beluga_kvc_commit(struct beluga_kvc *kv,
				      struct beluga_kvc_reservation *items, size_t n,
				      uint32_t flags, int *results);

/*
 * beluga_kvc_abort - give reserved slots back unpublished (the payload
 * written so far is dropped).  Items holding no reservation (@data NULL)
 * are skipped; @data is NULL afterwards.  Also after -ESTALE: then only
 * this handle's bookkeeping is released.
 * Returns the number aborted, or -EINVAL (NULL array, or an item that is
 * not a reservation of this handle: nothing done for it, the others are
 * aborted).
 */
BELUGA_KVC_API long beluga_kvc_abort(struct beluga_kvc *kv,
				     struct beluga_kvc_reservation *items, size_t n);

/* ------------------------------------------------------------------------ */
/* Information, statistics, maintenance                                      */
/* ------------------------------------------------------------------------ */

struct beluga_kvc_info {
	struct beluga_kvc_fingerprint fingerprint;
	uint32_t format_major, format_minor;
	uint32_t max_hosts, host_id;
	uint32_t max_sessions, max_pins, max_batch, coherence;	/* coherence: effective mode */
	uint64_t region_bytes;
	uint64_t payload_bytes;		/* largest block */
	uint64_t slot_stride;		/* bytes between two blocks' payloads */
	uint64_t slots_per_host;	/* blocks one host can hold */
	uint64_t capacity_slots;	/* this host's capacity_blocks now */
	uint32_t high_watermark_pct, low_watermark_pct;	/* this host's, now */
	uint32_t eviction;		/* this host's policy, BELUGA_KVC_EVICT_* */
	uint32_t observer;		/* 1: attached with BELUGA_KVC_ATTACH_OBSERVE */
	uint64_t created_ns;		/* CLOCK_REALTIME when the cache was formatted */
	uint64_t reserved[6];
};

/* Counters kept in the region (each host's own, summed). */
struct beluga_kvc_stats {
	uint64_t puts;			/* blocks stored */
	uint64_t put_bytes;
	uint64_t put_exists;		/* put of a key already cached */
	uint64_t put_nospace;		/* put refused: partition full */
	uint64_t gets;			/* blocks asked for (get and pin) */
	uint64_t get_hits;
	uint64_t get_misses;
	uint64_t get_bytes;
	uint64_t checksum_failures;	/* copies that failed sequence/checksum checks */
	uint64_t lookups;		/* lookup_prefix calls */
	uint64_t lookup_keys;		/* keys probed by lookup_prefix */
	uint64_t lookup_hits;		/* keys found by lookup_prefix */
	uint64_t pins;
	uint64_t unpins;
	uint64_t removes;
	uint64_t dup_retracted;		/* concurrent puts of one key: the loser's copy dropped */
	uint64_t sessions_opened;
	uint64_t sessions_reclaimed;	/* dead processes cleaned up */
	uint64_t reservations_reclaimed;/* blocks a dead writer had reserved */
	uint64_t pins_reclaimed;	/* pins a dead reader held */
	uint64_t evictions;		/* blocks evicted to make room */
	uint64_t evict_scanned;		/* blocks the eviction hand looked at */
	uint64_t evict_pinned;		/* eviction victims kept because they were pinned */
	uint64_t evict_rounds;		/* times a put crossed the high watermark */
	uint64_t reserved[8];
};

/* Slot states, from beluga_kvc_check(). */
struct beluga_kvc_check_report {
	uint64_t slots;			/* all partitions */
	uint64_t free_slots;
	uint64_t reserved_slots;	/* being written by a live process */
	uint64_t published_slots;	/* cached blocks */
	uint64_t retired_slots;		/* removed, waiting for pins to go */
	uint64_t live_sessions;
	uint64_t dead_sessions;		/* not yet reclaimed */
	uint64_t held_pins;		/* by live sessions */
	uint64_t index_entries;
	uint64_t tombstones;
	uint64_t errors;		/* inconsistencies: 0 in a healthy cache */
	uint64_t reserved[5];
};

/*
 * Eviction settings and occupancy of one host's partition.
 * @policy:        BELUGA_KVC_EVICT_*.
 * @capacity_blocks: blocks the host may hold, 1..slots_per_host.
 * @high_watermark_pct, @low_watermark_pct: 1..100, low <= high.
 * @used_blocks:   out: blocks held or being written (a counter kept by the
 *                 host; exact when no put runs, corrected after crashes).
 */
struct beluga_kvc_eviction {
	uint32_t policy;
	uint32_t high_watermark_pct;
	uint32_t low_watermark_pct;
	uint32_t reserved0;		/* must be 0 */
	uint64_t capacity_blocks;
	uint64_t used_blocks;
	uint64_t reserved[4];		/* must be 0 */
};

/*
 * beluga_kvc_get_eviction - settings and occupancy of host @host (-1: this
 * handle's host).  Errors: -EINVAL NULL, @host out of range.
 */
BELUGA_KVC_API int beluga_kvc_get_eviction(struct beluga_kvc *kv, int host,
					   struct beluga_kvc_eviction *ev);

/*
 * beluga_kvc_set_eviction - change this host's policy, capacity and
 * watermarks (stored in the host's own area: every process of the host
 * follows them from its next put).  Lowering the capacity evicts the
 * blocks stored above the new capacity at once (pinned ones once unpinned,
 * by the hand); the host then holds at most @capacity_blocks blocks.
 * @ev->used_blocks is ignored.  Errors: -EINVAL NULL, unknown policy,
 * capacity 0 or above slots_per_host, watermarks not 1 <= low <= high <=
 * 100, non-zero reserved fields; -EPERM observer handle.
 */
BELUGA_KVC_API int beluga_kvc_set_eviction(struct beluga_kvc *kv,
					   const struct beluga_kvc_eviction *ev);

/*
 * beluga_kvc_evict - evict up to @max_blocks blocks of this host's
 * partition now (0: down to the low watermark), by the host's policy (CLOCK
 * when it is NONE).  Pinned blocks and blocks being written are never
 * evicted.  Returns the number evicted, or -EINVAL, -EPERM (observer).
 */
BELUGA_KVC_API long beluga_kvc_evict(struct beluga_kvc *kv, uint64_t max_blocks);

/* Checksum states (struct beluga_kvc_block_info.checksum_state). */
#define BELUGA_KVC_SUM_UNCHECKED	0	/* not verified (no BELUGA_KVC_LIST_VERIFY) */
#define BELUGA_KVC_SUM_OK		1	/* payload matches the stored checksum */
#define BELUGA_KVC_SUM_BAD		2	/* payload does not match: readers miss it */
#define BELUGA_KVC_SUM_CHANGED		3	/* the block changed while being verified */

#define BELUGA_KVC_LIST_VERIFY	(1U << 0)	/* recompute each block's checksum */

/*
 * One cached block, for tools.  Times are in milliseconds since the cache
 * was formatted (struct beluga_kvc_info.created_ns), 0 = never.
 * @inserted_ms: when it was stored.  @accessed_ms: last read by any host.
 * @pins:        pins held on it now by live processes of any host.
 */
struct beluga_kvc_block_info {
	uint8_t key[BELUGA_KVC_KEY_BYTES];
	uint32_t host, slot;
	uint64_t len;
	uint64_t gen;
	uint64_t checksum;
	uint64_t inserted_ms;
	uint64_t accessed_ms;
	uint32_t pins;
	uint32_t checksum_state;	/* BELUGA_KVC_SUM_* */
	uint64_t reserved[4];
};

/*
 * beluga_kvc_list_blocks - the cached blocks of host @host's partition (-1:
 * every host), in slot order, @max at a time: start with *@cursor = 0 and
 * call again while it returns @max; *@cursor tracks the position.  A
 * snapshot per block, taken without locks.  @flags: BELUGA_KVC_LIST_VERIFY.
 * Returns the number of entries written, or -EINVAL.
 */
BELUGA_KVC_API long beluga_kvc_list_blocks(struct beluga_kvc *kv, int host, uint64_t *cursor,
					   uint32_t flags, struct beluga_kvc_block_info *out,
					   size_t max);

/*
 * beluga_kvc_inspect - one block by key (any host), its checksum verified
 * when @flags has BELUGA_KVC_LIST_VERIFY.  Errors: -EINVAL, -ENOENT.
 */
BELUGA_KVC_API int beluga_kvc_inspect(struct beluga_kvc *kv,
				      const uint8_t key[BELUGA_KVC_KEY_BYTES], uint32_t flags,
				      struct beluga_kvc_block_info *out);

/* beluga_kvc_info - geometry and fingerprint. Errors: -EINVAL. */
BELUGA_KVC_API int beluga_kvc_get_info(struct beluga_kvc *kv, struct beluga_kvc_info *info);

/*
 * beluga_kvc_get_stats - counters of one host (@host 0..max_hosts-1) or of
 * all hosts (@host -1).  Errors: -EINVAL.
 */
BELUGA_KVC_API int beluga_kvc_get_stats(struct beluga_kvc *kv, int host,
					struct beluga_kvc_stats *stats);

/*
 * beluga_kvc_reclaim - clean up after dead processes of this host now
 * (attach and a full partition do it too).  Returns the number of sessions
 * reclaimed, or a negative error.
 */
BELUGA_KVC_API int beluga_kvc_reclaim(struct beluga_kvc *kv);

/*
 * beluga_kvc_check - walk the whole cache (every partition, session and
 * index) and count slot states and inconsistencies.  Meant for tests and
 * tools; it takes no lock, so a cache in use may show transient states.
 * With @verify_data, every published block's checksum is recomputed
 * (mismatches count as errors).  Errors: -EINVAL.
 */
BELUGA_KVC_API int beluga_kvc_check(struct beluga_kvc *kv, int verify_data,
				    struct beluga_kvc_check_report *report);

/* Host states (struct beluga_kvc_host_info.state), as this handle observes them. */
#define BELUGA_KVC_HOST_FREE	0	/* no host holds this index */
#define BELUGA_KVC_HOST_SELF	1	/* this handle's own host */
#define BELUGA_KVC_HOST_ALIVE	2	/* its heartbeat moved within its lease */
#define BELUGA_KVC_HOST_SILENT	3	/* not seen moving yet, watched for less than its lease */
#define BELUGA_KVC_HOST_DEAD	4	/* watched not moving for longer than its lease */

/*
 * One host index, as this handle sees it.  Liveness is judged on the
 * handle's own monotonic clock from what it saw of the heartbeat counter
 * (every call of this function or of the store looks): a handle that has
 * just attached, or looked only once, cannot tell a live host from a dead
 * one yet (SILENT).
 * @heartbeat:   the counter the holder advances every heartbeat period.
 * @observed_ms: how long ago this handle saw @heartbeat change (or first
 *               looked, if it never saw it change).
 * @served_by:   index of the host whose machine holds this index (itself,
 *               or the surviving host that took it over).
 * @sessions:    processes attached now (sessions held and not expired).
 */
struct beluga_kvc_host_info {
	uint32_t host;
	uint32_t state;			/* BELUGA_KVC_HOST_* */
	uint32_t served_by;
	uint32_t lease_ms;
	uint64_t machine_id, boot_id;	/* 0: free */
	uint64_t heartbeat;
	uint64_t observed_ms;
	uint64_t sessions;
	uint64_t used_blocks, capacity_blocks;
	uint64_t claimed_ns;		/* the holder's CLOCK_REALTIME when it claimed (display only) */
	char name[64];
	uint64_t reserved[4];
};

/* beluga_kvc_get_host - host index @host as seen now. Errors: -EINVAL. */
BELUGA_KVC_API int beluga_kvc_get_host(struct beluga_kvc *kv, uint32_t host,
				       struct beluga_kvc_host_info *info);

#define BELUGA_KVC_TAKEOVER_RELEASE	(1U << 0)	/* free the index instead of holding it */

/*
 * beluga_kvc_take_over - declare host index @host dead and take it over for
 * this handle's machine: watch its heartbeat for its lease plus a heartbeat
 * period (a bounded wait, on this host's monotonic clock) and refuse with
 * -EBUSY if it moves, or if a process of this machine still holds one of
 * its sessions; otherwise claim the index for this machine (the claim
 * protocol, re-read after the claim window: -EBUSY if another host claimed
 * it meanwhile), and reclaim every session the dead host left (its
 * reservations go back to its allocator, its pins vanish).  Its published
 * blocks stay cached and readable.  Afterwards processes of this machine
 * may attach with host_id @host to store into and evict from that
 * partition; with BELUGA_KVC_TAKEOVER_RELEASE the index is left free
 * instead, for any host (a replacement machine) to claim.
 * Returns the number of sessions reclaimed, or -EINVAL (@host is this
 * handle's host or out of range), -EPERM (observer), -EBUSY.
 */
BELUGA_KVC_API int beluga_kvc_take_over(struct beluga_kvc *kv, uint32_t host, uint32_t flags);

/*
 * beluga_kvc_last_error - a sentence for the calling thread's latest failed
 * call ("" if none).  Valid until the thread's next call.
 */
BELUGA_KVC_API const char *beluga_kvc_last_error(void);

/* beluga_kvc_strerror - a sentence for an error code (kvcache or errno). */
BELUGA_KVC_API const char *beluga_kvc_strerror(int err);

/*
 * beluga_kvc_checksum - the block checksum (BKV-F64, kvcache-format.md) of
 * @len bytes, as stored in the block's descriptor.  Never fails.
 */
BELUGA_KVC_API uint64_t beluga_kvc_checksum(const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_KVCACHE_H */
