// SPDX-License-Identifier: Apache-2.0
// Saving KV blocks gathered from an engine's paged cache: zero-copy
// (beluga_kvc_reserve, gather straight into the slots, beluga_kvc_commit)
// against the two-copy path the connector used before (gather into a
// private staging buffer, then beluga_kvc_put_batch), same run, alternating
// rounds, medians.  And the cost of the commit's checksum pass, the question
// of where a block's checksum is computed when a device writes the payload:
//   - commit of slots the CPU just wrote (the CPU gather: lines in cache);
//   - commit of slots whose lines are not in this CPU's caches (flushed
//     before the commit, untimed): what the CPU pass costs after a GPU's
//     copy into the region, which leaves nothing in the CPU's caches;
//   - commit with the writer's checksum (BELUGA_KVC_COMMIT_CHECKSUM), no
//     pass, of slots not in the CPU's caches: what is left when the GPU
//     computes it during its gather (the write-back of lines the CPU does
//     not hold, and the publication);
//   - a put of the same blocks (its checksum fused with its copy) for scale.
//
// The engine side: vLLM's FlashAttention layout, one tensor per layer
// [2 (K,V)][pages][16 tokens][8 heads][128] bf16, so a pool block (16
// tokens of Llama-3-8B, 2 MiB) is gathered from 64 slices of 32 KiB.
// Batches of 16 blocks (a 256-token request), each figure the median batch
// in thread CPU time (see cpu_now), one thread (the gather runs
// on the engine's thread; copy_threads 1), in the coherent mode and the
// non-coherent one (which writes every line of the payload back at commit).
#include "bench.hpp"

#include <beluga/beluga.h>

