/* SPDX-License-Identifier: Apache-2.0 */
/*
 * beluga/xfer_cuda.h - the GPU data path: gather-write and scatter-read of
 * paged KV blocks between GPU memory and pool blocks in host (CXL) memory that
 * was registered with cudaHostRegister (or allocated pinned).  Built only when
 * the CUDA toolkit is found (target beluga_xfer_cuda, which defines
 * BELUGA_XFER_HAVE_CUDA=1 for its users).
 *
 * Pool addresses in struct beluga_kv_block_ref must be device-visible: the
 * result of cudaHostGetDevicePointer, which under UVA on x86-64 Linux is the
 * host address itself.  Paged-cache layer bases are device addresses.
 *
 * Nothing here synchronises with the stream: work is enqueued on the caller's
 * stream and the call returns.  Exceptions, documented per call: a context
 * whose staging slots are all in flight waits for the oldest one, and a batch
 * larger than any before grows the staging buffers (cudaFree/cudaMalloc may
 * synchronise the device).  Size them up front with beluga_kv_gpu_opts.
 *
 * Each function returns 0 or a negative errno: -EINVAL (bad arguments),
 * -ENODEV (no usable GPU), -ENOMEM, -EIO (a CUDA call failed; the message is
 * in beluga_kv_gpu_last_error()).  errno is left alone.
 */
#ifndef BELUGA_XFER_CUDA_H
#define BELUGA_XFER_CUDA_H

#include <beluga/kv_layout.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA runtime's handle types, without requiring its headers here. */
struct CUstream_st;
struct CUevent_st;

/* Default piece size from which cudaMemcpyBatchAsync is used instead of the
 * kernel: 1 MiB.  On an H200 (PCIe gen5 x16, driver r580; measured 2026-11-28,
 * Documentation/gpu-datapath.md section 8) the kernel moved 49-52 GB/s at every
 * piece size from 4 KiB to 256 KiB, where the copy engines reached 2-50 GB/s;
 * they won both ways only at 1 MiB pieces (52-54 against 50-52 GB/s), and
 * beluga_kv_gpu_calibrate chose 1 MiB.  vLLM's H100 figure (28 KiB, vllm PR
 * #42212) would send the 32 and 64 KiB runs of FlashAttention and FlashInfer
 * NHD to the copy engines at about half and two thirds of the kernel's
 * throughput.  The crossover is device-specific: use beluga_kv_gpu_calibrate,
 * the environment variable below or beluga_kv_gpu_opts.batch_min_bytes. */
#define BELUGA_KV_GPU_BATCH_MIN_DEFAULT ((size_t)1 << 20)
/* Environment override, read by beluga_kv_gpu_create: bytes, or "off". */
#define BELUGA_KV_GPU_BATCH_MIN_ENV "BELUGA_XFER_BATCH_MIN_BYTES"

/*
 * 1 if a CUDA device is usable, 0 if not; `why` (may be NULL) receives the
 * reason in words ("no NVIDIA driver (libcuda.so.1 not found)", "CUDA driver
 * too old for this runtime", ...).
 */
int beluga_kv_gpu_available(char *why, size_t why_len);

struct beluga_kv_gpu_opts {
	int device;              /* CUDA device ordinal */
	uint32_t staging_slots;  /* transfers in flight before a call waits; 0: 8 */
	size_t staging_refs;     /* refs per slot allocated up front; 0: 4096 */
	uint32_t max_ctas;       /* kernel grid cap; 0: 4 per SM */
	size_t batch_min_bytes;  /* 0: BELUGA_KV_GPU_BATCH_MIN_DEFAULT (or the environment);
				  * SIZE_MAX: never use cudaMemcpyBatchAsync */
};

struct beluga_kv_gpu;

/* opts may be NULL (device 0, defaults). */
int beluga_kv_gpu_create(const struct beluga_kv_gpu_opts *opts, struct beluga_kv_gpu **out);
/* Waits for the context's own staging slots, then frees everything. */
void beluga_kv_gpu_destroy(struct beluga_kv_gpu *gpu);

/* The piece size (contiguous run) from which the copy engines are used. */
size_t beluga_kv_gpu_batch_min_bytes(const struct beluga_kv_gpu *gpu);
void beluga_kv_gpu_set_batch_min_bytes(struct beluga_kv_gpu *gpu, size_t bytes);
/* 1 if this device and driver accept cudaMemcpyBatchAsync (probed at create). */
int beluga_kv_gpu_has_batch_copy(const struct beluga_kv_gpu *gpu);

