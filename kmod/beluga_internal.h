/* SPDX-License-Identifier: GPL-2.0 */
/*
 * beluga_internal.h - the driver's internal objects and their locking.
 *
 * Objects
 *   pool    one per module: the sources, the free chunks, the region
 *           namespace.  Global singleton beluga_pool.
 *   source  one CXL memory source (a CPU-less NUMA node or a reserved
 *           physical range), carved into chunks at module load; range
 *           sources can also be added and removed at run time
 *           (BELUGA_IOC_SOURCE_ADD/REMOVE).
 *   chunk   2 MiB of physically contiguous memory: an order-9 compound page
 *           whose head page holds one reference owned by the pool for the
 *           life of the module.
 *   region  a set of chunks with an owner, a mode and (unless ephemeral) a
 *           name; user space reaches it through region files.
 *
 * Files, each calling only files listed before it (scripts/check-kmod-deps.sh,
 * part of make check, fails on a file-level cycle):
 *   beluga_pool.c    the pool: sources' registration, chunk hand-out and
 *                    return, the quarantine
 *   beluga_node.c    NUMA-node sources: checks, carving, nodes=
 *   beluga_range.c   physical-range sources: claiming, struct pages, ranges=
 *   beluga_stats.c   region stats and pinned-chunk counts (ioctls and sysfs)
 *   beluga_sysfs.c   /sys/kernel/beluga
 *   beluga_quota.c   per-uid limits and their ioctls
 *   beluga_region.c  regions: namespace, permissions, lifetime
 *   beluga_shared.c  shared regions: the rules of a fixed-extent definition
 *   beluga_mmap.c    mapping region memory
 *   beluga_gpu.c     GPU registration
 *   beluga_file.c    region files: creation, file operations, fd ioctls
 *   beluga_ioctl.c   the ioctls of /dev/beluga
 *   beluga_main.c    module parameters, init and exit
 *   Calls through function pointers do not show in that check.  The only
 *   ones the driver makes itself go through struct beluga_source_ops:
 *   beluga_pool.c calls them on sources that beluga_node.c or beluga_range.c
 *   created, and they work on that source alone and call nothing in
 *   beluga_pool.c.
 *
 * Locking (the lock order is written at each lock's declaration)
 *   beluga_pool.sources_lock (mutex) serialises adding and removing
 *   sources at run time, so that claiming a range and creating its struct
 *   pages and sysfs directory happen without beluga_pool.lock held.
 *   beluga_pool.lock (mutex) protects: the sources array (sources[],
 *   nr_sources, nr_chunks), every source's free list and counts,
 *   every chunk's state, the quarantine list, the name tree, the region xarray, nr_regions, and
 *   each region's name/named/uid/gid/mode fields.  It is taken only on
 *   control paths (ioctls, release, sysfs reads, the quarantine worker),
 *   never in the page-fault path.
 *   Source lifetime: a source is reached through sources[] only under
 *   beluga_pool.lock.  Outside it, a source pointer stays valid only while
 *   one of its chunks is out of the free list (in a region or the
 *   quarantine): beluga_source_unregister() refuses (EBUSY) to remove a
 *   source with such a chunk.  That is how faults, layout and GPU ioctls
 *   read chunk->src->nid without a lock: the region they hold holds chunks
 *   of the source.  Load-time code (parameters, beluga_sysfs_init()) runs
 *   before /dev/beluga exists and reads the array without the lock.
 *   beluga_rfile.lock (mutex) protects one region file's GPU registrations.
 *   A region's chunk array is written once before the region is published
 *   and is read-only afterwards, so faults read it without a lock; the
 *   region file pinned by the VMA keeps the region alive during a fault.
 *   Counters are atomics.
 *
 * Region lifetime (struct kref ref)
 *   one reference for the name while it is in the namespace, one per region
 *   file (struct file), plus short-lived references held by ioctls.  VMAs
 *   hold the file, so a mapped region stays alive after its fd is closed.
 *   The last put returns the chunks to the pool under the pool lock:
 *   a chunk whose head page still has references beyond the pool's own (a
 *   FOLL_PIN pin, a page spliced into a pipe, in-flight I/O) goes to the
 *   quarantine instead and is returned by a worker once it is idle.
 *
 * Module lifetime
 *   Every live region and a non-empty quarantine hold a module reference, so
 *   the module cannot be unloaded while user space can still reach pool
 *   memory; delete_module() then fails with EWOULDBLOCK.
 */
