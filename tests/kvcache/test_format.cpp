// SPDX-License-Identifier: Apache-2.0
// Formatting and attaching: geometry, every argument and header error, and
// the fingerprint check that names the differing field.
#include "kvc_util.hpp"

#include "kvcache_test.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace {

using namespace kvt;

constexpr size_t kRegion = 8 << 20;

std::string err() { return beluga_kvc_last_error(); }

beluga_kvc_fingerprint kv_fp()
{
	beluga_kvc_fingerprint fp = opaque_fp(0, "meta-llama/Llama-3.1-8B");
	fp.layout = BELUGA_KVC_LAYOUT_KV_BLOCK;
	fp.shape = {4, 16, 2, 64, BELUGA_KV_BF16, 0}; // 4 layers, 16 tokens, 2 heads, 64 dims
	return fp;
}

TEST(Format, GeometryFromShape)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(kv_fp(), 2);
	ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0) << err();
	beluga_kvc *kv = nullptr;
	beluga_kvc_fingerprint fp = kv_fp();
	auto o = opts(1, BELUGA_KVC_SIMULATE);
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &fp, &o, &kv), 0) << err();
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(kv, &info), 0);
	EXPECT_EQ(info.payload_bytes, beluga_kv_block_bytes(&fp.shape));
	EXPECT_EQ(info.payload_bytes, 4u * 2 * 16 * 2 * 64 * 2);
	EXPECT_EQ(info.fingerprint.payload_bytes, info.payload_bytes);
	EXPECT_EQ(info.slot_stride % 4096, 0u);
	EXPECT_EQ(info.max_hosts, 2u);
	EXPECT_EQ(info.host_id, 1u);
	EXPECT_EQ(info.coherence, uint32_t(BELUGA_KVC_SIMULATE));
	EXPECT_GT(info.slots_per_host, 10u);
	EXPECT_LE(2 * info.slots_per_host * info.slot_stride, kRegion);
	EXPECT_EQ(info.capacity_slots, info.slots_per_host);
	EXPECT_EQ(info.high_watermark_pct, 95u);
	EXPECT_EQ(info.low_watermark_pct, 85u);
	EXPECT_EQ(info.format_major, 3u);
	EXPECT_EQ(info.format_minor, 0u);
	EXPECT_EQ(beluga_kvc_get_info(kv, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_info(nullptr, &info), -EINVAL);
	beluga_kvc_detach(kv);
	beluga_kvc_detach(nullptr);
}

TEST(Format, AutoCoherenceFollowsHostCount)
{
	for (uint32_t hosts : {1u, 3u}) {
		ShmRegion r(kRegion);
		beluga_kvc_config c = config(opaque_fp(4096), hosts);
		ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0);
		beluga_kvc *kv;
		auto o = opts(0, BELUGA_KVC_AUTO);
		ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv), 0);
		beluga_kvc_info info;
		beluga_kvc_get_info(kv, &info);
		EXPECT_EQ(info.coherence, uint32_t(hosts == 1 ? BELUGA_KVC_COHERENT
							      : BELUGA_KVC_NONCOHERENT));
		beluga_kvc_detach(kv);
	}
}

