// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_gpu.c - GPU registration of regions.
 *
 * The kernel cannot call the NVIDIA driver, and no public interface lets a
 * third-party module hand it host pages; user space registers the mapping
 * with cudaHostRegister().  What the driver can do is make that safe and
 * well-informed: check the region is populated and long-term pinnable,
 * keep it from being destroyed while a GPU may be using it (a reference
 * owned by the registering fd, dropped by unregister or when the fd is
 * released, so a killed process never leaves a region stuck), and tell user
 * space where the memory is relative to the GPU.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/topology.h>
#include <linux/uaccess.h>

#include "beluga_internal.h"

/*
 * Largest span user space should pass to one cudaHostRegister() call:
 * registering hundreds of GiB at once fails in the NVIDIA driver (a single
 * kvzalloc of the page array), so the library registers in pieces.
 */
#define BELUGA_GPU_MAX_REGISTER	(64ULL << 30)

struct beluga_gpu_reg {
	struct list_head node;		/* beluga_rfile.gpus */
	struct pci_dev *pdev;		/* reference held */
	unsigned int count;
};

/* The CPU node a node's memory is attached to: itself, or the nearest. */
static int beluga_home_node(int nid)
{
	int n, best = NUMA_NO_NODE, best_dist = INT_MAX;

	if (nid == NUMA_NO_NODE || !node_online(nid))
		return NUMA_NO_NODE;
	if (node_state(nid, N_CPU))
		return nid;
	for_each_node_state(n, N_CPU) {
		int d = node_distance(nid, n);

		if (d < best_dist) {
			best_dist = d;
			best = n;
		}
	}
	return best;
}

static u32 beluga_gpu_socket(struct beluga_region *r, int gpu_node)
{
	int gpu_home = beluga_home_node(gpu_node);
	unsigned long i, same = 0;

	if (gpu_home == NUMA_NO_NODE)
		return BELUGA_GPU_SOCKET_UNKNOWN;
	for (i = 0; i < r->nr_chunks; i++)
		same += beluga_home_node(r->chunks[i]->src->nid) == gpu_home;
	if (same == r->nr_chunks)
		return BELUGA_GPU_SOCKET_SAME;
	return same ? BELUGA_GPU_SOCKET_MIXED : BELUGA_GPU_SOCKET_OTHER;
}

/* Every chunk present and in a zone FOLL_LONGTERM pins accept. */
static int beluga_region_pinnable(struct beluga_region *r)
{
	unsigned long i;

	for (i = 0; i < r->nr_chunks; i++) {
		struct page *page = r->chunks[i] ? r->chunks[i]->page : NULL;

		if (!page || !beluga_page_longterm_pinnable(page))
			return -EINVAL;
	}
	return 0;
}

static bool beluga_pci_addr_valid(u32 domain, u32 bdf)
{
	return domain <= 0xffff && bdf <= 0xffff;
}

static struct beluga_gpu_reg *beluga_gpu_find(struct beluga_rfile *rf,
					      u32 domain, u32 bdf)
{
	struct beluga_gpu_reg *reg;

	lockdep_assert_held(&rf->lock);
	list_for_each_entry(reg, &rf->gpus, node) {
		struct pci_dev *pdev = reg->pdev;

		if (pci_domain_nr(pdev->bus) == domain &&
		    pdev->bus->number == (bdf >> 8) && pdev->devfn == (bdf & 0xff))
			return reg;
	}
	return NULL;
}

static void beluga_gpu_count(struct beluga_region *r, int delta)
{
	mutex_lock(&beluga_pool.lock);
	r->gpu_registrations += delta;
	mutex_unlock(&beluga_pool.lock);
}

/* Drop one registration of @reg; frees it when it was the last. */
static void beluga_gpu_put(struct beluga_rfile *rf, struct beluga_gpu_reg *reg)
{
	lockdep_assert_held(&rf->lock);
	beluga_gpu_count(rf->region, -1);
	if (--reg->count)
		return;
	list_del(&reg->node);
	pci_dev_put(reg->pdev);
	kfree(reg);
}

/* Take one registration of @pdev for @rf (consumes the @pdev reference). */
static struct beluga_gpu_reg *beluga_gpu_get(struct beluga_rfile *rf,
					     struct pci_dev *pdev, u32 domain,
					     u32 bdf)
{
	struct beluga_gpu_reg *reg = beluga_gpu_find(rf, domain, bdf);

	if (reg) {
		pci_dev_put(pdev);
	} else {
		reg = kzalloc(sizeof(*reg), GFP_KERNEL);
		if (!reg) {
			pci_dev_put(pdev);
			return NULL;
		}
		reg->pdev = pdev;
		list_add(&reg->node, &rf->gpus);
	}
	reg->count++;
	beluga_gpu_count(rf->region, 1);
	return reg;
}

static bool beluga_gpu_register_valid(const struct beluga_gpu_register *req)
{
	return !req->flags && !req->gpu_node && !req->socket &&
	       !req->nr_chunks && !req->registrations && !req->chunk_size &&
	       !req->max_register_bytes &&
	       !memchr_inv(req->reserved, 0, sizeof(req->reserved)) &&
	       (!req->capacity || req->nodes) &&
	       beluga_pci_addr_valid(req->pci_domain, req->pci_bdf);
}