#ifndef _BELUGA_INTERNAL_H
#define _BELUGA_INTERNAL_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/kobject.h>
#include <linux/ioport.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/memremap.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <linux/beluga.h>

#include "beluga_compat.h"

#define BELUGA_CHUNK_PAGES	BIT(BELUGA_CHUNK_ORDER)
#define BELUGA_CHUNK_BYTES	(PAGE_SIZE << BELUGA_CHUNK_ORDER)
#define BELUGA_MAX_SOURCES	16

struct beluga_source;

/**
 * enum beluga_chunk_state - where a chunk is (beluga_pool.lock)
 * @BELUGA_CHUNK_FREE: on its source's free list; 0, what a zeroed chunk
 *	array starts with
 * @BELUGA_CHUNK_PRIVATE: in a region placed by the pool
 * @BELUGA_CHUNK_SHARED: in a shared region's fixed extent
 * @BELUGA_CHUNK_QUARANTINED: its region is freed but a page is still
 *	referenced (pin, pipe, I/O); on the quarantine list
 */
enum beluga_chunk_state {
	BELUGA_CHUNK_FREE = 0,		/* on its source's free list */
	BELUGA_CHUNK_PRIVATE,		/* in a region placed by the pool */
	BELUGA_CHUNK_SHARED,		/* in a shared region's fixed extent */
	BELUGA_CHUNK_QUARANTINED,	/* freed but still referenced */
};

/**
 * struct beluga_chunk - 2 MiB of physically contiguous pool memory
 * @page: the first page (for node sources the compound head, order
 *	BELUGA_CHUNK_ORDER, whose reference the pool owns)
 * @src: the source it was carved from; valid while the chunk is out of the
 *	free list (see "Source lifetime")
 * @node: on the source's free list or the quarantine (beluga_pool.lock)
 * @state: where it is (beluga_pool.lock)
 *
 * Lives in its source's @chunks array from carving to the source's free.
 */
struct beluga_chunk {
	struct page *page;		/* compound head, order BELUGA_CHUNK_ORDER */
	struct beluga_source *src;
	struct list_head node;		/* free list or quarantine */
	enum beluga_chunk_state state;	/* pool lock */
};

/**
 * struct beluga_source_ops - what differs between kinds of source
 * @chunk_idle: whether nothing but the pool references the pages of a chunk
 *	of this source (it may then go back to the free list)
 * @chunk_pinned: whether a page of the chunk has a FOLL_PIN pin
 * @free: give the source's memory back to the kernel and free the source;
 *	called once, at unload or when creating the source failed, with none
 *	of its chunks in a region or the quarantine
 *
 * Set by the file that creates sources of a kind (beluga_node.c,
 * beluga_range.c), called by beluga_pool.c (and @free by beluga_ioctl.c
 * after BELUGA_IOC_SOURCE_REMOVE).  The functions touch only the source
 * and chunk they are given and call nothing in beluga_pool.c.
 */
struct beluga_source_ops {
	bool (*chunk_idle)(struct beluga_chunk *c);
	bool (*chunk_pinned)(struct beluga_chunk *c);
	void (*free)(struct beluga_source *src);
};

