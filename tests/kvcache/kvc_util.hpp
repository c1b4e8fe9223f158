// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the store's tests: a shared-memory region (memfd, so a
// forked child maps the same bytes), keys and self-checking block contents.
#pragma once

#include <beluga/kvcache.h>
#include <beluga/kvcache.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvt {

// A zeroed, 2 MiB-aligned MAP_SHARED region backed by a memfd.
class ShmRegion {
public:
	explicit ShmRegion(size_t size) : size_(size)
	{
		fd_ = memfd_create("kvc-test", MFD_CLOEXEC);
		if (fd_ < 0 || ftruncate(fd_, off_t(size)))
			throw std::runtime_error("memfd");
		base_ = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
		if (base_ == MAP_FAILED)
			throw std::runtime_error("mmap");
	}
	~ShmRegion()
	{
		munmap(base_, size_);
		close(fd_);
	}
	ShmRegion(const ShmRegion &) = delete;
	ShmRegion &operator=(const ShmRegion &) = delete;
	void *base() const { return base_; }
	uint8_t *bytes() const { return static_cast<uint8_t *>(base_); }
	size_t size() const { return size_; }

private:
	int fd_ = -1;
	void *base_ = nullptr;
	size_t size_;
};

inline uint64_t splitmix(uint64_t &x)
{
	uint64_t z = (x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// Key @i: 32 pseudo-random bytes (a stand-in for a block hash).
inline void make_key(uint64_t i, uint8_t out[32])
{
	uint64_t s = i * 0x5851f42d4c957f2dull + 12345;
	for (int w = 0; w < 4; w++) {
		uint64_t v = splitmix(s);
		std::memcpy(out + 8 * w, &v, 8);
	}
}

inline uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

// Block contents for key @i: [i][pseudo-random ...][FNV-1a of the rest].
// The test's own checksum, independent of the store's.
inline void fill_block(uint64_t i, uint8_t *p, size_t len)
{
	uint64_t s = i ^ 0xabcdef;
	for (size_t o = 0; o < len; o += 8) {
		uint64_t v = splitmix(s);
		std::memcpy(p + o, &v, std::min<size_t>(8, len - o));
	}
	if (len >= 16) {
		std::memcpy(p, &i, 8);
		uint64_t h = fnv(p, len - 8);
		std::memcpy(p + len - 8, &h, 8);
	}
}

inline bool check_block(uint64_t i, const uint8_t *p, size_t len)
{
	if (len < 16) {
		std::vector<uint8_t> want(len);
		fill_block(i, want.data(), len);
		return !std::memcmp(want.data(), p, len);
	}
	uint64_t id, h;
	std::memcpy(&id, p, 8);
	std::memcpy(&h, p + len - 8, 8);
	return id == i && h == fnv(p, len - 8);
}

// One put of key @i's block (fill_block, @len bytes) through @kv: the
// entry's result (0, or a negative errno; 99 if the store left it unset).
// @batch, if given, receives what the batch call returned.
inline int put_block(beluga_kvc *kv, uint64_t i, size_t len, long *batch = nullptr)
{
	std::vector<uint8_t> buf(len);
	fill_block(i, buf.data(), len);
	beluga_kvc_put p{};
	make_key(i, p.key);
	p.data = buf.data();
	p.len = len;
	int res = 99;
	long n = beluga_kvc_put_batch(kv, &p, 1, &res);
	if (batch)
		*batch = n;
	return res;
}

// What one get returned: the batch call's result, the entry's (the
// block's length, 0 for a miss, or a negative errno; 99 if unset), and
// whether a hit's bytes are exactly key @i's block (check_block).
struct GetResult {
	long batch = 0;
	int res = 99;
	bool intact = false;
};

// One get of key @i through @kv into @out (@cap bytes; cut to the block's
// length on a hit).
inline GetResult get_block(beluga_kvc *kv, uint64_t i, std::vector<uint8_t> &out, size_t cap)
{
	out.assign(cap, 0);
	beluga_kvc_get g{};
	make_key(i, g.key);
	g.dst = out.data();
	g.cap = cap;
	GetResult r;
	r.batch = beluga_kvc_get_batch(kv, &g, 1, &r.res);
	if (r.res > 0) {
		out.resize(size_t(r.res));
		r.intact = check_block(i, out.data(), out.size());
	}
	return r;
}

inline GetResult get_block(beluga_kvc *kv, uint64_t i, size_t cap)
{
	std::vector<uint8_t> out;
	return get_block(kv, i, out, cap);
}

// True if key @i reads back through @kv as exactly its @len-byte block.
inline bool reads_back(beluga_kvc *kv, uint64_t i, size_t len)
{
	GetResult r = get_block(kv, i, len);
	return r.res == int(len) && r.intact;
}

// An opaque-layout fingerprint of model @model for @payload-byte blocks.
inline beluga_kvc_fingerprint opaque_fp(uint64_t payload, const char *model = "test-model")
{
	return beluga::kvc::make_fingerprint({.model_id = model,
					      .hash_seed = "0",
					      .layout = BELUGA_KVC_LAYOUT_OPAQUE,
					      .payload_bytes = payload});
}

inline beluga_kvc_config config(const beluga_kvc_fingerprint &fp, uint32_t hosts = 1)
{
	beluga_kvc_config c;
	beluga_kvc_config_init(&c);
	c.fingerprint = fp;
	c.max_hosts = hosts;
	return c;
}

inline beluga_kvc_attach_opts opts(uint32_t host, uint32_t coherence, uint32_t threads = 1)
{
	beluga_kvc_attach_opts o;
	beluga_kvc_attach_opts_init(&o);
	o.host_id = host;
	o.coherence = coherence;
	o.copy_threads = threads;
	return o;
}

} // namespace kvt
