// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_sysfs.c - /sys/kernel/beluga: pool, sources, regions, counters.
 *
 * One value per file, read-only, nothing that reveals a kernel or physical
 * address.  Region directories are named by region id (names may be reused
 * after destroy; ids never are).  Show functions look objects up by the
 * directory name under the pool lock instead of keeping pointers in
 * kobjects: kobject_del() waits for running show calls, and a region leaves
 * the id table before its directory is removed, so a lookup either finds a
 * live region or nothing.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "beluga_internal.h"

#define BELUGA_RO_ATTR(_prefix, _name) \
	static struct kobj_attribute _prefix##_##_name##_attr = \
		__ATTR(_name, 0444, _prefix##_##_name##_show, NULL)

/* --- pool ---------------------------------------------------------------- */

static ssize_t pool_abi_version_show(struct kobject *k,
				     struct kobj_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%u.%u\n", BELUGA_ABI_MAJOR, BELUGA_ABI_MINOR);
}

static ssize_t pool_chunk_size_show(struct kobject *k,
				    struct kobj_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%lu\n", BELUGA_CHUNK_BYTES);
}

static ssize_t pool_total_bytes_show(struct kobject *k,
				     struct kobj_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  (u64)beluga_pool_total_chunks() * BELUGA_CHUNK_BYTES);
}

static ssize_t pool_locked_show(char *buf, const unsigned long *val)
{
	unsigned long v;

	mutex_lock(&beluga_pool.lock);
	v = *val;
	mutex_unlock(&beluga_pool.lock);
	return sysfs_emit(buf, "%llu\n", (u64)v * BELUGA_CHUNK_BYTES);
}

static ssize_t pool_free_bytes_show(struct kobject *k,
				    struct kobj_attribute *a, char *buf)
{
	return pool_locked_show(buf, &beluga_pool.nr_free);
}

static ssize_t pool_quarantined_bytes_show(struct kobject *k,
					   struct kobj_attribute *a, char *buf)
{
	return pool_locked_show(buf, &beluga_pool.nr_quarantined);
}

static ssize_t pool_nr_regions_show(struct kobject *k,
				    struct kobj_attribute *a, char *buf)
{
	unsigned int n;

	mutex_lock(&beluga_pool.lock);
	n = beluga_pool.nr_regions;
	mutex_unlock(&beluga_pool.lock);
	return sysfs_emit(buf, "%u\n", n);
}

BELUGA_RO_ATTR(pool, abi_version);
BELUGA_RO_ATTR(pool, chunk_size);
BELUGA_RO_ATTR(pool, total_bytes);
BELUGA_RO_ATTR(pool, free_bytes);
BELUGA_RO_ATTR(pool, quarantined_bytes);
BELUGA_RO_ATTR(pool, nr_regions);

static struct attribute *pool_attrs[] = {
	&pool_abi_version_attr.attr,
	&pool_chunk_size_attr.attr,
	&pool_total_bytes_attr.attr,
	&pool_free_bytes_attr.attr,
	&pool_quarantined_bytes_attr.attr,
	&pool_nr_regions_attr.attr,
	NULL,
};

static const struct attribute_group pool_group = {
	.attrs = pool_attrs,
};

/* --- counters ------------------------------------------------------------ */

#define BELUGA_COUNTER_ATTR(_name) \
static ssize_t counters_##_name##_show(struct kobject *k, \
				       struct kobj_attribute *a, char *buf) \
{ \
	return sysfs_emit(buf, "%lld\n", \
			  atomic64_read(&beluga_pool.counters._name)); \
} \
BELUGA_RO_ATTR(counters, _name)

BELUGA_COUNTER_ATTR(pmd_faults);
BELUGA_COUNTER_ATTR(pte_faults);
BELUGA_COUNTER_ATTR(alloc_failures);
BELUGA_COUNTER_ATTR(regions_created);
BELUGA_COUNTER_ATTR(regions_freed);

static ssize_t counters_pinned_chunks_show(struct kobject *k,
					   struct kobj_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%lu\n", beluga_pool_pinned_chunks());
}

BELUGA_RO_ATTR(counters, pinned_chunks);

static struct attribute *counters_attrs[] = {
	&counters_pmd_faults_attr.attr,
	&counters_pte_faults_attr.attr,
	&counters_pinned_chunks_attr.attr,
	&counters_alloc_failures_attr.attr,
	&counters_regions_created_attr.attr,
	&counters_regions_freed_attr.attr,
	NULL,
};

static const struct attribute_group counters_group = {
	.name = "counters",
	.attrs = counters_attrs,
};

/* --- sources ------------------------------------------------------------- */

