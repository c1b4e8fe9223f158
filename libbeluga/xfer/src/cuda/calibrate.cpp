// SPDX-License-Identifier: Apache-2.0
// Run-time choice between the copy kernel and cudaMemcpyBatchAsync: time both
// on this device for a range of piece sizes and keep the smallest size from
// which the copy engines win in both directions.  vLLM found the crossover
// device-specific (vllm issue #57555), hence a measurement, not a constant.
#include "gpu_ctx.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace beluga::xfer::cuda {

namespace {

constexpr size_t kPieces[BELUGA_KV_GPU_CALIB_POINTS] = {4 << 10,  8 << 10,  16 << 10,  24 << 10,  32 << 10,
							 48 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20};
constexpr size_t kMoved = 32 << 20; // bytes per timed copy
constexpr int kReps = 3;

// A paged layout whose contiguous runs are exactly `piece` bytes: one layer,
// one token, one head of piece/2 fp16 elements, K and V (and blocks) apart.
beluga_kv_paged synthetic_paged(char *dev, size_t piece, uint64_t blocks)
{
	beluga_kv_paged p;
	std::memset(&p, 0, sizeof(p));
	p.shape = {1, 1, 1, uint32_t(piece / 2), BELUGA_KV_FP16, 0};
	p.num_blocks = blocks;
	const int64_t d = int64_t(piece / 2);
	p.stride_head = d;
	p.stride_token = d;
	p.stride_kv = 2 * d;
	p.stride_block = 4 * d;
	p.layer_base[0] = dev;
	return p;
}

struct Timer {
	cudaEvent_t a = nullptr, b = nullptr;
	Timer() { cudaEventCreate(&a), cudaEventCreate(&b); }
	~Timer() { cudaEventDestroy(a), cudaEventDestroy(b); }
	bool ok() const { return a && b; }
};

// Best of kReps timed copies, in GB/s (0 on failure).
double time_copy(beluga_kv_gpu *g, const beluga_kv_xfer &x, cudaStream_t s, size_t threshold, Timer &t)
{
	g->batch_min = threshold;
	float best = 0;
	for (int i = 0; i <= kReps; i++) { // the first run warms up
		cudaEventRecord(t.a, s);
		if (beluga_kv_gpu_copy(g, &x, s) != 0)
			return 0;
		cudaEventRecord(t.b, s);
		if (cudaEventSynchronize(t.b) != cudaSuccess)
			return 0;
		float ms = 0;
		cudaEventElapsedTime(&ms, t.a, t.b);
		if (i && (best == 0 || ms < best))
			best = ms;
	}
	const double bytes = double(x.nrefs) * 2 * x.paged->shape.head_size * 2;
	return best > 0 ? bytes / (best * 1e-3) / 1e9 : 0;
}

int measure(beluga_kv_gpu *g, cudaStream_t s, char *host, char *dev, beluga_kv_gpu_calib_point *pts)
{
	Timer t;
	if (!t.ok())
		return fail_msg(-EIO, "calibrate: cudaEventCreate failed");
	std::vector<beluga_kv_block_ref> refs;
	for (size_t i = 0; i < BELUGA_KV_GPU_CALIB_POINTS; i++) {
		const size_t piece = kPieces[i];
		const uint64_t n = kMoved / (2 * piece);
		beluga_kv_paged paged = synthetic_paged(dev, piece, n);
		refs.resize(n);
		for (uint64_t b = 0; b < n; b++)
			refs[b] = {b, host + b * 2 * piece};
		beluga_kv_xfer x{&paged, refs.data(), n, 0, 1, BELUGA_KV_SCATTER, 0};
		beluga_kv_gpu_calib_point &pt = pts[i];
		pt.piece_bytes = piece;
		pt.kernel_h2d_gbps = time_copy(g, x, s, SIZE_MAX, t);
		pt.batch_h2d_gbps = g->has_batch ? time_copy(g, x, s, 0, t) : 0;
		x.dir = BELUGA_KV_GATHER;
		pt.kernel_d2h_gbps = time_copy(g, x, s, SIZE_MAX, t);
		pt.batch_d2h_gbps = g->has_batch ? time_copy(g, x, s, 0, t) : 0;
		if (pt.kernel_h2d_gbps == 0 || pt.kernel_d2h_gbps == 0)
			return -EIO; // beluga_kv_gpu_copy recorded why
	}
	return 0;
}

// Smallest piece from which the copy engines are at least as fast both ways
// at that size and at every larger one measured.
size_t crossover(const beluga_kv_gpu_calib_point *pts)
{
	size_t best = SIZE_MAX;
	for (size_t i = BELUGA_KV_GPU_CALIB_POINTS; i-- > 0;) {
		const beluga_kv_gpu_calib_point &p = pts[i];
		if (p.batch_h2d_gbps < p.kernel_h2d_gbps || p.batch_d2h_gbps < p.kernel_d2h_gbps)
			break;
		best = p.piece_bytes;
	}
	return best;
}

} // namespace

} // namespace beluga::xfer::cuda

using namespace beluga::xfer::cuda;

extern "C" int beluga_kv_gpu_calibrate(beluga_kv_gpu *gpu, CUstream_st *stream, void *host, size_t host_len,
				       beluga_kv_gpu_calib_point *points, size_t *threshold)
{
	if (!gpu || (host && host_len < kMoved))
		return fail_msg(-EINVAL, "beluga_kv_gpu_calibrate: bad arguments");
	DeviceGuard guard(gpu->device);
	if (guard.status() != cudaSuccess)
		return fail(guard.status(), "cudaSetDevice");
	char *own_host = nullptr, *dev = nullptr;
	if (!host) {
		if (cudaError_t e = cudaMallocHost(reinterpret_cast<void **>(&own_host), kMoved))
			return fail(e, "calibrate: cudaMallocHost");
		host = own_host;
	}
	beluga_kv_gpu_calib_point local[BELUGA_KV_GPU_CALIB_POINTS];
	beluga_kv_gpu_calib_point *pts = points ? points : local;
	std::memset(pts, 0, sizeof(local));
	const size_t saved = gpu->batch_min;
	int rc = 0;
	if (cudaError_t e = cudaMalloc(reinterpret_cast<void **>(&dev), 2 * kMoved))
		rc = fail(e, "calibrate: cudaMalloc");
	else
		rc = measure(gpu, stream, static_cast<char *>(host), dev, pts);
	cudaStreamSynchronize(stream);
	cudaFree(dev);
	cudaFreeHost(own_host);
	std::lock_guard lk(gpu->mu);
	gpu->batch_min = rc ? saved : crossover(pts);
	if (!rc && threshold)
		*threshold = gpu->batch_min;
	return rc;
}
