/* SPDX-License-Identifier: Apache-2.0 */
/*
 * beluga/kv_layout.h - where the bytes of a KV block live, in the pool and in an
 * inference engine's paged KV cache.  C-compatible; shared by the KV-block store
 * (libbeluga/kvcache) and the data path (libbeluga/xfer).
 *
 * Pool block (one per engine KV block, all layers, contiguous):
 *
 *   for layer in 0..num_layers-1:          layer slice  = 2 * kv slice
 *     for kv in {K=0, V=1}:                kv slice     = block_size*num_kv_heads*head_size
 *       [block_size tokens][num_kv_heads][head_size] elements of dtype
 *
 * i.e. the C-order array [num_layers][2][block_size][num_kv_heads][head_size].
 * This is byte-for-byte the per-block view of vLLM's cross-layer NHD layout, so
 * a pool block can also be handed to code that expects that layout.  The payload
 * should start at an address aligned to 16 bytes (vector copies); the store may
 * keep its own header (checksum, sequence number) elsewhere.
 *
 * Paged cache (the engine side): described by struct beluga_kv_paged, one base
 * address per layer plus element strides for the block, K/V, token and head
 * dimensions.  head_size is always the innermost, contiguous dimension (true
 * of every vLLM layout).  Constructors below fill it for vLLM's layouts, checked
 * against vllm-project/vllm (see Documentation/gpu-datapath.md):
 *   FlashAttention, per layer   [2, num_blocks, block_size, num_kv_heads, head_size]
 *     (vllm/v1/attention/backends/flash_attn.py get_kv_cache_shape, commit 5704f34f)
 *   FlashInfer, per layer       [num_blocks, 2, block_size, num_kv_heads, head_size]
 *     (vllm/v1/attention/backends/flashinfer.py get_kv_cache_shape, commit 00a817ad)
 *   HND variants permute block_size and num_kv_heads physically (stride order
 *   (0,1,3,2,4) in both backends).
 *   Cross-layer (vLLM PR #27743, allocate_uniform_kv_caches): one tensor for all
 *   layers; physical order from get_kv_cache_stride_order(include_num_layers_dimension=True):
 *     NHD, both backends: [num_blocks, num_layers, 2, block_size, heads, head_size]
 *     FlashAttention HND: [num_blocks, heads, num_layers, 2, block_size, head_size]
 *     FlashInfer HND:     [num_blocks, 2, heads, num_layers, block_size, head_size]
 */
#ifndef BELUGA_KV_LAYOUT_H
#define BELUGA_KV_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest layer count a descriptor holds (the GPU kernels take it by value). */
#define BELUGA_KV_MAX_LAYERS 256u

enum beluga_kv_dtype {
	BELUGA_KV_FP16 = 1,
	BELUGA_KV_BF16 = 2,
	BELUGA_KV_FP8_E4M3 = 3,
	BELUGA_KV_FP8_E5M2 = 4,
	BELUGA_KV_FP32 = 5,
};

/* Bytes per element; 0 for an unknown dtype. */
size_t beluga_kv_dtype_size(uint32_t dtype);

/* The model-side shape of one KV block (a tensor-parallel rank's share of it). */
struct beluga_kv_shape {
	uint32_t num_layers;   /* 1..BELUGA_KV_MAX_LAYERS */
	uint32_t block_size;   /* tokens per block (vLLM default 16) */
	uint32_t num_kv_heads; /* KV heads on this rank */
	uint32_t head_size;    /* elements per head */
	uint32_t dtype;        /* enum beluga_kv_dtype */
	uint32_t reserved;     /* must be 0 */
};

/* 0 if the shape is usable, -EINVAL otherwise. */
int beluga_kv_shape_check(const struct beluga_kv_shape *shape);

/* Pool block geometry, in bytes (the shape must pass beluga_kv_shape_check). */
size_t beluga_kv_row_bytes(const struct beluga_kv_shape *shape);   /* one head of one token */
size_t beluga_kv_slice_bytes(const struct beluga_kv_shape *shape); /* K or V of one layer */
size_t beluga_kv_layer_bytes(const struct beluga_kv_shape *shape); /* K and V of one layer */
size_t beluga_kv_block_bytes(const struct beluga_kv_shape *shape); /* the whole pool block */

/* Byte offset, inside a pool block, of layer `layer`'s K (kv = 0) or V (kv = 1) slice. */
size_t beluga_kv_slice_offset(const struct beluga_kv_shape *shape, uint32_t layer, uint32_t kv);
/* Byte offset of layer `layer`'s slices (its K slice; V follows). */
size_t beluga_kv_layer_offset(const struct beluga_kv_shape *shape, uint32_t layer);
/* Byte offset of one element. */
size_t beluga_kv_elem_offset(const struct beluga_kv_shape *shape, uint32_t layer, uint32_t kv,
			     uint32_t token, uint32_t head, uint32_t dim);

