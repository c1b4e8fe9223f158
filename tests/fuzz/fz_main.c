// SPDX-License-Identifier: Apache-2.0
/*
 * fz_main.c - beluga-fuzz: command line, workers, final invariants.
 *
 *   beluga-fuzz [--seconds T | --calls N] [--seed S] [--procs P] [--threads T]
 *               [--unpriv-procs K] [--verbose]
 *
 * P worker processes run T threads each; the first K processes drop to
 * uid/gid 65534 (the device node is opened to everyone meanwhile).  The run
 * stops after T seconds or N operations in total, whichever comes first.
 * Afterwards every fuzz region is destroyed and the pool must come back
 * whole: region count, free and quarantined bytes as before the run.  Prints
 * the per-operation and per-errno counts.  Exit 0: no oracle violation, no
 * crashed worker, pool whole; 77: no /dev/beluga; 1 otherwise.
 * Replay: the same --seed with --procs 1 --threads 1 repeats the sequence.
 */
#define _GNU_SOURCE
#include "fz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FZ_MAX_PROCS 16
#define FZ_MAX_THREADS 16
#define FZ_SETTLE_MS 60000	/* for the pool to come back after the run */
#define FZ_GRACE_MS 120000	/* for workers to finish after the deadline */

struct fz_opts {
	uint64_t seed, calls, seconds;
	unsigned int procs, threads, unpriv;
	bool verbose;
};

static const uint32_t fz_quota_uids[] = { 1000, 1001 };

static void fz_usage(void)
{
	fprintf(stderr, "usage: beluga-fuzz [--seconds T | --calls N] [--seed S] [--procs P]"
			" [--threads T] [--unpriv-procs K] [--verbose]\n");
	exit(2);
}

static void fz_parse(int argc, char **argv, struct fz_opts *o)
{
	static const struct option lo[] = {
		{ "seconds", 1, NULL, 's' }, { "calls", 1, NULL, 'n' },
		{ "seed", 1, NULL, 'S' }, { "procs", 1, NULL, 'p' },
		{ "threads", 1, NULL, 't' }, { "unpriv-procs", 1, NULL, 'u' },
		{ "verbose", 0, NULL, 'v' }, { NULL, 0, NULL, 0 },
	};
	const char *env = getenv("BELUGA_TEST_SEED");
	int ch;

	*o = (struct fz_opts){ .procs = 2, .threads = 3 };
	o->seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's': o->seconds = strtoull(optarg, NULL, 0); break;
		case 'n': o->calls = strtoull(optarg, NULL, 0); break;
		case 'S': o->seed = strtoull(optarg, NULL, 0); break;
		case 'p': o->procs = (unsigned int)atoi(optarg); break;
		case 't': o->threads = (unsigned int)atoi(optarg); break;
		case 'u': o->unpriv = (unsigned int)atoi(optarg); break;
		case 'v': o->verbose = true; break;
		default: fz_usage();
		}
	}
	if (!o->seconds && !o->calls)
		o->seconds = 20;
	if (!o->procs || o->procs > FZ_MAX_PROCS || !o->threads ||
	    o->threads > FZ_MAX_THREADS || o->unpriv > o->procs)
		fz_usage();
}