/**
 * struct beluga_source - one memory source of the pool
 * @index: its slot in beluga_pool.sources[], fixed for its life
 * @kind: BELUGA_SOURCE_NODE or BELUGA_SOURCE_RANGE
 * @ops: what differs between kinds
 * @nid: the NUMA node of its memory
 * @has_cpus: the node has CPUs (ordinary DRAM, development only)
 * @name: empty for load-time sources; the name given to
 *	BELUGA_IOC_SOURCE_ADD otherwise (unique among sources)
 * @identity: what names the memory on every host (set_cookie=...), as
 *	user space gave it; may be empty
 * @phys: range sources: the claimed range's start
 * @bytes: range sources: the claimed range's length
 * @res: range sources: the claimed resource
 * @pgmap: range sources: the struct pages created for the range
 * @pgmap_live: @pgmap is mapped (memunmap_pages() is due)
 * @nr_chunks: chunks carved from it
 * @nr_free: chunks on @free_list; beluga_pool.lock
 * @chunks: @nr_chunks entries
 * @free_list: free chunks, LIFO; beluga_pool.lock
 * @kobj: sysfs sources/<index>; written under beluga_pool.sources_lock
 *	(or at load)
 *
 * Immutable once registered, except @nr_free, @free_list and @kobj.  Freed
 * by @ops->free after beluga_source_unregister() or at unload.
 */
struct beluga_source {
	unsigned int index;
	u32 kind;			/* BELUGA_SOURCE_* */
	const struct beluga_source_ops *ops;
	int nid;
	bool has_cpus;
	char name[BELUGA_NAME_MAX];
	char identity[BELUGA_NAME_MAX];
	/* BELUGA_SOURCE_RANGE only: the claimed range and its struct pages. */
	phys_addr_t phys;
	u64 bytes;
	struct resource *res;
	struct dev_pagemap pgmap;
	bool pgmap_live;
	unsigned long nr_chunks;
	unsigned long nr_free;		/* pool lock */
	struct beluga_chunk *chunks;	/* nr_chunks entries */
	struct list_head free_list;	/* pool lock; LIFO */
	struct kobject *kobj;		/* sysfs sources/<index> */
};

/**
 * struct beluga_counters - activity counters (sysfs counters/), atomics
 * @pmd_faults: faults mapped with one PMD
 * @pte_faults: faults mapped with a 4 KiB PTE
 * @alloc_failures: creates refused for lack of chunks or kernel memory
 * @regions_created: regions ever published
 * @regions_freed: regions ever freed
 */
struct beluga_counters {
	atomic64_t pmd_faults;
	atomic64_t pte_faults;
	atomic64_t alloc_failures;
	atomic64_t regions_created;
	atomic64_t regions_freed;
};

/**
 * struct beluga_pool - the module's one pool (beluga_pool)
 * @lock: the pool lock; what it protects: "Locking" above
 * @sources_lock: serialises adding and removing sources at run time
 * @sources: the sources by index; NULL for a free slot (pool lock)
 * @nr_sources: highest slot in use + 1 (pool lock)
 * @nr_chunks: chunks of every source (pool lock)
 * @nr_free: chunks on free lists (pool lock)
 * @nr_quarantined: chunks on @quarantine (pool lock)
 * @quarantine: chunks of freed regions still referenced (pool lock)
 * @quarantine_holds_module: the quarantine holds a module reference
 *	(pool lock)
 * @quarantine_work: returns idle quarantined chunks, every 100 ms while
 *	any is left
 * @rr_cursor: the source the next interleaved region starts at (pool lock)
 * @names: named regions by name (pool lock)
 * @regions: every region by id (pool lock)
 * @nr_regions: live regions (pool lock)
 * @next_id: the next region id (pool lock)
 * @mnt: pseudo file system of the region inodes
 * @counters: activity counters
 * @kobj: /sys/kernel/beluga
 * @sources_kobj: its sources/ directory
 * @regions_kobj: its regions/ directory
 * @quotas_kobj: its quotas/ directory
 * @quotas: struct beluga_quota_entry list (pool lock)
 * @default_quota_bytes: quota_bytes= (0: unlimited); set at load
 * @default_quota_regions: quota_regions= (0: unlimited); set at load
 */
