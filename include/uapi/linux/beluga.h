/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * beluga.h - user-space ABI of the Beluga CXL memory-pool driver (/dev/beluga)
 *
 * Beluga carves CXL memory (CPU-less NUMA nodes, and from ABI 1.1 reserved
 * physical ranges) into pinned 2 MiB chunks and hands out named regions.
 * From ABI 1.2 a region may instead map a fixed extent of a range source
 * that several hosts share (BELUGA_IOC_SHARED_DEFINE), never zeroed.  From ABI
 * 1.3 range sources can be added and removed at run time
 * (BELUGA_IOC_SOURCE_ADD, BELUGA_IOC_SOURCE_REMOVE).  A region
 * is reached through a *region file descriptor*: mmap it (MAP_SHARED, 2 MiB
 * aligned) to get huge, long-term pinnable mappings; pass it to another
 * process over a unix socket; or open the region again by name from any
 * process that has permission.
 *
 * Rules every structure here follows (Documentation/process/botching-up-ioctls.rst):
 *  - only fixed-width types, natural alignment, explicit padding, sizes a
 *    multiple of 8 so 32- and 64-bit user space see the same layout;
 *  - a flags field in every structure: unknown flags are rejected (EINVAL);
 *  - padding and reserved fields must be zero on input (EINVAL otherwise) and
 *    are zeroed on output; a later ABI minor may give them meaning behind a
 *    new flag or feature bit;
 *  - the size of each structure is encoded in its command number, so an
 *    extended structure gets a new command and old binaries keep working;
 *  - unknown commands fail with ENOTTY.
 *
 * Documentation/uapi.md lists every command with its errno table.
 */
#ifndef _UAPI_LINUX_BELUGA_H
#define _UAPI_LINUX_BELUGA_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Magic 0xBE: free in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define BELUGA_IOC_MAGIC 0xBE

/*
 * ABI version.  The minor grows when commands or feature bits are added; the
 * major changes only if something that shipped changes meaning (never, we hope).
 * The driver reports its own version and the oldest user-space ABI it still
 * serves, so both sides can tell "driver too old" from "library too old".
 */
#define BELUGA_ABI_MAJOR 1
#define BELUGA_ABI_MINOR 3
#define BELUGA_ABI_VERSION(major, minor) (((__u32)(major) << 16) | (__u32)(minor))
#define BELUGA_ABI_CURRENT BELUGA_ABI_VERSION(BELUGA_ABI_MAJOR, BELUGA_ABI_MINOR)

#define BELUGA_DEVICE_PATH "/dev/beluga"
#define BELUGA_NAME_MAX 64		/* bytes in a name field, NUL included */
#define BELUGA_CHUNK_SIZE (2ULL << 20)	/* pool granule: one PMD mapping */

/* Feature bits reported by BELUGA_IOC_INFO.features. */
#define BELUGA_FEAT_NODE_SOURCES	(1ULL << 0) /* nodes= sources */
#define BELUGA_FEAT_EPHEMERAL		(1ULL << 1) /* BELUGA_CREATE_EPHEMERAL */
#define BELUGA_FEAT_PMD_MAPPINGS	(1ULL << 2) /* 2 MiB PMD user mappings */
#define BELUGA_FEAT_LONGTERM_PIN	(1ULL << 3) /* FOLL_LONGTERM-pinnable */
#define BELUGA_FEAT_RANGE_SOURCES	(1ULL << 4) /* ranges= sources (1.1) */
#define BELUGA_FEAT_GPU_REGISTER	(1ULL << 5) /* BELUGA_IOC_GPU_* (1.1) */
#define BELUGA_FEAT_QUOTAS		(1ULL << 6) /* BELUGA_IOC_QUOTA_* (1.1) */
#define BELUGA_FEAT_SHARED_REGIONS	(1ULL << 7) /* BELUGA_IOC_SHARED_DEFINE (1.2) */
#define BELUGA_FEAT_SOURCE_HOTPLUG	(1ULL << 8) /* BELUGA_IOC_SOURCE_ADD/REMOVE (1.3) */

