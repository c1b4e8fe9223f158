// SPDX-License-Identifier: Apache-2.0
// The CPU primitives (libbeluga/cpu) leave nothing in this host's caches:
// for every alignment of the destination's head and tail, every byte that
// bcpu_copy_nt() or bcpu_copy_nt_sum() writes is either written with
// non-temporal stores or written with ordinary stores whose line is written
// back afterwards, and a store fence follows the last of them.  Checked on
// the library's trace (bcpu_set_trace), and the checker is shown to catch a
// copy that leaves a line behind.  The fused copy's checksum lanes equal a
// scalar reference written here from the definition in cpu.h.
#include <beluga/cpu.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Event {
	bcpu_event ev;
	uintptr_t p;
	size_t len;
};

std::vector<Event> g_events;

void record(bcpu_event ev, const void *p, size_t len, void *)
{
	g_events.push_back({ev, reinterpret_cast<uintptr_t>(p), len});
}

// "" when the events prove that every byte of [d, d+len) reached memory and
// that nothing outside the destination's lines was stored to; else what is
// wrong.
std::string check_reaches_memory(const std::vector<Event> &evs, uintptr_t d, size_t len)
{
	// 0 untouched, 1 stored and still in the cache, 2 on its way to memory.
	std::vector<int> st(len, 0);
	bool unfenced = false;
	for (const Event &e : evs) {
		switch (e.ev) {
		case BCPU_EV_STORE:
		case BCPU_EV_NTSTORE:
			if (e.p < d || e.p + e.len > d + len)
				return "a store outside the destination";
			if (e.ev == BCPU_EV_NTSTORE && (e.p % 64 || e.len % 64))
				return "non-temporal stores to a partial line";
			for (size_t i = 0; i < e.len; i++)
				st[e.p - d + i] = e.ev == BCPU_EV_NTSTORE ? 2 : 1;
			unfenced = true;
			break;
		case BCPU_EV_WRITEBACK:
		case BCPU_EV_FLUSH: {
			uintptr_t lo = e.p & ~uintptr_t(63), hi = e.p + e.len;
			for (uintptr_t a = std::max(lo, d); a < std::min(hi, d + len); a++)
				if (st[a - d] == 1)
					st[a - d] = 2;
			unfenced = true;
			break;
		}
		case BCPU_EV_FENCE:
			unfenced = false;
			break;
		}
	}
	for (size_t i = 0; i < len; i++)
		if (st[i] != 2)
			return "byte " + std::to_string(i) + (st[i] ? " left in the cache" : " never written");
	if (unfenced)
		return "no store fence after the last store or write-back";
	return "";
}

class Traced : public ::testing::Test {
protected:
	void SetUp() override
	{
		g_events.clear();
		bcpu_set_trace(record, nullptr);
	}
	void TearDown() override { bcpu_set_trace(nullptr, nullptr); }
};

TEST_F(Traced, CopyNtEveryHeadAndTailAlignment)
{
	std::printf("bcpu_copy_nt uses %s stores; write-back %s\n", bcpu_copy_method(),
		    bcpu_flush_method());
	std::vector<size_t> lens;
	for (size_t n = 0; n <= 200; n++)
		lens.push_back(n);
	for (size_t n : {255, 256, 257, 1000, 4096 + 13, 65536 + 7})
		lens.push_back(n);
	alignas(64) static unsigned char dst[70000 + 256], src[70000 + 256];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = static_cast<unsigned char>(i * 131 + 7);
	for (size_t off = 0; off < 64; off++) {
		for (size_t len : lens) {
			std::memset(dst, 0xee, sizeof(dst));
			g_events.clear();
			bcpu_copy_nt(dst + 64 + off, src + 3, len);
			auto d = reinterpret_cast<uintptr_t>(dst + 64 + off);
			ASSERT_EQ(check_reaches_memory(g_events, d, len), "")
				<< "offset " << off << " length " << len;
			ASSERT_EQ(std::memcmp(dst + 64 + off, src + 3, len), 0)
				<< "offset " << off << " length " << len;
			for (size_t i = 0; i < 64 + off; i++)
				ASSERT_EQ(dst[i], 0xee) << "before the destination, offset " << off;
			for (size_t i = 64 + off + len; i < sizeof(dst); i++)
				ASSERT_EQ(dst[i], 0xee) << "after the destination, length " << len;
		}
	}
}

// The lane sums as cpu.h defines them, one byte at a time: 32-byte groups of
// four little-endian words, the last group zero-padded.
bcpu_sum reference_sum(const unsigned char *p, size_t len)
{
	bcpu_sum s{};
	for (size_t g = 0; g < (len + 31) / 32; g++) {
		for (int j = 0; j < 4; j++) {
			uint64_t w = 0;
			for (int k = 7; k >= 0; k--) {
				size_t i = g * 32 + size_t(j) * 8 + size_t(k);
				w = w << 8 | (i < len ? p[i] : 0);
			}
			s.a[j] += w;
			s.b[j] += s.a[j];
		}
		s.groups++;
	}
	return s;
}

::testing::AssertionResult same_sum(const bcpu_sum &x, const bcpu_sum &y)
{
	if (!std::memcmp(&x, &y, sizeof(x)))
		return ::testing::AssertionSuccess();
	return ::testing::AssertionFailure() << "lane sums differ (groups " << x.groups << " vs "
					     << y.groups << ")";
}