static int beluga_copy_nodes(struct beluga_region *r, u64 uptr, u32 capacity)
{
	s32 __user *nodes = u64_to_user_ptr(uptr);
	unsigned long i, n = min_t(unsigned long, capacity, r->nr_chunks);

	for (i = 0; i < n; i++)
		if (put_user(r->chunks[i]->src->nid, nodes + i))
			return -EFAULT;
	return 0;
}

/**
 * beluga_gpu_register() - BELUGA_IOC_GPU_REGISTER on a region file.
 * @file: the region file; its struct beluga_rfile owns the registration.
 * @argp: user pointer to a struct beluga_gpu_register.
 *
 * Checks that every chunk of the region is present and long-term pinnable,
 * writes the node of each chunk to @argp->nodes (up to @argp->capacity),
 * looks up the GPU by PCI address and takes one registration of it for
 * @file: the registration holds a reference on the PCI device and counts in
 * the region's gpu_registrations, so the region cannot be destroyed while a
 * GPU may be using it.  Fills in the GPU's node, where the region sits
 * relative to it (socket), the chunk count and size and the largest span to
 * register at once.  On a failed copy back the registration is dropped again.
 *
 * Context: process context, may sleep.  Takes the file's rf->lock, and
 * beluga_pool.lock under it; copies to and from user space with only
 * rf->lock held.
 * Return: 0, -EFAULT (bad @argp or nodes pointer), -EINVAL (a flag, output
 * or reserved field set, a bad PCI address, or a chunk that cannot be
 * pinned long term), -ENODEV (no such PCI device) or -ENOMEM.
 */
long beluga_gpu_register(struct file *file, void __user *argp)
{
	struct beluga_rfile *rf = file->private_data;
	struct beluga_region *r = rf->region;
	struct beluga_gpu_register req;
	struct beluga_gpu_reg *reg;
	struct pci_dev *pdev;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (!beluga_gpu_register_valid(&req))
		return -EINVAL;
	ret = beluga_region_pinnable(r);
	if (ret)
		return ret;
	ret = beluga_copy_nodes(r, req.nodes, req.capacity);
	if (ret)
		return ret;
	pdev = pci_get_domain_bus_and_slot(req.pci_domain, req.pci_bdf >> 8,
					   req.pci_bdf & 0xff);
	if (!pdev)
		return -ENODEV;

	req.gpu_node = dev_to_node(&pdev->dev);
	req.socket = beluga_gpu_socket(r, req.gpu_node);
	req.nr_chunks = r->nr_chunks;
	req.chunk_size = BELUGA_CHUNK_BYTES;
	req.max_register_bytes = BELUGA_GPU_MAX_REGISTER;

	mutex_lock(&rf->lock);
	reg = beluga_gpu_get(rf, pdev, req.pci_domain, req.pci_bdf);
	if (!reg) {
		ret = -ENOMEM;
		goto unlock;
	}
	req.registrations = reg->count;
	if (copy_to_user(argp, &req, sizeof(req))) {
		beluga_gpu_put(rf, reg);	/* leave nothing behind */
		ret = -EFAULT;
	}
unlock:
	mutex_unlock(&rf->lock);
	return ret;
}

/**
 * beluga_gpu_unregister() - BELUGA_IOC_GPU_UNREGISTER on a region file.
 * @file: the region file that registered the GPU.
 * @argp: user pointer to a struct beluga_gpu_unregister.
 *
 * Drops one registration of the GPU at the given PCI address that @file
 * took with beluga_gpu_register(); the last one releases the PCI device.
 *
 * Context: process context, may sleep.  Takes rf->lock, and
 * beluga_pool.lock under it.
 * Return: 0, -EFAULT, -EINVAL (a flag, padding or reserved field set, or a
 * bad PCI address) or -ENOENT (@file holds no registration of that GPU).
 */
long beluga_gpu_unregister(struct file *file, void __user *argp)
{
	struct beluga_rfile *rf = file->private_data;
	struct beluga_gpu_unregister req;
	struct beluga_gpu_reg *reg;
	long ret = 0;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.__pad ||
	    memchr_inv(req.reserved, 0, sizeof(req.reserved)) ||
	    !beluga_pci_addr_valid(req.pci_domain, req.pci_bdf))
		return -EINVAL;

	mutex_lock(&rf->lock);
	reg = beluga_gpu_find(rf, req.pci_domain, req.pci_bdf);
	if (reg)
		beluga_gpu_put(rf, reg);
	else
		ret = -ENOENT;
	mutex_unlock(&rf->lock);
	return ret;
}

/**
 * beluga_gpu_release_all() - drop every GPU registration a region file owns.
 * @rf: the private data of a region file being released.
 *
 * Called from the file's release, so a process that exits or is killed
 * without unregistering never leaves a region held by its GPU registrations.
 *
 * Context: process context, may sleep.  Takes rf->lock, and
 * beluga_pool.lock under it.
 */
void beluga_gpu_release_all(struct beluga_rfile *rf)
{
	struct beluga_gpu_reg *reg, *tmp;

	mutex_lock(&rf->lock);
	list_for_each_entry_safe(reg, tmp, &rf->gpus, node) {
		while (reg->count > 1)
			beluga_gpu_put(rf, reg);
		beluga_gpu_put(rf, reg);
	}
	mutex_unlock(&rf->lock);
}