TEST(Format, Errors)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(4096));
	EXPECT_EQ(beluga_kvc_format(nullptr, kRegion, &c), -EINVAL);
	EXPECT_EQ(beluga_kvc_format(r.base(), kRegion, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_format(r.bytes() + 64, kRegion - 4096, &c), -EINVAL);
	EXPECT_NE(err().find("aligned"), std::string::npos);
	beluga_kvc_config bad = c;
	bad.size = 1;
	EXPECT_EQ(beluga_kvc_format(r.base(), kRegion, &bad), -EINVAL);
	for (int field = 0; field < 11; field++) {
		bad = c;
		switch (field) {
		case 7: bad.low_watermark_pct = 0; break;
		case 8: bad.eviction = BELUGA_KVC_EVICT_LRU + 1; break;
		case 9: bad.reserved0 = 1; break;
		case 10: bad.capacity_blocks = ~0ull; break;
		case 0: bad.max_hosts = 0; break;
		case 1: bad.max_hosts = BELUGA_KVC_MAX_HOSTS + 1; break;
		case 2: bad.max_sessions = 0; break;
		case 3: bad.max_pins = 0; break;
		case 4: bad.max_batch = 0; break;
		case 5: bad.low_watermark_pct = 99; break;
		case 6: bad.reserved[0] = 1; break;
		}
		EXPECT_EQ(beluga_kvc_format(r.base(), kRegion, &bad), -EINVAL) << field;
	}
	// Fingerprints that cannot be valid.
	for (int field = 0; field < 8; field++) {
		bad = c;
		beluga_kvc_fingerprint &f = bad.fingerprint;
		switch (field) {
		case 0: std::memset(f.model_id, 'x', sizeof(f.model_id)); break;
		case 1: f.tp_rank = 1; break;
		case 2: f.reserved[2] = 1; break;
		case 3: f.layout = 7; break;
		case 4: f.payload_bytes = 0; break; // opaque needs a size
		case 5: f = kv_fp(); f.shape.num_layers = 0; break;
		case 6: f = kv_fp(); f.payload_bytes = 12345; break;
		case 7: f.payload_bytes = 2ull << 40; break;
		}
		EXPECT_EQ(beluga_kvc_format(r.base(), kRegion, &bad), -EINVAL) << field;
		EXPECT_STRNE(beluga_kvc_last_error(), "");
	}
	// Too small for one block per host.
	c.fingerprint.payload_bytes = 7 << 20;
	EXPECT_EQ(beluga_kvc_format(r.base(), kRegion, &c), -ENOSPC);
	c.fingerprint.payload_bytes = 4096;
	EXPECT_EQ(beluga_kvc_format(r.base(), 8192, &c), -ENOSPC);
}

class Attach : public ::testing::Test {
protected:
	void SetUp() override
	{
		c_ = config(kv_fp(), 2);
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &c_), 0) << err();
	}
	int attach(const beluga_kvc_fingerprint &fp, uint32_t host = 0, size_t size = kRegion)
	{
		auto o = opts(host, BELUGA_KVC_COHERENT);
		beluga_kvc *kv = nullptr;
		int rc = beluga_kvc_attach(r_.base(), size, &fp, &o, &kv);
		beluga_kvc_detach(kv);
		return rc;
	}
	ShmRegion r_{kRegion};
	beluga_kvc_config c_;
};

TEST_F(Attach, FingerprintMismatchNamesTheField)
{
	struct Case {
		const char *field;
		void (*change)(beluga_kvc_fingerprint &);
	} cases[] = {
		{"model_id", [](beluga_kvc_fingerprint &f) { std::strcpy(f.model_id, "other"); }},
		{"dtype", [](beluga_kvc_fingerprint &f) { f.shape.dtype = BELUGA_KV_FP16; }},
		{"num_layers", [](beluga_kvc_fingerprint &f) { f.shape.num_layers = 8; }},
		{"num_kv_heads", [](beluga_kvc_fingerprint &f) { f.shape.num_kv_heads = 4; }},
		{"head_size", [](beluga_kvc_fingerprint &f) { f.shape.head_size = 128; }},
		{"block_size", [](beluga_kvc_fingerprint &f) { f.shape.block_size = 32; }},
		{"tp_rank", [](beluga_kvc_fingerprint &f) { f.tp_size = 2; f.tp_rank = 1; }},
		{"tp_size", [](beluga_kvc_fingerprint &f) { f.tp_size = 2; }},
		{"layout", [](beluga_kvc_fingerprint &f) {
			 f.layout = BELUGA_KVC_LAYOUT_OPAQUE;
			 f.payload_bytes = beluga_kv_block_bytes(&f.shape);
		 }},
		{"hash_fn", [](beluga_kvc_fingerprint &f) { std::strcpy(f.hash_fn, "sha256"); }},
		{"hash_seed", [](beluga_kvc_fingerprint &f) { std::strcpy(f.hash_seed, "42"); }},
	};
	for (const Case &k : cases) {
		beluga_kvc_fingerprint fp = kv_fp();
		k.change(fp);
		EXPECT_EQ(attach(fp), -BELUGA_KVC_EFINGERPRINT) << k.field;
		std::string msg = err();
		EXPECT_NE(msg.find(std::string(k.field) + " is"), std::string::npos) << msg;
	}
	// Same fingerprint, garbage after a terminator: still equal.
	beluga_kvc_fingerprint fp = kv_fp();
	fp.model_id[sizeof(fp.model_id) - 1] = 'z';
	fp.model_id[sizeof(fp.model_id) - 2] = 0;
	EXPECT_EQ(attach(fp), 0) << err();
	EXPECT_NE(std::string(beluga_kvc_strerror(-BELUGA_KVC_EFINGERPRINT)).find("fingerprint"),
		  std::string::npos);
}

