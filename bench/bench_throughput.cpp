// SPDX-License-Identifier: Apache-2.0
// Put and get throughput of real KV block sizes, one thread and all cores,
// against memcpy of the same blocks between the same kinds of memory in the
// same run (private buffer <-> shared region).  Puts are also compared with
// a non-temporal copy of the same blocks (nt_copy below): the store's put
// must bypass the cache, while memcpy of a few MiB may be helped by it.
//
// Blocks: 16 tokens of Llama-3-8B (32 layers x K,V x 8 KV heads x 128 x
// bf16 = 2 MiB), 16 tokens of a 32B model (Qwen2.5-32B: 64 layers, 8 KV
// heads, 128, bf16 = 4 MiB), and LMCache's 256-token chunk of Llama-3-8B
// (32 MiB).  Puts go in batches of 8 into an emptied cache (eviction off:
// this measures the copy path; the eviction section measures eviction).
#include "bench.hpp"

#include <immintrin.h>

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

// The baseline for puts: the widest streaming-store loop this CPU has,
// written here on purpose and not shared with the store's copy (which it
// measures): @len a multiple of 256, @d 64-byte aligned; AVX-512 or AVX2,
// four lines per iteration, one sfence at the end.
__attribute__((target("avx512f"))) void nt_copy_avx512(uint8_t *d, const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i += 256) {
		__m512i a = _mm512_loadu_si512(s + i);
		__m512i b = _mm512_loadu_si512(s + i + 64);
		__m512i c = _mm512_loadu_si512(s + i + 128);
		__m512i e = _mm512_loadu_si512(s + i + 192);
		_mm512_stream_si512(reinterpret_cast<__m512i *>(d + i), a);
		_mm512_stream_si512(reinterpret_cast<__m512i *>(d + i + 64), b);
		_mm512_stream_si512(reinterpret_cast<__m512i *>(d + i + 128), c);
		_mm512_stream_si512(reinterpret_cast<__m512i *>(d + i + 192), e);
	}
	_mm_sfence();
}

__attribute__((target("avx2"))) void nt_copy_avx2(uint8_t *d, const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i += 256)
		for (size_t k = 0; k < 256; k += 64) {
			__m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + i + k));
			__m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + i + k + 32));
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d + i + k), a);
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d + i + k + 32), b);
		}
	_mm_sfence();
}

using CopyFn = void (*)(uint8_t *, const uint8_t *, size_t);

CopyFn nt_copy()
{
	if (__builtin_cpu_supports("avx512f"))
		return nt_copy_avx512;
	if (__builtin_cpu_supports("avx2"))
		return nt_copy_avx2;
	throw std::runtime_error("bench: the non-temporal baseline needs AVX2 or AVX-512");
}

