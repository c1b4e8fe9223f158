// SPDX-License-Identifier: Apache-2.0
// The reference data path: one element at a time, addresses computed straight
// from the definitions in beluga/kv_layout.h and nothing else, so that it can
// serve as the oracle for the fast paths.  Deliberately naive: no merging of
// runs, no threads, no vector stores.
#include <beluga/xfer.h>

namespace {

void copy_elem(unsigned char *dst, const unsigned char *src, size_t esize)
{
	for (size_t i = 0; i < esize; i++)
		dst[i] = src[i];
}

void ref_block(const beluga_kv_xfer &x, const beluga_kv_block_ref &ref)
{
	const beluga_kv_paged &p = *x.paged;
	const beluga_kv_shape &s = p.shape;
	const size_t esize = beluga_kv_dtype_size(s.dtype);
	auto *pool = static_cast<unsigned char *>(ref.pool);
	for (uint32_t l = x.layer_begin; l < x.layer_end; l++) {
		auto *base = static_cast<unsigned char *>(p.layer_base[l]);
		for (uint32_t k = 0; k < 2; k++)
			for (uint32_t t = 0; t < s.block_size; t++)
				for (uint32_t h = 0; h < s.num_kv_heads; h++)
					for (uint32_t d = 0; d < s.head_size; d++) {
						const int64_t e = beluga_kv_paged_elem_offset(&p, ref.paged_block, k, t, h) + d;
						unsigned char *paged = base + e * int64_t(esize);
						unsigned char *pooled = pool + beluga_kv_elem_offset(&s, l, k, t, h, d);
						if (x.dir == BELUGA_KV_GATHER)
							copy_elem(pooled, paged, esize);
						else
							copy_elem(paged, pooled, esize);
					}
	}
}

} // namespace

extern "C" int beluga_kv_ref_copy(const beluga_kv_xfer *x)
{
	if (int rc = beluga_kv_xfer_check(x))
		return rc;
	for (size_t i = 0; i < x->nrefs; i++)
		ref_block(*x, x->refs[i]);
	return 0;
}