struct beluga_pool {
	/*
	 * What it protects: "Locking" above.  Lock order: beluga_rfile.lock,
	 * then this lock, then the kernel's own (allocator, kernfs when a
	 * quota's sysfs directory is created).  Never held while copying
	 * to or from user space (mmap_lock), nor across beluga_region_put()
	 * (the release takes this lock), kobject_del() of a region or quota
	 * directory (it waits for sysfs show() calls, which take this lock)
	 * or cancel_delayed_work_sync(&quarantine_work) (the worker takes it).
	 */
	struct mutex lock;
	/*
	 * Serialises BELUGA_IOC_SOURCE_ADD and _REMOVE.  Lock order: this
	 * lock, then beluga_pool.lock.  Held across memremap_pages(),
	 * memunmap_pages() and the creation and kobject_del() of a source's
	 * sysfs directory, never while holding beluga_pool.lock or any region
	 * file's lock.
	 */
	struct mutex sources_lock;
	/* pool lock: a NULL slot below nr_sources is a removed source */
	struct beluga_source *sources[BELUGA_MAX_SOURCES];
	unsigned int nr_sources;	/* pool lock: highest slot in use + 1 */
	unsigned long nr_chunks;	/* pool lock */
	unsigned long nr_free;		/* pool lock */
	unsigned long nr_quarantined;	/* pool lock */
	struct list_head quarantine;	/* pool lock */
	bool quarantine_holds_module;	/* pool lock */
	struct delayed_work quarantine_work;
	unsigned int rr_cursor;		/* pool lock: interleave start */
	struct rb_root names;		/* pool lock: named regions by name */
	struct xarray regions;		/* pool lock: every region by id */
	unsigned int nr_regions;	/* pool lock */
	u64 next_id;			/* pool lock */
	struct vfsmount *mnt;		/* pseudo fs for region inodes */
	struct beluga_counters counters;
	struct kobject *kobj;		/* /sys/kernel/beluga */
	struct kobject *sources_kobj;
	struct kobject *regions_kobj;
	struct kobject *quotas_kobj;
	struct list_head quotas;	/* pool lock: struct beluga_quota_entry */
	u64 default_quota_bytes;
	u32 default_quota_regions;
};

/**
 * struct beluga_quota_entry - one uid's usage and limits
 * @node: in beluga_pool.quotas (pool lock)
 * @uid: the user
 * @max_bytes: byte limit, 0 = unlimited (pool lock)
 * @used_bytes: bytes of live regions charged to @uid (pool lock)
 * @max_regions: region limit, 0 = unlimited (pool lock)
 * @used_regions: live regions charged to @uid (pool lock)
 * @kobj: sysfs quotas/<uid>
 *
 * Created on a uid's first region or QUOTA_SET, freed at unload.
 */
struct beluga_quota_entry {
	struct list_head node;		/* pool lock */
	kuid_t uid;
	u64 max_bytes;			/* pool lock; 0 = unlimited */
	u64 used_bytes;			/* pool lock */
	u32 max_regions;		/* pool lock; 0 = unlimited */
	u32 used_regions;		/* pool lock */
	struct kobject *kobj;		/* sysfs quotas/<uid> */
};

