/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: libbeluga public C API - named regions of a CXL memory pool.
 *
 * libbeluga hands out named regions of a memory pool and maps them into the
 * address space.  Two backends sit behind the same API:
 *
 *  - kernel: the beluga driver (/dev/beluga): regions are pinned 2 MiB chunks
 *    of CXL memory (CPU-less NUMA nodes), mappable with 2 MiB page tables and
 *    long-term pinnable (RDMA, GPU registration);
 *    From driver ABI 1.2 the kernel backend can also define shared regions:
 *    a fixed extent of a range source that several hosts map identically;
 *  - user:   hosts without the driver (containers, laptops, CI): regions are
 *    shared-memory files (hugetlbfs where a mount with free 2 MiB pages exists,
 *    else tmpfs under /dev/shm/beluga-<pool>/) bound to NUMA nodes with mbind,
 *    prefaulted and locked.
 *
 * The backend is chosen when the pool is opened: the option, else the
 * environment variable BELUGA_BACKEND=kernel|user, else the driver when
 * /dev/beluga exists and user space otherwise.
 *
 * Conventions, for every function below:
 *  - functions return 0 (or a non-negative count) on success and a negative
 *    error code on failure: -errno, or -BELUGA_E* (values above
 *    BELUGA_ERRNO_BASE) for errors errno has no name for.  beluga_strerror()
 *    turns either into a sentence that says what to do;
 *  - nothing is printed unless BELUGA_LOG=1 (errors), 2 (warnings) or
 *    3 (debug) is set in the environment, or the pool options ask for it;
 *  - handles are opaque and reference counted: a region keeps its pool
 *    alive, a mapping its region, a GPU registration its mapping, so the
 *    release functions may be called in any order and never fail;
 *  - the library has no global state; handles may be used from several
 *    threads at once, but must not be released while another thread uses them;
 *  - every file descriptor the library opens is close-on-exec.
 *
 * Names: 1..63 bytes of [A-Za-z0-9._-].  Sizes: a non-zero multiple of
 * BELUGA_REGION_ALIGN (2 MiB).  Permissions: like files (mode 0..0777,
 * owner/group/other; root bypasses), only the owner (or root) may destroy or
 * chmod, only root may chown.
 */
#ifndef BELUGA_BELUGA_H
#define BELUGA_BELUGA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BELUGA_API __attribute__((visibility("default")))
#else
#define BELUGA_API
#endif

/* ------------------------------------------------------------------------ */
/* Constants                                                                 */
/* ------------------------------------------------------------------------ */

#define BELUGA_REGION_NAME_MAX	64		/* bytes, NUL included */
#define BELUGA_REGION_ALIGN	(2ULL << 20)	/* size and map granule */
#define BELUGA_ALL_SOURCES	(-1)		/* interleave over every source */

/* Library-specific error codes (returned negated). */
#define BELUGA_ERRNO_BASE	1000
#define BELUGA_EDRIVER_TOO_OLD	1001	/* driver ABI older than the library needs */
#define BELUGA_ELIBRARY_TOO_OLD	1002	/* driver no longer serves this library's ABI */
#define BELUGA_ENODRIVER	1003	/* kernel backend asked for, /dev/beluga absent */
#define BELUGA_ENOGPU		1004	/* no usable GPU or NVIDIA driver */
#define BELUGA_ENOCUDA		1005	/* library built without CUDA support */
#define BELUGA_EPLACEMENT	1006	/* pages left their NUMA node (e.g. on GPU pin) */
#define BELUGA_ERRNO_LAST	1006

/* Backends. */
enum beluga_backend {
	BELUGA_BACKEND_AUTO = 0,	/* option: BELUGA_BACKEND, else detect */
	BELUGA_BACKEND_KERNEL = 1,
	BELUGA_BACKEND_USER = 2,
};

/* Feature bits of struct beluga_pool_info (same values as the driver's). */
#define BELUGA_FEATURE_NODE_SOURCES	(1ULL << 0)
#define BELUGA_FEATURE_EPHEMERAL	(1ULL << 1)
#define BELUGA_FEATURE_PMD_MAPPINGS	(1ULL << 2)	/* 2 MiB page tables */
#define BELUGA_FEATURE_LONGTERM_PIN	(1ULL << 3)
#define BELUGA_FEATURE_RANGE_SOURCES	(1ULL << 4)
#define BELUGA_FEATURE_GPU_REGISTER	(1ULL << 5)	/* driver-side GPU accounting */
#define BELUGA_FEATURE_QUOTAS		(1ULL << 6)
#define BELUGA_FEATURE_SHARED_REGIONS	(1ULL << 7)	/* beluga_shared_define() */
#define BELUGA_FEATURE_SOURCE_HOTPLUG	(1ULL << 8)	/* beluga_source_add/remove() */
#define BELUGA_FEATURE_USAGE_COUNTS	(1ULL << 32)	/* open/map/pin counts tracked */
#define BELUGA_FEATURE_COUNTERS		(1ULL << 33)	/* beluga_pool_get_counters() */

