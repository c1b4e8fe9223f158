// SPDX-License-Identifier: Apache-2.0
// beluga/kvcache.hpp - C++ interface to Beluga-KVCache (beluga/kvcache.h).
//
// RAII handles and exceptions for setup (attach/open throw beluga::kvc::Error,
// a std::system_error whose what() is the library's sentence); data calls
// return per-item results like the C API, since misses are normal.
//
//   auto cache = beluga::kvc::Cache::attach(base, size, fp);
//   cache.put(key, data, len);                         // 0 or BELUGA_KVC_EXISTS
//   size_t hit = cache.lookup_prefix(keys);            // leading cached blocks
//   auto pin = cache.pin(key);                         // zero-copy, unpinned on destruction
//   if (pin) use(pin.data(), pin.size());
//   auto res = cache.reserve(keys, len);               // zero-copy store, aborted on
//   ... write res.data(i) ...; res.commit();           //   destruction unless committed
#pragma once

#include <beluga/kvcache.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace beluga::kvc {

using Key = std::array<uint8_t, BELUGA_KVC_KEY_BYTES>;

class Error : public std::system_error {
public:
	// code(): the positive errno or BELUGA_KVC_E* value; what(): the sentence.
	explicit Error(int err)
		: std::system_error(err < 0 ? -err : err, std::generic_category()), what_(message(err))
	{
	}
	const char *what() const noexcept override { return what_.c_str(); }

private:
	std::string what_;
	static std::string message(int err)
	{
		std::string s = beluga_kvc_last_error();
		return s.empty() ? beluga_kvc_strerror(err) : s;
	}
};

inline long check(long r)
{
	if (r < 0)
		throw Error(int(r));
	return r;
}

// Keys: vLLM's sha256_cbor chain.
inline Key root_key(const std::string &seed)
{
	Key k;
	check(beluga_kvc_root_key(seed.c_str(), k.data()));
	return k;
}

inline std::vector<Key> hash_tokens(const Key &root, std::span<const uint32_t> tokens,
				    uint32_t block_size)
{
	std::vector<Key> keys(block_size ? tokens.size() / block_size : 0);
	long n = beluga_kvc_hash_tokens(root.data(), tokens.data(), tokens.size(), block_size,
					reinterpret_cast<uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(keys.data()),
					keys.size());
	check(n);
	return keys;
}

class Cache;

// A pinned block: readable in place until destroyed (or release()d).
class Pin {
public:
	Pin() = default;
	Pin(Pin &&o) noexcept : kv_(std::exchange(o.kv_, nullptr)), ref_(o.ref_) {}
	Pin &operator=(Pin &&o) noexcept
	{
		if (this != &o) {
			release();
			kv_ = std::exchange(o.kv_, nullptr);
			ref_ = o.ref_;
		}
		return *this;
	}
	~Pin() { release(); }
	explicit operator bool() const { return kv_ != nullptr; }
	const void *data() const { return ref_.data; }
	size_t size() const { return ref_.len; }
	void release()
	{
		if (kv_)
			beluga_kvc_unpin(std::exchange(kv_, nullptr), &ref_, 1);
	}

private:
	friend class Cache;
	beluga_kvc *kv_ = nullptr;
	beluga_kvc_ref ref_{};
};

// ---- Zero-copy stores (beluga_kvc_reserve / _commit / _abort) ----------
//
//   auto res = cache.reserve(keys, block_bytes);      // one lookup per key
//   for (size_t i = 0; i < res.size(); i++)
//       if (res.reserved(i)) gather_into(res.data(i));  // write in place
//   std::vector<int> stored = res.commit();            // checksum, publish
//
// Slots reserved for a batch of keys: write each reserved block's payload at
// data(i), then commit().  Whatever is still reserved when the object is
// destroyed is aborted (given back unpublished).
class Reservation {
public:
	Reservation() = default;
	Reservation(Reservation &&o) noexcept
		: kv_(std::exchange(o.kv_, nullptr)), items_(std::move(o.items_)), res_(std::move(o.res_))
	{
	}
	Reservation &operator=(Reservation &&o) noexcept
	{
		if (this != &o) {
			abort();
			kv_ = std::exchange(o.kv_, nullptr);
			items_ = std::move(o.items_);
			res_ = std::move(o.res_);
		}
		return *this;
	}
	Reservation(const Reservation &) = delete;
	Reservation &operator=(const Reservation &) = delete;
	~Reservation() { abort(); }

