// SPDX-License-Identifier: Apache-2.0
// Pool-block geometry and paged-cache descriptors (beluga/kv_layout.h).
#include <beluga/kv_layout.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <vector>

namespace {

constexpr uint32_t kVllmNumKv = 2;

bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

// Element counts of the pool block's nested dimensions; the shape is checked.
uint64_t row_elems(const beluga_kv_shape &s) { return s.head_size; }
uint64_t token_elems(const beluga_kv_shape &s) { return uint64_t(s.num_kv_heads) * s.head_size; }
uint64_t slice_elems(const beluga_kv_shape &s) { return uint64_t(s.block_size) * token_elems(s); }

// Strides (elements) of an array with the given extents in C order.
template <size_t N> std::array<int64_t, N> c_strides(const std::array<uint64_t, N> &ext)
{
	std::array<int64_t, N> st{};
	uint64_t acc = 1;
	for (size_t i = N; i-- > 0;) {
		st[i] = int64_t(acc);
		acc *= ext[i];
	}
	return st;
}

// A vLLM tensor never exceeds 2^62 elements; refuse shapes whose strides would.
bool extent_ok(const beluga_kv_shape &s, uint64_t num_blocks)
{
	uint64_t v = slice_elems(s);
	return mul_ok(v, 2ull * s.num_layers, &v) && mul_ok(v, num_blocks, &v) && v < (1ull << 62);
}

void init_paged(beluga_kv_paged *out, const beluga_kv_shape &s, uint64_t num_blocks)
{
	std::memset(out, 0, sizeof(*out));
	out->shape = s;
	out->num_blocks = num_blocks;
}

} // namespace