TEST_F(Attach, Errors)
{
	beluga_kvc_fingerprint fp = kv_fp();
	beluga_kvc *kv;
	auto o = opts(0, BELUGA_KVC_COHERENT);
	EXPECT_EQ(beluga_kvc_attach(nullptr, kRegion, &fp, &o, &kv), -EINVAL);
	EXPECT_EQ(beluga_kvc_attach(r_.base(), kRegion, nullptr, &o, &kv), -EINVAL);
	EXPECT_EQ(beluga_kvc_attach(r_.base(), kRegion, &fp, &o, nullptr), -EINVAL);
	EXPECT_EQ(attach(fp, 2), -EINVAL); // two hosts: 0 and 1
	EXPECT_NE(err().find("host_id"), std::string::npos);
	auto bad = o;
	bad.size = 3;
	EXPECT_EQ(beluga_kvc_attach(r_.base(), kRegion, &fp, &bad, &kv), -EINVAL);
	bad = o;
	bad.coherence = 9;
	EXPECT_EQ(beluga_kvc_attach(r_.base(), kRegion, &fp, &bad, &kv), -EINVAL);
	bad = o;
	bad.reserved[1] = 1;
	EXPECT_EQ(beluga_kvc_attach(r_.base(), kRegion, &fp, &bad, &kv), -EINVAL);
	EXPECT_EQ(attach(fp, 0, kRegion - 4096), -BELUGA_KVC_EFORMAT); // not the size it was made for
	EXPECT_EQ(attach(fp, 0, 4096), -BELUGA_KVC_EFORMAT);
	// A damaged header, a future version, a half-formatted region, no cache.
	r_.bytes()[300] ^= 1;
	EXPECT_EQ(attach(fp), -BELUGA_KVC_EFORMAT);
	EXPECT_NE(err().find("checksum"), std::string::npos);
	r_.bytes()[300] ^= 1;
	// Another major, newer or older (a 2.x cache before the index of 3.0):
	// refused, saying what to do.
	uint32_t *major = reinterpret_cast<uint32_t *>(r_.bytes() + 8);
	for (uint32_t m : {BELUGA_KVC_FORMAT_MAJOR + 1, BELUGA_KVC_FORMAT_MAJOR - 1}) {
		*major = m;
		EXPECT_EQ(attach(fp), -BELUGA_KVC_EVERSION) << m;
		EXPECT_NE(err().find("format it again"), std::string::npos) << err();
	}
	*major = BELUGA_KVC_FORMAT_MAJOR;
	uint64_t *ready = reinterpret_cast<uint64_t *>(r_.bytes() + 4096);
	uint64_t saved = *ready;
	*ready = 0;
	EXPECT_EQ(attach(fp), -BELUGA_KVC_ENOTREADY);
	*ready = saved;
	EXPECT_EQ(attach(fp), 0);
	r_.bytes()[0] = 'X';
	EXPECT_EQ(attach(fp), -BELUGA_KVC_EFORMAT);
	for (int e : {BELUGA_KVC_EFORMAT, BELUGA_KVC_EVERSION, BELUGA_KVC_ENOTREADY, ENOENT})
		EXPECT_STRNE(beluga_kvc_strerror(-e), "");
}