/* One row of the calibration table: throughput of each method for pieces of
 * piece_bytes, scatter (pool -> GPU, "h2d") and gather (GPU -> pool, "d2h"). */
struct beluga_kv_gpu_calib_point {
	size_t piece_bytes;
	double kernel_h2d_gbps;
	double batch_h2d_gbps; /* 0 if cudaMemcpyBatchAsync is unavailable */
	double kernel_d2h_gbps;
	double batch_d2h_gbps;
};
#define BELUGA_KV_GPU_CALIB_POINTS 10 /* pieces of 4 KiB .. 1 MiB */

/*
 * Measure where cudaMemcpyBatchAsync overtakes the kernel on this device, in
 * both directions, moving 32 MiB per timing between device memory and `host`
 * (registered or pinned host memory of `host_len` >= 32 MiB, e.g. part of the
 * pool region, so the measurement sees the real memory; NULL: a pinned buffer
 * is allocated), and set the threshold to the smallest piece size from which
 * the copy engines win both ways at every larger size (SIZE_MAX if the kernel
 * always wins).  `points` (NULL or BELUGA_KV_GPU_CALIB_POINTS entries)
 * receives the table; `threshold` (may be NULL) the result.  Synchronises
 * `stream` and takes tens of milliseconds; do not use the copier from another
 * thread meanwhile.
 */
int beluga_kv_gpu_calibrate(struct beluga_kv_gpu *gpu, struct CUstream_st *stream, void *host,
			    size_t host_len, struct beluga_kv_gpu_calib_point *points, size_t *threshold);

/*
 * Enqueue one transfer on `stream` (not the legacy default stream 0 if the
 * copy engines are to be used; with stream 0 the kernel is always used).
 * One kernel launch covers every block and layer of the transfer; if the
 * layout's contiguous runs are at least batch_min_bytes, one
 * cudaMemcpyBatchAsync call is used instead.
 */
int beluga_kv_gpu_copy(struct beluga_kv_gpu *gpu, const struct beluga_kv_xfer *xfer,
		       struct CUstream_st *stream);

/*
 * Per-layer completion events for layer-wise loading: load (or save) layer i+1
 * while the engine computes layer i.
 */
struct beluga_kv_layer_events;

int beluga_kv_layer_events_create(uint32_t num_layers, struct beluga_kv_layer_events **out);
void beluga_kv_layer_events_destroy(struct beluga_kv_layer_events *ev);

/*
 * Enqueue the transfer layer by layer (one launch or batch per layer, in
 * order layer_begin..layer_end-1) on `stream`, recording layer i's event right
 * after its copy.  The events must cover layer_end layers.
 */
int beluga_kv_gpu_copy_layerwise(struct beluga_kv_gpu *gpu, const struct beluga_kv_xfer *xfer,
				 struct CUstream_st *stream, struct beluga_kv_layer_events *ev);

/* Make `stream` (e.g. the engine's compute stream) wait for layer i, without blocking the host. */
int beluga_kv_layer_events_wait(struct beluga_kv_layer_events *ev, uint32_t layer,
				struct CUstream_st *stream);
/* Block the host until layer i has landed. */
int beluga_kv_layer_events_sync(struct beluga_kv_layer_events *ev, uint32_t layer);
/* 1 if layer i has landed, 0 if not yet, negative errno on error. */
int beluga_kv_layer_events_query(struct beluga_kv_layer_events *ev, uint32_t layer);
/* The CUDA event of layer i (for callers that manage events themselves). */
struct CUevent_st *beluga_kv_layer_events_get(struct beluga_kv_layer_events *ev, uint32_t layer);

/*
 * Zero-copy saves: the GPU writes the payload of reserved store slots
 * (beluga_kvc_reserve, beluga/kvcache.h) and computes their block checksums
 * (BKV-F64, Documentation/kvcache-format.md), bit for bit the store's, so that
 * the commit need not read the payload back (BELUGA_KVC_COMMIT_CHECKSUM).
 * Documentation/gpu-datapath.md, "Checksums of GPU-written blocks".
 */

/* How beluga_kv_gpu_gather_sum() computes the checksums. */
#define BELUGA_KV_SUM_AUTO	0 /* FUSED where the copy kernel moves the data, else SOURCE */
#define BELUGA_KV_SUM_FUSED	1 /* the gather kernel sums each unit it stores: one pass */
#define BELUGA_KV_SUM_SOURCE	2 /* the copy (kernel or copy engines), then a kernel summing
				   * the paged source in GPU memory */