/* Source kinds. */
#define BELUGA_SOURCE_KIND_NODE		1	/* a NUMA node */
#define BELUGA_SOURCE_KIND_RANGE	2	/* a reserved physical range */
#define BELUGA_SOURCE_HAS_CPUS		(1U << 0) /* source flag: DRAM node with CPUs */

/* beluga_region_create() flags. */
#define BELUGA_REGION_EPHEMERAL	(1U << 0)	/* nameless, freed on last close */
/* beluga_region_open() flags. */
#define BELUGA_REGION_RDONLY	(1U << 0)	/* read permission suffices; no PROT_WRITE */

/* struct beluga_region_info flags. */
#define BELUGA_INFO_EPHEMERAL	(1U << 0)
#define BELUGA_INFO_DESTROYED	(1U << 1)	/* name removed, still open */
#define BELUGA_INFO_NO_USAGE	(1U << 2)	/* open/map/pinned counts unknown */
#define BELUGA_INFO_HUGETLB	(1U << 3)	/* user backend: hugetlbfs file */
#define BELUGA_INFO_SHARED	(1U << 4)	/* a shared region (fixed extent) */

/* beluga_region_map() protection. */
#define BELUGA_PROT_READ	(1U << 0)
#define BELUGA_PROT_WRITE	(1U << 1)

/* beluga_gpu_reg_socket() results (kernel backend with GPU accounting). */
#define BELUGA_GPU_SOCKET_UNKNOWN	0
#define BELUGA_GPU_SOCKET_SAME		1	/* every chunk on the GPU's socket */
#define BELUGA_GPU_SOCKET_OTHER		2	/* no chunk on the GPU's socket */
#define BELUGA_GPU_SOCKET_MIXED		3

/* beluga_gpu_register() flags. */
#define BELUGA_GPU_READONLY	(1U << 0)	/* device only reads the memory */
#define BELUGA_GPU_NO_VERIFY	(1U << 1)	/* skip the move_pages placement check */

/* Log levels (BELUGA_LOG and struct beluga_pool_options.log_level). */
#define BELUGA_LOG_NONE		0
#define BELUGA_LOG_ERROR	1
#define BELUGA_LOG_WARN		2
#define BELUGA_LOG_DEBUG	3

/* ------------------------------------------------------------------------ */
/* Handles and plain structures                                              */
/* ------------------------------------------------------------------------ */

struct beluga_pool;		/* an opened pool (one backend instance) */
struct beluga_region;		/* an open region (owns a region fd) */
struct beluga_mapping;		/* a mapping of (part of) a region */
struct beluga_gpu_reg;		/* a GPU registration of a mapping */
struct msghdr;

/*
 * struct beluga_pool_info - pool summary.
 * @backend:         BELUGA_BACKEND_KERNEL or BELUGA_BACKEND_USER.
 * @abi_version:     kernel: the driver's ABI ((major << 16) | minor);
 *                   user: the library's.
 * @min_abi_version: oldest ABI the driver still serves (user: the library's).
 * @features:        BELUGA_FEATURE_* bits.
 * @chunk_size:      allocation granule in bytes (2 MiB).
 * @total_bytes, @free_bytes: pool size and unallocated bytes.  User backend:
 *                   memory of the NUMA nodes (hugetlbfs pages when hugetlbfs
 *                   is used), free bounded by the tmpfs free space.
 * @quarantined_bytes: destroyed but still referenced (kernel only, else 0).
 * @nr_sources:      sources, index them with beluga_pool_get_source().
 * @nr_regions:      live regions.
 */
struct beluga_pool_info {
	uint32_t backend;
	uint32_t abi_version;
	uint32_t min_abi_version;
	uint32_t nr_sources;
	uint64_t features;
	uint64_t chunk_size;
	uint64_t total_bytes;
	uint64_t free_bytes;
	uint64_t quarantined_bytes;
	uint32_t nr_regions;
	uint32_t reserved0;
	uint64_t reserved[4];
};

/* struct beluga_pool_source_info - one pool source (a NUMA node or a range). */
struct beluga_pool_source_info {
	uint32_t index;
	uint32_t flags;		/* BELUGA_SOURCE_HAS_CPUS */
	uint32_t kind;		/* BELUGA_SOURCE_KIND_* */
	int32_t node;		/* NUMA node id */
	uint64_t total_bytes;
	uint64_t free_bytes;
	uint64_t reserved[4];
};

