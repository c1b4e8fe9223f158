/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: libbeluga internals shared by the front end and both backends.
 *
 * Handle graph (every arrow holds a reference, counts are atomic):
 *   gpu_reg -> mapping -> region -> pool
 * The public release functions drop the caller's reference; the object is
 * torn down when the last reference goes, which keeps the order right
 * (GPU unregister, then munmap, then close the region fd, then the pool).
 */
#ifndef BELUGA_INTERNAL_H
#define BELUGA_INTERNAL_H

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <beluga/beluga.h>

#define BELUGA_CHUNK (2ULL << 20)
#define BELUGA_DEFAULT_GPU_CHUNK (64ULL << 30)
#define BELUGA_MAX_NODES 1024	/* nodemask bits we handle */

struct beluga_backend_ops;

/* State of the user-space backend (user_*.c). */
struct user_pool {
	int dirfd;		/* tmpfs directory: names live here */
	int hugefd;		/* hugetlbfs directory or -1 */
	char dir[PATH_MAX];
	char hugedir[PATH_MAX];
	int nr_nodes;		/* sources: NUMA nodes with memory */
	int nodes[BELUGA_MAX_NODES];
};

/* State of the kernel backend (kernel_*.c). */
struct kernel_pool {
	int devfd;
	uint64_t features;
	uint32_t abi_version;
	uint32_t min_abi_version;
	char sysfs[PATH_MAX];
};

struct beluga_pool {
	atomic_int refs;
	int backend;			/* BELUGA_BACKEND_KERNEL or _USER */
	const struct beluga_backend_ops *be;
	struct beluga_ops ops;		/* every member set */
	int log_level;
	void (*log_fn)(void *ctx, int level, const char *message);
	void *log_ctx;
	uint64_t gpu_chunk_max;
	union {
		struct kernel_pool k;
		struct user_pool u;
	};
};

struct beluga_region {
	atomic_int refs;
	struct beluga_pool *pool;
	int fd;
	bool rdonly;
	uint64_t size;
	uint64_t id;
	char name[BELUGA_REGION_NAME_MAX];
};

struct beluga_mapping {
	atomic_int refs;
	struct beluga_region *region;
	void *addr;
	size_t size;
	uint64_t offset;
	uint32_t prot;
	atomic_int gpu_regs;		/* live registrations: one per device */
};

/* What a backend creates or opens: the fd plus what the handle caches. */
struct region_handle {
	int fd;
	uint64_t id;
	uint64_t size;
};

/*
 * struct beluga_backend_ops - one backend.  Every function returns 0 or -errno;
 * names are already validated by the front end.
 */
struct beluga_backend_ops {
	const char *name;
	void (*close)(struct beluga_pool *pool);
	int (*info)(struct beluga_pool *pool, struct beluga_pool_info *info);
	int (*source)(struct beluga_pool *pool, uint32_t index,
		      struct beluga_pool_source_info *info);
	int (*counters)(struct beluga_pool *pool, struct beluga_pool_counters *c);
	int (*create)(struct beluga_pool *pool, const char *name, uint64_t size,
		      uint32_t mode, uint32_t flags, int32_t source,
		      struct region_handle *out);
	int (*open)(struct beluga_pool *pool, const char *name, uint32_t flags,
		    struct region_handle *out);
	/* NULL: the backend has no shared regions (-EOPNOTSUPP). */
	int (*shared_define)(struct beluga_pool *pool, const char *name,
			     uint32_t source, uint64_t offset, uint64_t size,
			     uint32_t mode, struct region_handle *out);
	/* NULL: the backend cannot add or remove sources (-EOPNOTSUPP). */
	int (*source_add)(struct beluga_pool *pool, uint64_t start,
			  uint64_t size, const char *name, const char *identity,
			  uint32_t *index);
	int (*source_remove)(struct beluga_pool *pool, const char *name,
			     uint32_t index);
	int (*destroy)(struct beluga_pool *pool, const char *name);
	int (*stat)(struct beluga_pool *pool, const char *name,
		    struct beluga_region_info *info);
	int (*fd_stat)(struct beluga_pool *pool, int fd,
		       struct beluga_region_info *info);
	int (*list)(struct beluga_pool *pool, struct beluga_region_info *entries,
		    size_t capacity, size_t *count);
	int (*chmod)(struct beluga_pool *pool, const char *name, uint32_t mode);
	int (*chown)(struct beluga_pool *pool, const char *name, uint32_t uid,
		     uint32_t gid);
	int (*layout)(struct beluga_region *region, int32_t *nodes,
		      size_t capacity, size_t *nr_chunks);
	int (*map)(struct beluga_region *region, uint64_t offset, size_t length,
		   int prot, void **addr);
};

