// SPDX-License-Identifier: Apache-2.0
// Checksums on the GPU: beluga_kv_gpu_gather_sum (the gather of whole blocks
// into reserved pool slots with each block's checksum) and
// beluga_kv_gpu_checksum (the checksum of buffers).  Per call, one
// stream-ordered scratch allocation holds the items, the accumulators and the
// finished sums; it is freed on the stream after the sums are copied out.
#include "../plan.hpp"
#include "gpu_ctx.hpp"
#include "sum_launch.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <vector>

using beluga::xfer::Plan;

namespace beluga::xfer::cuda {

namespace {

bool is_legacy_stream(cudaStream_t s)
{
	return s == nullptr || s == cudaStreamLegacy;
}

// Scratch on the stream: `head` bytes of items, then 8 accumulator words and
// one result per item.  From the stream-ordered allocator and freed on the
// stream by the destructor; where the device has no memory pools
// (cudaMallocAsync not supported), from cudaMalloc, and the destructor then
// waits for the stream before freeing it: the call becomes synchronous.
class Scratch {
public:
	Scratch(size_t head, size_t n, cudaStream_t s) : s_(s), n_(n)
	{
		head_ = (head + 63) & ~size_t(63);
		const size_t bytes = head_ + n * 8 * sizeof(unsigned long long) + n * sizeof(uint64_t);
		status_ = cudaMallocAsync(&p_, bytes, s);
		if (status_ == cudaErrorNotSupported) {
			cudaGetLastError();
			p_ = nullptr;
			pooled_ = false;
			status_ = cudaMalloc(&p_, bytes);
		}
		if (status_ != cudaSuccess)
			p_ = nullptr;
		else
			status_ = cudaMemsetAsync(acc(), 0, n * 8 * sizeof(unsigned long long), s);
	}
	~Scratch()
	{
		if (!p_)
			return;
		if (pooled_) {
			cudaFreeAsync(p_, s_);
		} else {
			cudaStreamSynchronize(s_);
			cudaFree(p_);
		}
	}
	Scratch(const Scratch &) = delete;
	Scratch &operator=(const Scratch &) = delete;
	cudaError_t status() const { return status_; }
	void *items() const { return p_; }
	unsigned long long *acc() const { return reinterpret_cast<unsigned long long *>(static_cast<char *>(p_) + head_); }
	uint64_t *out() const { return reinterpret_cast<uint64_t *>(acc() + n_ * 8); }

private:
	cudaStream_t s_;
	size_t n_;
	void *p_ = nullptr;
	size_t head_ = 0;
	bool pooled_ = true;
	cudaError_t status_ = cudaSuccess;
};

int finish(const Scratch &sc, const SumItem *items, uint64_t len, size_t n, uint64_t *sums, cudaStream_t s)
{
	if (cudaError_t e = launch_finish(sc.acc(), items, len, n, sc.out(), s))
		return fail(e, "checksum finishing kernel launch");
	if (cudaError_t e = cudaMemcpyAsync(sums, sc.out(), n * sizeof(uint64_t), cudaMemcpyDeviceToHost, s))
		return fail(e, "cudaMemcpyAsync (checksums)");
	return 0;
}

int gather_sum(beluga_kv_gpu *gpu, const beluga_kv_xfer &x, uint32_t method, uint64_t *sums, cudaStream_t s)
{
	const Plan pl = make_plan(x);
	if (method == BELUGA_KV_SUM_AUTO) {
		const bool engines = beluga_kv_gpu_has_batch_copy(gpu) && !is_legacy_stream(s) &&
				     pl.run_bytes >= beluga_kv_gpu_batch_min_bytes(gpu);
		method = engines ? BELUGA_KV_SUM_SOURCE : BELUGA_KV_SUM_FUSED;
	}
	const size_t n = x.nrefs;
	Scratch sc(n * sizeof(beluga_kv_block_ref), n, s);
	if (sc.status() != cudaSuccess)
		return fail(sc.status(), "cudaMallocAsync/cudaMemsetAsync (checksum scratch)");
	auto *dev_refs = static_cast<beluga_kv_block_ref *>(sc.items());
	if (cudaError_t e =
		    cudaMemcpyAsync(dev_refs, x.refs, n * sizeof(beluga_kv_block_ref), cudaMemcpyHostToDevice, s))
		return fail(e, "cudaMemcpyAsync (block refs)");
	SumMode mode = SumMode::Fused;
	if (method != BELUGA_KV_SUM_FUSED) {
		// The copy as beluga_kv_gpu_copy makes it, then a pass that only sums.
		if (int rc = beluga_kv_gpu_copy(gpu, &x, s))
			return rc;
		mode = method == BELUGA_KV_SUM_SOURCE ? SumMode::Source : SumMode::Readback;
	}
	const unsigned vec = vector_bytes(x, pl);
	const KernelArgs a = kernel_args(x, pl, dev_refs, vec);
	if (cudaError_t e = launch_gather_sum(a, vec, mode, gpu->max_ctas, sc.acc(), s))
		return fail(e, "gather-checksum kernel launch");
	return finish(sc, nullptr, beluga_kv_block_bytes(&x.paged->shape), n, sums, s);
}

} // namespace

} // namespace beluga::xfer::cuda