/*
 * struct beluga_region_info - one region's state.
 * @open_count, @map_count, @pinned_chunks are 0 with BELUGA_INFO_NO_USAGE
 * set where the backend cannot count them (user backend).
 * @shared_source, @shared_offset: with BELUGA_INFO_SHARED, the source index
 * and the byte offset of the region's extent in it; 0 otherwise.
 */
struct beluga_region_info {
	char name[BELUGA_REGION_NAME_MAX];
	uint64_t id;
	uint64_t size;
	uint32_t flags;		/* BELUGA_INFO_* */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t source_kind;
	uint32_t nr_chunks;
	uint32_t open_count;
	uint32_t map_count;
	uint32_t pinned_chunks;
	uint32_t shared_source;
	uint64_t shared_offset;
	uint64_t reserved[3];
};

/* struct beluga_pool_counters - driver activity counters (kernel backend). */
struct beluga_pool_counters {
	uint64_t pmd_faults;
	uint64_t pte_faults;
	uint64_t pinned_chunks;
	uint64_t alloc_failures;
	uint64_t regions_created;
	uint64_t regions_freed;
	uint64_t reserved[4];
};

/*
 * struct beluga_ops - the system-call layer, replaceable for tests.
 *
 * Every call the library makes to the kernel (and to the CUDA runtime) goes
 * through these pointers.  Each returns a non-negative result or -errno; it
 * never sets errno.  A NULL member means the real call, so a test overrides
 * only what it fakes, and beluga_default_ops() gives the real ones to
 * delegate to.  Set @size to sizeof(struct beluga_ops) (beluga_ops_init()).
 * The GPU members return -BELUGA_ENOGPU when no GPU can be used and
 * -BELUGA_ENOCUDA when the library was built without CUDA.
 */
struct beluga_ops {
	size_t size;
	void *ctx;		/* passed back as the first argument */
	int (*open)(void *ctx, const char *path, int flags, unsigned int mode);
	int (*openat)(void *ctx, int dirfd, const char *path, int flags,
		      unsigned int mode);
	int (*close)(void *ctx, int fd);
	int (*fcntl)(void *ctx, int fd, int cmd, long arg);
	int (*ioctl)(void *ctx, int fd, unsigned long request, void *arg);
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
	int (*mmap)(void *ctx, void *addr, size_t len, int prot, int flags,
		    int fd, int64_t offset, void **out);
	int (*munmap)(void *ctx, void *addr, size_t len);
	int (*madvise)(void *ctx, void *addr, size_t len, int advice);
	int (*mlock)(void *ctx, const void *addr, size_t len);
	int (*mbind)(void *ctx, void *addr, size_t len, int mode,
		     const unsigned long *nodemask, unsigned long maxnode,
		     unsigned int flags);
	int (*move_pages)(void *ctx, unsigned long count, void **pages,
			  int *status);
	int (*fstat)(void *ctx, int fd, struct stat *st);
	int (*fstatat)(void *ctx, int dirfd, const char *path, struct stat *st,
		       int flags);
	int (*ftruncate)(void *ctx, int fd, int64_t length);
	int (*fchmod)(void *ctx, int fd, unsigned int mode);
	int (*fchmodat)(void *ctx, int dirfd, const char *path,
			unsigned int mode);
	int (*fchownat)(void *ctx, int dirfd, const char *path, uid_t uid,
			gid_t gid);
	int (*mkdirat)(void *ctx, int dirfd, const char *path, unsigned int mode);
	int (*linkat)(void *ctx, int olddirfd, const char *oldpath, int newdirfd,
		      const char *newpath, int flags);
	int (*unlinkat)(void *ctx, int dirfd, const char *path, int flags);
	int (*flock)(void *ctx, int fd, int operation);
	ssize_t (*getdents)(void *ctx, int fd, void *buf, size_t len);
	ssize_t (*readlink)(void *ctx, const char *path, char *buf, size_t len);
	ssize_t (*sendmsg)(void *ctx, int fd, const struct msghdr *msg,
			   int flags);
	ssize_t (*recvmsg)(void *ctx, int fd, struct msghdr *msg, int flags);
	int (*gpu_count)(void *ctx, int *count);
	int (*gpu_register)(void *ctx, int device, void *addr, size_t len,
			    unsigned int flags);
	int (*gpu_unregister)(void *ctx, int device, void *addr);
	int (*gpu_synchronize)(void *ctx, int device);
	int (*gpu_device_pointer)(void *ctx, int device, void *host, void **dev);
	int (*gpu_pci_id)(void *ctx, int device, uint32_t *domain, uint32_t *bdf);
};