/*
 * The source named by @k's directory, or NULL once it is gone.  Pool lock
 * held: a source removed at run time leaves the array before its
 * directory is removed (and kobject_del() waits for running show calls).
 */
static struct beluga_source *source_of(struct kobject *k)
{
	unsigned int idx;

	lockdep_assert_held(&beluga_pool.lock);
	if (kstrtouint(kobject_name(k), 10, &idx) ||
	    idx >= beluga_pool.nr_sources)
		return NULL;
	return beluga_pool.sources[idx];
}

#define BELUGA_SOURCE_ATTR(_name, _fmt, _expr) \
static ssize_t source_##_name##_show(struct kobject *k, \
				     struct kobj_attribute *a, char *buf) \
{ \
	struct beluga_source *src; \
	ssize_t ret = -ENODEV; \
	\
	mutex_lock(&beluga_pool.lock); \
	src = source_of(k); \
	if (src) \
		ret = sysfs_emit(buf, _fmt "\n", _expr); \
	mutex_unlock(&beluga_pool.lock); \
	return ret; \
}

BELUGA_SOURCE_ATTR(kind, "%s",
		   src->kind == BELUGA_SOURCE_NODE ? "node" : "range");
BELUGA_SOURCE_ATTR(node, "%d", src->nid);
BELUGA_SOURCE_ATTR(has_cpus, "%d", src->has_cpus);
BELUGA_SOURCE_ATTR(total_bytes, "%llu",
		   (u64)src->nr_chunks * BELUGA_CHUNK_BYTES);
BELUGA_SOURCE_ATTR(free_bytes, "%llu", (u64)src->nr_free * BELUGA_CHUNK_BYTES);
BELUGA_SOURCE_ATTR(name, "%s", src->name);
BELUGA_SOURCE_ATTR(identity, "%s", src->identity);

BELUGA_RO_ATTR(source, kind);
BELUGA_RO_ATTR(source, node);
BELUGA_RO_ATTR(source, has_cpus);
BELUGA_RO_ATTR(source, total_bytes);
BELUGA_RO_ATTR(source, free_bytes);
BELUGA_RO_ATTR(source, name);
BELUGA_RO_ATTR(source, identity);

static struct attribute *source_attrs[] = {
	&source_kind_attr.attr,
	&source_node_attr.attr,
	&source_has_cpus_attr.attr,
	&source_total_bytes_attr.attr,
	&source_free_bytes_attr.attr,
	&source_name_attr.attr,
	&source_identity_attr.attr,
	NULL,
};

static const struct attribute_group source_group = {
	.attrs = source_attrs,
};

/* --- regions ------------------------------------------------------------- */

/* Snapshot the region named by @k's directory; -ENODEV once it is gone. */
static int region_stat_of(struct kobject *k, struct beluga_region_stat *st)
{
	u64 id;

	if (kstrtou64(kobject_name(k), 10, &id))
		return -ENODEV;
	return beluga_region_stat_by_id(id, st);
}

#define BELUGA_REGION_ATTR(_name, _fmt, _expr) \
static ssize_t region_##_name##_show(struct kobject *k, \
				     struct kobj_attribute *a, char *buf) \
{ \
	struct beluga_region_stat st; \
	int ret = region_stat_of(k, &st); \
	\
	return ret ? ret : sysfs_emit(buf, _fmt "\n", _expr); \
} \
BELUGA_RO_ATTR(region, _name)

BELUGA_REGION_ATTR(name, "%s", st.name);
BELUGA_REGION_ATTR(size, "%llu", st.size);
BELUGA_REGION_ATTR(uid, "%u", st.uid);
BELUGA_REGION_ATTR(gid, "%u", st.gid);
BELUGA_REGION_ATTR(mode, "%04o", st.mode);
BELUGA_REGION_ATTR(open_count, "%u", st.open_count);
BELUGA_REGION_ATTR(map_count, "%u", st.map_count);
BELUGA_REGION_ATTR(pinned_chunks, "%u", st.pinned_chunks);
BELUGA_REGION_ATTR(ephemeral, "%d",
		   !!(st.flags & BELUGA_REGION_F_EPHEMERAL));
BELUGA_REGION_ATTR(destroyed, "%d",
		   !!(st.flags & BELUGA_REGION_F_DESTROYED));
BELUGA_REGION_ATTR(shared, "%d", !!(st.flags & BELUGA_REGION_F_SHARED));

