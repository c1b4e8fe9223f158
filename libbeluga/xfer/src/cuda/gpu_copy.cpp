// SPDX-License-Identifier: Apache-2.0
// Enqueueing transfers: choose kernel or copy engines, stage the block refs,
// launch, and per-layer events for layer-wise loading.
#include "../plan.hpp"
#include "gpu_ctx.hpp"
#include "kernel_launch.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

using beluga::xfer::Plan;

namespace beluga::xfer::cuda {

namespace {

bool is_legacy_stream(cudaStream_t s)
{
	return s == nullptr || s == cudaStreamLegacy;
}

// A slot with room for n refs whose previous use has finished.  Waits only
// when every slot is in flight (for the oldest); reallocates a slot that is
// too small (cudaFree may synchronise the device).
int acquire_slot(beluga_kv_gpu &g, size_t n, Slot **out)
{
	Slot *pick = nullptr;
	for (Slot &s : g.slots) {
		if (s.in_flight) {
			const cudaError_t q = cudaEventQuery(s.done);
			if (q == cudaErrorNotReady)
				continue;
			if (q != cudaSuccess)
				return fail(q, "cudaEventQuery (staging slot)");
			s.in_flight = false;
		}
		if (!pick || (s.capacity >= n && pick->capacity < n))
			pick = &s;
	}
	if (!pick) {
		pick = &*std::min_element(g.slots.begin(), g.slots.end(),
					  [](const Slot &a, const Slot &b) { return a.seq < b.seq; });
		if (cudaError_t e = cudaEventSynchronize(pick->done))
			return fail(e, "cudaEventSynchronize (staging slot)");
		pick->in_flight = false;
	}
	if (pick->capacity < n) {
		cudaFreeHost(pick->host);
		cudaFree(pick->dev);
		pick->host = nullptr, pick->dev = nullptr, pick->capacity = 0;
		const size_t cap = std::max(n, size_t(1024));
		cudaError_t e = cudaMallocHost(reinterpret_cast<void **>(&pick->host), cap * sizeof(beluga_kv_block_ref));
		if (e == cudaSuccess)
			e = cudaMalloc(reinterpret_cast<void **>(&pick->dev), cap * sizeof(beluga_kv_block_ref));
		if (e != cudaSuccess)
			return fail(e, "growing a staging slot");
		pick->capacity = cap;
	}
	*out = pick;
	return 0;
}

// Refs -> pinned staging -> device, on the stream.
int stage_refs(beluga_kv_gpu &g, const beluga_kv_xfer &x, cudaStream_t stream, Slot **out)
{
	Slot *s = nullptr;
	if (int rc = acquire_slot(g, x.nrefs, &s))
		return rc;
	const size_t bytes = x.nrefs * sizeof(beluga_kv_block_ref);
	std::memcpy(s->host, x.refs, bytes);
	if (cudaError_t e = cudaMemcpyAsync(s->dev, s->host, bytes, cudaMemcpyHostToDevice, stream))
		return fail(e, "cudaMemcpyAsync (block refs)");
	*out = s;
	return 0;
}

int finish_slot(beluga_kv_gpu &g, Slot *s, cudaStream_t stream)
{
	if (cudaError_t e = cudaEventRecord(s->done, stream))
		return fail(e, "cudaEventRecord (staging slot)");
	s->in_flight = true;
	s->seq = ++g.seq;
	return 0;
}

int launch_kernel(const beluga_kv_gpu &g, const beluga_kv_xfer &x, const Plan &pl, const Slot &s,
		  cudaStream_t stream)
{
	const unsigned vec = vector_bytes(x, pl);
	const KernelArgs a = kernel_args(x, pl, s.dev, vec);
	if (cudaError_t e = launch_copy(a, vec, g.max_ctas, stream))
		return fail(e, "copy kernel launch");
	return 0;
}

int batch_copy(beluga_kv_gpu &g, const beluga_kv_xfer &x, const Plan &pl, cudaStream_t stream)
{
#if CUDART_VERSION >= 12080
	const size_t count = x.nrefs * pl.pieces_per_ref;
	try {
		g.batch_dst.resize(count);
		g.batch_src.resize(count);
		g.batch_size.assign(count, pl.run_bytes);
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	const bool gather = x.dir == BELUGA_KV_GATHER;
	size_t i = 0;
	for (size_t r = 0; r < x.nrefs; r++)
		for (uint64_t p = 0; p < pl.pieces_per_ref; p++, i++) {
			const auto a = piece_addr(pl, x.refs[r].paged_block, p);
			char *paged = static_cast<char *>(x.paged->layer_base[a.layer]) + a.paged_off;
			char *pool = static_cast<char *>(x.refs[r].pool) + a.pool_off;
			g.batch_dst[i] = gather ? pool : paged;
			g.batch_src[i] = gather ? paged : pool; // read-only, whatever the type says
		}
	cudaMemcpyAttributes attr{};
	attr.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
	attr.flags = cudaMemcpyFlagPreferOverlapWithCompute;
	size_t attr_idx = 0;
#if CUDART_VERSION >= 13000
	cudaError_t e = cudaMemcpyBatchAsync(g.batch_dst.data(), g.batch_src.data(), g.batch_size.data(), count,
					     &attr, &attr_idx, 1, stream);
#else
	size_t fail_idx = 0;
	cudaError_t e = cudaMemcpyBatchAsync(g.batch_dst.data(), g.batch_src.data(), g.batch_size.data(), count,
					     &attr, &attr_idx, 1, &fail_idx, stream);
#endif
	if (e != cudaSuccess)
		return fail(e, "cudaMemcpyBatchAsync");
	return 0;
#else
	(void)g, (void)x, (void)pl, (void)stream;
	return fail_msg(-EIO, "cudaMemcpyBatchAsync needs CUDA 12.8");
#endif
}

bool use_batch(const beluga_kv_gpu &g, const Plan &pl, cudaStream_t stream)
{
	return g.has_batch && !is_legacy_stream(stream) && pl.run_bytes >= g.batch_min;
}

// Enqueue layers [begin, end) of x as one kernel launch or one batch.
int enqueue(beluga_kv_gpu &g, const beluga_kv_xfer &x, uint32_t begin, uint32_t end, Slot **slot,
	    cudaStream_t stream)
{
	beluga_kv_xfer part = x;
	part.layer_begin = begin;
	part.layer_end = end;
	const Plan pl = make_plan(part);
	if (use_batch(g, pl, stream))
		return batch_copy(g, part, pl, stream);
	if (!*slot)
		if (int rc = stage_refs(g, x, stream, slot))
			return rc;
	return launch_kernel(g, part, pl, **slot, stream);
}

int check_call(const beluga_kv_gpu *gpu, const beluga_kv_xfer *x)
{
	if (!gpu)
		return fail_msg(-EINVAL, "no GPU copier");
	if (beluga_kv_xfer_check(x))
		return fail_msg(-EINVAL, "malformed transfer (beluga_kv_xfer_check)");
	return 0;
}

} // namespace

} // namespace beluga::xfer::cuda

using namespace beluga::xfer::cuda;

extern "C" {

int beluga_kv_gpu_copy(beluga_kv_gpu *gpu, const beluga_kv_xfer *x, CUstream_st *stream)
{
	if (int rc = check_call(gpu, x))
		return rc;
	if (x->nrefs == 0)
		return 0;
	std::lock_guard lk(gpu->mu);
	DeviceGuard guard(gpu->device);
	if (guard.status() != cudaSuccess)
		return fail(guard.status(), "cudaSetDevice");
	Slot *slot = nullptr;
	const int rc = enqueue(*gpu, *x, x->layer_begin, x->layer_end, &slot, stream);
	if (slot) {
		const int frc = finish_slot(*gpu, slot, stream);
		return rc ? rc : frc;
	}
	return rc;
}

int beluga_kv_gpu_copy_layerwise(beluga_kv_gpu *gpu, const beluga_kv_xfer *x, CUstream_st *stream,
				 beluga_kv_layer_events *ev)
{
	if (int rc = check_call(gpu, x))
		return rc;
	if (!ev || ev->ev.size() < x->layer_end)
		return fail_msg(-EINVAL, "layer events do not cover the transfer's layers");
	std::lock_guard lk(gpu->mu);
	DeviceGuard guard(gpu->device);
	if (guard.status() != cudaSuccess)
		return fail(guard.status(), "cudaSetDevice");
	Slot *slot = nullptr;
	int rc = 0;
	for (uint32_t l = x->layer_begin; l < x->layer_end && !rc; l++) {
		if (x->nrefs)
			rc = enqueue(*gpu, *x, l, l + 1, &slot, stream);
		if (!rc)
			if (cudaError_t e = cudaEventRecord(ev->ev[l], stream))
				rc = fail(e, "cudaEventRecord (layer)");
	}
	if (slot) {
		const int frc = finish_slot(*gpu, slot, stream);
		return rc ? rc : frc;
	}
	return rc;
}

int beluga_kv_layer_events_create(uint32_t num_layers, beluga_kv_layer_events **out)
{
	if (!out || num_layers == 0 || num_layers > BELUGA_KV_MAX_LAYERS)
		return fail_msg(-EINVAL, "beluga_kv_layer_events_create: bad arguments");
	*out = nullptr;
	auto *ev = new (std::nothrow) beluga_kv_layer_events;
	if (!ev)
		return -ENOMEM;
	try {
		ev->ev.assign(num_layers, nullptr);
	} catch (const std::bad_alloc &) {
		delete ev;
		return -ENOMEM;
	}
	for (cudaEvent_t &e : ev->ev)
		if (cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming)) {
			beluga_kv_layer_events_destroy(ev);
			return fail(err, "cudaEventCreateWithFlags");
		}
	*out = ev;
	return 0;
}

void beluga_kv_layer_events_destroy(beluga_kv_layer_events *ev)
{
	if (!ev)
		return;
	for (cudaEvent_t e : ev->ev)
		if (e)
			cudaEventDestroy(e);
	delete ev;
}

int beluga_kv_layer_events_wait(beluga_kv_layer_events *ev, uint32_t layer, CUstream_st *stream)
{
	if (!ev || layer >= ev->ev.size())
		return fail_msg(-EINVAL, "beluga_kv_layer_events_wait: bad layer");
	if (cudaError_t e = cudaStreamWaitEvent(stream, ev->ev[layer], 0))
		return fail(e, "cudaStreamWaitEvent");
	return 0;
}

int beluga_kv_layer_events_sync(beluga_kv_layer_events *ev, uint32_t layer)
{
	if (!ev || layer >= ev->ev.size())
		return fail_msg(-EINVAL, "beluga_kv_layer_events_sync: bad layer");
	if (cudaError_t e = cudaEventSynchronize(ev->ev[layer]))
		return fail(e, "cudaEventSynchronize");
	return 0;
}

int beluga_kv_layer_events_query(beluga_kv_layer_events *ev, uint32_t layer)
{
	if (!ev || layer >= ev->ev.size())
		return fail_msg(-EINVAL, "beluga_kv_layer_events_query: bad layer");
	const cudaError_t e = cudaEventQuery(ev->ev[layer]);
	if (e == cudaSuccess)
		return 1;
	if (e == cudaErrorNotReady)
		return 0;
	return fail(e, "cudaEventQuery");
}

CUevent_st *beluga_kv_layer_events_get(beluga_kv_layer_events *ev, uint32_t layer)
{
	if (!ev || layer >= ev->ev.size())
		return nullptr;
	return ev->ev[layer];
}

} // extern "C"
