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
	return beluga::cpu::f64_final(s.a, s.b, len);
}

} // namespace bkv
