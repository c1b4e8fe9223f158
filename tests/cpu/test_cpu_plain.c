// SPDX-License-Identifier: Apache-2.0
/*
 * The CPU-primitives library (beluga_cpu), linked from C with no trace hook
 * installed, detects a sane cache line and copies (with and without the
 * checksum lanes) correctly through every path.
 */
#include <beluga/cpu.h>

#include <stdio.h>
#include <string.h>

static unsigned char src[8192 + 64], dst[8192 + 128];

int main(void)
{
	const struct bcpu_features *f = bcpu_features();
	int bad = 0;

	if (f->line < 32 || f->line > 256 || (f->line & (f->line - 1))) {
		fprintf(stderr, "cache line %u bytes\n", f->line);
		bad = 1;
	}
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 29 + 1);
	for (size_t off = 0; off < 64; off += 5)
		for (size_t len = 0; len < 8192; len = len * 3 + 1) {
			memset(dst, 0, sizeof(dst));
			bcpu_copy_nt(dst + off, src + 1, len);
			if (memcmp(dst + off, src + 1, len)) {
				fprintf(stderr, "copy offset %zu length %zu differs\n", off, len);
				bad = 1;
			}
			struct bcpu_sum a = {0}, b = {0};

			memset(dst, 0, sizeof(dst));
			bcpu_copy_nt_sum(dst + off, src + 1, len, &a);
			bcpu_sum_update(&b, src + 1, len);
			if (memcmp(dst + off, src + 1, len) || memcmp(&a, &b, sizeof(a))) {
				fprintf(stderr, "copy+sum offset %zu length %zu differs\n", off, len);
				bad = 1;
			}
		}
	printf("flush %s, copy %s, line %u: %s\n", bcpu_flush_method(), bcpu_copy_method(),
	       f->line, bad ? "FAIL" : "PASS");
	return bad;
}