/*
 * A paged KV cache.  Element (layer l, kv k, block b, token t, head h, dim d)
 * lives at
 *   layer_base[l] + (b*stride_block + k*stride_kv + t*stride_token + h*stride_head + d) * dtype size
 * Strides are in elements, non-negative, and must not make two elements of one
 * layer alias.  Layers must not alias each other (not checked: cross-layer
 * layouts interleave them legitimately).  For the GPU data path layer_base
 * holds device addresses.
 */
struct beluga_kv_paged {
	struct beluga_kv_shape shape;
	uint64_t num_blocks; /* blocks in the cache: valid block ids are 0..num_blocks-1 */
	int64_t stride_block;
	int64_t stride_kv;
	int64_t stride_token;
	int64_t stride_head;
	void *layer_base[BELUGA_KV_MAX_LAYERS]; /* entries past shape.num_layers are ignored */
};

/* 0 if the descriptor is consistent, -EINVAL otherwise. */
int beluga_kv_paged_check(const struct beluga_kv_paged *paged);

/* Element offset (not bytes) of (block, kv, token, head, 0) from its layer's base. */
int64_t beluga_kv_paged_elem_offset(const struct beluga_kv_paged *paged, uint64_t block, uint32_t kv,
				    uint32_t token, uint32_t head);

enum beluga_kv_vllm_backend {
	BELUGA_KV_VLLM_FLASH_ATTN = 1, /* per layer [2, num_blocks, block_size, heads, head_size] */
	BELUGA_KV_VLLM_FLASHINFER = 2, /* per layer [num_blocks, 2, block_size, heads, head_size] */
};

enum beluga_kv_vllm_order {
	BELUGA_KV_NHD = 0, /* vLLM's default: tokens outside heads */
	BELUGA_KV_HND = 1, /* heads outside tokens (VLLM_KV_CACHE_LAYOUT=HND) */
};

/*
 * vLLM's per-layer caches: one tensor per layer, layer_tensors[l] its data
 * pointer (contiguous in vLLM's physical order).  0 or -EINVAL.
 */
int beluga_kv_paged_vllm_per_layer(struct beluga_kv_paged *out, const struct beluga_kv_shape *shape,
				   uint64_t num_blocks, uint32_t backend, uint32_t order,
				   void *const *layer_tensors);

/*
 * vLLM's cross-layer cache: one contiguous tensor for all layers at `base`,
 * physical order as listed at the top of this file.  0 or -EINVAL.
 */
int beluga_kv_paged_vllm_cross_layer(struct beluga_kv_paged *out, const struct beluga_kv_shape *shape,
				     uint64_t num_blocks, uint32_t backend, uint32_t order, void *base);

/* One KV block to move: its index in the paged cache and its pool block. */
struct beluga_kv_block_ref {
	uint64_t paged_block; /* < paged->num_blocks */
	void *pool;           /* payload of the pool block (device-visible address for the GPU path) */
};

enum beluga_kv_dir {
	BELUGA_KV_GATHER = 1,  /* gather-write: paged cache -> pool blocks */
	BELUGA_KV_SCATTER = 2, /* scatter-read: pool blocks -> paged cache */
};

/*
 * One transfer: `nrefs` blocks, layers [layer_begin, layer_end) of each (every
 * layer's slice sits at its usual pool offset, so layer-wise loading reads part
 * of a block).  For scatter, two refs must not name the same paged block, and
 * for gather two refs must not name the same pool block.
 */
struct beluga_kv_xfer {
	const struct beluga_kv_paged *paged;
	const struct beluga_kv_block_ref *refs;
	size_t nrefs;
	uint32_t layer_begin;
	uint32_t layer_end;
	uint32_t dir; /* enum beluga_kv_dir */
	uint32_t flags; /* must be 0 */
};

/*
 * 0 if the transfer is well-formed (including every ref, and no block named
 * twice on the side it writes), -EINVAL otherwise (-ENOMEM when checking a
 * large transfer for duplicates could not allocate).
 */
int beluga_kv_xfer_check(const struct beluga_kv_xfer *xfer);

/*
 * How the transfer splits into contiguous runs (identical on both sides):
 * bytes per run and the number of runs.  One head row at worst (HND layouts),
 * a layer's K or V slice for FlashAttention NHD, K+V of a layer for
 * FlashInfer NHD, the whole block for cross-layer NHD.  The GPU path picks
 * cudaMemcpyBatchAsync or the kernel from run_bytes.  0 or -EINVAL.
 */
int beluga_kv_xfer_runs(const struct beluga_kv_xfer *xfer, size_t *run_bytes, uint64_t *runs);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_KV_LAYOUT_H */