/*
 * struct beluga_pool_options - how to open a pool; fill with
 * beluga_pool_options_init() first, then change what you need.
 * @backend:       BELUGA_BACKEND_*; AUTO reads BELUGA_BACKEND, then detects.
 * @device_path:   kernel backend device (NULL: /dev/beluga).
 * @sysfs_dir:     driver sysfs directory (NULL: /sys/kernel/beluga).
 * @pool_name:     user backend pool name (NULL: $BELUGA_POOL or "default").
 * @user_dir:      user backend tmpfs directory (NULL: $BELUGA_USER_DIR or
 *                 /dev/shm/beluga-<pool_name>).
 * @hugetlbfs_dir: user backend hugetlbfs mount (NULL: $BELUGA_HUGETLBFS or
 *                 the first 2 MiB hugetlbfs mount; "" or "none": never).
 * @ops:           system-call layer (NULL: the real calls); copied.
 * @log_level:     BELUGA_LOG_* or -1 for $BELUGA_LOG.
 * @log_fn:        receives log lines instead of stderr (NULL: stderr).
 * @gpu_chunk_max: largest single GPU registration in bytes, rounded down to
 *                 BELUGA_REGION_ALIGN (0: 64 GiB).
 */
struct beluga_pool_options {
	size_t size;
	int backend;
	int log_level;
	const char *device_path;
	const char *sysfs_dir;
	const char *pool_name;
	const char *user_dir;
	const char *hugetlbfs_dir;
	const struct beluga_ops *ops;
	void (*log_fn)(void *ctx, int level, const char *message);
	void *log_ctx;
	uint64_t gpu_chunk_max;
};

/* ------------------------------------------------------------------------ */
/* Library                                                                   */
/* ------------------------------------------------------------------------ */

/* beluga_version - the library version string ("0.1.0"). Never fails. */
BELUGA_API const char *beluga_version(void);

/*
 * beluga_abi_version - the driver ABI this library speaks,
 * (major << 16) | minor.  Never fails.
 */
BELUGA_API uint32_t beluga_abi_version(void);

/*
 * beluga_strerror - a sentence for an error returned by any function here.
 * @err: the (negative or positive) return value.
 * Returns a static string; for library codes and for the errno values the
 * library gives a specific meaning it says what to do.  Never fails.
 */
BELUGA_API const char *beluga_strerror(int err);

/* beluga_ops_init - zero @ops and set its size; every member then means "real call". */
BELUGA_API void beluga_ops_init(struct beluga_ops *ops);

/*
 * beluga_default_ops - the real system calls, for fakes to delegate to.
 * Returns a static table with every member set.  Never fails.
 */
BELUGA_API const struct beluga_ops *beluga_default_ops(void);

/* beluga_pool_options_init - defaults for every option. Never fails. */
BELUGA_API void beluga_pool_options_init(struct beluga_pool_options *opts);

/* ------------------------------------------------------------------------ */
/* Pool                                                                      */
/* ------------------------------------------------------------------------ */

/*
 * beluga_pool_open - open the pool with the chosen backend.
 * @opts: options or NULL for defaults.
 * @out:  the pool handle; release with beluga_pool_close().
 * Kernel backend: opens the device and checks the ABI both ways.
 * User backend: creates the pool directories if needed (mode 1777).
 * Errors: -EINVAL bad option or BELUGA_BACKEND value; -BELUGA_ENODRIVER the
 * kernel backend was asked for but the device is missing; -EACCES no
 * permission on the device or directory; -BELUGA_EDRIVER_TOO_OLD,
 * -BELUGA_ELIBRARY_TOO_OLD ABI mismatch; -ENOMEM; -ENOTDIR the user
 * directory is not a directory; other -errno from open/mkdir.
 */
BELUGA_API int beluga_pool_open(const struct beluga_pool_options *opts,
				struct beluga_pool **out);

/*
 * beluga_pool_close - release the caller's reference; the pool is freed
 * once its regions are closed too.  NULL is ignored.  Never fails.
 */
BELUGA_API void beluga_pool_close(struct beluga_pool *pool);

/* beluga_pool_backend - BELUGA_BACKEND_KERNEL or _USER. Never fails. */
BELUGA_API int beluga_pool_backend(const struct beluga_pool *pool);

/*
 * beluga_pool_get_info - fill @info with a summary of the pool.
 * Errors: -EINVAL NULL argument; -errno from the driver (kernel) or from
 * reading the pool directories and /sys (user).
 */
BELUGA_API int beluga_pool_get_info(struct beluga_pool *pool,
				struct beluga_pool_info *info);

/*
 * beluga_pool_get_source - describe source @index (0 .. nr_sources - 1).
 * Errors: -EINVAL NULL argument; -ENOENT @index past the end, or a source
 * removed at run time (an index below nr_sources may then be free); -errno.
 */
BELUGA_API int beluga_pool_get_source(struct beluga_pool *pool, uint32_t index,
				  struct beluga_pool_source_info *info);