TEST_F(Attach, SessionsRunOut)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(4096));
	c.max_sessions = 2;
	ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0);
	beluga_kvc *a, *b, *d = nullptr;
	auto o = opts(0, BELUGA_KVC_COHERENT);
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &a), 0);
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &b), 0);
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &d), -EBUSY);
	EXPECT_NE(err().find("sessions"), std::string::npos);
	beluga_kvc_detach(a);
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &d), 0);
	beluga_kvc_stats s;
	ASSERT_EQ(beluga_kvc_get_stats(d, -1, &s), 0);
	EXPECT_EQ(s.sessions_opened, 3u);
	beluga_kvc_detach(b);
	beluga_kvc_detach(d);
}

// Test vector of the host claim (format 2.0 on) (kvcache-format.md, "Host area"):
// the bytes a host with machine id 0x1111, boot id 0x2222 and name
// "vec-host" leaves when it claims host index 1 with a 1000 ms lease.
TEST(Format, HostClaimVector)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(4096), 2);
	ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0);
	auto u32 = [&](uint64_t off) { uint32_t v; std::memcpy(&v, r.bytes() + off, 4); return v; };
	auto u64 = [&](uint64_t off) { uint64_t v; std::memcpy(&v, r.bytes() + off, 8); return v; };
	EXPECT_EQ(u32(8), 3u);	    // version_major
	EXPECT_EQ(u32(12), 0u);	    // version_minor
	EXPECT_EQ(u64(136), 512u);  // session_off: sessions follow the claim and name lines
	uint64_t area = u64(80) + u64(88); // host_area_off + 1 * host_area_bytes
	for (uint64_t o = 384; o < 512; o += 8)
		EXPECT_EQ(u64(area + o), 0u) << o; // a fresh index is free
	bkv::test::set_mono(5000);
	bkv::test::set_identity(0x1111, 0x2222, "vec-host");
	auto o = opts(1, BELUGA_KVC_COHERENT);
	o.lease_ms = 1000;
	beluga_kvc *kv = nullptr;
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv), 0) << err();
	bkv::test::set_identity(0, 0, nullptr);
	EXPECT_EQ(u64(area + 384), 0x1111u); // machine
	EXPECT_EQ(u64(area + 392), 0x2222u); // boot
	EXPECT_EQ(u64(area + 400), 1u);	     // heartbeat: 0 + 1 at the claim
	EXPECT_EQ(u64(area + 408), 5000u);   // the holder's monotonic ms at it
	EXPECT_EQ(u32(area + 416), 1000u);   // lease_ms
	EXPECT_EQ(u32(area + 420), 0u);	     // served_by + 1: 0, itself
	EXPECT_NE(u64(area + 424), 0u);	     // claimed at (CLOCK_REALTIME ns)
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(r.bytes() + area + 448)), "vec-host");
	// The session's lease: a deadline on the holder's clock (ms), not the wall clock.
	uint64_t ses = area + 512;
	EXPECT_EQ(u64(ses + 32), 5000u + 1000u);
	bkv::test::beat(kv);
	EXPECT_EQ(u64(area + 400), 2u);
	beluga_kvc_detach(kv);
	bkv::test::set_mono(0);
	// The format lock of beluga_kvc_format_once: 1 << 63 | pid of the formatter.
	ShmRegion r2(kRegion);
	ASSERT_EQ(beluga_kvc_format_once(r2.base(), r2.size(), &c), 0);
	uint64_t lock;
	std::memcpy(&lock, r2.bytes() + 4104, 8);
	EXPECT_EQ(lock, 1ull << 63 | uint32_t(getpid()));
}

