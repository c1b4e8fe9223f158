// SPDX-License-Identifier: Apache-2.0
// Put and get throughput of real KV block sizes, one thread and all cores,
// against memcpy of the same blocks between the same kinds of memory in the
// same run (private buffer <-> shared region).
//
// Blocks: 16 tokens of Llama-3-8B (32 layers x K,V x 8 KV heads x 128 x
// bf16 = 2 MiB), 16 tokens of a 32B model (Qwen2.5-32B: 64 layers, 8 KV
// heads, 128, bf16 = 4 MiB), and LMCache's 256-token chunk of Llama-3-8B
// (32 MiB).  Puts go in batches of 8 into an emptied cache (eviction off:
// this measures the copy path; the eviction section measures eviction).
#include "bench.hpp"

#include <atomic>
#include <thread>

namespace bench {
namespace {

struct Size {
	const char *name;
	size_t bytes;
};

const Size kSizes[] = {
	{"2 MiB (16 tok, Llama-3-8B)", 2u << 20},
	{"4 MiB (16 tok, 32B model)", 4u << 20},
	{"32 MiB (256 tok, Llama-3-8B)", 32u << 20},
};

constexpr size_t kSourceBytes = 256u << 20; // private side: beyond the caches
constexpr size_t kBatch = 8;

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

unsigned all_threads(const Options &o)
{
	return o.threads ? o.threads : unsigned(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

// Copies of @block-byte blocks between a private buffer and a shared region,
// @threads threads each on its own blocks, for about o.seconds.
double copy_rate(const Options &o, Region &dst, Buffer &src, size_t block, unsigned threads,
		 bool to_region)
{
	size_t nreg = dst.size() / block, nsrc = src.size() / block;
	std::atomic<uint64_t> bytes{0};
	std::atomic<bool> stop{false};
	auto work = [&](unsigned t) {
		uint64_t done = 0;
		for (size_t i = t; !stop.load(std::memory_order_relaxed); i += threads) {
			uint8_t *r = dst.bytes() + (i % nreg) * block;
			uint8_t *p = src.data() + (i % nsrc) * block;
			if (to_region)
				std::memcpy(r, p, block);
			else
				std::memcpy(p, r, block);
			done += block;
		}
		bytes += done;
	};
	auto t0 = Clock::now();
	std::vector<std::thread> pool;
	for (unsigned t = 1; t < threads; t++)
		pool.emplace_back(work, t);
	std::thread timer([&] {
		std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
		stop = true;
	});
	work(0);
	timer.join();
	for (auto &t : pool)
		t.join();
	return double(bytes.load()) / seconds_since(t0);
}

struct StoreRates {
	double put = 0, get = 0;
};

// Puts into an emptied cache and gets of cached blocks, @threads copy threads.
StoreRates store_rates(const Options &o, Region &reg, Buffer &src, size_t block, unsigned threads)
{
	size_t nsrc = src.size() / block;
	std::memset(reg.bytes(), 0, reg.size()); // a fresh region is zero
	beluga_kvc_config cfg;
	beluga_kvc_config_init(&cfg);
	cfg.fingerprint = fingerprint(block);
	cfg.eviction = BELUGA_KVC_EVICT_NONE;
	if (beluga_kvc_format(reg.bytes(), reg.size(), &cfg))
		throw std::runtime_error(beluga_kvc_last_error());
	beluga_kvc_attach_opts ao;
	beluga_kvc_attach_opts_init(&ao);
	ao.copy_threads = threads;
	beluga_kvc *kv = nullptr;
	if (beluga_kvc_attach(reg.bytes(), reg.size(), &cfg.fingerprint, &ao, &kv))
		throw std::runtime_error(beluga_kvc_last_error());
	beluga_kvc_info info;
	beluga_kvc_get_info(kv, &info);
	size_t fill = std::max<size_t>(kBatch, info.slots_per_host * 9 / 10 / kBatch * kBatch);
	StoreRates r;

	// Put: batches of new keys; once the cache is 90 % full, remove them
	// all (not timed) and go on.
	uint64_t id = 0, bytes = 0;
	double timed = 0;
	std::vector<beluga_kvc_put> puts(kBatch);
	std::vector<int> res(kBatch);
	std::vector<Key> keys(fill);
	for (auto t0 = Clock::now(); seconds_since(t0) < o.seconds;) {
		for (size_t f = 0; f < fill; f += kBatch) {
			for (size_t b = 0; b < kBatch; b++, id++) {
				make_key(id, puts[b].key);
				std::memcpy(keys[f + b].b, puts[b].key, 32);
				puts[b].data = src.data() + (id % nsrc) * block;
				puts[b].len = block;
			}
			auto p0 = Clock::now();
			long n = beluga_kvc_put_batch(kv, puts.data(), kBatch, res.data());
			timed += seconds_since(p0);
			if (n != long(kBatch))
				throw std::runtime_error("bench: a put failed");
			bytes += kBatch * block;
		}
		std::vector<int> rm(fill);
		beluga_kvc_remove(kv, key_array(keys), fill, rm.data());
	}
	r.put = double(bytes) / timed;

	// Get: fill once, then read random cached blocks in batches.
	for (size_t f = 0; f < fill; f += kBatch) {
		for (size_t b = 0; b < kBatch; b++) {
			make_key(f + b, puts[b].key);
			std::memcpy(keys[f + b].b, puts[b].key, 32);
			puts[b].data = src.data() + ((f + b) % nsrc) * block;
			puts[b].len = block;
		}
		beluga_kvc_put_batch(kv, puts.data(), kBatch, res.data());
	}
	std::vector<beluga_kvc_get> gets(kBatch);
	uint64_t x = 12345;
	bytes = 0;
	auto t0 = Clock::now();
	for (uint64_t i = 0; seconds_since(t0) < o.seconds; i++) {
		for (size_t b = 0; b < kBatch; b++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			std::memcpy(gets[b].key, keys[(x >> 33) % fill].b, 32);
			gets[b].dst = src.data() + ((i * kBatch + b) % nsrc) * block;
			gets[b].cap = block;
		}
		if (beluga_kvc_get_batch(kv, gets.data(), kBatch, res.data()) != long(kBatch))
			throw std::runtime_error("bench: a get missed");
		bytes += kBatch * block;
	}
	r.get = double(bytes) / seconds_since(t0);
	beluga_kvc_detach(kv);
	return r;
}

} // namespace

double memcpy_rate(const Options &o, size_t block, unsigned threads)
{
	Region dst(std::max(o.region_mib << 20, 4 * block));
	Buffer src(std::max(kSourceBytes, 4 * block));
	return copy_rate(o, dst, src, block, threads, true);
}

void run_throughput(const Options &o, Report &rep)
{
	auto &rows = rep.section("Put and get throughput (store vs memcpy, same run)");
	unsigned all = all_threads(o);
	Region reg(std::max<size_t>(o.region_mib << 20, 8u * (32u << 20)));
	Buffer src(kSourceBytes);
	for (const Size &s : kSizes) {
		if (o.quick && s.bytes > (4u << 20))
			continue;
		for (unsigned t : {1u, all}) {
			if (t == all && all == 1 && t != 1)
				continue;
			// Three rounds, baseline and store alternating, medians kept:
			// a machine whose load changes affects both columns alike.
			Options half = o;
			half.seconds = o.seconds / 2;
			std::vector<double> ins, outs, puts, gets;
			for (int round = 0; round < 3; round++) {
				ins.push_back(copy_rate(half, reg, src, s.bytes, t, true));
				outs.push_back(copy_rate(half, reg, src, s.bytes, t, false));
				StoreRates r = store_rates(half, reg, src, s.bytes, t);
				puts.push_back(r.put);
				gets.push_back(r.get);
			}
			double into = median(ins), out = median(outs);
			StoreRates st{median(puts), median(gets)};
			std::string who = std::string(s.name) + ", " + std::to_string(t) +
					  (t == 1 ? " thread" : " threads");
			if (s.bytes == (2u << 20) && t == 1) {
				rep.values["put_2MiB_1t"] = st.put;
				rep.values["get_2MiB_1t"] = st.get;
			}
			rows.push_back({"put " + who, gbps(st.put), "memcpy " + gbps(into),
					ratio(st.put, into), ""});
			rows.push_back({"get " + who, gbps(st.get), "memcpy " + gbps(out),
					ratio(st.get, out), ""});
			if (all == 1)
				break;
		}
	}
}

} // namespace bench