#define BELUGA_KV_SUM_READBACK	3 /* the copy, then a kernel reading the pool blocks back
				   * over the bus (for comparison in the benchmark) */

/**
 * beluga_kv_gpu_gather_sum - gather whole blocks into pool blocks and checksum them
 * @gpu:    the GPU copier.
 * @xfer:   a BELUGA_KV_GATHER transfer of every layer (layer_begin 0,
 *          layer_end shape.num_layers); each ref's pool is the device-visible
 *          address of a reserved slot (for a registered region: the slot's
 *          @data, or the registered base + @offset).
 * @method: BELUGA_KV_SUM_AUTO, _FUSED, _SOURCE or _READBACK.
 * @sums:   @xfer->nrefs entries: sums[i] receives the checksum of the
 *          beluga_kv_block_bytes() bytes written to refs[i].pool.  Written
 *          on @stream: read it only after the stream has passed this call.
 *          Pinned or registered memory keeps the call asynchronous; with
 *          pageable memory CUDA may wait for the copy of the sums.
 * @stream: the caller's stream; the legacy stream 0 works, but then AUTO
 *          never uses the copy engines (as beluga_kv_gpu_copy()).
 *
 * The same bytes reach the pool as with beluga_kv_gpu_copy().  Enqueues and
 * returns; refs may be reused at once.  Scratch memory (about 90 bytes per
 * ref) comes from the device's stream-ordered allocator (cudaMallocAsync);
 * on a device without memory pools it comes from cudaMalloc and the call
 * waits for @stream before returning.
 *
 * Return: 0, -EINVAL (not a whole-block gather, bad method, NULL @sums),
 * -ENOMEM, -EIO (beluga_kv_gpu_last_error()).
 */
int beluga_kv_gpu_gather_sum(struct beluga_kv_gpu *gpu, const struct beluga_kv_xfer *xfer, uint32_t method,
			     uint64_t *sums, struct CUstream_st *stream);

/**
 * beluga_kv_gpu_checksum - the store's block checksum of device-visible buffers
 * @gpu:    the GPU copier (its device and grid cap are used).
 * @bufs:   @n device-visible addresses (device memory, or registered or
 *          pinned host memory), any alignment.
 * @lens:   their lengths in bytes, any value (0 included).
 * @n:      number of buffers.
 * @sums:   @n entries, receive beluga_kvc_checksum(bufs[i], lens[i]); written
 *          on @stream as with beluga_kv_gpu_gather_sum().
 * @stream: the caller's stream.
 *
 * Return: 0, -EINVAL (NULL arrays), -ENOMEM, -EIO.
 */
int beluga_kv_gpu_checksum(struct beluga_kv_gpu *gpu, const void *const *bufs, const size_t *lens, size_t n,
			   uint64_t *sums, struct CUstream_st *stream);

struct beluga_kvc;
struct beluga_kvc_reservation;

/**
 * beluga_kv_gpu_commit - commit reserved slots that a stream wrote, with the sums it computed
 * @kv:      the store that reserved @items.
 * @items:   @n reservations (beluga_kvc_reserve()) whose slots the work
 *           enqueued on @stream writes (beluga_kv_gpu_gather_sum()).
 * @n:       number of items.
 * @sums:    @n checksums written on @stream (the same call's @sums), in the
 *           order of @items; entries of items that hold no reservation are
 *           ignored.
 * @stream:  the stream to synchronize first.
 * @results: @n per-item results, as beluga_kvc_commit().
 *
 * Synchronizes @stream, sets each item's @sum to sums[i] and calls
 * beluga_kvc_commit() with BELUGA_KVC_COMMIT_CHECKSUM: the payload is not read
 * again; readers that verify miss a block whose payload does not match its
 * sum.  Only in the target beluga_xfer_kvc (the main build; it needs the
 * store).
 *
 * Return: what beluga_kvc_commit() returns (the number stored, or its
 * errors: beluga_kvc_last_error()); -EINVAL for NULL arrays; -EIO if the
 * stream failed (beluga_kv_gpu_last_error()): then nothing is committed and
 * every reservation of @items is aborted (the payloads are not known to be
 * written).
 */
long beluga_kv_gpu_commit(struct beluga_kvc *kv, struct beluga_kvc_reservation *items, size_t n,
			  const uint64_t *sums, struct CUstream_st *stream, int *results);

/* Message of the last CUDA failure on this thread ("" if none). */
const char *beluga_kv_gpu_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_XFER_CUDA_H */