// The index entry and the summary of format 3.0 (kvcache-format.md, "Index"
// and "Summary"), computed here from the document's formulas: a put of host
// 1 places tag << 32 | slot + 1 in its key's home bucket with the check word
// beside it, and counts the key into the summary, with one flushed change
// of its word, its segment version and the generation; the removal empties
// the entry and counts the key out again; host 0's lookups then skip host 1.
TEST(Format, SummaryVector)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(4096), 2);
	c.eviction = BELUGA_KVC_EVICT_NONE;
	ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0);
	auto u64 = [&](uint64_t off) { uint64_t v; std::memcpy(&v, r.bytes() + off, 8); return v; };
	EXPECT_EQ(u64(192), u64(120) + (u64(48) * 64 + 4095) / 4096 * 4096); // summary_off after descs
	uint64_t words = u64(200);
	ASSERT_EQ(words % 4096, 0u);
	ASSERT_GE(words, u64(48)); // one per slot at least
	EXPECT_EQ(u64(128), u64(192) + (4160 + 8 * words + 4095) / 4096 * 4096); // data_off
	uint64_t sum = u64(96) + u64(104) + u64(192); // partition 1's summary
	auto fmix = [](uint64_t x) {
		x ^= x >> 33;
		x *= 0xff51afd7ed558ccdull;
		x ^= x >> 33;
		x *= 0xc4ceb9fe1a85ec53ull;
		return x ^ (x >> 33);
	};
	uint8_t key[1][32];
	kvt::make_key(42, key[0]);
	uint64_t k[4];
	std::memcpy(k, key[0], 32);
	uint64_t h = fmix(k[0] ^ fmix(k[1] ^ fmix(k[2] ^ fmix(k[3]))));
	uint64_t t = fmix(h ^ 0x5bd1e9955bd1e995ull); // check << 32 | tag
	uint64_t w = uint64_t((unsigned __int128)t * words >> 64);
	uint64_t want = 0;
	for (unsigned i : {unsigned(t & 15), unsigned(t >> 4 & 15), unsigned(t >> 8 & 15)})
		want |= 1ull << 4 * i;
	// The home bucket of partition 1's index: five entries, five check
	// words at 40, the control word at 60.
	auto u32 = [&](uint64_t off) { uint32_t v; std::memcpy(&v, r.bytes() + off, 4); return v; };
	uint64_t buckets = u64(56), slots = u64(48);
	EXPECT_EQ(buckets, (2 * slots + 4) / 5);
	EXPECT_EQ(u64(120), (buckets * 64 + 4095) / 4096 * 4096); // desc_off after the index
	uint64_t home = u64(96) + u64(104) + u64(112) + 64 * uint64_t((unsigned __int128)h * buckets >> 64);
	uint64_t seg = sum + 64 + 8 * (w / (words / 512));
	EXPECT_EQ(u64(sum), 0u);
	auto o1 = kvt::opts(1, BELUGA_KVC_COHERENT), o0 = kvt::opts(0, BELUGA_KVC_COHERENT);
	bkv::test::set_wait([](uint64_t) {});
	beluga_kvc *a = nullptr, *b = nullptr;
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o1, &b), 0) << err();
	ASSERT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o0, &a), 0) << err();
	bkv::test::set_wait(nullptr);
	std::vector<uint8_t> buf(4096, 7);
	beluga_kvc_put p{};
	std::memcpy(p.key, key[0], 32);
	p.data = buf.data();
	p.len = buf.size();
	int res;
	ASSERT_EQ(beluga_kvc_put_batch(b, &p, 1, &res), 1);
	int at = -1;
	for (int e = 0; e < 5; e++)
		if (u64(home + 8 * e) >> 32 == uint32_t(t))
			at = e;
	ASSERT_GE(at, 0) << "no entry with the key's tag in its home bucket";
	uint64_t ent = u64(home + 8 * at);
	EXPECT_LT((ent & 0xffffffff) - 1, slots);		// slot + 1
	EXPECT_EQ(u32(home + 40 + 4 * at), uint32_t(t >> 32)); // check word
	EXPECT_EQ(u32(home + 60), 0u);				// control: no overflow
	EXPECT_EQ(u64(sum + 4160 + 8 * w), want); // each of its counters at 1
	EXPECT_EQ(u64(seg), 1u);
	EXPECT_EQ(u64(sum), 1u);
	EXPECT_EQ(beluga_kvc_lookup_prefix(a, key, 1), 1);
	ASSERT_EQ(beluga_kvc_remove(b, key, 1, &res), 1);
	EXPECT_EQ(u64(home + 8 * at), 0u);
	EXPECT_EQ(u64(sum + 4160 + 8 * w), 0u);
	EXPECT_EQ(u64(seg), 2u);
	EXPECT_EQ(u64(sum), 2u);
	EXPECT_EQ(beluga_kvc_lookup_prefix(a, key, 1), 0);
	beluga_kvc_detach(a);
	beluga_kvc_detach(b);
}

} // namespace