/* PCI devices the guest has, for GPU_REGISTER addresses that exist. */
static void fz_find_pci(struct fz_env *env)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	unsigned int dom, bus, dev, fn;

	if (!d)
		return;
	while ((de = readdir(d)) && env->nr_pci < FZ_MAX_PCI) {
		if (sscanf(de->d_name, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
			continue;
		env->pci[env->nr_pci][0] = dom;
		env->pci[env->nr_pci][1] = bus << 8 | dev << 3 | fn;
		env->nr_pci++;
	}
	closedir(d);
}

static int fz_info(int dev, struct beluga_info *info)
{
	memset(info, 0, sizeof(*info));
	return (int)fz_ioctl(dev, BELUGA_IOC_INFO, info);
}

static int fz_env_init(struct fz_env *env, int dev)
{
	struct beluga_info info;
	uint32_t i;

	if (fz_info(dev, &info))
		return -1;
	env->pool_bytes = info.total_bytes;
	env->nr_sources = info.nr_sources < FZ_MAX_SOURCES ? info.nr_sources : FZ_MAX_SOURCES;
	for (i = 0; i < env->nr_sources; i++) {
		struct beluga_source_info si = { .index = i };

		if (fz_ioctl(dev, BELUGA_IOC_SOURCE_INFO, &si))
			return -1;
		env->source_kind[i] = si.kind;
	}
	fz_find_pci(env);
	return 0;
}

struct fz_thread {
	pthread_t tid;
	struct fz_ctx ctx;
};

/*
 * Everything a thread needs is set up before any thread starts (and the
 * threads wait for each other): once fuzzing runs, the only new mappings
 * are fuzz mappings, so a stale table entry (a mapping another thread
 * replaced or partly unmapped) can only ever hit fuzz memory.
 */
static int fz_thread_setup(struct fz_ctx *c)
{
	unsigned int i;

	for (i = 0; i < FZ_MAX_FDS; i++)
		c->fds[i].fd = -1;
	c->dev = open(BELUGA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (c->dev < 0 || pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, c->sock) || fz_mem_thread_init(c))
		return -1;
	return 0;
}

static pthread_barrier_t fz_start;

static void *fz_thread_main(void *arg)
{
	struct fz_ctx *c = arg;

	pthread_barrier_wait(&fz_start);
	fz_run(c, 0);
	fz_release_all(c);
	fz_mem_thread_fini(c);
	close(c->dev);
	close(c->pipe[0]);
	close(c->pipe[1]);
	close(c->sock[0]);
	close(c->sock[1]);
	return NULL;
}

static int fz_drop_privileges(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return -errno;
	return 0;
}

/* One worker process: T threads over one arena.  Never returns. */
static void fz_worker(const struct fz_opts *o, struct fz_env *env, unsigned int proc)
{
	struct fz_thread *t = calloc(o->threads, sizeof(*t));
	struct fz_ctx proto;
	unsigned int i;

	memset(&proto, 0, sizeof(proto));
	env->unpriv = proc < o->unpriv;
	if (!t || (env->unpriv && fz_drop_privileges()) || fz_mem_proc_init(&proto)) {
		fprintf(stderr, "beluga-fuzz: worker %u setup: %s\n", proc, strerror(errno));
		_exit(3);
	}
	fz_install_fault_handler();
	for (i = 0; i < o->threads; i++) {
		struct fz_ctx *c = &t[i].ctx;

		*c = proto;
		c->env = env;
		c->proc = proc;
		c->thread = i;
		c->rng = env->seed ^ ((uint64_t)proc << 40) ^ ((uint64_t)i << 20);
		fz_next(&c->rng);
		if (fz_thread_setup(c)) {
			fprintf(stderr, "beluga-fuzz: worker %u.%u setup: %s\n", proc, i, strerror(errno));
			_exit(3);
		}
	}
	/* All stacks exist before the first operation (see fz_thread_setup). */
	pthread_barrier_init(&fz_start, NULL, o->threads);
	for (i = 0; i < o->threads; i++)
		if (pthread_create(&t[i].tid, NULL, fz_thread_main, &t[i].ctx))
			_exit(4);
	for (i = 0; i < o->threads; i++)
		pthread_join(t[i].tid, NULL);
	_exit(0);
}

/* Wait for every worker; past the grace period, kill them (a hang). */
static int fz_reap(pid_t *pids, unsigned int n, uint64_t deadline_ms)
{
	unsigned int left = n, i;
	int bad = 0, status;

	while (left) {
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			for (i = 0; i < n; i++) {
				if (pids[i] != pid)
					continue;
				pids[i] = 0;
				left--;
				if (!WIFEXITED(status) || WEXITSTATUS(status)) {
					printf("beluga-fuzz: worker %u ended with status %#x\n", i, status);
					bad = 1;
				}
			}
			continue;
		}
		if (pid < 0 && errno != EINTR)
			break;
		if (fz_now_ms() > deadline_ms + FZ_GRACE_MS) {
			printf("beluga-fuzz: workers still running %d s after the deadline: killing them\n",
			       FZ_GRACE_MS / 1000);
			for (i = 0; i < n; i++)
				if (pids[i])
					kill(pids[i], SIGKILL);
			bad = 1;
			deadline_ms = UINT64_MAX - FZ_GRACE_MS;
		}
		usleep(20000);
	}
	return bad;
}

/* Destroy every region the fuzzer named (all start with "fz-"). */
static void fz_destroy_leftovers(int dev)
{
	static struct beluga_region_stat e[1024];
	struct beluga_region_list l = { .entries = (uintptr_t)e, .capacity = 1024 };
	uint32_t i;

	if (fz_ioctl(dev, BELUGA_IOC_REGION_LIST, &l))
		return;
	for (i = 0; i < l.count && i < 1024; i++) {
		struct beluga_region_name n;

		if (strncmp(e[i].name, "fz-", 3) || (e[i].flags & BELUGA_REGION_F_DESTROYED))
			continue;
		memset(&n, 0, sizeof(n));
		memcpy(n.name, e[i].name, BELUGA_NAME_MAX);
		fz_ioctl(dev, BELUGA_IOC_REGION_DESTROY, &n);
	}
}