using namespace beluga::xfer::cuda;

extern "C" {

int beluga_kv_gpu_gather_sum(beluga_kv_gpu *gpu, const beluga_kv_xfer *x, uint32_t method, uint64_t *sums,
			     CUstream_st *stream)
{
	if (!gpu)
		return fail_msg(-EINVAL, "no GPU copier");
	if (beluga_kv_xfer_check(x))
		return fail_msg(-EINVAL, "malformed transfer (beluga_kv_xfer_check)");
	if (x->dir != BELUGA_KV_GATHER || x->layer_begin != 0 || x->layer_end != x->paged->shape.num_layers)
		return fail_msg(-EINVAL, "beluga_kv_gpu_gather_sum: the transfer must gather every layer of its "
					 "blocks (a checksum covers a whole pool block)");
	if (method > BELUGA_KV_SUM_READBACK)
		return fail_msg(-EINVAL, "beluga_kv_gpu_gather_sum: unknown method (BELUGA_KV_SUM_*)");
	if (x->nrefs == 0)
		return 0;
	if (!sums)
		return fail_msg(-EINVAL, "beluga_kv_gpu_gather_sum: NULL sums");
	DeviceGuard guard(gpu->device);
	if (guard.status() != cudaSuccess)
		return fail(guard.status(), "cudaSetDevice");
	return gather_sum(gpu, *x, method, sums, stream);
}

int beluga_kv_gpu_checksum(beluga_kv_gpu *gpu, const void *const *bufs, const size_t *lens, size_t n,
			   uint64_t *sums, CUstream_st *stream)
{
	if (!gpu)
		return fail_msg(-EINVAL, "no GPU copier");
	if (n == 0)
		return 0;
	if (!bufs || !lens || !sums)
		return fail_msg(-EINVAL, "beluga_kv_gpu_checksum: NULL array");
	std::vector<SumItem> items;
	try {
		items.resize(n);
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!bufs[i] && lens[i])
			return fail_msg(-EINVAL, "beluga_kv_gpu_checksum: NULL buffer");
		items[i] = {static_cast<const unsigned char *>(bufs[i]), lens[i]};
	}
	DeviceGuard guard(gpu->device);
	if (guard.status() != cudaSuccess)
		return fail(guard.status(), "cudaSetDevice");
	Scratch sc(n * sizeof(SumItem), n, stream);
	if (sc.status() != cudaSuccess)
		return fail(sc.status(), "cudaMallocAsync/cudaMemsetAsync (checksum scratch)");
	auto *dev_items = static_cast<SumItem *>(sc.items());
	// From pageable memory: CUDA stages it before returning, so `items` may go.
	if (cudaError_t e = cudaMemcpyAsync(dev_items, items.data(), n * sizeof(SumItem), cudaMemcpyHostToDevice,
					    stream))
		return fail(e, "cudaMemcpyAsync (buffer list)");
	if (cudaError_t e = launch_checksum(dev_items, items.data(), n, gpu->max_ctas, sc.acc(), stream))
		return fail(e, "checksum kernel launch");
	return finish(sc, dev_items, 0, n, sums, stream);
}

} // extern "C"