/*
 * beluga_source_add - pool the reserved physical range [@start, @start +
 * @size) as a new range source at run time (kernel backend, driver ABI 1.3),
 * e.g. a CXL device-dax instance already released from device-dax (what
 * 'beluga-tool source add daxX.Y' does first).  Needs CAP_SYS_ADMIN.
 * @name:     the source's name, 1..63 bytes of [A-Za-z0-9._-], unique among
 *            the pool's sources (e.g. "dax0.0").
 * @identity: NULL or 0..63 printable bytes without spaces naming the memory
 *            on every host (e.g. "set_cookie=0x..."); shown in sysfs.
 * @index:    NULL, or receives the new source's index.
 * Errors: -EINVAL bad name, identity, alignment or zero size (or the range
 * overlaps System RAM); -EPERM no CAP_SYS_ADMIN; -EEXIST a source has that
 * name; -EADDRINUSE overlaps a range source of the pool; -ENXIO not memory
 * the platform describes (/proc/iomem); -EBUSY a driver (device-dax) owns
 * part of the range; -ENOSPC 16 sources already; -EOPNOTSUPP user backend;
 * -BELUGA_EDRIVER_TOO_OLD driver before ABI 1.3; -ENOMEM; -errno.
 */
BELUGA_API int beluga_source_add(struct beluga_pool *pool, uint64_t start,
				 uint64_t size, const char *name,
				 const char *identity, uint32_t *index);

/*
 * beluga_source_remove - take a range source out of the pool and release its
 * range (kernel backend, driver ABI 1.3).  Needs CAP_SYS_ADMIN.
 * @name:  the source's name, or NULL/"" to name it by @index.
 * Errors: -EINVAL bad name; -EPERM; -ENOENT no such source; -EOPNOTSUPP a
 * node source, or the user backend; -EBUSY a region (private or shared)
 * holds some of its memory, or a destroyed region's memory is still
 * referenced; -BELUGA_EDRIVER_TOO_OLD; -errno.
 */
BELUGA_API int beluga_source_remove(struct beluga_pool *pool, const char *name,
				    uint32_t index);

/*
 * beluga_pool_get_counters - driver activity counters from sysfs.
 * Errors: -EINVAL NULL argument; -EOPNOTSUPP user backend; -ENOENT the
 * sysfs directory is missing; -EIO unparsable file; -errno from open/read.
 */
BELUGA_API int beluga_pool_get_counters(struct beluga_pool *pool,
				    struct beluga_pool_counters *counters);

/* ------------------------------------------------------------------------ */
/* Regions                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * beluga_region_create - create a named region and open it read-write.
 * @name:   1..63 bytes of [A-Za-z0-9._-]; NULL or "" with BELUGA_REGION_EPHEMERAL.
 * @size:   bytes, a non-zero multiple of BELUGA_REGION_ALIGN.
 * @mode:   permission bits 0..0777.
 * @flags:  BELUGA_REGION_EPHEMERAL: no name, freed when the last handle closes.
 * @source: BELUGA_ALL_SOURCES to interleave chunks over every source, or one
 *          source index to take every chunk from it.
 * @out:    the region handle; release with beluga_region_close().
 * The memory is zeroed, placed and (user backend) prefaulted before return.
 * Errors: -EINVAL bad name, size, mode, flags or source; -EEXIST name taken;
 * -ENOSPC not enough free memory; -EDQUOT over the creator's quota (kernel
 * backend with BELUGA_FEATURE_QUOTAS); -ENOMEM; -EACCES (user backend) no write
 * permission on the pool directory; -errno.
 */
BELUGA_API int beluga_region_create(struct beluga_pool *pool, const char *name,
				    uint64_t size, uint32_t mode, uint32_t flags,
				    int32_t source, struct beluga_region **out);

/*
 * beluga_shared_define - define a shared region: a named region over the
 * fixed extent [@offset, @offset + @size) of range source @source, and open
 * it read-write.  Every host that shares the source defines the same extent
 * under the same name and maps the same bytes.  The memory is never zeroed,
 * not here and not when the region is opened or destroyed: the first host
 * to use it initialises it.  The extent's chunks are kept from private
 * regions while the region exists.  Needs CAP_SYS_ADMIN; open, map, chmod,
 * chown and destroy work as for any region, except that destroy fails with
 * -EBUSY while any handle or mapping of it exists (on this host).
 * @source: index of a range source (beluga_pool_get_source()).
 * @offset, @size: multiples of BELUGA_REGION_ALIGN, @size non-zero.
 * Errors: -EINVAL bad name, mode, offset, size or source index; -EPERM no
 * CAP_SYS_ADMIN; -EOPNOTSUPP a node source (each host's own memory), or the
 * user backend (no memory another host can map: it refuses rather than
 * emulate); -BELUGA_EDRIVER_TOO_OLD driver without
 * BELUGA_FEATURE_SHARED_REGIONS; -ENXIO extent past the end of the source;
 * -EEXIST name taken; -EADDRINUSE overlaps another shared region's extent;
 * -EBUSY a chunk of the extent is in a private region or still referenced
 * by a destroyed one; -ENOMEM; -errno.
 */