/* Source kinds. */
#define BELUGA_SOURCE_ANY	0	/* create: any kind (never mixes kinds) */
#define BELUGA_SOURCE_NODE	1	/* a (CPU-less) NUMA node */
#define BELUGA_SOURCE_RANGE	2	/* a reserved physical range */

/*
 * struct beluga_info - BELUGA_IOC_INFO: driver and pool summary.
 * @flags:         in: must be 0.
 * @abi_version:   out: BELUGA_ABI_VERSION() of the driver.
 * @min_abi_version: out: oldest user-space ABI the driver still serves.
 * @features:      out: BELUGA_FEAT_* bits.
 * @chunk_size:    out: bytes per chunk (BELUGA_CHUNK_SIZE).
 * @total_bytes:   out: bytes carved into the pool, all sources.
 * @free_bytes:    out: bytes not given to any region.
 * @quarantined_bytes: out: bytes of destroyed regions still referenced
 *                 (pinned, spliced into a pipe, in-flight I/O).
 * @nr_sources:    out: one past the highest source index in use (index them
 *                 with SOURCE_INFO).  Until a source is removed at run time
 *                 (1.3) the indexes in use are 0 .. nr_sources - 1; after
 *                 that an index below it may be free (SOURCE_INFO: ENOENT).
 * @nr_regions:    out: live regions, named and ephemeral.
 * @reserved:      must be 0; zeroed on output.
 */
struct beluga_info {
	__u32 flags;
	__u32 abi_version;
	__u32 min_abi_version;
	__u32 __pad;
	__u64 features;
	__u64 chunk_size;
	__u64 total_bytes;
	__u64 free_bytes;
	__u64 quarantined_bytes;
	__u32 nr_sources;
	__u32 nr_regions;
	__u64 reserved[6];
};

/*
 * struct beluga_source_info - BELUGA_IOC_SOURCE_INFO: one pool source.
 * @index:       in: 0 .. nr_sources - 1 (ENOENT past the end, or for an
 *               index whose source was removed at run time, 1.3).
 * @flags:       in: must be 0.  out: BELUGA_SOURCE_F_* bits.
 * @kind:        out: BELUGA_SOURCE_NODE or BELUGA_SOURCE_RANGE.
 * @node:        out: NUMA node id of the memory.
 * @total_bytes: out: bytes carved from this source.
 * @free_bytes:  out: bytes of this source not given to any region.
 */
#define BELUGA_SOURCE_F_HAS_CPUS	(1U << 0) /* ordinary DRAM node (dev only) */

struct beluga_source_info {
	__u32 index;
	__u32 flags;
	__u32 kind;
	__s32 node;
	__u64 total_bytes;
	__u64 free_bytes;
	__u64 reserved[4];
};

/*
 * struct beluga_region_create - BELUGA_IOC_REGION_CREATE.
 * @name:   in: 1..63 bytes of [A-Za-z0-9._-], NUL-terminated, rest zero.
 *          Ephemeral regions may leave it empty (all zero).
 * @size:   in: bytes, a non-zero multiple of BELUGA_CHUNK_SIZE.
 * @flags:  in: BELUGA_CREATE_* bits.
 * @mode:   in: permission bits (0..0777) checked on open, like a file's.
 * @source_kind: in: BELUGA_SOURCE_ANY or a kind; chunks never mix kinds, so
 *          ANY with sources of both kinds and @source_index -1 is EINVAL.
 * @source_index: in: -1 to interleave over every source of the kind, or
 *          one source index to take every chunk from it.
 * @fd:     out: the new region file descriptor, opened read-write.
 * @id:     out: region id, unique for the life of the module.
 */
#define BELUGA_CREATE_EPHEMERAL	(1U << 0) /* no name; freed on last close */
#define BELUGA_CREATE_CLOEXEC	(1U << 1) /* O_CLOEXEC on the new fd */
#define BELUGA_CREATE_FLAGS_ALL	(BELUGA_CREATE_EPHEMERAL | BELUGA_CREATE_CLOEXEC)