	size_t size() const { return items_.size(); }
	// What beluga_kvc_reserve said of item @i: 0 reserved, BELUGA_KVC_EXISTS
	// (cached already), -ENOSPC, -ENOBUFS (too many reservations held), -EINVAL.
	int result(size_t i) const { return res_[i]; }
	// Item @i holds a slot now (reserved, not yet committed or aborted).
	bool reserved(size_t i) const { return items_[i].data != nullptr; }
	// Where to write item @i's payload (len(i) bytes), and its offset in the region.
	void *data(size_t i) const { return items_[i].data; }
	size_t len(size_t i) const { return items_[i].len; }
	uint64_t offset(size_t i) const { return items_[i].offset; }
	// The payload's checksum, computed by the writer (commit with BELUGA_KVC_COMMIT_CHECKSUM).
	void set_checksum(size_t i, uint64_t sum) { items_[i].sum = sum; }
	std::span<beluga_kvc_reservation> items() { return items_; }

	// Publish every reserved item; per item the result of beluga_kvc_commit
	// (-ENOENT for items that held no reservation).  Throws on a call error.
	std::vector<int> commit(uint32_t flags = 0)
	{
		std::vector<int> res(items_.size());
		if (kv_)
			check(beluga_kvc_commit(kv_, items_.data(), items_.size(), flags, res.data()));
		return res;
	}
	// Give back item @i (or every item still reserved) unpublished.
	void abort(size_t i)
	{
		if (kv_ && items_[i].data)
			beluga_kvc_abort(kv_, &items_[i], 1);
	}
	void abort()
	{
		if (kv_)
			beluga_kvc_abort(kv_, items_.data(), items_.size());
	}

private:
	friend class Cache;
	beluga_kvc *kv_ = nullptr;
	std::vector<beluga_kvc_reservation> items_;
	std::vector<int> res_;
};

class Cache {
public:
	static Cache attach(void *base, size_t size, const beluga_kvc_fingerprint &fp,
			    const beluga_kvc_attach_opts *opts = nullptr)
	{
		beluga_kvc *kv = nullptr;
		check(beluga_kvc_attach(base, size, &fp, opts, &kv));
		return Cache(kv);
	}
	static Cache open(beluga_pool *pool, const std::string &name, const beluga_kvc_fingerprint &fp,
			  const beluga_kvc_config *create = nullptr, uint64_t region_bytes = 0,
			  uint32_t mode = 0600, const beluga_kvc_attach_opts *opts = nullptr)
	{
		beluga_kvc *kv = nullptr;
		check(beluga_kvc_open(pool, name.c_str(), &fp, create, region_bytes, mode, opts, &kv));
		return Cache(kv);
	}
	// A read-only observer of whatever cache is there (tools, exporters).
	static Cache observe(void *base, size_t size)
	{
		beluga_kvc_attach_opts o;
		beluga_kvc_attach_opts_init(&o);
		o.flags = BELUGA_KVC_ATTACH_OBSERVE;
		beluga_kvc *kv = nullptr;
		check(beluga_kvc_attach(base, size, nullptr, &o, &kv));
		return Cache(kv);
	}
	static Cache observe(beluga_pool *pool, const std::string &name)
	{
		beluga_kvc_attach_opts o;
		beluga_kvc_attach_opts_init(&o);
		o.flags = BELUGA_KVC_ATTACH_OBSERVE;
		beluga_kvc *kv = nullptr;
		check(beluga_kvc_open(pool, name.c_str(), nullptr, nullptr, 0, 0, &o, &kv));
		return Cache(kv);
	}
	static void format(void *base, size_t size, const beluga_kvc_config &cfg)
	{
		check(beluga_kvc_format(base, size, &cfg));
	}

	Cache(Cache &&o) noexcept : kv_(std::exchange(o.kv_, nullptr)) {}
	Cache &operator=(Cache &&o) noexcept
	{
		if (this != &o) {
			beluga_kvc_detach(kv_);
			kv_ = std::exchange(o.kv_, nullptr);
		}
		return *this;
	}
	~Cache() { beluga_kvc_detach(kv_); }
	beluga_kvc *get() const { return kv_; }

	// Zero-copy stores: slots for @keys, @len bytes each (see Reservation).
	Reservation reserve(std::span<const Key> keys, size_t len)
	{
		Reservation r;
		r.items_.resize(keys.size());
		r.res_.resize(keys.size());
		for (size_t i = 0; i < keys.size(); i++) {
			std::copy(keys[i].begin(), keys[i].end(), r.items_[i].key);
			r.items_[i].len = len;
		}
		check(beluga_kvc_reserve(kv_, r.items_.data(), r.items_.size(), r.res_.data()));
		r.kv_ = kv_;
		return r;
	}