BELUGA_API int beluga_shared_define(struct beluga_pool *pool, const char *name,
				    uint32_t source, uint64_t offset,
				    uint64_t size, uint32_t mode,
				    struct beluga_region **out);

/*
 * beluga_region_open - open an existing region by name.
 * @flags: BELUGA_REGION_RDONLY: read permission suffices and mappings can
 *         only be read.  Without it the caller needs read and write permission.
 * Errors: -EINVAL bad name or flags; -ENOENT no such region; -EACCES no
 * permission; -ENOMEM; -errno.
 */
BELUGA_API int beluga_region_open(struct beluga_pool *pool, const char *name,
				  uint32_t flags, struct beluga_region **out);

/*
 * beluga_region_destroy - remove a region's name, like shm_unlink(): the
 * memory returns to the pool once the last handle and mapping are gone.
 * Errors: -EINVAL bad name; -ENOENT no such region; -EPERM not the owner
 * (and not root); -errno.
 */
BELUGA_API int beluga_region_destroy(struct beluga_pool *pool, const char *name);

/*
 * beluga_region_stat - describe a region by name.
 * Errors: -EINVAL bad name or NULL; -ENOENT no such region; -errno.
 */
BELUGA_API int beluga_region_stat(struct beluga_pool *pool, const char *name,
				  struct beluga_region_info *info);

/*
 * beluga_region_list - snapshot of every region, in ascending id order.
 * @entries:  array of @capacity entries (may be NULL when @capacity is 0).
 * @count:    out: regions that exist; min(count, capacity) were written.
 *            Call again with a larger array when *count > capacity.
 * Errors: -EINVAL NULL @count or NULL @entries with @capacity > 0;
 * -ENOMEM; -errno.
 */
BELUGA_API int beluga_region_list(struct beluga_pool *pool,
				  struct beluga_region_info *entries,
				  size_t capacity, size_t *count);

/*
 * beluga_region_chmod - change a region's permission bits.
 * Errors: -EINVAL bad name or mode > 0777; -ENOENT; -EPERM not the owner
 * (and not root); -errno.
 */
BELUGA_API int beluga_region_chmod(struct beluga_pool *pool, const char *name,
				   uint32_t mode);

/*
 * beluga_region_chown - change a region's owner; (uint32_t)-1 keeps a field.
 * Errors: -EINVAL bad name or both fields -1; -ENOENT; -EPERM not root; -errno.
 */
BELUGA_API int beluga_region_chown(struct beluga_pool *pool, const char *name,
				   uint32_t uid, uint32_t gid);

/*
 * beluga_region_close - release the caller's reference; the fd is closed
 * once the region's mappings are gone too.  NULL is ignored.  Never fails.
 */
BELUGA_API void beluga_region_close(struct beluga_region *region);

/* beluga_region_name - the name ("" for ephemeral regions). Never fails. */
BELUGA_API const char *beluga_region_name(const struct beluga_region *region);

/* beluga_region_size - bytes. Never fails. */
BELUGA_API uint64_t beluga_region_size(const struct beluga_region *region);

/* beluga_region_id - the backend's region id. Never fails. */
BELUGA_API uint64_t beluga_region_id(const struct beluga_region *region);

/*
 * beluga_region_fd - the region file descriptor, still owned by the handle
 * (close-on-exec; dup() it to keep it).  Never fails.
 */
BELUGA_API int beluga_region_fd(const struct beluga_region *region);

/*
 * beluga_region_fstat - describe an open region (works after destroy).
 * Errors: -EINVAL NULL argument; -errno.
 */
BELUGA_API int beluga_region_fstat(struct beluga_region *region,
				  struct beluga_region_info *info);

/*
 * beluga_region_layout - the NUMA node of each 2 MiB chunk.
 * @nodes:     array of @capacity entries (NULL when @capacity is 0).
 * @nr_chunks: out: chunks in the region; min(capacity, nr_chunks) written.
 * User backend: measured with move_pages on a temporary read mapping.
 * Errors: -EINVAL NULL argument; -ENOMEM; -errno.
 */
BELUGA_API int beluga_region_layout(struct beluga_region *region,
				    int32_t *nodes, size_t capacity,
				    size_t *nr_chunks);

/*
 * beluga_region_send - pass the region to another process over a unix
 * socket (SCM_RIGHTS).  The receiver calls beluga_region_recv().
 * Errors: -EINVAL NULL argument; -ENOTSOCK, -EPIPE, ... from sendmsg.
 */
BELUGA_API int beluga_region_send(struct beluga_region *region, int sock);

