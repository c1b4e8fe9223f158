// SPDX-License-Identifier: Apache-2.0
// The C++ interface (beluga/kvcache.hpp): RAII, exceptions, the same calls.
#include "kvc_util.hpp"

#include <beluga/kvcache.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace {

using namespace kvt;

TEST(Cpp, RoundTrip)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096));
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	auto cache = beluga::kvc::Cache::attach(r.base(), r.size(), c.fingerprint);
	beluga::kvc::Key root = beluga::kvc::root_key("0");
	std::vector<uint32_t> tokens(40);
	for (uint32_t i = 0; i < tokens.size(); i++)
		tokens[i] = i;
	auto keys = beluga::kvc::hash_tokens(root, tokens, 16);
	ASSERT_EQ(keys.size(), 2u);
	std::vector<uint8_t> buf(4096), out(4096);
	fill_block(1, buf.data(), buf.size());
	EXPECT_EQ(cache.put(keys[0], buf.data(), buf.size()), 0);
	EXPECT_EQ(cache.put(keys[0], buf.data(), buf.size()), BELUGA_KVC_EXISTS);
	EXPECT_EQ(cache.lookup_prefix(keys), 1u);
	EXPECT_EQ(cache.get(keys[0], out.data(), out.size()), 4096);
	EXPECT_EQ(out, buf);
	EXPECT_EQ(cache.get(keys[1], out.data(), out.size()), -ENOENT);
	{
		beluga::kvc::Pin pin = cache.pin(keys[0], BELUGA_KVC_PIN_VERIFY);
		ASSERT_TRUE(pin);
		EXPECT_EQ(pin.size(), 4096u);
		EXPECT_TRUE(check_block(1, static_cast<const uint8_t *>(pin.data()), 4096));
		EXPECT_FALSE(cache.pin(keys[1]));
		EXPECT_EQ(cache.check_all().held_pins, 1u);
	}
	EXPECT_EQ(cache.check_all().held_pins, 0u);
	EXPECT_EQ(cache.stats().puts, 1u);
	EXPECT_EQ(cache.info().payload_bytes, 4096u);
	EXPECT_EQ(cache.remove(keys[0]), 0);
	EXPECT_EQ(cache.remove(keys[0]), -ENOENT);
	EXPECT_EQ(cache.reclaim(), 0);
	auto moved = std::move(cache);
	EXPECT_EQ(moved.stats().removes, 1u);
}

TEST(Cpp, ErrorsThrow)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096));
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	beluga_kvc_fingerprint other = c.fingerprint;
	std::strcpy(other.hash_seed, "1");
	try {
		beluga::kvc::Cache::attach(r.base(), r.size(), other);
		FAIL() << "no exception";
	} catch (const beluga::kvc::Error &e) {
		EXPECT_EQ(e.code().value(), BELUGA_KVC_EFINGERPRINT);
		EXPECT_NE(std::string(e.what()).find("hash_seed"), std::string::npos);
	}
	c.max_hosts = 0;
	EXPECT_THROW(beluga::kvc::Cache::format(r.base(), r.size(), c), beluga::kvc::Error);
}

TEST(Cpp, Hosts)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096), 2);
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	auto cache = beluga::kvc::Cache::attach(r.base(), r.size(), c.fingerprint);
	EXPECT_EQ(cache.host(0).state, uint32_t(BELUGA_KVC_HOST_SELF));
	EXPECT_EQ(cache.host(1).state, uint32_t(BELUGA_KVC_HOST_FREE));
	EXPECT_THROW(cache.host(2), beluga::kvc::Error);
	EXPECT_EQ(cache.take_over(1, BELUGA_KVC_TAKEOVER_RELEASE), 0); // free already
	EXPECT_THROW(cache.take_over(0), beluga::kvc::Error);	     // its own
}

