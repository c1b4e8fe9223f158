// SPDX-License-Identifier: Apache-2.0
// BKV-F64: combining the lanes of pieces and finalising them.  The lane
// sums themselves (and the fused copies) are in libbeluga/cpu; the tests
// check the whole against the definition in kvcache-format.md.
#include "checksum.hpp"

namespace bkv {

void f64_combine(F64 &s, const F64 &next)
{
	for (int j = 0; j < 4; j++) {
		s.b[j] += next.b[j] + s.a[j] * next.groups;
		s.a[j] += next.a[j];
	}
	s.groups += next.groups;
}

uint64_t f64_final(const F64 &s, uint64_t len)
{
	constexpr uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t h = len ^ 0x42454c5547414b56ull;
	const uint64_t v[8] = {s.a[0], s.a[1], s.a[2], s.a[3], s.b[0], s.b[1], s.b[2], s.b[3]};
	for (uint64_t x : v) {
		h ^= x;
		h = (h << 27 | h >> 37) * k;
	}
	return fmix64(h);
}

} // namespace bkv