/*
 * beluga_region_recv - receive a region sent with beluga_region_send().
 * Errors: -EINVAL NULL argument; -EPROTO not a beluga message or sent by a
 * pool of the other backend; -ECONNRESET peer closed; -errno from recvmsg.
 */
BELUGA_API int beluga_region_recv(struct beluga_pool *pool, int sock,
				  struct beluga_region **out);

/*
 * beluga_region_from_fd - wrap a region fd obtained some other way.
 * @fd: a region fd of this pool's backend; it is dup()ed, the caller keeps
 *      its own copy.
 * Errors: -EINVAL NULL argument or @fd is not a region of this backend;
 * -EBADF; -ENOMEM; -errno.
 */
BELUGA_API int beluga_region_from_fd(struct beluga_pool *pool, int fd,
				     struct beluga_region **out);

/* ------------------------------------------------------------------------ */
/* Mappings                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * beluga_region_map - map [offset, offset + length) of a region, shared.
 * @offset: a multiple of BELUGA_REGION_ALIGN.
 * @length: bytes, a multiple of the page size; 0 maps to the end of the region.
 * @prot:   BELUGA_PROT_READ and/or BELUGA_PROT_WRITE.
 * The address is 2 MiB aligned.  The user backend also mlocks the range; a
 * failing mlock (RLIMIT_MEMLOCK) is only a logged warning.
 * Errors: -EINVAL bad offset, length or prot; -ENXIO range past the end;
 * -EACCES BELUGA_PROT_WRITE on a region opened BELUGA_REGION_RDONLY;
 * -ENOMEM; -errno from mmap.
 */
BELUGA_API int beluga_region_map(struct beluga_region *region, uint64_t offset,
				 size_t length, uint32_t prot,
				 struct beluga_mapping **out);

/*
 * beluga_mapping_unmap - release the caller's reference; the range is
 * unmapped once its GPU registrations are gone too.  NULL is ignored.
 * Never fails.
 */
BELUGA_API void beluga_mapping_unmap(struct beluga_mapping *mapping);

/* beluga_mapping_addr - start address. Never fails. */
BELUGA_API void *beluga_mapping_addr(const struct beluga_mapping *mapping);

/* beluga_mapping_size - bytes mapped. Never fails. */
BELUGA_API size_t beluga_mapping_size(const struct beluga_mapping *mapping);

/* beluga_mapping_offset - offset in the region. Never fails. */
BELUGA_API uint64_t beluga_mapping_offset(const struct beluga_mapping *mapping);

/*
 * beluga_mapping_save - write the mapping's bytes to a file with io_uring,
 * O_DIRECT straight from region memory (buffered where the file system has
 * no O_DIRECT, e.g. tmpfs).  The file is created (mode 0600) or truncated;
 * @path may also be a block device.
 * Errors: -EINVAL NULL argument; -EACCES, -ENOENT, -ENOSPC, -EIO ... from
 * the file; -ENOMEM.
 */
BELUGA_API int beluga_mapping_save(struct beluga_mapping *mapping,
				   const char *path);

/*
 * beluga_mapping_load - read a file saved by beluga_mapping_save() into the
 * start of the mapping, with io_uring (O_DIRECT where possible).  With
 * O_DIRECT, bytes past the file's end up to the next 4 KiB boundary may be
 * overwritten (with zeros); nothing beyond that is touched.
 * A block device is read whole (its size must fit the mapping).
 * Errors: -EINVAL NULL argument; -EFBIG file larger than the mapping;
 * -EACCES mapping not writable; -ENOENT, -EIO ... from the file; -ENOMEM.
 */
BELUGA_API int beluga_mapping_load(struct beluga_mapping *mapping,
				   const char *path);

/* ------------------------------------------------------------------------ */
/* GPU registration (CUDA)                                                   */
/* ------------------------------------------------------------------------ */

/*
 * beluga_gpu_count - number of CUDA devices usable now.
 * Errors: -BELUGA_ENOCUDA built without CUDA; -BELUGA_ENOGPU no NVIDIA
 * driver or no device; -EINVAL NULL argument.
 */
BELUGA_API int beluga_gpu_count(struct beluga_pool *pool, int *count);