static ssize_t region_gpu_registrations_show(struct kobject *k,
					     struct kobj_attribute *a,
					     char *buf)
{
	struct beluga_region *r;
	unsigned int n = 0;
	u64 id;

	if (kstrtou64(kobject_name(k), 10, &id))
		return -ENODEV;
	mutex_lock(&beluga_pool.lock);
	r = xa_load(&beluga_pool.regions, id);
	if (r)
		n = r->gpu_registrations;
	mutex_unlock(&beluga_pool.lock);
	return r ? sysfs_emit(buf, "%u\n", n) : -ENODEV;
}

BELUGA_RO_ATTR(region, gpu_registrations);

static struct attribute *region_attrs[] = {
	&region_gpu_registrations_attr.attr,
	&region_name_attr.attr,
	&region_size_attr.attr,
	&region_uid_attr.attr,
	&region_gid_attr.attr,
	&region_mode_attr.attr,
	&region_open_count_attr.attr,
	&region_map_count_attr.attr,
	&region_pinned_chunks_attr.attr,
	&region_ephemeral_attr.attr,
	&region_destroyed_attr.attr,
	&region_shared_attr.attr,
	NULL,
};

static const struct attribute_group region_group = {
	.attrs = region_attrs,
};

/* --- quotas ------------------------------------------------------------- */

/* Read one field of the quota entry named by @k's directory (a uid). */
static ssize_t quota_show(struct kobject *k, char *buf, int field)
{
	struct beluga_quota_entry *e;
	ssize_t ret = -ENODEV;
	u64 v = 0;
	u32 uid;

	if (kstrtou32(kobject_name(k), 10, &uid))
		return -ENODEV;
	mutex_lock(&beluga_pool.lock);
	list_for_each_entry(e, &beluga_pool.quotas, node) {
		if (from_kuid(&init_user_ns, e->uid) != uid)
			continue;
		v = field == 0 ? e->max_bytes : field == 1 ? e->used_bytes :
		    field == 2 ? e->max_regions : e->used_regions;
		ret = 0;
		break;
	}
	mutex_unlock(&beluga_pool.lock);
	return ret ? ret : sysfs_emit(buf, "%llu\n", v);
}

#define BELUGA_QUOTA_ATTR(_name, _field) \
static ssize_t quota_##_name##_show(struct kobject *k, \
				    struct kobj_attribute *a, char *buf) \
{ \
	return quota_show(k, buf, _field); \
} \
BELUGA_RO_ATTR(quota, _name)

BELUGA_QUOTA_ATTR(max_bytes, 0);
BELUGA_QUOTA_ATTR(used_bytes, 1);
BELUGA_QUOTA_ATTR(max_regions, 2);
BELUGA_QUOTA_ATTR(used_regions, 3);

static struct attribute *quota_attrs[] = {
	&quota_max_bytes_attr.attr,
	&quota_used_bytes_attr.attr,
	&quota_max_regions_attr.attr,
	&quota_used_regions_attr.attr,
	NULL,
};

static const struct attribute_group quota_group = {
	.attrs = quota_attrs,
};

/* A directory @name under @parent holding @group; NULL on failure. */
static struct kobject *beluga_sysfs_dir(const char *name,
					struct kobject *parent,
					const struct attribute_group *group)
{
	struct kobject *k = kobject_create_and_add(name, parent);

	if (!k)
		return NULL;
	if (group && sysfs_create_group(k, group)) {
		kobject_put(k);
		return NULL;
	}
	return k;
}

/**
 * beluga_sysfs_add_region() - create regions/<id>/ for a new region.
 * @r: the region, its id set, not yet published.
 *
 * The directory's files look the region up by id under beluga_pool.lock on
 * every read, so they show nothing once the region has left the id table.
 *
 * Context: process context, may sleep.  Called without beluga_pool.lock.
 * Return: 0 or -ENOMEM.
 */
int beluga_sysfs_add_region(struct beluga_region *r)
{
	char name[24];

	snprintf(name, sizeof(name), "%llu", r->id);
	r->kobj = beluga_sysfs_dir(name, beluga_pool.regions_kobj,
				   &region_group);
	return r->kobj ? 0 : -ENOMEM;
}

/**
 * beluga_sysfs_del_region() - remove a region's directory, if it has one.
 * @r: the region, already out of the id table.
 *
 * Context: process context, may sleep: kobject_del() waits for running
 * reads, which take beluga_pool.lock, so it must not be called with that
 * lock held.
 */
void beluga_sysfs_del_region(struct beluga_region *r)
{
	/* kobject_del() removes the directory and waits for readers. */
	if (r->kobj)
		kobject_del(r->kobj);
	kobject_put(r->kobj);
	r->kobj = NULL;
}