struct beluga_region_create {
	char name[BELUGA_NAME_MAX];
	__u64 size;
	__u32 flags;
	__u32 mode;
	__u32 source_kind;
	__s32 source_index;
	__s32 fd;
	__u32 __pad;
	__u64 id;
	__u64 reserved[4];
};

/*
 * struct beluga_region_open - BELUGA_IOC_REGION_OPEN: a new fd for a named region.
 * @name:  in: the region's name.
 * @flags: in: BELUGA_OPEN_* bits.  Without BELUGA_OPEN_RDONLY the caller
 *         needs read and write permission; with it, read permission, and
 *         PROT_WRITE mappings of the fd fail with EACCES.
 * @fd:    out: the region file descriptor.
 * @id:    out: region id.
 */
#define BELUGA_OPEN_RDONLY	(1U << 0)
#define BELUGA_OPEN_CLOEXEC	(1U << 1)
#define BELUGA_OPEN_FLAGS_ALL	(BELUGA_OPEN_RDONLY | BELUGA_OPEN_CLOEXEC)

struct beluga_region_open {
	char name[BELUGA_NAME_MAX];
	__u32 flags;
	__s32 fd;
	__u64 id;
	__u64 reserved[4];
};

/*
 * struct beluga_region_name - BELUGA_IOC_REGION_DESTROY: remove a name.
 * Like shm_unlink(): the name disappears at once; the memory returns to the
 * pool after the last fd and mapping are gone (and no page is pinned).
 * Only the owner or CAP_SYS_ADMIN may destroy (EPERM).
 */
struct beluga_region_name {
	char name[BELUGA_NAME_MAX];
	__u32 flags;
	__u32 __pad;
	__u64 reserved[4];
};

/*
 * struct beluga_region_stat - one region's state (STAT, REGION_FD_STAT, LIST).
 * @name:        in (STAT only): the region's name.  out: the name; empty for
 *               an ephemeral region created without one.
 * @flags:       in: must be 0.  out: BELUGA_REGION_F_* bits.
 * @mode:        out: permission bits.
 * @uid, @gid:   out: owner, in the caller's user namespace.
 * @source_kind: out: kind of every chunk.
 * @id:          out: region id.
 * @size:        out: bytes.
 * @nr_chunks:   out: size / BELUGA_CHUNK_SIZE.
 * @open_count:  out: open region file descriptions.
 * @map_count:   out: VMAs mapping the region, all processes.
 * @pinned_chunks: out: chunks with at least one long-term (FOLL_PIN) pin.
 * @shared_offset: out (1.2): with BELUGA_REGION_F_SHARED, the byte offset of
 *               the region's extent in its source; 0 otherwise.
 * @shared_source: out (1.2): with BELUGA_REGION_F_SHARED, the source index;
 *               0 otherwise.
 */
#define BELUGA_REGION_F_EPHEMERAL	(1U << 0)
#define BELUGA_REGION_F_DESTROYED	(1U << 1) /* name removed, still open */
#define BELUGA_REGION_F_SHARED		(1U << 2) /* fixed extent (1.2) */

struct beluga_region_stat {
	char name[BELUGA_NAME_MAX];
	__u32 flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 source_kind;
	__u32 nr_chunks;
	__u64 id;
	__u64 size;
	__u32 open_count;
	__u32 map_count;
	__u32 pinned_chunks;
	__u32 __pad;
	__u64 shared_offset;
	__u32 shared_source;
	__u32 __pad2;
	__u64 reserved[2];
};

/*
 * struct beluga_region_list - BELUGA_IOC_REGION_LIST: snapshot of all regions.
 * @entries: in: user pointer to an array of struct beluga_region_stat.
 * @capacity: in: entries available at @entries (may be 0 to ask for a count).
 * @flags:   in: must be 0.
 * @count:   out: regions that exist; at most @capacity were written, in
 *           ascending id order.  Retry with a larger array if count > capacity.
 */
struct beluga_region_list {
	__u64 entries;
	__u32 capacity;
	__u32 flags;
	__u32 count;
	__u32 __pad;
	__u64 reserved[4];
};

