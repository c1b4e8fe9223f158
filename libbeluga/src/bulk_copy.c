// SPDX-License-Identifier: Apache-2.0
/*
 * Description: multi-threaded bulk copy for large transfers (the paper's
 * O4 moves large blocks with an offload engine; without DSA, several cores
 * streaming in parallel come closest to the link bandwidth).
 *
 * The buffer is cut into one contiguous, 4 KiB-aligned part per thread;
 * the caller's thread copies the last part itself and also takes over the
 * part of any thread that could not be started, so the copy always ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <beluga/beluga.h>

#define MIN_PER_THREAD (8UL << 20)	/* below this a thread costs more than it gives */
#define MAX_THREADS 64
#define PART_ALIGN 4096UL

struct part {
	char *dst;
	const char *src;
	size_t len;
	pthread_t tid;
	int started;
};

static void *copy_part(void *arg)
{
	struct part *p = arg;

	beluga_copy_nt(p->dst, p->src, p->len);
	return NULL;
}

static unsigned int pick_threads(size_t len, unsigned int threads)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t by_size = len / MIN_PER_THREAD;

	if (!threads)
		threads = cpus > 0 ? (unsigned int)cpus : 1;
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (by_size < threads)
		threads = by_size ? (unsigned int)by_size : 1;
	return threads;
}

int beluga_copy_bulk(void *dst, const void *src, size_t len,
		     unsigned int threads)
{
	struct part parts[MAX_THREADS];
	size_t share, off = 0;
	unsigned int n;

	if (!len)
		return 0;
	if (!dst || !src)
		return -EINVAL;
	n = pick_threads(len, threads);
	share = (len / n + PART_ALIGN - 1) & ~(PART_ALIGN - 1);
	for (unsigned int i = 0; i < n; i++) {
		struct part *p = &parts[i];

		p->dst = (char *)dst + off;
		p->src = (const char *)src + off;
		p->len = i == n - 1 || off + share > len ? len - off : share;
		off += p->len;
		p->started = i < n - 1 && p->len &&
			     !pthread_create(&p->tid, NULL, copy_part, p);
	}
	for (unsigned int i = 0; i < n; i++)
		if (!parts[i].started)
			copy_part(&parts[i]);
	for (unsigned int i = 0; i < n; i++)
		if (parts[i].started)
			pthread_join(parts[i].tid, NULL);
	return 0;
}