/* The pool must come back exactly: poll (the quarantine drains in steps). */
static int fz_pool_whole(int dev, const struct beluga_info *base)
{
	uint64_t until = fz_now_ms() + FZ_SETTLE_MS;
	struct beluga_info now;

	for (;;) {
		if (fz_info(dev, &now))
			return -1;
		if (now.nr_regions == base->nr_regions && now.free_bytes == base->free_bytes &&
		    now.quarantined_bytes == base->quarantined_bytes)
			return 0;
		if (fz_now_ms() > until)
			break;
		usleep(50000);
	}
	printf("beluga-fuzz: pool not whole after the run: regions %u (was %u), free %llu"
	       " (was %llu), quarantined %llu (was %llu)\n",
	       now.nr_regions, base->nr_regions, (unsigned long long)now.free_bytes,
	       (unsigned long long)base->free_bytes, (unsigned long long)now.quarantined_bytes,
	       (unsigned long long)base->quarantined_bytes);
	return -1;
}

static void fz_quotas(int dev, struct beluga_quota *saved, bool restore)
{
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct beluga_quota q = { .uid = fz_quota_uids[i] };

		if (!restore) {
			fz_ioctl(dev, BELUGA_IOC_QUOTA_GET, &q);
			saved[i] = q;
			continue;
		}
		q.flags = BELUGA_QUOTA_SET_ALL;
		q.max_bytes = saved[i].max_bytes;
		q.max_regions = saved[i].max_regions;
		fz_ioctl(dev, BELUGA_IOC_QUOTA_SET, &q);
	}
}

int main(int argc, char **argv)
{
	struct beluga_quota saved_quota[2];
	struct beluga_info base;
	struct fz_opts o;
	struct fz_env env;
	pid_t pids[FZ_MAX_PROCS];
	struct stat dev_st;
	uint64_t t0, deadline;
	unsigned int i;
	int dev, bad = 0;

	fz_parse(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	dev = open(BELUGA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("beluga-fuzz: %s: %s: skipped\n", BELUGA_DEVICE_PATH, strerror(errno));
		return 77;
	}
	memset(&env, 0, sizeof(env));
	env.seed = o.seed;
	env.verbose = o.verbose;
	if (fz_env_init(&env, dev) || fz_info(dev, &base) || stat(BELUGA_DEVICE_PATH, &dev_st)) {
		printf("beluga-fuzz: cannot query the driver: %s\n", strerror(errno));
		return 1;
	}
	env.sh = mmap(NULL, sizeof(*env.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (env.sh == MAP_FAILED)
		return 1;
	fz_quotas(dev, saved_quota, false);
	if (o.unpriv)
		chmod(BELUGA_DEVICE_PATH, 0666);
	t0 = fz_now_ms();
	deadline = o.seconds ? t0 + o.seconds * 1000 : UINT64_MAX - FZ_GRACE_MS;
	env.deadline_ms = o.seconds ? deadline : 0;
	env.max_calls = o.calls;
	printf("beluga-fuzz: seed %#" PRIx64 ", %u processes (%u unprivileged) x %u threads,"
	       " %" PRIu64 " s / %" PRIu64 " calls; pool %" PRIu64 " MiB in %u sources, %u PCI devices\n",
	       o.seed, o.procs, o.unpriv, o.threads, o.seconds, o.calls,
	       (uint64_t)env.pool_bytes >> 20,
	       env.nr_sources, env.nr_pci);
	printf("beluga-fuzz: replay worker 0.0's sequence: beluga-fuzz --seed %#" PRIx64
	       " --procs 1 --threads 1 --unpriv-procs %u --calls N\n", o.seed, o.unpriv ? 1 : 0);
	fflush(stdout);

	for (i = 0; i < o.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			return 1;
		}
		if (!pids[i])
			fz_worker(&o, &env, i);
	}
	bad |= fz_reap(pids, o.procs, deadline);
	if (o.unpriv)
		chmod(BELUGA_DEVICE_PATH, dev_st.st_mode & 07777);

	fz_destroy_leftovers(dev);
	fz_quotas(dev, saved_quota, true);
	if (fz_pool_whole(dev, &base))
		bad = 1;
	fz_report(env.sh, fz_now_ms() - t0);
	if (env.sh->violations)
		bad = 1;
	printf("beluga-fuzz: %s\n", bad ? "FAILED" : "passed");
	close(dev);
	return bad;
}