/*
 * struct beluga_region_setattr - BELUGA_IOC_REGION_SETATTR: chmod/chown.
 * @name:  in: the region.
 * @flags: in: BELUGA_SETATTR_* bits saying which fields to apply (>= 1).
 * @mode:  in: new permission bits (0..0777); owner or CAP_SYS_ADMIN.
 * @uid, @gid: in: new owner; CAP_SYS_ADMIN only.
 */
#define BELUGA_SETATTR_MODE	(1U << 0)
#define BELUGA_SETATTR_UID	(1U << 1)
#define BELUGA_SETATTR_GID	(1U << 2)
#define BELUGA_SETATTR_FLAGS_ALL \
	(BELUGA_SETATTR_MODE | BELUGA_SETATTR_UID | BELUGA_SETATTR_GID)

struct beluga_region_setattr {
	char name[BELUGA_NAME_MAX];
	__u32 flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u64 reserved[4];
};

/*
 * struct beluga_region_layout - BELUGA_IOC_REGION_LAYOUT (region fd):
 * where each chunk lives, so callers can check interleaving and place
 * threads or GPUs near the memory.
 * @nodes:    in: user pointer to an array of __s32, one NUMA node per chunk.
 * @capacity: in: entries at @nodes.
 * @flags:    in: must be 0.
 * @nr_chunks: out: chunks in the region; min(capacity, nr_chunks) written.
 * @chunk_size: out: bytes per chunk.
 */
struct beluga_region_layout {
	__u64 nodes;
	__u32 capacity;
	__u32 flags;
	__u32 nr_chunks;
	__u32 __pad;
	__u64 chunk_size;
	__u64 reserved[4];
};

/*
 * struct beluga_quota - BELUGA_IOC_QUOTA_GET / BELUGA_IOC_QUOTA_SET (ABI 1.1).
 * Regions are charged to the uid that created them, for their whole life.
 * @flags:       in: 0 for GET; for SET, BELUGA_QUOTA_SET_* saying which
 *               limits to change (>= 1).  SET needs CAP_SYS_ADMIN.
 * @uid:         in: the user, in the caller's user namespace.
 * @max_bytes:   in (SET) / out: byte limit, 0 = unlimited.
 * @used_bytes:  out: bytes of live regions charged to @uid.
 * @max_regions: in (SET) / out: region limit, 0 = unlimited.
 * @used_regions: out: live regions charged to @uid.
 * Creating a region past a limit fails with EDQUOT.
 */
#define BELUGA_QUOTA_SET_BYTES		(1U << 0)
#define BELUGA_QUOTA_SET_REGIONS	(1U << 1)
#define BELUGA_QUOTA_SET_ALL (BELUGA_QUOTA_SET_BYTES | BELUGA_QUOTA_SET_REGIONS)

struct beluga_quota {
	__u32 flags;
	__u32 uid;
	__u64 max_bytes;
	__u64 used_bytes;
	__u32 max_regions;
	__u32 used_regions;
	__u64 reserved[4];
};

/*
 * struct beluga_gpu_register - BELUGA_IOC_GPU_REGISTER (region fd, ABI 1.1).
 * The kernel cannot call the GPU driver; this ioctl checks the region can be
 * registered (fully populated, long-term pinnable), takes a reference owned
 * by this fd that makes BELUGA_IOC_REGION_DESTROY fail with EBUSY until it
 * is dropped (GPU_UNREGISTER or closing the fd), and returns what user space
 * needs for cudaHostRegister().
 * @flags:      in: must be 0.
 * @pci_domain: in: PCI domain of the GPU (0..0xffff).
 * @pci_bdf:    in: bus << 8 | device << 3 | function.  Unknown: ENODEV.
 * @gpu_node:   out: NUMA node of the GPU, -1 if the platform does not say.
 * @socket:     out: BELUGA_GPU_SOCKET_*: whether the region's memory is
 *              attached to the GPU's socket (nearest CPU node by distance).
 * @capacity:   in: entries at @nodes (0 allowed).
 * @nodes:      in: user pointer to __s32[capacity]: NUMA node per chunk.
 * @nr_chunks:  out: chunks in the region.
 * @registrations: out: this fd's registrations of this GPU, this one included.
 * @chunk_size: out: bytes per chunk (each physically contiguous).
 * @max_register_bytes: out: largest span to pass to one cudaHostRegister().
 */
