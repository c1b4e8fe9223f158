// SPDX-License-Identifier: Apache-2.0
// See fingerprint.hpp.  The block geometry comes from beluga/kv_layout.h
// (libbeluga/xfer), so the store and the data path agree on it.
#include "fingerprint.hpp"

#include "error.hpp"

#include <beluga/kv_layout.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>

namespace bkv {
namespace {

bool terminated(const char *s, size_t n) { return std::memchr(s, 0, n) != nullptr; }

const char *dtype_name(uint32_t d)
{
	switch (d) {
	case BELUGA_KV_FP16: return "fp16";
	case BELUGA_KV_BF16: return "bf16";
	case BELUGA_KV_FP8_E4M3: return "fp8_e4m3";
	case BELUGA_KV_FP8_E5M2: return "fp8_e5m2";
	case BELUGA_KV_FP32: return "fp32";
	default: return "unknown";
	}
}

int mismatch_str(const char *field, const char *cache, const char *mine)
{
	return fail(-BELUGA_KVC_EFINGERPRINT,
		    "fingerprint mismatch: %s is \"%s\" in the cache but \"%s\" in this instance",
		    field, cache, mine);
}

int mismatch_num(const char *field, uint64_t cache, uint64_t mine)
{
	return fail(-BELUGA_KVC_EFINGERPRINT,
		    "fingerprint mismatch: %s is %" PRIu64 " in the cache but %" PRIu64
		    " in this instance", field, cache, mine);
}

} // namespace

int fingerprint_normalize(const beluga_kvc_fingerprint &in, beluga_kvc_fingerprint &out)
{
	if (!terminated(in.model_id, sizeof(in.model_id)) ||
	    !terminated(in.hash_fn, sizeof(in.hash_fn)) ||
	    !terminated(in.hash_seed, sizeof(in.hash_seed)))
		return fail(-EINVAL, "fingerprint: model_id, hash_fn and hash_seed must be "
				     "NUL-terminated");
	out = in;
	// Bytes after the terminator must not make equal fingerprints differ.
	size_t n = std::strlen(in.model_id);
	std::memset(out.model_id + n, 0, sizeof(out.model_id) - n);
	n = std::strlen(in.hash_fn);
	std::memset(out.hash_fn + n, 0, sizeof(out.hash_fn) - n);
	n = std::strlen(in.hash_seed);
	std::memset(out.hash_seed + n, 0, sizeof(out.hash_seed) - n);
	if (!out.tp_size)
		out.tp_size = 1;
	if (out.tp_rank >= out.tp_size)
		return fail(-EINVAL, "fingerprint: tp_rank %u is not below tp_size %u", out.tp_rank,
			    out.tp_size);
	if (in.reserved0 || in.shape.reserved)
		return fail(-EINVAL, "fingerprint: reserved fields must be 0");
	for (uint64_t r : in.reserved)
		if (r)
			return fail(-EINVAL, "fingerprint: reserved fields must be 0");
	if (in.layout == BELUGA_KVC_LAYOUT_KV_BLOCK) {
		if (beluga_kv_shape_check(&in.shape))
			return fail(-EINVAL, "fingerprint: the KV block shape is invalid (layers "
					     "1..%u, non-zero sizes, known dtype)",
				    BELUGA_KV_MAX_LAYERS);
		uint64_t bytes = beluga_kv_block_bytes(&in.shape);
		if (in.payload_bytes && in.payload_bytes != bytes)
			return fail(-EINVAL, "fingerprint: payload_bytes %" PRIu64 " differs from "
					     "the shape's block size %" PRIu64 " (use 0)",
				    in.payload_bytes, bytes);
		out.payload_bytes = bytes;
	} else if (in.layout == BELUGA_KVC_LAYOUT_OPAQUE) {
		if (!in.payload_bytes)
			return fail(-EINVAL, "fingerprint: an opaque layout needs payload_bytes");
	} else {
		return fail(-EINVAL, "fingerprint: unknown layout %u", in.layout);
	}
	if (out.payload_bytes > 0xffffffffull)
		return fail(-EINVAL, "fingerprint: payload_bytes %" PRIu64 " is 4 GiB or more",
			    out.payload_bytes);
	return 0;
}

int fingerprint_compare(const beluga_kvc_fingerprint &c, const beluga_kvc_fingerprint &m)
{
	if (std::strcmp(c.model_id, m.model_id))
		return mismatch_str("model_id", c.model_id, m.model_id);
	if (c.shape.dtype != m.shape.dtype)
		return mismatch_str("dtype", dtype_name(c.shape.dtype), dtype_name(m.shape.dtype));
	if (c.shape.num_layers != m.shape.num_layers)
		return mismatch_num("num_layers", c.shape.num_layers, m.shape.num_layers);
	if (c.shape.num_kv_heads != m.shape.num_kv_heads)
		return mismatch_num("num_kv_heads", c.shape.num_kv_heads, m.shape.num_kv_heads);
	if (c.shape.head_size != m.shape.head_size)
		return mismatch_num("head_size", c.shape.head_size, m.shape.head_size);
	if (c.shape.block_size != m.shape.block_size)
		return mismatch_num("block_size", c.shape.block_size, m.shape.block_size);
	if (c.tp_rank != m.tp_rank)
		return mismatch_num("tp_rank", c.tp_rank, m.tp_rank);
	if (c.tp_size != m.tp_size)
		return mismatch_num("tp_size", c.tp_size, m.tp_size);
	if (c.layout != m.layout)
		return mismatch_num("layout", c.layout, m.layout);
	if (std::strcmp(c.hash_fn, m.hash_fn))
		return mismatch_str("hash_fn", c.hash_fn, m.hash_fn);
	if (std::strcmp(c.hash_seed, m.hash_seed))
		return mismatch_str("hash_seed", c.hash_seed, m.hash_seed);
	if (c.payload_bytes != m.payload_bytes)
		return mismatch_num("payload_bytes", c.payload_bytes, m.payload_bytes);
	return 0;
}

} // namespace bkv
