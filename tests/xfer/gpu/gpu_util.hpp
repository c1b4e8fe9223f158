// SPDX-License-Identifier: Apache-2.0
// RAII for the CUDA objects the GPU tests and benchmark use, and host memory
// that is registered with CUDA the way a Beluga region is (a MAP_SHARED
// mapping passed to cudaHostRegister) or allocated pinned.
#pragma once

#include <beluga/xfer_cuda.h>

#include <cuda_runtime_api.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

namespace beluga::xfer::gpu_test {

inline void check(cudaError_t e, const char *what)
{
	if (e != cudaSuccess)
		throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

class DeviceBuf {
public:
	explicit DeviceBuf(size_t n) : n_(n) { check(cudaMalloc(&p_, n ? n : 1), "cudaMalloc"); }
	~DeviceBuf() { cudaFree(p_); }
	DeviceBuf(const DeviceBuf &) = delete;
	DeviceBuf &operator=(const DeviceBuf &) = delete;
	char *get() const { return static_cast<char *>(p_); }
	size_t size() const { return n_; }

private:
	void *p_ = nullptr;
	size_t n_;
};

enum class HostKind { Pinned, Registered };

// What cudaHostRegister accepts on this machine, probed once: a MAP_SHARED
// mapping (what a Beluga region is), else a private one, else nothing (some
// sandboxed runtimes, e.g. gVisor, may refuse).  "Registered" buffers fall
// back accordingly so the other tests still run; one test reports the gap.
struct RegisterSupport {
	int flags = 0; // mmap flags that register, 0 if none
	std::string why; // the failures, if any
};

inline bool try_register(int flags, size_t n, std::string *why)
{
	void *p = mmap(nullptr, n, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		*why += std::string(flags & MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE") + ": mmap failed; ";
		return false;
	}
	std::memset(p, 0, n);
	const cudaError_t e = cudaHostRegister(p, n, cudaHostRegisterDefault);
	if (e == cudaSuccess)
		cudaHostUnregister(p);
	else
		*why += std::string(flags & MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE") + ": cudaHostRegister: " +
			cudaGetErrorName(e) + "; ";
	cudaGetLastError();
	munmap(p, n);
	return e == cudaSuccess;
}

inline const RegisterSupport &register_support()
{
	static const RegisterSupport rs = [] {
		RegisterSupport r;
		if (try_register(MAP_SHARED, 4 << 20, &r.why))
			r.flags = MAP_SHARED;
		else if (try_register(MAP_PRIVATE, 4 << 20, &r.why))
			r.flags = MAP_PRIVATE;
		return r;
	}();
	return rs;
}

inline std::string host_kind_name(HostKind k)
{
	if (k == HostKind::Pinned)
		return "cudaMallocHost";
	switch (register_support().flags) {
	case MAP_SHARED:
		return "mmap(MAP_SHARED)+cudaHostRegister";
	case MAP_PRIVATE:
		return "mmap(MAP_PRIVATE)+cudaHostRegister";
	default:
		return "cudaMallocHost(cudaHostRegister refused)";
	}
}

// Host memory the GPU can reach: host() for the CPU, dev() for kernels.
class HostBuf {
public:
	HostBuf(size_t n, HostKind kind) : n_(n ? n : 1)
	{
		const int flags = kind == HostKind::Registered ? register_support().flags : 0;
		if (flags == 0) {
			check(cudaMallocHost(&p_, n_), "cudaMallocHost");
		} else {
			p_ = mmap(nullptr, n_, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
			if (p_ == MAP_FAILED)
				throw std::runtime_error("mmap failed");
			if (cudaError_t e = cudaHostRegister(p_, n_, cudaHostRegisterDefault)) {
				munmap(p_, n_);
				check(e, "cudaHostRegister");
			}
			mapped_ = true;
		}
		check(cudaHostGetDevicePointer(&dev_, p_, 0), "cudaHostGetDevicePointer");
	}
	~HostBuf()
	{
		if (!mapped_) {
			cudaFreeHost(p_);
		} else {
			cudaHostUnregister(p_);
			munmap(p_, n_);
		}
	}
	HostBuf(const HostBuf &) = delete;
	HostBuf &operator=(const HostBuf &) = delete;
	char *host() const { return static_cast<char *>(p_); }
	char *dev() const { return static_cast<char *>(dev_); }
	size_t size() const { return n_; }

private:
	void *p_ = nullptr;
	void *dev_ = nullptr;
	size_t n_;
	bool mapped_ = false;
};

class Stream {
public:
	Stream() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreate"); }
	~Stream() { cudaStreamDestroy(s_); }
	Stream(const Stream &) = delete;
	Stream &operator=(const Stream &) = delete;
	cudaStream_t get() const { return s_; }
	void sync() const { check(cudaStreamSynchronize(s_), "cudaStreamSynchronize"); }

private:
	cudaStream_t s_ = nullptr;
};

class Gpu {
public:
	explicit Gpu(const beluga_kv_gpu_opts *o = nullptr)
	{
		if (int rc = beluga_kv_gpu_create(o, &g_))
			throw std::runtime_error("beluga_kv_gpu_create: " + std::to_string(rc) + " " +
						 beluga_kv_gpu_last_error());
	}
	~Gpu() { beluga_kv_gpu_destroy(g_); }
	Gpu(const Gpu &) = delete;
	Gpu &operator=(const Gpu &) = delete;
	beluga_kv_gpu *get() const { return g_; }

private:
	beluga_kv_gpu *g_ = nullptr;
};

// Holds a stream at a point until opened, from a host function (no device
// code needed): work enqueued behind it cannot start, so a call that returns
// while the gate is shut did not wait for its work.  Gives up after 30 s so
// that a broken test fails instead of hanging.
class Gate {
public:
	void shut(cudaStream_t s) { check(cudaLaunchHostFunc(s, &Gate::wait, this), "cudaLaunchHostFunc"); }
	void open() { open_.store(true); }
	bool timed_out() const { return timed_out_.load(); }

private:
	static void CUDART_CB wait(void *p)
	{
		auto *g = static_cast<Gate *>(p);
		const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
		while (!g->open_.load()) {
			if (std::chrono::steady_clock::now() > end) {
				g->timed_out_.store(true);
				return;
			}
			std::this_thread::yield();
		}
	}
	std::atomic<bool> open_{false};
	std::atomic<bool> timed_out_{false};
};

} // namespace beluga::xfer::gpu_test
