// SPDX-License-Identifier: Apache-2.0
/*
 * Description: the NUMA node of each 2 MiB chunk of a mapped range, read
 * with move_pages(2) in query mode (no node list: nothing moves).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define BATCH 1024

/*
 * Fill @nodes[0..nr) with the node of the first page of each chunk of the
 * range at @addr (which must be mapped and faulted in).  A chunk whose page
 * is not present gets -1.
 */
int beluga_query_nodes(struct beluga_pool *pool, void *addr, size_t len,
		       int32_t *nodes, size_t nr)
{
	void *pages[BATCH];
	int status[BATCH];

	if (nr > len / BELUGA_CHUNK)
		nr = len / BELUGA_CHUNK;
	for (size_t done = 0; done < nr;) {
		size_t k = nr - done < BATCH ? nr - done : BATCH;
		int ret;

		for (size_t i = 0; i < k; i++)
			pages[i] = (char *)addr + (done + i) * BELUGA_CHUNK;
		ret = pool->ops.move_pages(pool->ops.ctx, k, pages, status);
		if (ret == -ENOSYS) {	/* kernel without NUMA: all on node 0 */
			for (size_t i = 0; i < k; i++)
				status[i] = 0;
		} else if (ret < 0) {
			return ret;
		}
		for (size_t i = 0; i < k; i++)
			nodes[done + i] = status[i] < 0 ? -1 : status[i];
		done += k;
	}
	return 0;
}