const char *nt_copy_name() { return __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2"; }

enum class Copy { memcpy_in, memcpy_out, nt_in };

// Copies of @block-byte blocks between a private buffer and a shared region,
// @threads threads each on its own blocks, for about o.seconds.
double copy_rate(const Options &o, Region &dst, Buffer &src, size_t block, unsigned threads,
		 Copy how)
{
	CopyFn nt = how == Copy::nt_in ? nt_copy() : nullptr;
	size_t nreg = dst.size() / block, nsrc = src.size() / block;
	std::atomic<uint64_t> bytes{0};
	std::atomic<bool> stop{false};
	auto work = [&](unsigned t) {
		uint64_t done = 0;
		for (size_t i = t; !stop.load(std::memory_order_relaxed); i += threads) {
			uint8_t *r = dst.bytes() + (i % nreg) * block;
			uint8_t *p = src.data() + (i % nsrc) * block;
			if (how == Copy::nt_in)
				nt(r, p, block);
			else if (how == Copy::memcpy_in)
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
	double nt = 0;	     // the paired non-temporal copy (@scratch given)
	double put_mean = 0; // all put bytes / all put time (put: the median batch when paired)
};

// Puts into an emptied cache and gets of cached blocks, @threads copy threads.
// With @scratch, every timed put batch is followed by a timed non-temporal
// copy (nt_copy, one thread) of as many blocks from other, as cold, sources
// into @scratch: a baseline paired batch by batch with the puts, so that a
// machine whose load changes from one second to the next affects both alike;
// both are then the median batch (a batch during which the process was
// descheduled is an outlier on a loaded machine, not a rate).
StoreRates store_rates(const Options &o, Region &reg, Buffer &src, size_t block, unsigned threads,
		       Region *scratch = nullptr)
{
	CopyFn nt = scratch ? nt_copy() : nullptr;
	size_t nscratch = scratch ? scratch->size() / block : 0;
	uint64_t nt_next = 0;
	std::vector<double> put_batches, nt_batches;
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
			double took = seconds_since(p0);
			timed += took;
			put_batches.push_back(took);
			if (n != long(kBatch))
				throw std::runtime_error("bench: a put failed");
			bytes += kBatch * block;
			if (!nt)
				continue;
			auto n0 = Clock::now();
			for (size_t b = 0; b < kBatch; b++, nt_next++)
				nt(scratch->bytes() + (nt_next % nscratch) * block,
				   src.data() + ((id - kBatch + b + nsrc / 2) % nsrc) * block, block);
			nt_batches.push_back(seconds_since(n0));
		}
		std::vector<int> rm(fill);
		beluga_kvc_remove(kv, key_array(keys), fill, rm.data());
	}
	r.put = r.put_mean = double(bytes) / timed;
	if (nt) {
		r.put = double(kBatch * block) / median(put_batches);
		r.nt = double(kBatch * block) / median(nt_batches);
	}

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
	return copy_rate(o, dst, src, block, threads, Copy::memcpy_in);
}

void run_throughput(const Options &o, Report &rep)
{
	auto &rows = rep.section(std::string("Put and get throughput (store vs non-temporal ") +
				 nt_copy_name() + " copy and memcpy, same run)");
	unsigned all = all_threads(o);
	Region reg(std::max<size_t>(o.region_mib << 20, 8u * (32u << 20)));
	Buffer src(kSourceBytes);
	Region scratch(2 * kBatch * (32u << 20)); // the paired baseline's destination
	for (const Size &s : kSizes) {
		if (o.quick && s.bytes > (4u << 20))
			continue;
		double put1 = 0, nt1 = 0;
		for (unsigned t : {1u, all}) {
			// Three rounds, baselines and store alternating, medians kept:
			// a machine whose load changes affects every column alike.
			Options half = o;
			half.seconds = o.seconds / 2;
			std::vector<double> ins, outs, nts, pairs, puts, gets, means;
			for (int round = 0; round < 3; round++) {
				ins.push_back(copy_rate(half, reg, src, s.bytes, t, Copy::memcpy_in));
				outs.push_back(copy_rate(half, reg, src, s.bytes, t, Copy::memcpy_out));
				nts.push_back(copy_rate(half, reg, src, s.bytes, t, Copy::nt_in));
				StoreRates r = store_rates(half, reg, src, s.bytes, t,
							   t == 1 ? &scratch : nullptr);
				puts.push_back(r.put);
				gets.push_back(r.get);
				pairs.push_back(r.nt);
				means.push_back(r.put_mean);
			}
			double into = median(ins), out = median(outs), nt = median(nts);
			StoreRates st{median(puts), median(gets), median(pairs)};
			std::string who = std::string(s.name) + ", " + std::to_string(t) +
					  (t == 1 ? " thread" : " threads");
			if (s.bytes == (2u << 20) && t == 1) {
				rep.values["put_2MiB_1t"] = st.put;
				rep.values["get_2MiB_1t"] = st.get;
			}
			double mean = median(means);
			std::string note = "memcpy " + gbps(into) + ": " + ratio(mean, into);
			if (t == 1) {
				// Against the copy paired batch by batch (median batches);
				// the figures of whole windows beside it.
				note += "; whole windows: put " + gbps(mean) + ", nt-copy " + gbps(nt) +
					": " + ratio(mean, nt);
				put1 = mean;
				nt1 = nt;
				rows.push_back({"put " + who + " (median batch)", gbps(st.put),
						"nt-copy (paired) " + gbps(st.nt), ratio(st.put, st.nt), note});
			} else {
				note += fmt("; scaling from 1 thread: put %.2fx, nt-copy %.2fx",
					    mean / put1, nt / nt1);
				rows.push_back({"put " + who, gbps(mean), "nt-copy " + gbps(nt),
						ratio(mean, nt), note});
			}
			rows.push_back({"get " + who, gbps(st.get), "memcpy " + gbps(out),
					ratio(st.get, out), ""});
			if (all == 1)
				break;
		}
	}
}

} // namespace bench
