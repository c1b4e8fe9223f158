// SPDX-License-Identifier: Apache-2.0
// The CPU primitives (libbeluga/cpu) leave nothing in this host's caches:
// for every alignment of the destination's head and tail, every byte that
// bcpu_copy_nt() writes is either written with non-temporal stores or
// written with ordinary stores whose line is written back afterwards, and a
// store fence follows the last of them.  Checked on the trace of the
// instrumented build (beluga_cpu_traced), and the checker is shown to catch
// a copy that leaves a line behind.
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
		ASSERT_TRUE(bcpu_set_trace(record, nullptr)) << "not the BCPU_TRACE build";
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