	// Per-item results as in beluga_kvc_put_batch / _get_batch.
	std::vector<int> put(std::span<const beluga_kvc_put> items)
	{
		std::vector<int> res(items.size());
		check(beluga_kvc_put_batch(kv_, items.data(), items.size(), res.data()));
		return res;
	}
	int put(const Key &key, const void *data, size_t len)
	{
		beluga_kvc_put p{};
		std::copy(key.begin(), key.end(), p.key);
		p.data = data;
		p.len = len;
		return put(std::span(&p, 1))[0];
	}
	std::vector<int> get(std::span<const beluga_kvc_get> items)
	{
		std::vector<int> res(items.size());
		check(beluga_kvc_get_batch(kv_, items.data(), items.size(), res.data()));
		return res;
	}
	// Block length, or -ENOENT / -ENOBUFS.
	int get(const Key &key, void *dst, size_t cap)
	{
		beluga_kvc_get g{};
		std::copy(key.begin(), key.end(), g.key);
		g.dst = dst;
		g.cap = cap;
		return get(std::span(&g, 1))[0];
	}
	size_t lookup_prefix(std::span<const Key> keys)
	{
		long n = beluga_kvc_lookup_prefix(
			kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(keys.data()),
			keys.size());
		return size_t(check(n));
	}
	// An empty Pin when the block is not cached.
	Pin pin(const Key &key, uint32_t flags = 0)
	{
		Pin p;
		int res;
		long n = beluga_kvc_pin(kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(key.data()),
					1, flags, &p.ref_, &res);
		if (check(n) == 1)
			p.kv_ = kv_;
		return p;
	}
	// 0, -ENOENT, -EXDEV or -EBUSY (beluga_kvc_remove).
	int remove(const Key &key)
	{
		int res;
		check(beluga_kvc_remove(kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(key.data()),
					1, &res));
		return res;
	}
	beluga_kvc_info info() const
	{
		beluga_kvc_info i;
		check(beluga_kvc_get_info(kv_, &i));
		return i;
	}
	beluga_kvc_stats stats(int host = -1) const
	{
		beluga_kvc_stats s;
		check(beluga_kvc_get_stats(kv_, host, &s));
		return s;
	}
	int reclaim() { return int(check(beluga_kvc_reclaim(kv_))); }
	beluga_kvc_eviction eviction(int host = -1) const
	{
		beluga_kvc_eviction e;
		check(beluga_kvc_get_eviction(kv_, host, &e));
		return e;
	}
	void set_eviction(const beluga_kvc_eviction &e) { check(beluga_kvc_set_eviction(kv_, &e)); }
	// Several hosts: host index @host as this handle sees it.
	beluga_kvc_host_info host(uint32_t host) const
	{
		beluga_kvc_host_info h;
		check(beluga_kvc_get_host(kv_, host, &h));
		return h;
	}
	// Declare host @host dead and take it over (beluga_kvc_take_over);
	// returns the sessions reclaimed.
	int take_over(uint32_t host, uint32_t flags = 0)
	{
		return int(check(beluga_kvc_take_over(kv_, host, flags)));
	}
	// Blocks evicted (0: down to the low watermark).
	uint64_t evict(uint64_t max_blocks = 0) { return uint64_t(check(beluga_kvc_evict(kv_, max_blocks))); }
	// Every cached block of @host (-1: all hosts).
	std::vector<beluga_kvc_block_info> blocks(int host = -1, uint32_t flags = 0) const
	{
		std::vector<beluga_kvc_block_info> all;
		uint64_t cursor = 0;
		for (;;) {
			size_t at = all.size();
			all.resize(at + 256);
			long n = check(beluga_kvc_list_blocks(kv_, host, &cursor, flags, all.data() + at, 256));
			all.resize(at + size_t(n));
			if (n < 256)
				return all;
		}
	}
	// false when @key is not cached.
	bool inspect(const Key &key, beluga_kvc_block_info &out, uint32_t flags = 0) const
	{
		int r = beluga_kvc_inspect(kv_, key.data(), flags, &out);
		if (r == -ENOENT)
			return false;
		check(r);
		return true;
	}
	beluga_kvc_check_report check_all(bool verify_data = false)
	{
		beluga_kvc_check_report r;
		check(beluga_kvc_check(kv_, verify_data, &r));
		return r;
	}

private:
	explicit Cache(beluga_kvc *kv) : kv_(kv) {}
	beluga_kvc *kv_;
};

} // namespace beluga::kvc
