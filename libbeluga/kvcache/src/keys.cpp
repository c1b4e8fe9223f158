// SPDX-License-Identifier: Apache-2.0
// Block keys: vLLM's sha256_cbor chain, reproduced byte for byte.
//   key = SHA-256(CBOR([parent, [token, ...], extra]))
// with canonical CBOR (RFC 8949 section 4.2.1 preferred serialization:
// shortest integer heads, definite lengths) exactly as Python's
// cbor2.dumps(..., canonical=True) writes a tuple of (bytes, tuple of
// ints, None or tuple).  The root (vLLM's NONE_HASH) is SHA-256 of the
// CBOR text string of the seed.  kvcache-format.md has test vectors.
#include <beluga/kvcache.h>

#include "error.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace {

constexpr int kMaxDepth = 16;

void head(std::vector<uint8_t> &out, unsigned major, uint64_t v)
{
	uint8_t m = uint8_t(major << 5);
	if (v < 24) {
		out.push_back(m | uint8_t(v));
		return;
	}
	int n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffull ? 4 : 8;
	out.push_back(m | uint8_t(n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27));
	for (int i = n - 1; i >= 0; i--)
		out.push_back(uint8_t(v >> (8 * i)));
}

int encode(std::vector<uint8_t> &out, const beluga_kvc_item &it, int depth)
{
	if (depth > kMaxDepth || it.reserved)
		return -EINVAL;
	switch (it.type) {
	case BELUGA_KVC_ITEM_NULL:
		out.push_back(0xf6);
		return 0;
	case BELUGA_KVC_ITEM_INT:
		if (it.i >= 0)
			head(out, 0, uint64_t(it.i));
		else
			head(out, 1, uint64_t(-(it.i + 1)));
		return 0;
	case BELUGA_KVC_ITEM_TEXT:
	case BELUGA_KVC_ITEM_BYTES: {
		if (!it.ptr && it.len)
			return -EINVAL;
		head(out, it.type == BELUGA_KVC_ITEM_TEXT ? 3 : 2, it.len);
		auto p = static_cast<const uint8_t *>(it.ptr);
		out.insert(out.end(), p, p + it.len);
		return 0;
	}
	case BELUGA_KVC_ITEM_ARRAY: {
		if (!it.ptr && it.len)
			return -EINVAL;
		head(out, 4, it.len);
		auto items = static_cast<const beluga_kvc_item *>(it.ptr);
		for (size_t i = 0; i < it.len; i++)
			if (int r = encode(out, items[i], depth + 1))
				return r;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

int sha256(const std::vector<uint8_t> &in, uint8_t out[32])
{
	unsigned int n = 0;
	if (!EVP_Digest(in.data(), in.size(), out, &n, EVP_sha256(), nullptr) || n != 32)
		return -ENOMEM; // OpenSSL only fails when it cannot allocate
	return 0;
}

// CBOR of [parent, tokens, extra] (extra: null when absent).
int block_cbor(std::vector<uint8_t> &buf, const uint8_t parent[32], const uint32_t *tokens,
	       size_t n, const beluga_kvc_item *extra)
{
	buf.clear();
	head(buf, 4, 3);
	head(buf, 2, 32);
	buf.insert(buf.end(), parent, parent + 32);
	head(buf, 4, n);
	for (size_t i = 0; i < n; i++)
		head(buf, 0, tokens[i]);
	if (!extra) {
		buf.push_back(0xf6);
		return 0;
	}
	return encode(buf, *extra, 1);
}

} // namespace

extern "C" {

int beluga_kvc_root_key(const char *seed, uint8_t out[32])
{
	if (!seed || !out)
		return bkv::fail(-EINVAL, "beluga_kvc_root_key: NULL argument");
	std::vector<uint8_t> buf;
	head(buf, 3, std::strlen(seed));
	buf.insert(buf.end(), seed, seed + std::strlen(seed));
	return sha256(buf, out);
}

int beluga_kvc_hash_block(const uint8_t parent[32], const uint32_t *tokens, size_t ntokens,
			  const beluga_kvc_item *extra, uint8_t out[32])
{
	if (!parent || !out || (!tokens && ntokens))
		return bkv::fail(-EINVAL, "beluga_kvc_hash_block: NULL argument");
	std::vector<uint8_t> buf;
	buf.reserve(48 + 5 * ntokens);
	if (block_cbor(buf, parent, tokens, ntokens, extra))
		return bkv::fail(-EINVAL, "beluga_kvc_hash_block: bad extra key item "
					  "(unknown type, non-zero reserved, NULL data or nesting over 16)");
	return sha256(buf, out);
}

long beluga_kvc_hash_tokens(const uint8_t root[32], const uint32_t *tokens, size_t ntokens,
			    uint32_t block_size, uint8_t (*keys)[32], size_t max_keys)
{
	if (!root || (!tokens && ntokens) || !block_size || (!keys && max_keys))
		return bkv::fail(-EINVAL, "beluga_kvc_hash_tokens: NULL argument or block_size 0");
	size_t blocks = ntokens / block_size;
	std::vector<uint8_t> buf;
	buf.reserve(48 + 5 * size_t(block_size));
	uint8_t parent[32];
	std::memcpy(parent, root, 32);
	for (size_t b = 0; b < blocks && b < max_keys; b++) {
		block_cbor(buf, parent, tokens + b * block_size, block_size, nullptr);
		if (int r = sha256(buf, keys[b]))
			return r;
		std::memcpy(parent, keys[b], 32);
	}
	return long(blocks);
}

} // extern "C"
