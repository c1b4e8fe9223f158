// SPDX-License-Identifier: Apache-2.0
// Block keys: byte-identical to vLLM's sha256_cbor chain.  The expected
// values were computed with Python's cbor2 (the library vLLM's sha256_cbor
// uses) and hashlib, as documented in Documentation/kvcache-format.md.
#include <beluga/kvcache.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string hex(const uint8_t *p, size_t n = 32)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += d[p[i] >> 4];
		s += d[p[i] & 15];
	}
	return s;
}

std::vector<uint32_t> seq(uint32_t from, uint32_t n)
{
	std::vector<uint32_t> v(n);
	for (uint32_t i = 0; i < n; i++)
		v[i] = from + i;
	return v;
}

TEST(Keys, RootKeyIsVllmNoneHash)
{
	uint8_t k[32];
	ASSERT_EQ(beluga_kvc_root_key("0", k), 0);
	EXPECT_EQ(hex(k), "4e1195df020de59e0d65a33a4279f1183e7ae4e5d980e309f8b55adff2e61c3e");
	ASSERT_EQ(beluga_kvc_root_key("", k), 0);
	EXPECT_EQ(hex(k), "8d33f520a3c4cef80d2453aef81b612bfe1cb44c8b2025630ad38662763f13d3");
}

TEST(Keys, BlockVectors)
{
	uint8_t root[32], b0[32], b1[32];
	ASSERT_EQ(beluga_kvc_root_key("0", root), 0);
	auto t = seq(1, 16);
	ASSERT_EQ(beluga_kvc_hash_block(root, t.data(), t.size(), nullptr, b0), 0);
	EXPECT_EQ(hex(b0), "202da172482d928bbc42ab25b0151e2b895f13f41002e27b2ceabcfae6d332ea");
	// Every CBOR integer head size: 0, 23, 24, 255, 256, 65535, 65536, 2^32-1.
	std::vector<uint32_t> t2 = {0, 23, 24, 255, 256, 65535, 65536, 128000, 4294967295u,
				    7, 7, 7, 7, 7, 7, 7};
	ASSERT_EQ(beluga_kvc_hash_block(b0, t2.data(), t2.size(), nullptr, b1), 0);
	EXPECT_EQ(hex(b1), "f81c0775df44e430bd932c02c4c2e461a764542f1f33e46437566cdd960eb0d4");
}

TEST(Keys, ExtraKeys)
{
	// vLLM: (lora_name, (mm_identifier, offset), prompt-embeds hash, ...)
	uint8_t root[32], out[32];
	ASSERT_EQ(beluga_kvc_root_key("0", root), 0);
	const uint8_t bytes[] = {1, 2, 3};
	beluga_kvc_item mm[2] = {};
	mm[0].type = BELUGA_KVC_ITEM_TEXT;
	mm[0].ptr = "mm-hash-abc";
	mm[0].len = 11;
	mm[1].type = BELUGA_KVC_ITEM_INT;
	mm[1].i = -3;
	beluga_kvc_item items[5] = {};
	items[0].type = BELUGA_KVC_ITEM_TEXT;
	items[0].ptr = "my-lora";
	items[0].len = 7;
	items[1].type = BELUGA_KVC_ITEM_ARRAY;
	items[1].ptr = mm;
	items[1].len = 2;
	items[2].type = BELUGA_KVC_ITEM_BYTES;
	items[2].ptr = bytes;
	items[2].len = 3;
	items[3].type = BELUGA_KVC_ITEM_INT;
	items[3].i = 5;
	items[4].type = BELUGA_KVC_ITEM_NULL;
	beluga_kvc_item extra = {};
	extra.type = BELUGA_KVC_ITEM_ARRAY;
	extra.ptr = items;
	extra.len = 5;
	auto t = seq(1, 16);
	ASSERT_EQ(beluga_kvc_hash_block(root, t.data(), t.size(), &extra, out), 0);
	EXPECT_EQ(hex(out), "db0f39fca9b32b19608a5467a1749a7f6f21233736a27a4f145332f25b0063b2");
}

