// SPDX-License-Identifier: Apache-2.0
#include "plan.hpp"

#include <cerrno>

namespace beluga::xfer {

namespace {

// Are the layers of [begin, end) laid out back to back, one pool-layer apart?
bool layers_adjacent(const beluga_kv_paged &p, uint32_t begin, uint32_t end, size_t layer_bytes)
{
	for (uint32_t l = begin + 1; l < end; l++) {
		const auto prev = reinterpret_cast<uintptr_t>(p.layer_base[l - 1]);
		if (reinterpret_cast<uintptr_t>(p.layer_base[l]) != prev + layer_bytes)
			return false;
	}
	return true;
}

Merge merge_level(const beluga_kv_xfer &x)
{
	const beluga_kv_paged &p = *x.paged;
	const beluga_kv_shape &s = p.shape;
	const int64_t D = s.head_size, H = s.num_kv_heads, T = s.block_size;
	if (H > 1 && p.stride_head != D)
		return Merge::Row;
	if (T > 1 && p.stride_token != H * D)
		return Merge::Token;
	if (p.stride_kv != T * H * D)
		return Merge::Slice;
	if (!layers_adjacent(p, x.layer_begin, x.layer_end, beluga_kv_layer_bytes(&s)))
		return Merge::Layer;
	return Merge::Block;
}

} // namespace

Plan make_plan(const beluga_kv_xfer &x)
{
	const beluga_kv_paged &p = *x.paged;
	const beluga_kv_shape &s = p.shape;
	Plan pl;
	pl.merge = merge_level(x);
	pl.esize = beluga_kv_dtype_size(s.dtype);
	pl.row_bytes = beluga_kv_row_bytes(&s);
	pl.tokens = s.block_size;
	pl.heads = s.num_kv_heads;
	pl.layer_begin = x.layer_begin;
	pl.sb = p.stride_block * int64_t(pl.esize);
	pl.skv = p.stride_kv * int64_t(pl.esize);
	pl.st = p.stride_token * int64_t(pl.esize);
	pl.sh = p.stride_head * int64_t(pl.esize);

	const uint32_t layers = x.layer_end - x.layer_begin;
	pl.n_h = pl.merge >= Merge::Token ? 1 : s.num_kv_heads;
	pl.n_t = pl.merge >= Merge::Slice ? 1 : s.block_size;
	pl.n_k = pl.merge >= Merge::Layer ? 1 : 2;
	pl.n_l = pl.merge >= Merge::Block ? 1 : layers;
	pl.pieces_per_ref = uint64_t(pl.n_l) * pl.n_k * pl.n_t * pl.n_h;

	switch (pl.merge) {
	case Merge::Row:
		pl.run_bytes = pl.row_bytes;
		break;
	case Merge::Token:
		pl.run_bytes = pl.row_bytes * s.num_kv_heads;
		break;
	case Merge::Slice:
		pl.run_bytes = beluga_kv_slice_bytes(&s);
		break;
	case Merge::Layer:
		pl.run_bytes = beluga_kv_layer_bytes(&s);
		break;
	case Merge::Block:
		pl.run_bytes = beluga_kv_layer_bytes(&s) * layers;
		break;
	}
	return pl;
}

} // namespace beluga::xfer

extern "C" int beluga_kv_xfer_runs(const beluga_kv_xfer *x, size_t *run_bytes, uint64_t *runs)
{
	if (beluga_kv_xfer_check(x) || !run_bytes || !runs)
		return -EINVAL;
	const beluga::xfer::Plan pl = beluga::xfer::make_plan(*x);
	*run_bytes = pl.run_bytes;
	*runs = x->nrefs * pl.pieces_per_ref;
	return 0;
}