#define BELUGA_GPU_SOCKET_UNKNOWN	0
#define BELUGA_GPU_SOCKET_SAME		1 /* every chunk on the GPU's socket */
#define BELUGA_GPU_SOCKET_OTHER		2 /* no chunk on the GPU's socket */
#define BELUGA_GPU_SOCKET_MIXED		3

struct beluga_gpu_register {
	__u32 flags;
	__u32 pci_domain;
	__u32 pci_bdf;
	__s32 gpu_node;
	__u32 socket;
	__u32 capacity;
	__u64 nodes;
	__u32 nr_chunks;
	__u32 registrations;
	__u64 chunk_size;
	__u64 max_register_bytes;
	__u64 reserved[4];
};

/* struct beluga_gpu_unregister - BELUGA_IOC_GPU_UNREGISTER (region fd). */
struct beluga_gpu_unregister {
	__u32 flags;
	__u32 pci_domain;
	__u32 pci_bdf;
	__u32 __pad;
	__u64 reserved[4];
};

/*
 * struct beluga_shared_define - BELUGA_IOC_SHARED_DEFINE (ABI 1.2): define a
 * shared region, a named region over a fixed extent of one range source.
 * Every host that shares the source defines the same extent under the same
 * name and maps the same bytes.  The driver never zeroes a shared region's
 * memory: not when it is defined, opened or destroyed.  Its chunks leave the
 * pool's free list while the region exists, so private regions never get
 * them.  Needs CAP_SYS_ADMIN; opening and mapping follow @mode and the owner
 * (the caller's fsuid/fsgid; change them with REGION_SETATTR) as for any
 * region.  REGION_DESTROY of a shared region fails with EBUSY while any fd
 * or mapping of it exists; after it the extent's chunks return to the pool.
 * @name:   in: the region's name (1..63 bytes, as for REGION_CREATE).
 * @offset: in: bytes from the start of the source, a multiple of
 *          BELUGA_CHUNK_SIZE.
 * @size:   in: bytes, a non-zero multiple of BELUGA_CHUNK_SIZE; the extent
 *          must end inside the source.
 * @flags:  in: BELUGA_SHARED_* bits.
 * @mode:   in: permission bits (0..0777).
 * @source_index: in: the source, which must be of kind BELUGA_SOURCE_RANGE.
 * @fd:     out: a region file descriptor, opened read-write.
 * @id:     out: region id.
 */
#define BELUGA_SHARED_CLOEXEC	(1U << 0) /* O_CLOEXEC on the new fd */
#define BELUGA_SHARED_FLAGS_ALL	BELUGA_SHARED_CLOEXEC

struct beluga_shared_define {
	char name[BELUGA_NAME_MAX];
	__u64 offset;
	__u64 size;
	__u32 flags;
	__u32 mode;
	__u32 source_index;
	__s32 fd;
	__u64 id;
	__u64 reserved[4];
};

/*
 * struct beluga_source_add - BELUGA_IOC_SOURCE_ADD (ABI 1.3): pool a reserved
 * physical range at run time, as ranges= does at load (e.g. a CXL region's
 * device-dax instance that user space released from device-dax first).
 * Needs CAP_SYS_ADMIN.  The range must lie inside memory resources of the
 * platform (/proc/iomem), not in System RAM, and be owned by no driver.
 * @start:    in: physical address, a multiple of BELUGA_CHUNK_SIZE.
 * @size:     in: bytes, a non-zero multiple of BELUGA_CHUNK_SIZE.
 * @name:     in: the source's name, 1..63 bytes of [A-Za-z0-9._-] as for
 *            regions, unique among the pool's sources (e.g. "dax0.0").
 * @identity: in: what names the memory on every host that shares it (e.g.
 *            "set_cookie=0x..."), 0..63 printable ASCII bytes without
 *            spaces; the driver only shows it (sysfs sources/N/identity).
 * @flags:    in: must be 0.
 * @index:    in: must be 0.  out: the new source's index (the lowest free).
 */
