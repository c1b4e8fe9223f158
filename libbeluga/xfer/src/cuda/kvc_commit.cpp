// SPDX-License-Identifier: Apache-2.0
// beluga_kv_gpu_commit: the end of a zero-copy save from the GPU.  The store
// is the only party that publishes; this waits for the device's writes and
// hands it the sums the GPU computed (target beluga_xfer_kvc: the data path
// plus the store).
#include "gpu_ctx.hpp"

#include <beluga/kvcache.h>

#include <cerrno>

using namespace beluga::xfer::cuda;

extern "C" long beluga_kv_gpu_commit(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, const uint64_t *sums,
				     CUstream_st *stream, int *results)
{
	if (!kv || (n && (!items || !sums || !results)))
		return fail_msg(-EINVAL, "beluga_kv_gpu_commit: NULL store or array");
	if (const cudaError_t e = cudaStreamSynchronize(stream)) {
		// The payloads may be partly written: never publish them.
		beluga_kvc_abort(kv, items, n);
		fail(e, "cudaStreamSynchronize before committing (the reservations were aborted)");
		return -EIO;
	}
	for (size_t i = 0; i < n; i++)
		if (items[i].data)
			items[i].sum = sums[i];
	return beluga_kvc_commit(kv, items, n, BELUGA_KVC_COMMIT_CHECKSUM, results);
}
