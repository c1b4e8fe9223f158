// SPDX-License-Identifier: Apache-2.0
// The GPU copier's state, shared by the files of the CUDA data path.
#pragma once

#include <beluga/xfer_cuda.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

namespace beluga::xfer::cuda {

// One transfer's block refs on their way to the GPU: written by the host into
// pinned memory, copied to device memory on the caller's stream, read by the
// kernel.  `done` is recorded after the last launch that reads them; the slot
// is reused only once it has fired.
struct Slot {
	beluga_kv_block_ref *host = nullptr;
	beluga_kv_block_ref *dev = nullptr;
	size_t capacity = 0;
	cudaEvent_t done = nullptr;
	bool in_flight = false;
	uint64_t seq = 0; // age, to wait for the oldest slot when all are busy
};

// Records `what` and the CUDA error as this thread's last error, and maps it
// to a negative errno.
int fail(cudaError_t err, const char *what);
// Records a message with no CUDA error behind it; returns `rc`.
int fail_msg(int rc, const char *msg);

// Makes `device` current for the guard's lifetime and restores the caller's.
class DeviceGuard {
public:
	explicit DeviceGuard(int device);
	~DeviceGuard();
	cudaError_t status() const { return status_; }

private:
	int saved_ = -1;
	cudaError_t status_ = cudaSuccess;
};

} // namespace beluga::xfer::cuda

struct beluga_kv_gpu {
	int device = 0;
	unsigned max_ctas = 0;
	size_t batch_min = 0;
	bool has_batch = false;
	std::vector<beluga::xfer::cuda::Slot> slots;
	uint64_t seq = 0;
	// cudaMemcpyBatchAsync reads its arrays during the call only; kept here
	// so that steady-state calls do not allocate.  Sources are stored as
	// void * because CUDA 12.8/12.9 declare them so (13.0 made them const).
	std::vector<void *> batch_dst;
	std::vector<void *> batch_src;
	std::vector<size_t> batch_size;
	std::mutex mu;
};

struct beluga_kv_layer_events {
	std::vector<cudaEvent_t> ev;
};