/**
 * struct beluga_region - a set of chunks user space reaches through files
 * @ref: "Region lifetime" above
 * @id: unique for the life of the module
 * @name: its name, empty for an unnamed ephemeral region (pool lock)
 * @named: in the namespace (pool lock)
 * @ephemeral: freed on last close, never named
 * @shared: maps a fixed extent of a range source, never zeroed
 *	(beluga_shared.c)
 * @shared_source: with @shared, the source's index
 * @shared_offset: with @shared, the extent's byte offset in the source
 * @uid: owner (pool lock)
 * @gid: group (pool lock)
 * @mode: permission bits (pool lock)
 * @source_kind: kind of every chunk
 * @size: bytes
 * @nr_chunks: @size / BELUGA_CHUNK_BYTES
 * @chunks: the chunks in mapping order; written before the region is
 *	published, read-only afterwards (faults read it without a lock)
 * @open_count: open region files
 * @map_count: VMAs mapping it
 * @gpu_registrations: BELUGA_IOC_GPU_REGISTER references (pool lock)
 * @quota: the entry it is charged to, NULL for shared regions (pool lock)
 * @name_node: in beluga_pool.names (pool lock)
 * @inode: one anonymous inode, the mapping of every file of the region
 * @kobj: sysfs regions/<id>
 */
struct beluga_region {
	struct kref ref;
	u64 id;
	char name[BELUGA_NAME_MAX];	/* pool lock */
	bool named;			/* pool lock: in the namespace */
	bool ephemeral;
	/*
	 * A shared region maps the fixed extent [shared_offset, + size) of
	 * source shared_source and is never zeroed (beluga_shared.c).
	 */
	bool shared;
	unsigned int shared_source;
	u64 shared_offset;
	kuid_t uid;			/* pool lock */
	kgid_t gid;			/* pool lock */
	umode_t mode;			/* pool lock */
	u32 source_kind;
	u64 size;
	unsigned long nr_chunks;
	struct beluga_chunk **chunks;	/* immutable once published */
	atomic_t open_count;
	atomic_t map_count;
	unsigned int gpu_registrations;	/* pool lock */
	struct beluga_quota_entry *quota; /* charged entry; pool lock */
	struct rb_node name_node;	/* pool lock */
	struct inode *inode;		/* one anonymous inode per region */
	struct kobject *kobj;		/* sysfs regions/<id> */
};

/**
 * struct beluga_rfile - one open region file (its struct file's private data)
 * @region: the region; the file holds a reference
 * @lock: protects @gpus; its lock order is at its declaration
 * @gpus: the GPU registrations this file owns (struct beluga_gpu_reg),
 *	dropped when the file is released
 */
struct beluga_rfile {
	struct beluga_region *region;
	/*
	 * Protects gpus.  Lock order: taken before beluga_pool.lock (dropping
	 * a registration updates the region's count under it) and held while
	 * copying to user space, so never taken under beluga_pool.lock.
	 */
	struct mutex lock;
	struct list_head gpus;		/* struct beluga_gpu_reg */
};

extern struct beluga_pool beluga_pool;

/**
 * beluga_file_region() - the region of a region file
 * @file: a file for which beluga_is_region_file() is true
 *
 * Context: any; the file holds a reference to the region.
 * Return: the region.
 */
static inline struct beluga_region *beluga_file_region(struct file *file)
{
	return ((struct beluga_rfile *)file->private_data)->region;
}

/**
 * beluga_zeroed() - whether a buffer is all zero (ioctl arguments' padding)
 * @p: the buffer
 * @len: its length in bytes
 *
 * Context: any.
 * Return: true when all @len bytes at @p are zero.
 */