extern "C" {

size_t beluga_kv_dtype_size(uint32_t dtype)
{
	switch (dtype) {
	case BELUGA_KV_FP16:
	case BELUGA_KV_BF16:
		return 2;
	case BELUGA_KV_FP8_E4M3:
	case BELUGA_KV_FP8_E5M2:
		return 1;
	case BELUGA_KV_FP32:
		return 4;
	default:
		return 0;
	}
}

int beluga_kv_shape_check(const beluga_kv_shape *s)
{
	if (!s || s->reserved || !beluga_kv_dtype_size(s->dtype))
		return -EINVAL;
	if (s->num_layers == 0 || s->num_layers > BELUGA_KV_MAX_LAYERS)
		return -EINVAL;
	if (s->block_size == 0 || s->num_kv_heads == 0 || s->head_size == 0)
		return -EINVAL;
	uint64_t bytes = 0;
	if (!mul_ok(slice_elems(*s), 2ull * s->num_layers * beluga_kv_dtype_size(s->dtype), &bytes) ||
	    bytes >= (1ull << 48))
		return -EINVAL;
	return 0;
}

size_t beluga_kv_row_bytes(const beluga_kv_shape *s)
{
	return row_elems(*s) * beluga_kv_dtype_size(s->dtype);
}

size_t beluga_kv_slice_bytes(const beluga_kv_shape *s)
{
	return slice_elems(*s) * beluga_kv_dtype_size(s->dtype);
}

size_t beluga_kv_layer_bytes(const beluga_kv_shape *s)
{
	return kVllmNumKv * beluga_kv_slice_bytes(s);
}

size_t beluga_kv_block_bytes(const beluga_kv_shape *s)
{
	return s->num_layers * beluga_kv_layer_bytes(s);
}

size_t beluga_kv_layer_offset(const beluga_kv_shape *s, uint32_t layer)
{
	return layer * beluga_kv_layer_bytes(s);
}

size_t beluga_kv_slice_offset(const beluga_kv_shape *s, uint32_t layer, uint32_t kv)
{
	return beluga_kv_layer_offset(s, layer) + kv * beluga_kv_slice_bytes(s);
}

size_t beluga_kv_elem_offset(const beluga_kv_shape *s, uint32_t layer, uint32_t kv, uint32_t token,
			     uint32_t head, uint32_t dim)
{
	const size_t in_slice = (uint64_t(token) * s->num_kv_heads + head) * s->head_size + dim;
	return beluga_kv_slice_offset(s, layer, kv) + in_slice * beluga_kv_dtype_size(s->dtype);
}

int beluga_kv_paged_check(const beluga_kv_paged *p)
{
	if (!p || beluga_kv_shape_check(&p->shape) || p->num_blocks == 0 || !extent_ok(p->shape, 1))
		return -EINVAL;
	const beluga_kv_shape &s = p->shape;
	struct Dim {
		int64_t stride;
		uint64_t size;
	};
	std::array<Dim, 4> dims{{{p->stride_block, p->num_blocks},
				 {p->stride_kv, kVllmNumKv},
				 {p->stride_token, s.block_size},
				 {p->stride_head, s.num_kv_heads}}};
	for (const Dim &d : dims)
		if (d.stride < 0)
			return -EINVAL;
	std::sort(dims.begin(), dims.end(), [](const Dim &a, const Dim &b) { return a.stride < b.stride; });
	// Sufficient condition for no aliasing: each dimension (by increasing stride)
	// steps over everything the smaller ones span.
	uint64_t extent = s.head_size;
	for (const Dim &d : dims) {
		if (d.size == 1)
			continue;
		uint64_t span = 0;
		if (uint64_t(d.stride) < extent || !mul_ok(uint64_t(d.stride), d.size - 1, &span) ||
		    __builtin_add_overflow(span, extent, &extent) || extent >= (1ull << 62))
			return -EINVAL;
	}
	for (uint32_t l = 0; l < s.num_layers; l++)
		if (!p->layer_base[l])
			return -EINVAL;
	return 0;
}

int64_t beluga_kv_paged_elem_offset(const beluga_kv_paged *p, uint64_t block, uint32_t kv, uint32_t token,
				    uint32_t head)
{
	return int64_t(block) * p->stride_block + int64_t(kv) * p->stride_kv +
	       int64_t(token) * p->stride_token + int64_t(head) * p->stride_head;
}

int beluga_kv_paged_vllm_per_layer(beluga_kv_paged *out, const beluga_kv_shape *s, uint64_t num_blocks,
				   uint32_t backend, uint32_t order, void *const *layer_tensors)
{
	if (!out || beluga_kv_shape_check(s) || !layer_tensors || num_blocks == 0 || order > BELUGA_KV_HND ||
	    !extent_ok(*s, num_blocks))
		return -EINVAL;
	init_paged(out, *s, num_blocks);
	const bool hnd = order == BELUGA_KV_HND;
	// Physical order of the per-layer tensor; the last three dims are
	// (tokens, heads, head_size) for NHD and (heads, tokens, head_size) for HND.
	const uint64_t inner1 = hnd ? s->num_kv_heads : s->block_size;
	const uint64_t inner2 = hnd ? s->block_size : s->num_kv_heads;
	int64_t s_inner1, s_inner2;
	if (backend == BELUGA_KV_VLLM_FLASH_ATTN) { // [2, NB, ., ., D]
		auto st = c_strides<5>({kVllmNumKv, num_blocks, inner1, inner2, s->head_size});
		out->stride_kv = st[0];
		out->stride_block = st[1];
		s_inner1 = st[2];
		s_inner2 = st[3];
	} else if (backend == BELUGA_KV_VLLM_FLASHINFER) { // [NB, 2, ., ., D]
		auto st = c_strides<5>({num_blocks, kVllmNumKv, inner1, inner2, s->head_size});
		out->stride_block = st[0];
		out->stride_kv = st[1];
		s_inner1 = st[2];
		s_inner2 = st[3];
	} else {
		return -EINVAL;
	}
	out->stride_token = hnd ? s_inner2 : s_inner1;
	out->stride_head = hnd ? s_inner1 : s_inner2;
	for (uint32_t l = 0; l < s->num_layers; l++)
		out->layer_base[l] = layer_tensors[l];
	return beluga_kv_paged_check(out);
}

int beluga_kv_paged_vllm_cross_layer(beluga_kv_paged *out, const beluga_kv_shape *s, uint64_t num_blocks,
				     uint32_t backend, uint32_t order, void *base)
{
	if (!out || beluga_kv_shape_check(s) || !base || num_blocks == 0 || order > BELUGA_KV_HND ||
	    (backend != BELUGA_KV_VLLM_FLASH_ATTN && backend != BELUGA_KV_VLLM_FLASHINFER) ||
	    !extent_ok(*s, num_blocks))
		return -EINVAL;
	init_paged(out, *s, num_blocks);
	const uint64_t L = s->num_layers, T = s->block_size, H = s->num_kv_heads, D = s->head_size;
	int64_t s_layer;
	if (order == BELUGA_KV_NHD) { // both backends: [NB, L, 2, T, H, D]
		auto st = c_strides<6>({num_blocks, L, kVllmNumKv, T, H, D});
		out->stride_block = st[0], s_layer = st[1], out->stride_kv = st[2];
		out->stride_token = st[3], out->stride_head = st[4];
	} else if (backend == BELUGA_KV_VLLM_FLASH_ATTN) { // [NB, H, L, 2, T, D]
		auto st = c_strides<6>({num_blocks, H, L, kVllmNumKv, T, D});
		out->stride_block = st[0], out->stride_head = st[1], s_layer = st[2];
		out->stride_kv = st[3], out->stride_token = st[4];
	} else { // FlashInfer HND: [NB, 2, H, L, T, D]
		auto st = c_strides<6>({num_blocks, kVllmNumKv, H, L, T, D});
		out->stride_block = st[0], out->stride_kv = st[1], out->stride_head = st[2];
		s_layer = st[3], out->stride_token = st[4];
	}
	const size_t esize = beluga_kv_dtype_size(s->dtype);
	for (uint32_t l = 0; l < s->num_layers; l++)
		out->layer_base[l] = static_cast<char *>(base) + uint64_t(l) * s_layer * esize;
	return beluga_kv_paged_check(out);
}

} // extern "C"