// What the Python binding and the tools share: names, fingerprints,
// batches, the host table, errors that name the call.
TEST(Cpp, NamesRoundTripAndUnknownOnesAreRefused)
{
	using namespace beluga::kvc;
	for (uint32_t d : { BELUGA_KV_FP16, BELUGA_KV_BF16, BELUGA_KV_FP8_E4M3, BELUGA_KV_FP8_E5M2,
			    BELUGA_KV_FP32 })
		EXPECT_EQ(parse_dtype(dtype_name(d)), d);
	EXPECT_EQ(dtype_name(BELUGA_KV_BF16), "bf16");
	EXPECT_EQ(parse_dtype("bfloat16"), uint32_t(BELUGA_KV_BF16));
	EXPECT_EQ(dtype_name(99), "99");
	for (uint32_t p : { BELUGA_KVC_EVICT_CLOCK, BELUGA_KVC_EVICT_LRU, BELUGA_KVC_EVICT_NONE })
		EXPECT_EQ(parse_policy(policy_name(p)), p);
	for (uint32_t c : { BELUGA_KVC_AUTO, BELUGA_KVC_COHERENT, BELUGA_KVC_NONCOHERENT, BELUGA_KVC_SIMULATE })
		EXPECT_EQ(parse_coherence(coherence_name(c)), c);
	EXPECT_EQ(parse_layout(layout_name(BELUGA_KVC_LAYOUT_OPAQUE)), uint32_t(BELUGA_KVC_LAYOUT_OPAQUE));
	EXPECT_EQ(host_state_name(BELUGA_KVC_HOST_DEAD), "dead");
	EXPECT_EQ(checksum_state_name(BELUGA_KVC_SUM_BAD), "bad");
	EXPECT_EQ(checksum_state_name(17), "unknown");
	try {
		parse_policy("fifo");
		FAIL() << "parsed an unknown policy";
	} catch (const std::invalid_argument &e) {
		EXPECT_NE(std::string(e.what()).find("'fifo'"), std::string::npos) << e.what();
		EXPECT_NE(std::string(e.what()).find("'clock', 'lru' or 'none'"), std::string::npos);
	}
	EXPECT_THROW(parse_dtype("int4"), std::invalid_argument);
	EXPECT_THROW(parse_coherence("maybe"), std::invalid_argument);
}

TEST(Cpp, FingerprintFromFields)
{
	beluga::kvc::FingerprintFields f;
	f.model_id = "m@1";
	f.hash_seed = "0";
	f.shape = { 2, 16, 4, 8, BELUGA_KV_BF16, 0 };
	f.tp_rank = 1;
	f.tp_size = 2;
	auto fp = beluga::kvc::make_fingerprint(f);
	EXPECT_STREQ(fp.model_id, "m@1");
	EXPECT_STREQ(fp.hash_fn, "sha256_cbor");
	EXPECT_EQ(fp.shape.num_kv_heads, 4u);
	EXPECT_EQ(fp.tp_rank, 1u);
	EXPECT_EQ(fp.layout, uint32_t(BELUGA_KVC_LAYOUT_KV_BLOCK));
	EXPECT_TRUE(beluga::kvc::same_fingerprint(fp, beluga::kvc::make_fingerprint(f)));
	f.hash_seed = "1";
	EXPECT_FALSE(beluga::kvc::same_fingerprint(fp, beluga::kvc::make_fingerprint(f)));
	f.model_id = std::string(200, 'x');
	try {
		beluga::kvc::make_fingerprint(f);
		FAIL() << "a 200-byte model_id fitted";
	} catch (const std::invalid_argument &e) {
		EXPECT_NE(std::string(e.what()).find("model_id"), std::string::npos) << e.what();
	}
	f.model_id = std::string("a\0b", 3);
	EXPECT_THROW(beluga::kvc::make_fingerprint(f), std::invalid_argument);
}