static inline bool beluga_zeroed(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

#define BELUGA_RESERVED_OK(s) beluga_zeroed((s)->reserved, sizeof((s)->reserved))

/* beluga_pool.c */
void beluga_pool_init(void);
void beluga_pool_exit(void);
struct beluga_source *beluga_source_new(u32 kind, int nid,
					const struct beluga_source_ops *ops);
int beluga_source_register(struct beluga_source *src);
struct beluga_source *beluga_source_unregister(const char *name,
					       unsigned int index);
unsigned long beluga_pool_total_chunks(void);
int beluga_pool_resolve_kind(u32 kind, int source_index);
int beluga_pool_take(struct beluga_region *r, u32 kind, int source_index);
int beluga_pool_take_extent(struct beluga_region *r, unsigned int source_index,
			    u64 offset);
void beluga_pool_give_back(struct beluga_region *r);

/**
 * beluga_chunk_idle() - whether nothing but the pool references a chunk
 * @c: a chunk
 *
 * Context: any; the caller keeps @c's source alive.
 * Return: true when @c can be reused.
 */
static inline bool beluga_chunk_idle(struct beluga_chunk *c)
{
	return c->src->ops->chunk_idle(c);
}

/**
 * beluga_chunk_is_pinned() - whether a page of a chunk has a FOLL_PIN pin
 * @c: a chunk
 *
 * Context: any; the caller keeps @c's source alive.
 * Return: true when a page of @c is pinned.
 */
static inline bool beluga_chunk_is_pinned(struct beluga_chunk *c)
{
	return c->src->ops->chunk_pinned(c);
}

/* beluga_node.c */
int beluga_nodes_parse(const char *param);

/* beluga_range.c */
int beluga_ranges_parse(const char *param);
struct beluga_source *beluga_range_add(phys_addr_t start, u64 bytes,
				       const char *name, const char *identity);

/* beluga_stats.c */
void beluga_region_fill_stat(struct beluga_region *r,
			     struct beluga_region_stat *st);
int beluga_region_stat_by_id(u64 id, struct beluga_region_stat *st);
unsigned long beluga_pool_pinned_chunks(void);

/* beluga_gpu.c */
long beluga_gpu_register(struct file *file, void __user *argp);
long beluga_gpu_unregister(struct file *file, void __user *argp);
void beluga_gpu_release_all(struct beluga_rfile *rf);

/* beluga_quota.c */
int beluga_quota_charge(struct beluga_region *r);
void beluga_quota_uncharge(struct beluga_region *r);
long beluga_ioc_quota_get(void __user *argp);
long beluga_ioc_quota_set(void __user *argp);
void beluga_quota_exit(void);

/* beluga_region.c */
int beluga_region_fs_init(void);
void beluga_region_fs_exit(void);
bool beluga_name_valid(const char *name, bool allow_empty);
struct beluga_region *beluga_region_create(const struct beluga_region_create *req,
					   u32 kind);
struct beluga_region *beluga_region_create_shared(const char *name, u64 size,
						  u32 mode,
						  unsigned int source_index,
						  u64 offset);
struct beluga_region *beluga_region_lookup(const char *name);
void beluga_region_put(struct beluga_region *r);
int beluga_region_may_open(struct beluga_region *r, bool write);
bool beluga_region_is_owner(struct beluga_region *r);
int beluga_region_destroy(const char *name);
int beluga_region_unpublish(struct beluga_region *r);
int beluga_region_setattr(const struct beluga_region_setattr *req);

/* beluga_shared.c */
struct beluga_region *beluga_shared_define(const struct beluga_shared_define *req);

/* beluga_mmap.c */
int beluga_region_mmap(struct file *file, struct vm_area_struct *vma);
unsigned long beluga_region_get_unmapped_area(struct file *file,
					      unsigned long addr,
					      unsigned long len,
					      unsigned long pgoff,
					      unsigned long flags);

/* beluga_file.c */
struct file *beluga_region_file(struct beluga_region *r, bool write);
bool beluga_is_region_file(struct file *file);

/* beluga_ioctl.c */
long beluga_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

/* beluga_sysfs.c */
int beluga_sysfs_init(void);
void beluga_sysfs_exit(void);
int beluga_sysfs_add_region(struct beluga_region *r);
void beluga_sysfs_del_region(struct beluga_region *r);
int beluga_sysfs_add_source(struct beluga_source *src);
void beluga_sysfs_del_source(struct beluga_source *src);
void beluga_sysfs_add_quota(struct beluga_quota_entry *e);
void beluga_sysfs_del_quota(struct beluga_quota_entry *e);

#endif /* _BELUGA_INTERNAL_H */
