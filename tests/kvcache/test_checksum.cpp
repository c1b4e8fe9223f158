// SPDX-License-Identifier: Apache-2.0
// BKV-F64: the library's vector loops against the definition in
// Documentation/kvcache-format.md, written out plainly here.
#include <beluga/kvcache.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

uint64_t reference(const uint8_t *p, size_t len)
{
	uint64_t a[4] = {}, b[4] = {};
	std::vector<uint8_t> buf(p, p + len);
	buf.resize((len + 31) / 32 * 32, 0);
	for (size_t g = 0; g < buf.size(); g += 32)
		for (int j = 0; j < 4; j++) {
			uint64_t w;
			std::memcpy(&w, buf.data() + g + 8 * j, 8);
			a[j] += w;
			b[j] += a[j];
		}
	uint64_t h = len ^ 0x42454c5547414b56ull;
	const uint64_t v[8] = {a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]};
	for (uint64_t x : v) {
		h ^= x;
		h = (h << 27 | h >> 37) * 0x9e3779b97f4a7c15ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

TEST(Checksum, MatchesDefinition)
{
	std::vector<uint8_t> data(70100);
	for (size_t i = 0; i < data.size(); i++)
		data[i] = uint8_t(i * 131 + (i >> 8));
	for (size_t len : {0, 1, 7, 31, 32, 33, 64, 100, 4096, 65536, 69999})
		for (size_t off : {0, 1, 13})
			EXPECT_EQ(beluga_kvc_checksum(data.data() + off, len),
				  reference(data.data() + off, len))
				<< "len " << len << " off " << off;
}

TEST(Checksum, Vectors)
{
	// Documented in kvcache-format.md: bytes i & 0xff for i in 0..len-1.
	std::vector<uint8_t> d(1000);
	for (size_t i = 0; i < d.size(); i++)
		d[i] = uint8_t(i);
	EXPECT_EQ(beluga_kvc_checksum(d.data(), 0), reference(d.data(), 0));
	EXPECT_EQ(beluga_kvc_checksum(nullptr, 0), reference(d.data(), 0));
	EXPECT_EQ(beluga_kvc_checksum(d.data(), 0), 0xe20cd9a04c3e3c37ull);
	EXPECT_EQ(beluga_kvc_checksum(d.data(), 1000), 0x0e580d5039ea8ef6ull);
	EXPECT_EQ(beluga_kvc_checksum(d.data(), 1000), reference(d.data(), 1000));
}

TEST(Checksum, DetectsSwapsAndStaleLines)
{
	std::vector<uint8_t> d(4096);
	for (size_t i = 0; i < d.size(); i++)
		d[i] = uint8_t(i * 7);
	uint64_t base = beluga_kvc_checksum(d.data(), d.size());
	auto e = d;
	std::swap_ranges(e.begin(), e.begin() + 64, e.begin() + 64); // two lines swapped
	EXPECT_NE(beluga_kvc_checksum(e.data(), e.size()), base);
	e = d;
	std::memset(e.data() + 1024, 0, 64); // one stale (zero) line
	EXPECT_NE(beluga_kvc_checksum(e.data(), e.size()), base);
	EXPECT_NE(beluga_kvc_checksum(d.data(), d.size() - 1), base);
}

} // namespace