namespace {

// The side a transfer writes must not be named twice: two scattered blocks
// landing in one paged block (or two paged blocks gathered into one pool
// block) would race in the parallel copiers, and the result would depend on
// the order.  Small transfers compare pairwise; large ones sort a copy.
bool writes_overlap(const beluga_kv_xfer &x)
{
	auto key = [&x](size_t i) {
		return x.dir == BELUGA_KV_SCATTER ? uint64_t(x.refs[i].paged_block)
						  : uint64_t(reinterpret_cast<uintptr_t>(x.refs[i].pool));
	};
	constexpr size_t kPairwise = 32;
	if (x.nrefs <= kPairwise) {
		for (size_t i = 1; i < x.nrefs; i++)
			for (size_t j = 0; j < i; j++)
				if (key(i) == key(j))
					return true;
		return false;
	}
	std::vector<uint64_t> keys(x.nrefs);
	for (size_t i = 0; i < x.nrefs; i++)
		keys[i] = key(i);
	std::sort(keys.begin(), keys.end());
	return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

} // namespace

extern "C" {

int beluga_kv_xfer_check(const beluga_kv_xfer *x)
{
	if (!x || beluga_kv_paged_check(x->paged) || x->flags)
		return -EINVAL;
	if (x->dir != BELUGA_KV_GATHER && x->dir != BELUGA_KV_SCATTER)
		return -EINVAL;
	if (x->layer_begin >= x->layer_end || x->layer_end > x->paged->shape.num_layers)
		return -EINVAL;
	if (x->nrefs && !x->refs)
		return -EINVAL;
	for (size_t i = 0; i < x->nrefs; i++)
		if (x->refs[i].paged_block >= x->paged->num_blocks || !x->refs[i].pool)
			return -EINVAL;
	try {
		return writes_overlap(*x) ? -EINVAL : 0;
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
}

} // extern "C"
