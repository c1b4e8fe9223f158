// SPDX-License-Identifier: Apache-2.0
// How a transfer breaks into equal contiguous pieces.  Both sides of a copy
// are contiguous along head_size; depending on the paged layout's strides,
// neighbouring heads, tokens, K/V and whole layers are contiguous too, and a
// piece then covers all of them.  Every fast path (CPU memcpy runs, GPU
// kernel, cudaMemcpyBatchAsync descriptors) walks the same pieces.
#pragma once

#include <beluga/kv_layout.h>

#include <cstddef>
#include <cstdint>

namespace beluga::xfer {

enum class Merge : uint32_t {
	Row = 0,    // one head of one token
	Token = 1,  // all heads of one token
	Slice = 2,  // the K (or V) slice of one layer
	Layer = 3,  // K and V of one layer
	Block = 4,  // every layer of the transfer's range
};

struct Plan {
	Merge merge = Merge::Row;
	// Pieces per ref along (layer, kv, token, head), innermost last; a merged
	// dimension counts 1.  pieces_per_ref is their product.
	uint32_t n_l = 0, n_k = 0, n_t = 0, n_h = 0;
	uint64_t pieces_per_ref = 0;
	size_t run_bytes = 0; // bytes per piece
	size_t esize = 0;
	size_t row_bytes = 0;
	uint32_t tokens = 0, heads = 0; // shape.block_size, shape.num_kv_heads
	uint32_t layer_begin = 0;
	// Paged-side byte strides.
	int64_t sb = 0, skv = 0, st = 0, sh = 0;
};

// The transfer must have passed beluga_kv_xfer_check.
Plan make_plan(const beluga_kv_xfer &x);

// Piece `p` of a ref: its paged-side and pool-side byte offsets.  The paged
// offset is relative to layer_base[*layer].
struct PieceAddr {
	uint32_t layer;
	int64_t paged_off;
	uint64_t pool_off;
};

inline PieceAddr piece_addr(const Plan &pl, uint64_t block, uint64_t p)
{
	const uint32_t h = uint32_t(p % pl.n_h);
	p /= pl.n_h;
	const uint32_t t = uint32_t(p % pl.n_t);
	p /= pl.n_t;
	const uint32_t k = uint32_t(p % pl.n_k);
	const uint32_t l = pl.layer_begin + uint32_t(p / pl.n_k);
	PieceAddr a;
	a.layer = l;
	a.paged_off = int64_t(block) * pl.sb + k * pl.skv + t * pl.st + h * pl.sh;
	a.pool_off = ((uint64_t(l) * 2 + k) * pl.tokens + t) * pl.heads * pl.row_bytes + h * pl.row_bytes;
	return a;
}

} // namespace beluga::xfer