TEST_F(Traced, CopyNtSumEveryHeadAndTailAlignment)
{
	// Every destination offset in a line, with lengths giving every tail
	// 0-63 after 0, 1, 2, 3, 4 and 33 whole lines; the source misaligned too.
	std::vector<size_t> lens;
	for (size_t lines : {0, 1, 2, 3, 4, 33})
		for (size_t t = 0; t < 64; t++)
			lens.push_back(lines * 64 + t);
	lens.push_back(65536 + 7);
	alignas(64) static unsigned char dst[70000 + 256], src[70000 + 256];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = static_cast<unsigned char>(i * 131 + 7);
	for (size_t soff : {0, 3}) {
		for (size_t off = 0; off < 64; off++) {
			for (size_t len : lens) {
				size_t used = 64 + off + len + 128; // guard lines either side
				std::memset(dst, 0xee, used);
				g_events.clear();
				bcpu_sum s{};
				bcpu_copy_nt_sum(dst + 64 + off, src + soff, len, &s);
				auto d = reinterpret_cast<uintptr_t>(dst + 64 + off);
				std::string where = "offset " + std::to_string(off) + " length " +
						    std::to_string(len) + " source +" +
						    std::to_string(soff);
				ASSERT_EQ(check_reaches_memory(g_events, d, len), "") << where;
				ASSERT_EQ(std::memcmp(dst + 64 + off, src + soff, len), 0) << where;
				ASSERT_TRUE(same_sum(s, reference_sum(src + soff, len))) << where;
				for (size_t i = 0; i < 64 + off; i++)
					ASSERT_EQ(dst[i], 0xee) << "before the destination, " << where;
				for (size_t i = 64 + off + len; i < used; i++)
					ASSERT_EQ(dst[i], 0xee) << "after the destination, " << where;
			}
		}
	}
}

TEST_F(Traced, SumAndCopySumMatchTheReference)
{
	alignas(64) static unsigned char dst[4096 + 128], src[4096 + 128];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = static_cast<unsigned char>(i * 7 + 1);
	for (size_t off = 0; off < 64; off += 3)
		for (size_t len = 0; len <= 4096; len = len < 130 ? len + 1 : len * 2 + 17) {
			bcpu_sum a{}, b{};
			bcpu_sum_update(&a, src + off, len);
			ASSERT_TRUE(same_sum(a, reference_sum(src + off, len))) << off << " " << len;
			g_events.clear();
			bcpu_copy_sum(dst + off, src + off, len, &b);
			ASSERT_TRUE(same_sum(b, a)) << off << " " << len;
			ASSERT_EQ(std::memcmp(dst + off, src + off, len), 0);
			if (len) {
				ASSERT_EQ(g_events.size(), 1u) << "ordinary stores only";
				EXPECT_EQ(g_events[0].ev, BCPU_EV_STORE);
			}
			// Pieces of whole groups continue the sum.
			bcpu_sum c{};
			size_t cut = len / 64 * 32;
			bcpu_copy_nt_sum(dst + 64, src + off, cut, &c);
			bcpu_copy_nt_sum(dst + 64 + cut, src + off + cut, len - cut, &c);
			ASSERT_TRUE(same_sum(c, a)) << "in two pieces, " << off << " " << len;
		}
}

TEST_F(Traced, WritebackCoversPartialLines)
{
	alignas(64) static unsigned char buf[512];
	for (size_t off = 0; off < 64; off += 7) {
		g_events.clear();
		bcpu_writeback(buf + off, 130);
		ASSERT_EQ(g_events.size(), 2u);
		EXPECT_EQ(g_events[0].ev, BCPU_EV_WRITEBACK);
		EXPECT_EQ(g_events[0].p, reinterpret_cast<uintptr_t>(buf));
		EXPECT_GE(g_events[0].p + g_events[0].len, reinterpret_cast<uintptr_t>(buf + off + 130));
		EXPECT_EQ(g_events[1].ev, BCPU_EV_FENCE);
	}
	g_events.clear();
	bcpu_flush(buf, 0);
	EXPECT_TRUE(g_events.empty()) << "an empty range touches no line";
}

// The checker catches what a broken copy would do.
TEST(Checker, CatchesALineLeftInTheCache)
{
	uintptr_t d = 0x10000 + 5;
	size_t len = 200;
	uintptr_t body = (d + 63) & ~uintptr_t(63);
	size_t head = body - d, lines = (len - head) / 64, tail = len - head - lines * 64;
	std::vector<Event> good = {
		{BCPU_EV_STORE, d, head},
		{BCPU_EV_WRITEBACK, d, head},
		{BCPU_EV_NTSTORE, body, lines * 64},
		{BCPU_EV_STORE, body + lines * 64, tail},
		{BCPU_EV_WRITEBACK, body + lines * 64, tail},
		{BCPU_EV_FENCE, 0, 0},
	};
	EXPECT_EQ(check_reaches_memory(good, d, len), "");
	auto no_tail_wb = good;
	no_tail_wb.erase(no_tail_wb.begin() + 4);
	EXPECT_NE(check_reaches_memory(no_tail_wb, d, len), "");
	auto no_fence = good;
	no_fence.pop_back();
	EXPECT_NE(check_reaches_memory(no_fence, d, len), "");
	auto wb_before_store = good;
	std::swap(wb_before_store[0], wb_before_store[1]);
	EXPECT_NE(check_reaches_memory(wb_before_store, d, len), "");
	auto nt_partial = good;
	nt_partial[2] = {BCPU_EV_NTSTORE, d, len};
	EXPECT_NE(check_reaches_memory(nt_partial, d, len), "");
}

} // namespace