TEST(Keys, TokenChain)
{
	uint8_t root[32], keys[4][32];
	ASSERT_EQ(beluga_kvc_root_key("0", root), 0);
	auto t = seq(100, 14); // three full blocks of 4, two tokens left over
	EXPECT_EQ(beluga_kvc_hash_tokens(root, t.data(), t.size(), 4, keys, 4), 3);
	EXPECT_EQ(hex(keys[0]), "71f40f563a7a259f47b9267c311bf00d383743b642efb532825c8227cad5456f");
	EXPECT_EQ(hex(keys[1]), "4d6f90553bea9c325f483b8685f38024bee9f22a18c7630132ffdcff64ea04f4");
	EXPECT_EQ(hex(keys[2]), "f3a4ba28582448318d6d334044676e7395aa1aae6c7dc0c766e388d0e7419100");
	// Same as chaining hash_block by hand; max_keys bounds what is written.
	uint8_t k[32];
	ASSERT_EQ(beluga_kvc_hash_block(keys[0], t.data() + 4, 4, nullptr, k), 0);
	EXPECT_EQ(hex(k), hex(keys[1]));
	uint8_t one[1][32];
	EXPECT_EQ(beluga_kvc_hash_tokens(root, t.data(), t.size(), 4, one, 1), 3);
	EXPECT_EQ(hex(one[0]), hex(keys[0]));
	EXPECT_EQ(beluga_kvc_hash_tokens(root, t.data(), 3, 4, keys, 4), 0);
}

TEST(Keys, Errors)
{
	uint8_t root[32] = {}, out[32];
	uint32_t tok = 1;
	EXPECT_EQ(beluga_kvc_root_key(nullptr, out), -EINVAL);
	EXPECT_EQ(beluga_kvc_root_key("0", nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_block(nullptr, &tok, 1, nullptr, out), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_block(root, nullptr, 1, nullptr, out), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_block(root, &tok, 1, nullptr, nullptr), -EINVAL);
	EXPECT_STRNE(beluga_kvc_last_error(), "");
	beluga_kvc_item bad = {};
	bad.type = 99;
	EXPECT_EQ(beluga_kvc_hash_block(root, &tok, 1, &bad, out), -EINVAL);
	EXPECT_NE(std::string(beluga_kvc_last_error()).find("extra key"), std::string::npos);
	bad.type = BELUGA_KVC_ITEM_INT;
	bad.reserved = 1;
	EXPECT_EQ(beluga_kvc_hash_block(root, &tok, 1, &bad, out), -EINVAL);
	bad = {};
	bad.type = BELUGA_KVC_ITEM_TEXT;
	bad.len = 3; // NULL data
	EXPECT_EQ(beluga_kvc_hash_block(root, &tok, 1, &bad, out), -EINVAL);
	// Nesting deeper than 16 arrays.
	std::vector<beluga_kvc_item> nest(20);
	for (size_t i = 0; i < nest.size(); i++) {
		nest[i].type = BELUGA_KVC_ITEM_ARRAY;
		nest[i].ptr = i + 1 < nest.size() ? &nest[i + 1] : nullptr;
		nest[i].len = i + 1 < nest.size() ? 1 : 0;
	}
	EXPECT_EQ(beluga_kvc_hash_block(root, &tok, 1, &nest[0], out), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_block(root, &tok, 1, &nest[10], out), 0);
	uint8_t keys[1][32];
	EXPECT_EQ(beluga_kvc_hash_tokens(root, &tok, 1, 0, keys, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_tokens(nullptr, &tok, 1, 1, keys, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_tokens(root, nullptr, 1, 1, keys, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_hash_tokens(root, &tok, 1, 1, nullptr, 1), -EINVAL);
}

} // namespace
