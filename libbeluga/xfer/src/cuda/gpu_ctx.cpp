// SPDX-License-Identifier: Apache-2.0
// GPU copier lifetime, device discovery and error reporting.
#include "gpu_ctx.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

namespace beluga::xfer::cuda {

namespace {

thread_local std::string last_error;

constexpr uint32_t kDefaultSlots = 8;
constexpr size_t kDefaultStagingRefs = 4096;
constexpr unsigned kCtasPerSm = 4;

int errno_of(cudaError_t err)
{
	switch (err) {
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorNoDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorInvalidDevice:
		return -ENODEV;
	case cudaErrorInvalidValue:
		return -EINVAL;
	default:
		return -EIO;
	}
}

// BELUGA_XFER_BATCH_MIN_BYTES: a byte count, or "off".
size_t batch_min_from_env(size_t fallback)
{
	const char *v = std::getenv(BELUGA_KV_GPU_BATCH_MIN_ENV);
	if (!v || !*v)
		return fallback;
	if (!std::strcmp(v, "off"))
		return SIZE_MAX;
	char *end = nullptr;
	const unsigned long long n = std::strtoull(v, &end, 0);
	return (end && *end == '\0') ? size_t(n) : fallback;
}

// A one-element cudaMemcpyBatchAsync on a private stream: does this driver
// and device accept it?  (It needs CUDA 12.8 and a matching driver.)
bool probe_batch_copy()
{
#if CUDART_VERSION >= 12080
	cudaStream_t s = nullptr;
	if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
		return false;
	void *buf = nullptr;
	bool ok = false;
	if (cudaMalloc(&buf, 64) == cudaSuccess) {
		void *dst[1] = {static_cast<char *>(buf) + 32};
		void *src[1] = {buf};
		size_t size[1] = {32};
		cudaMemcpyAttributes attr{};
		attr.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
		size_t idx = 0;
#if CUDART_VERSION >= 13000
		cudaError_t e = cudaMemcpyBatchAsync(dst, src, size, 1, &attr, &idx, 1, s);
#else
		size_t fail_idx = 0;
		cudaError_t e = cudaMemcpyBatchAsync(dst, src, size, 1, &attr, &idx, 1, &fail_idx, s);
#endif
		ok = e == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess;
		cudaFree(buf);
	}
	cudaStreamDestroy(s);
	cudaGetLastError(); // a refused probe must not leave an error behind
	return ok;
#else
	return false;
#endif
}

} // namespace

int fail(cudaError_t err, const char *what)
{
	last_error = std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
	return errno_of(err);
}

int fail_msg(int rc, const char *msg)
{
	last_error = msg;
	return rc;
}

DeviceGuard::DeviceGuard(int device)
{
	status_ = cudaGetDevice(&saved_);
	if (status_ == cudaSuccess && saved_ != device)
		status_ = cudaSetDevice(device);
	else
		saved_ = -1;
}

DeviceGuard::~DeviceGuard()
{
	if (saved_ >= 0)
		cudaSetDevice(saved_);
}

} // namespace beluga::xfer::cuda

using namespace beluga::xfer::cuda;

extern "C" {

const char *beluga_kv_gpu_last_error(void)
{
	return last_error.c_str();
}

int beluga_kv_gpu_available(char *why, size_t why_len)
{
	auto say = [&](const std::string &s) {
		if (why && why_len)
			std::snprintf(why, why_len, "%s", s.c_str());
	};
	int n = 0;
	const cudaError_t e = cudaGetDeviceCount(&n);
	if (e == cudaSuccess && n > 0) {
		say("");
		return 1;
	}
	int drv = 0, rt = 0;
	cudaDriverGetVersion(&drv);
	cudaRuntimeGetVersion(&rt);
	cudaGetLastError();
	if (e == cudaErrorInsufficientDriver && drv == 0)
		say("no NVIDIA driver (libcuda.so.1 not found)");
	else if (e == cudaErrorInsufficientDriver)
		say("the NVIDIA driver supports CUDA " + std::to_string(drv / 1000) + "." +
		    std::to_string(drv % 1000 / 10) + ", older than this runtime's " + std::to_string(rt / 1000) +
		    "." + std::to_string(rt % 1000 / 10));
	else if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0))
		say("the NVIDIA driver is loaded but reports no CUDA device");
	else
		say(std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
	return 0;
}

int beluga_kv_gpu_create(const beluga_kv_gpu_opts *opts, beluga_kv_gpu **out)
{
	if (!out)
		return -EINVAL;
	*out = nullptr;
	const beluga_kv_gpu_opts o = opts ? *opts : beluga_kv_gpu_opts{};
	if (o.device < 0 || o.staging_slots > 1024)
		return fail_msg(-EINVAL, "beluga_kv_gpu_create: bad options");
	if (!beluga_kv_gpu_available(nullptr, 0))
		return fail_msg(-ENODEV, "beluga_kv_gpu_create: no usable CUDA device");
	DeviceGuard guard(o.device);
	if (guard.status() != cudaSuccess)
		return fail(guard.status(), "cudaSetDevice");
	int sms = 0;
	if (cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, o.device))
		return fail(e, "cudaDeviceGetAttribute");

	auto gpu = std::unique_ptr<beluga_kv_gpu>(new (std::nothrow) beluga_kv_gpu);
	if (!gpu)
		return -ENOMEM;
	gpu->device = o.device;
	gpu->max_ctas = o.max_ctas ? o.max_ctas : unsigned(sms) * kCtasPerSm;
	gpu->batch_min = o.batch_min_bytes ? o.batch_min_bytes : batch_min_from_env(BELUGA_KV_GPU_BATCH_MIN_DEFAULT);
	gpu->has_batch = probe_batch_copy();
	try {
		gpu->slots.resize(o.staging_slots ? o.staging_slots : kDefaultSlots);
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	const size_t refs = o.staging_refs ? o.staging_refs : kDefaultStagingRefs;
	for (Slot &s : gpu->slots) {
		cudaError_t e = cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming);
		if (e == cudaSuccess)
			e = cudaMallocHost(reinterpret_cast<void **>(&s.host), refs * sizeof(beluga_kv_block_ref));
		if (e == cudaSuccess)
			e = cudaMalloc(reinterpret_cast<void **>(&s.dev), refs * sizeof(beluga_kv_block_ref));
		if (e != cudaSuccess) {
			beluga_kv_gpu_destroy(gpu.release());
			return fail(e, "beluga_kv_gpu_create: staging");
		}
		s.capacity = refs;
	}
	*out = gpu.release();
	return 0;
}

void beluga_kv_gpu_destroy(beluga_kv_gpu *gpu)
{
	if (!gpu)
		return;
	{
		DeviceGuard guard(gpu->device);
		for (Slot &s : gpu->slots) {
			if (s.done) {
				if (s.in_flight)
					cudaEventSynchronize(s.done);
				cudaEventDestroy(s.done);
			}
			cudaFreeHost(s.host);
			cudaFree(s.dev);
		}
	}
	delete gpu;
}

size_t beluga_kv_gpu_batch_min_bytes(const beluga_kv_gpu *gpu)
{
	return gpu->batch_min;
}

void beluga_kv_gpu_set_batch_min_bytes(beluga_kv_gpu *gpu, size_t bytes)
{
	std::lock_guard lk(gpu->mu);
	gpu->batch_min = bytes;
}

int beluga_kv_gpu_has_batch_copy(const beluga_kv_gpu *gpu)
{
	return gpu->has_batch ? 1 : 0;
}

} // extern "C"