TEST(Cpp, HashBlockAndChecksum)
{
	beluga::kvc::Key root = beluga::kvc::root_key("0");
	std::vector<uint32_t> tokens(32);
	for (uint32_t i = 0; i < tokens.size(); i++)
		tokens[i] = 100 + i;
	auto chain = beluga::kvc::hash_tokens(root, tokens, 16);
	ASSERT_EQ(chain.size(), 2u);
	auto first = beluga::kvc::hash_block(root, std::span(tokens).first(16));
	EXPECT_EQ(first, chain[0]);
	EXPECT_EQ(beluga::kvc::hash_block(first, std::span(tokens).subspan(16)), chain[1]);
	beluga_kvc_item salt{};
	salt.type = BELUGA_KVC_ITEM_TEXT;
	salt.ptr = "salt";
	salt.len = 4;
	EXPECT_NE(beluga::kvc::hash_block(root, std::span(tokens).first(16), &salt), first);
	EXPECT_EQ(beluga::kvc::checksum({}), 0xE20CD9A04C3E3C37ull);	// kvcache-format.md's vector
}

TEST(Cpp, BatchesPinRemoveAndErrorsNameTheCall)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096));
	EXPECT_TRUE(beluga::kvc::Cache::format_once(r.base(), r.size(), c));
	EXPECT_FALSE(beluga::kvc::Cache::format_once(r.base(), r.size(), c)); // there already
	auto cache = beluga::kvc::Cache::attach(r.base(), r.size(), c.fingerprint);
	std::vector<beluga::kvc::Key> keys(3);
	for (uint64_t i = 0; i < keys.size(); i++)
		make_key(i, keys[i].data());
	std::vector<uint8_t> buf(4096);
	for (uint64_t i = 0; i < 2; i++) {
		fill_block(i, buf.data(), buf.size());
		ASSERT_EQ(cache.put(keys[i], buf.data(), buf.size()), 0);
	}
	{
		auto pins = cache.pin(keys, BELUGA_KVC_PIN_VERIFY);
		ASSERT_EQ(pins.size(), 3u);
		ASSERT_TRUE(pins[0] && pins[1]);
		EXPECT_FALSE(pins[2]);
		EXPECT_TRUE(check_block(1, static_cast<const uint8_t *>(pins[1].data()), 4096));
		EXPECT_EQ(pins[1].ref().len, 4096u);
		EXPECT_EQ(cache.check_all().held_pins, 2u);
		pins[0].unpin();
		EXPECT_FALSE(pins[0]);
		pins[0].unpin();	// a second unpin does nothing
		EXPECT_EQ(cache.check_all().held_pins, 1u);
	}
	EXPECT_EQ(cache.check_all().held_pins, 0u);
	EXPECT_EQ(cache.remove(keys), (std::vector<int>{ 0, 0, -ENOENT }));
	try {
		beluga_kvc_eviction e = cache.eviction();
		e.policy = 9;
		cache.set_eviction(e);
		FAIL() << "an unknown policy was accepted";
	} catch (const beluga::kvc::Error &e) {
		EXPECT_EQ(e.code().value(), EINVAL);
		EXPECT_EQ(std::string(e.what()).rfind("set_eviction: ", 0), 0u) << e.what();
	}
	beluga_kvc_fingerprint other = c.fingerprint;
	other.payload_bytes = 8192;
	try {
		beluga::kvc::Cache::attach(r.base(), r.size(), other);
		FAIL() << "attached with another fingerprint";
	} catch (const beluga::kvc::Error &e) {
		EXPECT_EQ(std::string(e.what()).rfind("attach: ", 0), 0u) << e.what();
		EXPECT_NE(std::string(e.what()).find("payload_bytes"), std::string::npos) << e.what();
	}
}

TEST(Cpp, HostTable)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096), 3);
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	auto cache = beluga::kvc::Cache::attach(r.base(), r.size(), c.fingerprint);
	auto hosts = cache.hosts();
	ASSERT_EQ(hosts.size(), 3u);
	EXPECT_EQ(hosts[0].state, uint32_t(BELUGA_KVC_HOST_SELF));
	EXPECT_EQ(hosts[2].host, 2u);
	EXPECT_EQ(hosts[2].state, uint32_t(BELUGA_KVC_HOST_FREE));
}

} // namespace