extern const struct beluga_backend_ops beluga_kernel_backend;
extern const struct beluga_backend_ops beluga_user_backend;

/* Backend constructors: fill pool->k or pool->u and set pool->be. */
int beluga_kernel_open(struct beluga_pool *pool,
		       const struct beluga_pool_options *opts);
int beluga_user_open(struct beluga_pool *pool,
		     const struct beluga_pool_options *opts);

/* log.c */
void beluga_log(const struct beluga_pool *pool, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int beluga_log_level_from_env(void);
#define blog_err(p, ...) beluga_log((p), BELUGA_LOG_ERROR, __VA_ARGS__)
#define blog_warn(p, ...) beluga_log((p), BELUGA_LOG_WARN, __VA_ARGS__)
#define blog_dbg(p, ...) beluga_log((p), BELUGA_LOG_DEBUG, __VA_ARGS__)

/* ops.c */
void beluga_ops_resolve(struct beluga_ops *dst, const struct beluga_ops *src);

/* name.c */
bool beluga_name_valid(const char *name);

/* pool.c */
void beluga_pool_ref(struct beluga_pool *pool);
void beluga_pool_unref(struct beluga_pool *pool);

/* region.c */
void beluga_region_ref(struct beluga_region *region);
void beluga_region_unref(struct beluga_region *region);
int beluga_region_wrap(struct beluga_pool *pool, const struct region_handle *h,
		       const char *name, bool rdonly, struct beluga_region **out);

/* mapping.c */
void beluga_mapping_ref(struct beluga_mapping *mapping);
void beluga_mapping_unref(struct beluga_mapping *mapping);

/* util.c: small file helpers over the ops layer. */
int beluga_read_file(struct beluga_pool *pool, int dirfd, const char *path,
		     char *buf, size_t len);
int beluga_read_u64(struct beluga_pool *pool, int dirfd, const char *path,
		    uint64_t *value);
int beluga_close_fd(struct beluga_pool *pool, int fd);
int beluga_for_each_dirent(struct beluga_pool *pool, int dirfd,
			   const char *path,
			   int (*fn)(void *arg, const char *name), void *arg);

/* layout.c: node of each chunk of a mapped range, via move_pages. */
int beluga_query_nodes(struct beluga_pool *pool, void *addr, size_t len,
		       int32_t *nodes, size_t nr);

/* kernel_gpu.c: the driver's GPU accounting (ABI 1.1). */
struct kernel_gpu {
	uint32_t domain;
	uint32_t bdf;
};

struct kernel_gpu_grant {
	int socket;			/* BELUGA_GPU_SOCKET_* */
	uint64_t max_register_bytes;	/* 0: no limit given */
};

bool beluga_kernel_gpu_accounting(const struct beluga_pool *pool);
int beluga_kernel_gpu_register(struct beluga_region *region,
			       const struct kernel_gpu *gpu, int32_t *nodes,
			       size_t capacity, struct kernel_gpu_grant *out);
void beluga_kernel_gpu_unregister(struct beluga_region *region,
				  const struct kernel_gpu *gpu);

/* version.c */
int beluga_check_abi(uint32_t driver_abi, uint32_t driver_min_abi);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* BELUGA_INTERNAL_H */
