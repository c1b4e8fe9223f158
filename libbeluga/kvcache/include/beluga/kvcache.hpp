// SPDX-License-Identifier: Apache-2.0
// beluga/kvcache.hpp - C++ interface to Beluga-KVCache (beluga/kvcache.h).
//
// RAII handles and exceptions for setup (attach/open throw beluga::kvc::Error,
// a std::system_error whose what() is "<call>: <the library's sentence>");
// data calls return per-item results like the C API, since misses are normal.
// Arguments refused before the library is called (a name too long for the
// fingerprint, an unknown policy name) throw std::invalid_argument.
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
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace beluga::kvc {

using Key = std::array<uint8_t, BELUGA_KVC_KEY_BYTES>;

class Error : public std::system_error {
public:
	// code(): the positive errno or BELUGA_KVC_E* value; what(): "@context: "
	// (when given) and the sentence of the calling thread's failed call
	// (beluga_kvc_last_error), else of the code.  Construct it in the thread
	// whose call failed, before its next library call.
	explicit Error(int err, std::string_view context = {})
		: std::system_error(err < 0 ? -err : err, std::generic_category()),
		  what_(message(err, context))
	{
	}
	const char *what() const noexcept override { return what_.c_str(); }

private:
	std::string what_;
	static std::string message(int err, std::string_view context)
	{
		std::string s = beluga_kvc_last_error();
		if (s.empty())
			s = beluga_kvc_strerror(err);
		return context.empty() ? s : std::string(context) + ": " + s;
	}
};

// @r, or Error(@r, @what) when negative.
inline long check(long r, const char *what = nullptr)
{
	if (r < 0)
		throw Error(int(r), what ? what : "");
	return r;
}

// Keys: vLLM's sha256_cbor chain.
inline Key root_key(const std::string &seed)
{
	Key k;
	check(beluga_kvc_root_key(seed.c_str(), k.data()), "root_key");
	return k;
}

inline std::vector<Key> hash_tokens(const Key &root, std::span<const uint32_t> tokens,
				    uint32_t block_size)
{
	std::vector<Key> keys(block_size ? tokens.size() / block_size : 0);
	long n = beluga_kvc_hash_tokens(root.data(), tokens.data(), tokens.size(), block_size,
					reinterpret_cast<uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(keys.data()),
					keys.size());
	check(n, "hash_tokens");
	return keys;
}

// ---- Names, fingerprints and settings: the spellings the tools, the Python
// binding and the vLLM connector share.

// One block's key with extra keys (@extra: NULL, or vLLM's tuple as an
// ITEM_ARRAY): vLLM's hash_block_tokens(sha256_cbor, parent, tokens, extra).
inline Key hash_block(const Key &parent, std::span<const uint32_t> tokens,
		      const beluga_kvc_item *extra = nullptr)
{
	Key k;
	check(beluga_kvc_hash_block(parent.data(), tokens.data(), tokens.size(), extra, k.data()),
	      "hash_block");
	return k;
}

// The block checksum (BKV-F64) the store records.
inline uint64_t checksum(std::span<const std::byte> data) noexcept
{
	return beluga_kvc_checksum(data.data(), data.size());
}

namespace detail {
template <size_t N>
inline const char *name_of(const std::pair<const char *, uint32_t> (&t)[N], uint32_t v)
{
	for (auto &[n, x] : t)
		if (x == v)
			return n;
	return nullptr;
}
template <size_t N>
inline uint32_t value_of(const std::pair<const char *, uint32_t> (&t)[N], std::string_view s,
			 const char *what, const char *choices)
{
	for (auto &[n, x] : t)
		if (s == n)
			return x;
	throw std::invalid_argument(std::string(what) + " must be " + choices + ", not '" +
				    std::string(s) + "'");
}
inline constexpr std::pair<const char *, uint32_t> kDtypes[] = {
	{ "fp16", BELUGA_KV_FP16 }, { "bf16", BELUGA_KV_BF16 }, { "fp8_e4m3", BELUGA_KV_FP8_E4M3 },
	{ "fp8_e5m2", BELUGA_KV_FP8_E5M2 }, { "fp32", BELUGA_KV_FP32 },
	{ "float16", BELUGA_KV_FP16 }, { "bfloat16", BELUGA_KV_BF16 }, { "float32", BELUGA_KV_FP32 },
};
inline constexpr std::pair<const char *, uint32_t> kPolicies[] = {
	{ "clock", BELUGA_KVC_EVICT_CLOCK }, { "lru", BELUGA_KVC_EVICT_LRU },
	{ "none", BELUGA_KVC_EVICT_NONE },
};
inline constexpr std::pair<const char *, uint32_t> kCoherence[] = {
	{ "auto", BELUGA_KVC_AUTO }, { "coherent", BELUGA_KVC_COHERENT },
	{ "noncoherent", BELUGA_KVC_NONCOHERENT }, { "simulate", BELUGA_KVC_SIMULATE },
};
inline constexpr std::pair<const char *, uint32_t> kLayouts[] = {
	{ "kv_block", BELUGA_KVC_LAYOUT_KV_BLOCK }, { "opaque", BELUGA_KVC_LAYOUT_OPAQUE },
};
inline constexpr std::pair<const char *, uint32_t> kHostStates[] = {
	{ "free", BELUGA_KVC_HOST_FREE }, { "self", BELUGA_KVC_HOST_SELF },
	{ "alive", BELUGA_KVC_HOST_ALIVE }, { "silent", BELUGA_KVC_HOST_SILENT },
	{ "dead", BELUGA_KVC_HOST_DEAD },
};
inline constexpr const char *kSumStates[] = { "unchecked", "ok", "bad", "changed" };
} // namespace detail

// BELUGA_KV_* element types: fp16, bf16, fp8_e4m3, fp8_e5m2, fp32 (parse
// also takes float16, bfloat16, float32); an unknown value prints as its number.
inline std::string dtype_name(uint32_t dtype)
{
	const char *n = detail::name_of(detail::kDtypes, dtype);
	return n ? n : std::to_string(dtype);
}
inline uint32_t parse_dtype(std::string_view s)
{
	return detail::value_of(detail::kDtypes, s, "dtype", "fp16, bf16, fp8_e4m3, fp8_e5m2 or fp32");
}
// BELUGA_KVC_EVICT_*: clock, lru, none.
inline std::string policy_name(uint32_t policy)
{
	const char *n = detail::name_of(detail::kPolicies, policy);
	return n ? n : std::to_string(policy);
}
inline uint32_t parse_policy(std::string_view s)
{
	return detail::value_of(detail::kPolicies, s, "eviction", "'clock', 'lru' or 'none'");
}
// enum beluga_kvc_coherence: auto, coherent, noncoherent, simulate.
inline std::string coherence_name(uint32_t c)
{
	const char *n = detail::name_of(detail::kCoherence, c);
	return n ? n : std::to_string(c);
}
inline uint32_t parse_coherence(std::string_view s)
{
	return detail::value_of(detail::kCoherence, s, "coherence",
				"'auto', 'coherent', 'noncoherent' or 'simulate'");
}
// BELUGA_KVC_LAYOUT_*: kv_block, opaque.
inline std::string layout_name(uint32_t layout)
{
	const char *n = detail::name_of(detail::kLayouts, layout);
	return n ? n : std::to_string(layout);
}
inline uint32_t parse_layout(std::string_view s)
{
	return detail::value_of(detail::kLayouts, s, "layout", "'kv_block' or 'opaque'");
}
// BELUGA_KVC_HOST_*: free, self, alive, silent, dead.
inline std::string host_state_name(uint32_t state)
{
	const char *n = detail::name_of(detail::kHostStates, state);
	return n ? n : std::to_string(state);
}
// BELUGA_KVC_SUM_*: unchecked, ok, bad, changed.
inline std::string checksum_state_name(uint32_t state)
{
	return state < std::size(detail::kSumStates) ? detail::kSumStates[state] : "unknown";
}

// A fingerprint from its fields (beluga_kvc_fingerprint documents them);
// strings too long for their field are refused here, naming the field.
struct FingerprintFields {
	std::string model_id;
	std::string hash_fn = "sha256_cbor";
	std::string hash_seed;
	beluga_kv_shape shape{};
	uint32_t tp_rank = 0;
	uint32_t tp_size = 1;
	uint32_t layout = BELUGA_KVC_LAYOUT_KV_BLOCK;
	uint64_t payload_bytes = 0;
};

inline beluga_kvc_fingerprint make_fingerprint(const FingerprintFields &f)
{
	beluga_kvc_fingerprint fp;
	std::memset(&fp, 0, sizeof(fp));
	auto set = [](char *dst, size_t cap, const std::string &v, const char *field) {
		if (v.size() >= cap || v.find('\0') != std::string::npos)
			throw std::invalid_argument(std::string(field) + " must be shorter than " +
						    std::to_string(cap) + " bytes and contain no NUL");
		std::memcpy(dst, v.data(), v.size());
	};
	set(fp.model_id, sizeof(fp.model_id), f.model_id, "model_id");
	set(fp.hash_fn, sizeof(fp.hash_fn), f.hash_fn, "hash_fn");
	set(fp.hash_seed, sizeof(fp.hash_seed), f.hash_seed, "hash_seed");
	fp.shape = f.shape;
	fp.tp_rank = f.tp_rank;
	fp.tp_size = f.tp_size;
	fp.layout = f.layout;
	fp.payload_bytes = f.payload_bytes;
	return fp;
}

inline bool same_fingerprint(const beluga_kvc_fingerprint &a, const beluga_kvc_fingerprint &b) noexcept
{
	return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// Defaults of beluga_kvc_config_init with @fp, and of beluga_kvc_attach_opts_init.
inline beluga_kvc_config default_config(const beluga_kvc_fingerprint &fp)
{
	beluga_kvc_config c;
	beluga_kvc_config_init(&c);
	c.fingerprint = fp;
	return c;
}
inline beluga_kvc_attach_opts default_attach_opts()
{
	beluga_kvc_attach_opts o;
	beluga_kvc_attach_opts_init(&o);
	return o;
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
	// release(), reporting a failure (Error): the pin is gone either way.
	void unpin()
	{
		if (kv_)
			check(beluga_kvc_unpin(std::exchange(kv_, nullptr), &ref_, 1), "unpin");
	}
	// What beluga_kvc_pin filled in (data, len, the block's place).
	const beluga_kvc_ref &ref() const { return ref_; }

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
	// Publish every reserved item with the checksums its writer computed
	// (e.g. the GPU during its gather): @sums[i] is item i's, in the items'
	// order, one per item (entries of items holding no slot are ignored).
	// The payload is not read again (BELUGA_KVC_COMMIT_CHECKSUM); a reader
	// that verifies misses a block whose payload does not match its sum.
	std::vector<int> commit(std::span<const uint64_t> sums)
	{
		if (sums.size() != items_.size())
			throw std::invalid_argument("commit with checksums: " + std::to_string(sums.size()) +
						    " sums for " + std::to_string(items_.size()) +
						    " reserved items (give one per item, in their order)");
		for (size_t i = 0; i < items_.size(); i++)
			if (items_[i].data)
				items_[i].sum = sums[i];
		return commit(BELUGA_KVC_COMMIT_CHECKSUM);
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
		check(beluga_kvc_attach(base, size, &fp, opts, &kv), "attach");
		return Cache(kv);
	}
	// The cache in pool region @name (beluga_kvc_open).  With @create, a
	// missing region is created (@region_bytes, @mode) and formatted;
	// @region_bytes 0 never creates it (a shared region defined on every
	// host), and with BELUGA_KVC_ATTACH_FORMAT in @opts->flags a region
	// holding no cache yet is formatted with @create (one host's setting).
	static Cache open(beluga_pool *pool, const std::string &name, const beluga_kvc_fingerprint &fp,
			  const beluga_kvc_config *create = nullptr, uint64_t region_bytes = 0,
			  uint32_t mode = 0600, const beluga_kvc_attach_opts *opts = nullptr)
	{
		return open(pool, name, &fp, create, region_bytes, mode, opts);
	}
	// @fp NULL: an observer's (BELUGA_KVC_ATTACH_OBSERVE), any fingerprint.
	static Cache open(beluga_pool *pool, const std::string &name, const beluga_kvc_fingerprint *fp,
			  const beluga_kvc_config *create, uint64_t region_bytes, uint32_t mode,
			  const beluga_kvc_attach_opts *opts)
	{
		beluga_kvc *kv = nullptr;
		int r = beluga_kvc_open(pool, name.c_str(), fp, create, region_bytes, mode, opts, &kv);
		if (r < 0)
			throw Error(r, "open cache '" + name + "'");
		return Cache(kv);
	}
	// A read-only observer of whatever cache is there (tools, exporters).
	static Cache observe(void *base, size_t size)
	{
		beluga_kvc_attach_opts o;
		beluga_kvc_attach_opts_init(&o);
		o.flags = BELUGA_KVC_ATTACH_OBSERVE;
		beluga_kvc *kv = nullptr;
		check(beluga_kvc_attach(base, size, nullptr, &o, &kv), "attach an observer");
		return Cache(kv);
	}
	static Cache observe(beluga_pool *pool, const std::string &name)
	{
		beluga_kvc_attach_opts o;
		beluga_kvc_attach_opts_init(&o);
		o.flags = BELUGA_KVC_ATTACH_OBSERVE;
		return open(pool, name, nullptr, nullptr, 0, 0, &o);
	}
	static void format(void *base, size_t size, const beluga_kvc_config &cfg)
	{
		check(beluga_kvc_format(base, size, &cfg), "format");
	}
	// Format unless a cache is there or being formatted (beluga_kvc_format_once:
	// one formatting host, any number of its processes); true when this call
	// formatted it, false when someone else did.
	static bool format_once(void *base, size_t size, const beluga_kvc_config &cfg)
	{
		return check(beluga_kvc_format_once(base, size, &cfg), "format_once") == 0;
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
		check(beluga_kvc_put_batch(kv_, items.data(), items.size(), res.data()), "put");
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
		check(beluga_kvc_get_batch(kv_, items.data(), items.size(), res.data()), "get");
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
		return size_t(check(n, "lookup_prefix"));
	}
	// An empty Pin when the block is not cached.
	Pin pin(const Key &key, uint32_t flags = 0)
	{
		Pin p;
		int res;
		long n = beluga_kvc_pin(kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(key.data()),
					1, flags, &p.ref_, &res);
		if (check(n, "pin") == 1)
			p.kv_ = kv_;
		return p;
	}
	// 0, -ENOENT, -EXDEV or -EBUSY (beluga_kvc_remove).
	int remove(const Key &key)
	{
		int res;
		check(beluga_kvc_remove(kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(key.data()),
					1, &res), "remove");
		return res;
	}
	beluga_kvc_info info() const
	{
		beluga_kvc_info i;
		check(beluga_kvc_get_info(kv_, &i), "cache info");
		return i;
	}
	beluga_kvc_stats stats(int host = -1) const
	{
		beluga_kvc_stats s;
		check(beluga_kvc_get_stats(kv_, host, &s), "stats");
		return s;
	}
	int reclaim() { return int(check(beluga_kvc_reclaim(kv_), "reclaim")); }
	beluga_kvc_eviction eviction(int host = -1) const
	{
		beluga_kvc_eviction e;
		check(beluga_kvc_get_eviction(kv_, host, &e), "eviction");
		return e;
	}
	void set_eviction(const beluga_kvc_eviction &e) { check(beluga_kvc_set_eviction(kv_, &e), "set_eviction"); }
	// Several hosts: host index @host as this handle sees it.
	beluga_kvc_host_info host(uint32_t host) const
	{
		beluga_kvc_host_info h;
		check(beluga_kvc_get_host(kv_, host, &h), "host");
		return h;
	}
	// Declare host @host dead and take it over (beluga_kvc_take_over);
	// returns the sessions reclaimed.
	int take_over(uint32_t host, uint32_t flags = 0)
	{
		return int(check(beluga_kvc_take_over(kv_, host, flags), "take_over"));
	}
	// Blocks evicted (0: down to the low watermark).
	uint64_t evict(uint64_t max_blocks = 0) { return uint64_t(check(beluga_kvc_evict(kv_, max_blocks), "evict")); }
	// Every cached block of @host (-1: all hosts).
	std::vector<beluga_kvc_block_info> blocks(int host = -1, uint32_t flags = 0) const
	{
		std::vector<beluga_kvc_block_info> all;
		uint64_t cursor = 0;
		for (;;) {
			size_t at = all.size();
			all.resize(at + 256);
			long n = check(beluga_kvc_list_blocks(kv_, host, &cursor, flags, all.data() + at, 256),
				       "list_blocks");
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
		check(r, "inspect");
		return true;
	}
	beluga_kvc_check_report check_all(bool verify_data = false)
	{
		beluga_kvc_check_report r;
		check(beluga_kvc_check(kv_, verify_data, &r), "check");
		return r;
	}

	// ---- Batches of keys, and every host at once.

	// Pin @keys in one call: an empty Pin where a block is not cached, failed
	// verification (BELUGA_KVC_PIN_VERIFY) or found no free pin entry.
	std::vector<Pin> pin(std::span<const Key> keys, uint32_t flags = 0)
	{
		std::vector<beluga_kvc_ref> refs(keys.size());
		std::vector<int> res(keys.size());
		check(beluga_kvc_pin(kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(keys.data()),
				     keys.size(), flags, refs.data(), res.data()),
		      "pin");
		std::vector<Pin> pins(keys.size());
		for (size_t i = 0; i < keys.size(); i++)
			if (res[i] == 0) {
				pins[i].kv_ = kv_;
				pins[i].ref_ = refs[i];
			}
		return pins;
	}
	// Per key: 0, -ENOENT, -EXDEV or -EBUSY (beluga_kvc_remove).
	std::vector<int> remove(std::span<const Key> keys)
	{
		std::vector<int> res(keys.size());
		check(beluga_kvc_remove(kv_, reinterpret_cast<const uint8_t(*)[BELUGA_KVC_KEY_BYTES]>(keys.data()),
					keys.size(), res.data()),
		      "remove");
		return res;
	}
	// Every host index (0..max_hosts-1) as this handle sees it now.
	std::vector<beluga_kvc_host_info> hosts() const
	{
		std::vector<beluga_kvc_host_info> v(info().max_hosts);
		for (uint32_t h = 0; h < v.size(); h++)
			check(beluga_kvc_get_host(kv_, h, &v[h]), "host");
		return v;
	}

private:
	explicit Cache(beluga_kvc *kv) : kv_(kv) {}
	beluga_kvc *kv_;
};

} // namespace beluga::kvc