/*
 * beluga_gpu_register - page-lock a mapping for @device (cudaHostRegister,
 * portable and mapped), in chunks of at most gpu_chunk_max (64 GiB).  Every
 * return code is checked; a failing chunk rolls back the earlier ones.
 * Unless BELUGA_GPU_NO_VERIFY, the NUMA node of every 2 MiB chunk is read
 * with move_pages after registering and must match the region's layout (a
 * long-term pin can silently migrate ZONE_MOVABLE pages to DRAM).  With a
 * driver reporting BELUGA_FEATURE_GPU_REGISTER, the driver is told first
 * (BELUGA_IOC_GPU_REGISTER: checks pinnability, blocks destroy with EBUSY,
 * reports the GPU's socket and its own chunk limit) and last on unregister.
 * @flags: BELUGA_GPU_READONLY, BELUGA_GPU_NO_VERIFY.
 * @out:   the registration; release with beluga_gpu_unregister().
 * Errors: -EINVAL bad flags or negative device; -ENODEV no such device;
 * -BELUGA_ENOCUDA; -BELUGA_ENOGPU;
 * -EEXIST already registered; -ENOMEM; -EOPNOTSUPP the device cannot map
 * host memory; -BELUGA_EPLACEMENT pages moved; -EIO other CUDA error;
 * kernel backend with driver accounting: -ENODEV the driver does not know
 * the GPU's PCI address, -EFAULT, -EINVAL from BELUGA_IOC_GPU_REGISTER.
 */
BELUGA_API int beluga_gpu_register(struct beluga_mapping *mapping, int device,
				   uint32_t flags, struct beluga_gpu_reg **out);

/*
 * beluga_gpu_unregister - synchronize the device, unregister every chunk
 * (last first) and release the mapping reference.  NULL is ignored.
 * Never fails (CUDA errors are logged).
 */
BELUGA_API void beluga_gpu_unregister(struct beluga_gpu_reg *reg);

/* beluga_gpu_reg_device_pointer - the device address of the mapping's start. */
BELUGA_API void *beluga_gpu_reg_device_pointer(const struct beluga_gpu_reg *reg);

/* beluga_gpu_reg_chunks - number of cudaHostRegister calls it took. */
BELUGA_API size_t beluga_gpu_reg_chunks(const struct beluga_gpu_reg *reg);

/*
 * beluga_gpu_reg_chunk_bytes - bytes per registered chunk (the last one may
 * be shorter).  CUDA treats each chunk as its own allocation: one
 * cudaMemcpy or cudaMemset must not cross a chunk boundary (it fails with
 * cudaErrorInvalidValue; seen on H200, driver 580), so split transfers at
 * multiples of this size.  Never fails.
 */
BELUGA_API uint64_t beluga_gpu_reg_chunk_bytes(const struct beluga_gpu_reg *reg);

/*
 * beluga_gpu_reg_socket - BELUGA_GPU_SOCKET_*: whether the region's memory
 * hangs off the GPU's socket, as the driver reports it (UNKNOWN on the user
 * backend or without driver GPU accounting).  Never fails.
 */
BELUGA_API int beluga_gpu_reg_socket(const struct beluga_gpu_reg *reg);

/* ------------------------------------------------------------------------ */
/* Coherence and copy primitives (no pool needed)                            */
/* ------------------------------------------------------------------------ */

/*
 * beluga_copy_nt - copy with non-temporal stores, so the destination (CXL
 * memory) is written without first being read into the cache and without
 * leaving stale lines behind (the paper's O1).  Ends with a store fence.
 * Any alignment; the unaligned head and tail use ordinary stores followed by
 * a cache-line write-back.  Never fails.
 */
BELUGA_API void beluga_copy_nt(void *dst, const void *src, size_t len);

/*
 * beluga_copy_bulk - copy a large buffer with up to @threads threads (0:
 * one per online CPU), each with non-temporal stores; small copies stay on
 * the calling thread.
 * Errors: -EINVAL NULL pointer with a non-zero @len.  If threads cannot be
 * started, the calling thread copies their share: the copy always completes.
 */
BELUGA_API int beluga_copy_bulk(void *dst, const void *src, size_t len,
				unsigned int threads);

/*
 * beluga_flush - write back and invalidate the cache lines of a range
 * (clflushopt, else clflush), then a store fence, so the next read comes
 * from memory - for data another host may have written.  Never fails.
 */
BELUGA_API void beluga_flush(const void *addr, size_t len);

/*
 * beluga_writeback - write back the cache lines of a range, keeping them
 * cached where the CPU can (clwb, else clflushopt, else clflush), then a
 * store fence - to publish data written with ordinary stores.  Never fails.
 */
BELUGA_API void beluga_writeback(const void *addr, size_t len);

/* beluga_fence_store - order earlier stores (sfence). Never fails. */
BELUGA_API void beluga_fence_store(void);

/* beluga_fence_load - order earlier loads (lfence). Never fails. */
BELUGA_API void beluga_fence_load(void);

/* beluga_fence_full - order all earlier memory accesses (mfence). Never fails. */
BELUGA_API void beluga_fence_full(void);

/*
 * beluga_cpu_flush_method - name of the instructions beluga_flush() and
 * beluga_writeback() use: "clflushopt+clwb", "clflushopt", "clflush" or
 * "none" (no x86 cache-line flush; plain fences).  Never fails.
 */
BELUGA_API const char *beluga_cpu_flush_method(void);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_BELUGA_H */