namespace bench {
namespace {

constexpr size_t kLayers = 32;
constexpr size_t kSlice = 16 * 8 * 128 * 2;	     // one layer's K (or V) of one page
constexpr size_t kBlock = kLayers * 2 * kSlice;	     // 2 MiB
constexpr size_t kPages = 128;			     // engine pages: 256 MiB of KV
constexpr size_t kBatch = 16;

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

// The engine's paged KV: per layer [2][kPages][kSlice].
struct Paged {
	Buffer mem{kLayers * 2 * kPages * kSlice};
	const uint8_t *slice(size_t layer, size_t kv, size_t page) const
	{
		return mem.data() + ((layer * 2 + kv) * kPages + page) * kSlice;
	}
	// Block @page into @dst, in the pool's order [layers][K,V][...].
	void gather(size_t page, uint8_t *dst) const
	{
		for (size_t l = 0; l < kLayers; l++)
			for (size_t kv = 0; kv < 2; kv++)
				std::memcpy(dst + (l * 2 + kv) * kSlice, slice(l, kv, page), kSlice);
	}
};

struct Cache {
	beluga_kvc *kv = nullptr;
	size_t fill = 0; // blocks stored before the cache is emptied (untimed)
	std::vector<Key> keys;
	Cache(Region &reg, uint32_t coherence)
	{
		std::memset(reg.bytes(), 0, reg.size());
		beluga_kvc_config cfg;
		beluga_kvc_config_init(&cfg);
		cfg.fingerprint = fingerprint(kBlock);
		cfg.eviction = BELUGA_KVC_EVICT_NONE;
		if (beluga_kvc_format(reg.bytes(), reg.size(), &cfg))
			throw std::runtime_error(beluga_kvc_last_error());
		beluga_kvc_attach_opts ao;
		beluga_kvc_attach_opts_init(&ao);
		ao.copy_threads = 1;
		ao.coherence = coherence;
		if (beluga_kvc_attach(reg.bytes(), reg.size(), &cfg.fingerprint, &ao, &kv))
			throw std::runtime_error(beluga_kvc_last_error());
		beluga_kvc_info info;
		beluga_kvc_get_info(kv, &info);
		fill = info.slots_per_host * 9 / 10 / kBatch * kBatch;
		if (fill < kBatch)
			throw std::runtime_error("bench: region too small for a batch of 2 MiB blocks");
	}
	~Cache() { beluga_kvc_detach(kv); }
	// Called before each batch: empty the cache when it is 90 % full.
	void room()
	{
		if (keys.size() + kBatch <= fill)
			return;
		std::vector<int> rm(keys.size());
		beluga_kvc_remove(kv, key_array(keys), keys.size(), rm.data());
		keys.clear();
	}
};

enum class Path { two_copy, zero_copy, commit_hot, commit_cold, commit_given, put };

// This thread's CPU time in seconds: a batch's time without the time the
// thread spent preempted (the development machine runs many jobs on two
// vCPUs; every path here runs on the calling thread alone, copy_threads 1).
double cpu_now()
{
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Bytes per second of @path: a batch's bytes over the median CPU time of
// the batches run in about o.seconds, counting only the timed part (all of
// a save; for commit_*, the commit; for put, the put).
double rate(const Options &o, Cache &c, const Paged &src, Buffer &staging, Path path, uint64_t &id)
{
	std::vector<beluga_kvc_put> puts(kBatch);
	std::vector<beluga_kvc_reservation> res(kBatch);
	std::vector<int> r(kBatch);
	std::vector<double> times;
	for (auto t0 = Clock::now(); seconds_since(t0) < o.seconds || times.size() < 5;) {
		c.room();
		size_t first = c.keys.size();
		for (size_t b = 0; b < kBatch; b++, id++) {
			Key k;
			make_key(id, k.b);
			c.keys.push_back(k);
		}
		size_t page0 = (id * 7) % kPages;
		auto page = [&](size_t b) { return (page0 + b * 5) % kPages; };
		double p0 = cpu_now();
		long n = 0;
		if (path == Path::two_copy || path == Path::put) {
			for (size_t b = 0; b < kBatch; b++) {
				uint8_t *buf = staging.data() + b * kBlock;
				if (path == Path::two_copy)
					src.gather(page(b), buf);
				std::memcpy(puts[b].key, c.keys[first + b].b, 32);
				puts[b].data = buf;
				puts[b].len = kBlock;
			}
			if (path == Path::put)
				p0 = cpu_now(); // the staging buffer was filled before
			n = beluga_kvc_put_batch(c.kv, puts.data(), kBatch, r.data());
		} else {
			for (size_t b = 0; b < kBatch; b++) {
				res[b] = beluga_kvc_reservation{};
				std::memcpy(res[b].key, c.keys[first + b].b, 32);
				res[b].len = kBlock;
			}
			if (beluga_kvc_reserve(c.kv, res.data(), kBatch, r.data()) != long(kBatch))
				throw std::runtime_error(std::string("bench: reserve: ") +
							 beluga_kvc_last_error());
			for (size_t b = 0; b < kBatch; b++)
				src.gather(page(b), static_cast<uint8_t *>(res[b].data));
			uint32_t flags = 0;
			if (path == Path::commit_given) {
				for (size_t b = 0; b < kBatch; b++)
					res[b].sum = beluga_kvc_checksum(res[b].data, kBlock);
				flags = BELUGA_KVC_COMMIT_CHECKSUM;
			}
			if (path == Path::commit_cold || path == Path::commit_given)
				for (size_t b = 0; b < kBatch; b++)
					beluga_flush(res[b].data, kBlock);
			if (path != Path::zero_copy)
				p0 = cpu_now();
			n = beluga_kvc_commit(c.kv, res.data(), kBatch, flags, r.data());
		}
		times.push_back(cpu_now() - p0);
		if (n != long(kBatch))
			throw std::runtime_error(std::string("bench: a save failed: ") +
						 beluga_kvc_last_error());
	}
	return double(kBatch * kBlock) / median(times);
}

} // namespace

void run_reserve(const Options &o, Report &rep)
{
	auto &rows = rep.section("Saving gathered blocks: zero-copy (reserve, gather, commit) vs "
				 "gather + put, and the commit's checksum pass (2 MiB blocks, 1 thread)");
	Region reg(std::max<size_t>(o.region_mib << 20, 4 * kBatch * kBlock));
	Buffer staging(kBatch * kBlock);
	Paged src;
	for (size_t i = 0; i < src.mem.size(); i += 8)
		std::memcpy(src.mem.data() + i, &i, 8);
	uint64_t id = 0;
	Options half = o;
	half.seconds = o.seconds / 2;
	for (uint32_t mode : {uint32_t(BELUGA_KVC_COHERENT), uint32_t(BELUGA_KVC_NONCOHERENT)}) {
		const char *m = mode == BELUGA_KVC_COHERENT ? "coherent" : "non-coherent";
		Cache c(reg, mode);
		// Rounds alternate the paths: a machine whose load changes affects
		// every column alike.
		std::vector<double> two, zero, hot, cold, given, put;
		for (int round = 0; round < 3; round++) {
			two.push_back(rate(half, c, src, staging, Path::two_copy, id));
			zero.push_back(rate(half, c, src, staging, Path::zero_copy, id));
			hot.push_back(rate(half, c, src, staging, Path::commit_hot, id));
			cold.push_back(rate(half, c, src, staging, Path::commit_cold, id));
			given.push_back(rate(half, c, src, staging, Path::commit_given, id));
			put.push_back(rate(half, c, src, staging, Path::put, id));
		}
		double t = median(two), z = median(zero), h = median(hot), k = median(cold),
		       g = median(given), p = median(put);
		auto us = [](double rate) { return fmt("%.0f us per 2 MiB block", 2097152.0 / rate * 1e6); };
		rows.push_back({fmt("save, zero-copy (%s)", m), gbps(z), "gather + put " + gbps(t),
				ratio(z, t), "reserve + gather into the slots + commit"});
		rows.push_back({fmt("commit, slots just written by the CPU (%s)", m), gbps(h),
				"put " + gbps(p), ratio(h, p), us(h) + "; put: checksum fused with its copy"});
		rows.push_back({fmt("commit, slots not in the CPU's caches (%s)", m), gbps(k),
				"put " + gbps(p), ratio(k, p), us(k) + "; what a CPU pass costs after a GPU's copy"});
		rows.push_back({fmt("commit, writer's checksum (%s)", m), gbps(g), "put " + gbps(p),
				ratio(g, p), us(g) + "; no pass (BELUGA_KVC_COMMIT_CHECKSUM), slots not in the caches"});
		if (mode == BELUGA_KVC_COHERENT) {
			rep.values["save_zero_copy"] = z;
			rep.values["save_two_copy"] = t;
		}
	}
}

} // namespace bench
