// SPDX-License-Identifier: Apache-2.0
// beluga/xfer_cuda.hpp - C++ interface to the GPU data path (beluga/xfer_cuda.h):
// RAII for the GPU copier, a completion Event and per-layer events.  Needs the
// target beluga_xfer_cuda (which brings the CUDA runtime's headers and its
// static library); the rest of the types are those of beluga/xfer.hpp.
//
// Failures throw beluga::xfer::Error whose what() ends with the CUDA message
// of the failed call (beluga_kv_gpu_last_error()).  Nothing here waits for a
// stream unless it says so (Event::synchronize, LayerEvents::synchronize,
// calibrate); see beluga/xfer_cuda.h for the two documented exceptions.
//
//   beluga::xfer::cuda::GpuCopier gpu;                // throws ENODEV without a GPU
//   beluga::xfer::Transfer t(paged_on_gpu, refs_to_registered_pool, Dir::Scatter);
//   beluga::xfer::cuda::Event done = gpu.copy(t, stream);
//   done.wait(compute_stream);                        // or done.synchronize()
#pragma once

#include <beluga/xfer.hpp>
#include <beluga/xfer_cuda.h>

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace beluga::xfer::cuda {

// A CUDA stream as the C API takes it: a cudaStream_t, or an integer handle
// from elsewhere (torch.cuda.Stream.cuda_stream) cast with stream_of().
using Stream = cudaStream_t;
inline Stream stream_of(uintptr_t handle) noexcept { return reinterpret_cast<Stream>(handle); }

namespace detail {
// Error(@r, @what) with the CUDA message of the failed call, when negative.
inline int check(int r, const std::string &what)
{
	if (r < 0)
		throw Error(r, what, beluga_kv_gpu_last_error());
	return r;
}
inline void check_cuda(cudaError_t e, const std::string &what)
{
	if (e != cudaSuccess) {
		cudaGetLastError(); // do not leave a sticky error behind
		throw Error(e == cudaErrorMemoryAllocation ? ENOMEM : EIO, what,
			    std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
	}
}
// Makes @device current for the guard's lifetime.
class DeviceGuard {
public:
	explicit DeviceGuard(int device)
	{
		check_cuda(cudaGetDevice(&saved_), "cudaGetDevice");
		if (saved_ != device)
			check_cuda(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
		else
			saved_ = -1;
	}
	~DeviceGuard()
	{
		if (saved_ >= 0)
			cudaSetDevice(saved_);
	}
	DeviceGuard(const DeviceGuard &) = delete;
	DeviceGuard &operator=(const DeviceGuard &) = delete;

private:
	int saved_ = -1;
};
} // namespace detail

// Whether a CUDA device is usable now; the reason in words when not.
struct Availability {
	bool usable = false;
	std::string why;
};
inline Availability available()
{
	std::array<char, 256> why{};
	const bool ok = beluga_kv_gpu_available(why.data(), why.size()) == 1;
	return {ok, ok ? std::string() : std::string(why.data())};
}

// A CUDA event (timing disabled) on one device: what a copy hands back.
class Event {
public:
	explicit Event(int device = 0) : device_(device)
	{
		detail::DeviceGuard g(device);
		cudaEvent_t e = nullptr;
		detail::check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
		e_.reset(e);
	}
	// Capture the work enqueued on @s so far.
	void record(Stream s)
	{
		detail::DeviceGuard g(device_);
		detail::check_cuda(cudaEventRecord(e_.get(), s), "cudaEventRecord");
	}
	// true once the captured work has finished (also for a never-recorded event).
	bool query() const
	{
		const cudaError_t e = cudaEventQuery(e_.get());
		if (e == cudaErrorNotReady)
			return false;
		detail::check_cuda(e, "cudaEventQuery");
		return true;
	}
	// Block the calling thread until the captured work has finished.
	void synchronize() const { detail::check_cuda(cudaEventSynchronize(e_.get()), "cudaEventSynchronize"); }
	// Make @s wait for the captured work, without blocking the host.
	void wait(Stream s) const { detail::check_cuda(cudaStreamWaitEvent(s, e_.get(), 0), "cudaStreamWaitEvent"); }
	int device() const noexcept { return device_; }
	cudaEvent_t get() const noexcept { return e_.get(); }

private:
	struct Free {
		void operator()(CUevent_st *e) const noexcept { cudaEventDestroy(e); }
	};
	std::unique_ptr<CUevent_st, Free> e_;
	int device_;
};

// Per-layer completion events for layer-wise copies (copy_layerwise).
class LayerEvents {
public:
	explicit LayerEvents(uint32_t num_layers)
	{
		beluga_kv_layer_events *ev = nullptr;
		detail::check(beluga_kv_layer_events_create(num_layers, &ev), "layer events");
		h_.reset(ev);
		n_ = num_layers;
	}
	uint32_t size() const noexcept { return n_; }
	void wait(uint32_t layer, Stream s) { detail::check(beluga_kv_layer_events_wait(h_.get(), layer, s), "layer wait"); }
	void synchronize(uint32_t layer) { detail::check(beluga_kv_layer_events_sync(h_.get(), layer), "layer sync"); }
	bool query(uint32_t layer) { return detail::check(beluga_kv_layer_events_query(h_.get(), layer), "layer query") == 1; }
	beluga_kv_layer_events *get() const noexcept { return h_.get(); }

private:
	struct Free {
		void operator()(beluga_kv_layer_events *e) const noexcept { beluga_kv_layer_events_destroy(e); }
	};
	std::unique_ptr<beluga_kv_layer_events, Free> h_;
	uint32_t n_ = 0;
};

// Page-locked host memory for @n values of T (cudaMallocHost): what the GPU
// writes on a stream without the copy becoming synchronous (the checksums of
// GpuCopier::gather_sum).
template <typename T>
class PinnedArray {
public:
	explicit PinnedArray(size_t n) : n_(n)
	{
		void *p = nullptr;
		if (n)
			detail::check_cuda(cudaMallocHost(&p, n * sizeof(T)), "cudaMallocHost");
		p_.reset(static_cast<T *>(p));
	}
	T *data() const noexcept { return p_.get(); }
	size_t size() const noexcept { return n_; }
	std::span<T> span() const noexcept { return {p_.get(), n_}; }

private:
	struct Free {
		void operator()(T *p) const noexcept { cudaFreeHost(p); }
	};
	std::unique_ptr<T, Free> p_;
	size_t n_;
};

// How gather_sum computes the checksums (BELUGA_KV_SUM_*, beluga/xfer_cuda.h).
enum class SumMethod : uint32_t {
	Auto = BELUGA_KV_SUM_AUTO,
	Fused = BELUGA_KV_SUM_FUSED,
	Source = BELUGA_KV_SUM_SOURCE,
	Readback = BELUGA_KV_SUM_READBACK,
};

struct GpuOptions {
	int device = 0;
	uint32_t staging_slots = 0; // 0: 8
	size_t staging_refs = 0;    // 0: 4096
	uint32_t max_ctas = 0;      // 0: 4 per SM
	size_t batch_min_bytes = 0; // 0: the default or $BELUGA_XFER_BATCH_MIN_BYTES; SIZE_MAX: kernel only
};

// The GPU copier: gather/scatter between paged KV in GPU memory and pool
// blocks in registered (device-visible) host memory.
class GpuCopier {
public:
	explicit GpuCopier(const GpuOptions &o = {}) : device_(o.device)
	{
		const Availability a = available();
		if (!a.usable)
			throw Error(ENODEV, "GPU copier", "no usable CUDA device: " + a.why);
		const beluga_kv_gpu_opts c{o.device, o.staging_slots, o.staging_refs, o.max_ctas, o.batch_min_bytes};
		beluga_kv_gpu *h = nullptr;
		detail::check(beluga_kv_gpu_create(&c, &h), "GPU copier on device " + std::to_string(o.device));
		h_.reset(h);
	}
	int device() const noexcept { return device_; }
	// Make this copier's device the calling thread's current device in the
	// CUDA runtime this library links (it is linked statically, so it keeps
	// its own current device).  In a process where another runtime (torch)
	// drives the same device, calling this first means no call here switches
	// the thread's context to another device and back.
	void make_current() const
	{
		detail::check_cuda(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
	}

	// Enqueue @t on @s (nothing waits); the returned event fires when it is done.
	Event copy(const Transfer &t, Stream s)
	{
		Event done(device_);
		enqueue(t, s);
		done.record(s);
		return done;
	}
	// Enqueue only (the caller orders later work by stream or its own events).
	void enqueue(const Transfer &t, Stream s)
	{
		const beluga_kv_xfer x = t.c();
		detail::check(beluga_kv_gpu_copy(h_.get(), &x, s), std::string("GPU ") + dir_name(t.dir()));
	}
	// Gather whole blocks (every layer) into reserved store slots and compute
	// each block's store checksum on the GPU: @sums[i] (one per ref, in the
	// refs' order) is written on @s, so read it only after the returned event
	// completed, then commit the slots with them (kvc::Reservation::commit(sums)).
	// @sums in pinned memory (PinnedArray) keeps the call asynchronous.
	Event gather_sum(const Transfer &t, Stream s, std::span<uint64_t> sums, SumMethod m = SumMethod::Auto)
	{
		const beluga_kv_xfer x = t.c();
		if (sums.size() < x.nrefs)
			throw Error(EINVAL, "GPU gather with checksums",
				    std::to_string(sums.size()) + " sums for " + std::to_string(x.nrefs) + " blocks");
		Event done(device_);
		detail::check(beluga_kv_gpu_gather_sum(h_.get(), &x, static_cast<uint32_t>(m), sums.data(), s),
			      "GPU gather with checksums");
		done.record(s);
		return done;
	}
	// One launch per layer, recording layer i's event after its copy.
	void copy_layerwise(const Transfer &t, Stream s, LayerEvents &ev)
	{
		const beluga_kv_xfer x = t.c();
		detail::check(beluga_kv_gpu_copy_layerwise(h_.get(), &x, s, ev.get()),
			      std::string("GPU layer-wise ") + dir_name(t.dir()));
	}

	size_t batch_min_bytes() const noexcept { return beluga_kv_gpu_batch_min_bytes(h_.get()); }
	void set_batch_min_bytes(size_t bytes) noexcept { beluga_kv_gpu_set_batch_min_bytes(h_.get(), bytes); }
	bool has_batch_copy() const noexcept { return beluga_kv_gpu_has_batch_copy(h_.get()) == 1; }
	// Measure the kernel/copy-engine crossover and set it (synchronises @s).
	size_t calibrate(Stream s, void *host = nullptr, size_t host_len = 0,
			 std::array<beluga_kv_gpu_calib_point, BELUGA_KV_GPU_CALIB_POINTS> *points = nullptr)
	{
		size_t th = 0;
		detail::check(beluga_kv_gpu_calibrate(h_.get(), s, host, host_len, points ? points->data() : nullptr, &th),
			      "GPU calibration");
		return th;
	}
	beluga_kv_gpu *get() const noexcept { return h_.get(); }

private:
	struct Free {
		void operator()(beluga_kv_gpu *g) const noexcept { beluga_kv_gpu_destroy(g); }
	};
	std::unique_ptr<beluga_kv_gpu, Free> h_;
	int device_;
};

} // namespace beluga::xfer::cuda
