/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: user-space backend internals.
 *
 * A pool is a sticky, world-writable directory (like /tmp): names live in
 * the tmpfs directory (/dev/shm/beluga-<pool>/) and, when a 2 MiB hugetlbfs
 * mount is usable, in <mount>/beluga-<pool>/ too.  A region is a file
 * "r.<name>" in one of them; its mode, owner and size are the file's, so
 * the kernel enforces the same permission rules as the driver (EACCES on
 * open; EPERM on destroy/chmod by a non-owner thanks to the sticky bit).
 */
#ifndef BELUGA_USER_INTERNAL_H
#define BELUGA_USER_INTERNAL_H

#include "internal.h"

#define USER_PREFIX "r."
#define USER_FILE_MAX (BELUGA_REGION_NAME_MAX + 2)

/* The two directories, hugetlbfs first; fd -1 when absent. */
static inline int user_dirfd(const struct beluga_pool *pool, int i)
{
	return i == 0 ? pool->u.hugefd : pool->u.dirfd;
}

void user_file_name(char out[USER_FILE_MAX], const char *name);
void user_info_from_stat(struct beluga_region_info *info, const char *name,
			 const struct stat *st, bool hugetlb);

/* user_nodes.c */
int user_scan_nodes(struct beluga_pool *pool);
int user_node_bytes(struct beluga_pool *pool, int node, uint64_t *total,
		    uint64_t *free, bool *has_cpus);
int user_bind(struct beluga_pool *pool, void *addr, uint64_t size,
	      int32_t source);

/* user_hugetlb.c */
int user_find_hugetlbfs(struct beluga_pool *pool, char *mnt, size_t len);
uint64_t user_free_hugepages(struct beluga_pool *pool, int node);

/* user_region.c / user_create.c */
int user_create(struct beluga_pool *pool, const char *name, uint64_t size,
		uint32_t mode, uint32_t flags, int32_t source,
		struct region_handle *out);
int user_open_region(struct beluga_pool *pool, const char *name,
		     uint32_t flags, struct region_handle *out);
int user_destroy(struct beluga_pool *pool, const char *name);
int user_stat(struct beluga_pool *pool, const char *name,
	      struct beluga_region_info *info);
int user_fd_stat(struct beluga_pool *pool, int fd,
		 struct beluga_region_info *info);
int user_list(struct beluga_pool *pool, struct beluga_region_info *entries,
	      size_t capacity, size_t *count);
int user_chmod(struct beluga_pool *pool, const char *name, uint32_t mode);
int user_chown(struct beluga_pool *pool, const char *name, uint32_t uid,
	       uint32_t gid);

/* user_map.c */
int user_map(struct beluga_region *region, uint64_t offset, size_t length,
	     int prot, void **addr);
int user_layout(struct beluga_region *region, int32_t *nodes, size_t capacity,
		size_t *nr_chunks);

#endif /* BELUGA_USER_INTERNAL_H */