struct beluga_source_add {
	__u64 start;
	__u64 size;
	char name[BELUGA_NAME_MAX];
	char identity[BELUGA_NAME_MAX];
	__u32 flags;
	__u32 index;
	__u64 reserved[4];
};

/*
 * struct beluga_source_remove - BELUGA_IOC_SOURCE_REMOVE (ABI 1.3): take a
 * range source out of the pool and release its range (whoever owned it
 * before may claim it again).  Needs CAP_SYS_ADMIN.  Refused with EBUSY
 * while any chunk of the source is in a region or the quarantine.  Other
 * sources keep their indexes.
 * @name:  in: the source's name, or empty to name it by @index.
 * @index: in: with an empty @name, the source's index; 0 otherwise.
 * @flags: in: must be 0.
 */
struct beluga_source_remove {
	char name[BELUGA_NAME_MAX];
	__u32 index;
	__u32 flags;
	__u64 reserved[4];
};

/* Commands on /dev/beluga. */
#define BELUGA_IOC_INFO		_IOWR(BELUGA_IOC_MAGIC, 0x00, struct beluga_info)
#define BELUGA_IOC_SOURCE_INFO	_IOWR(BELUGA_IOC_MAGIC, 0x01, struct beluga_source_info)
#define BELUGA_IOC_REGION_CREATE _IOWR(BELUGA_IOC_MAGIC, 0x02, struct beluga_region_create)
#define BELUGA_IOC_REGION_OPEN	_IOWR(BELUGA_IOC_MAGIC, 0x03, struct beluga_region_open)
#define BELUGA_IOC_REGION_DESTROY _IOW(BELUGA_IOC_MAGIC, 0x04, struct beluga_region_name)
#define BELUGA_IOC_REGION_STAT	_IOWR(BELUGA_IOC_MAGIC, 0x05, struct beluga_region_stat)
#define BELUGA_IOC_REGION_LIST	_IOWR(BELUGA_IOC_MAGIC, 0x06, struct beluga_region_list)
#define BELUGA_IOC_REGION_SETATTR _IOW(BELUGA_IOC_MAGIC, 0x07, struct beluga_region_setattr)
#define BELUGA_IOC_QUOTA_GET	_IOWR(BELUGA_IOC_MAGIC, 0x08, struct beluga_quota)
#define BELUGA_IOC_QUOTA_SET	_IOWR(BELUGA_IOC_MAGIC, 0x09, struct beluga_quota)
#define BELUGA_IOC_SHARED_DEFINE _IOWR(BELUGA_IOC_MAGIC, 0x0a, struct beluga_shared_define)
#define BELUGA_IOC_SOURCE_ADD	_IOWR(BELUGA_IOC_MAGIC, 0x0b, struct beluga_source_add)
#define BELUGA_IOC_SOURCE_REMOVE _IOW(BELUGA_IOC_MAGIC, 0x0c, struct beluga_source_remove)

/* Commands on a region file descriptor (0x40 and up). */
#define BELUGA_IOC_REGION_FD_STAT _IOWR(BELUGA_IOC_MAGIC, 0x40, struct beluga_region_stat)
#define BELUGA_IOC_REGION_LAYOUT _IOWR(BELUGA_IOC_MAGIC, 0x41, struct beluga_region_layout)
#define BELUGA_IOC_GPU_REGISTER	_IOWR(BELUGA_IOC_MAGIC, 0x42, struct beluga_gpu_register)
#define BELUGA_IOC_GPU_UNREGISTER _IOW(BELUGA_IOC_MAGIC, 0x43, struct beluga_gpu_unregister)

#endif /* _UAPI_LINUX_BELUGA_H */