/**
 * beluga_sysfs_add_source() - create sources/<index>/ for a source.
 * @src: the source, already in the sources array.
 *
 * Context: process context, may sleep; at module load, or with
 * beluga_pool.sources_lock held (not beluga_pool.lock).
 * Return: 0, or -ENOMEM (the source then has no directory).
 */
int beluga_sysfs_add_source(struct beluga_source *src)
{
	char name[12];

	snprintf(name, sizeof(name), "%u", src->index);
	src->kobj = beluga_sysfs_dir(name, beluga_pool.sources_kobj,
				     &source_group);
	return src->kobj ? 0 : -ENOMEM;
}

/**
 * beluga_sysfs_del_source() - remove a source's sources/<index>/.
 * @src: the source; its directory pointer is cleared.
 *
 * Context: process context, may sleep: waits for running show calls, so
 * never called with beluga_pool.lock held.
 */
void beluga_sysfs_del_source(struct beluga_source *src)
{
	if (src->kobj)
		kobject_del(src->kobj);
	kobject_put(src->kobj);
	src->kobj = NULL;
}

/**
 * beluga_sysfs_add_quota() - create quotas/<uid>/ for a new quota entry.
 * @e: the entry; the directory is named by its uid in the initial user
 *     namespace.
 *
 * A failure leaves @e without a directory (@e->kobj NULL): the quota still
 * applies, it is only not shown.
 *
 * Context: process context, may sleep; called with beluga_pool.lock held
 * (creating a directory does not wait for readers).
 */
void beluga_sysfs_add_quota(struct beluga_quota_entry *e)
{
	char name[12];

	snprintf(name, sizeof(name), "%u", from_kuid(&init_user_ns, e->uid));
	e->kobj = beluga_sysfs_dir(name, beluga_pool.quotas_kobj, &quota_group);
}

/**
 * beluga_sysfs_del_quota() - remove a quota entry's directory, if it has one.
 * @e: the entry.
 *
 * Context: process context, may sleep; must not be called with
 * beluga_pool.lock held (kobject_del() waits for readers, which take it).
 */
void beluga_sysfs_del_quota(struct beluga_quota_entry *e)
{
	if (e->kobj)
		kobject_del(e->kobj);
	kobject_put(e->kobj);
	e->kobj = NULL;
}

/**
 * beluga_sysfs_init() - create /sys/kernel/beluga with the pool's files,
 * counters/, sources/<index>/ for every registered source, regions/ and
 * quotas/.
 *
 * Context: module init, after the sources are registered and before
 * /dev/beluga exists; process context, may sleep.
 * Return: 0, or -ENOMEM with everything created removed again.
 */
int beluga_sysfs_init(void)
{
	unsigned int i;

	beluga_pool.kobj = beluga_sysfs_dir("beluga", kernel_kobj, &pool_group);
	if (!beluga_pool.kobj)
		return -ENOMEM;
	if (sysfs_create_group(beluga_pool.kobj, &counters_group))
		goto fail;
	beluga_pool.sources_kobj = beluga_sysfs_dir("sources", beluga_pool.kobj,
						    NULL);
	beluga_pool.regions_kobj = beluga_sysfs_dir("regions", beluga_pool.kobj,
						    NULL);
	beluga_pool.quotas_kobj = beluga_sysfs_dir("quotas", beluga_pool.kobj,
						   NULL);
	if (!beluga_pool.sources_kobj || !beluga_pool.regions_kobj ||
	    !beluga_pool.quotas_kobj)
		goto fail;
	/* Load time: the sources array cannot change yet. */
	for (i = 0; i < beluga_pool.nr_sources; i++)
		if (beluga_sysfs_add_source(beluga_pool.sources[i]))
			goto fail;
	return 0;
fail:
	beluga_sysfs_exit();
	return -ENOMEM;
}

/**
 * beluga_sysfs_exit() - remove /sys/kernel/beluga (what beluga_sysfs_init()
 * created; regions and quota entries remove their own directories).
 *
 * Context: module exit or a failed init; process context, may sleep;
 * beluga_pool.lock not held.
 */
void beluga_sysfs_exit(void)
{
	unsigned int i;

	for (i = 0; i < beluga_pool.nr_sources; i++)
		if (beluga_pool.sources[i])
			beluga_sysfs_del_source(beluga_pool.sources[i]);
	kobject_put(beluga_pool.quotas_kobj);
	kobject_put(beluga_pool.regions_kobj);
	kobject_put(beluga_pool.sources_kobj);
	kobject_put(beluga_pool.kobj);
	beluga_pool.quotas_kobj = NULL;
	beluga_pool.regions_kobj = NULL;
	beluga_pool.sources_kobj = NULL;
	beluga_pool.kobj = NULL;
}
