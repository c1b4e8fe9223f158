// SPDX-License-Identifier: Apache-2.0
// Prefix lookups as hosts are added: probes per second on one core for
// 32-block prefix chains in caches of 1, 2, 4, 8 and 16 host partitions,
// against a private std::unordered_map holding the same keys, measured
// right beside each figure; and a get of a block another host published
// (the non-coherent path: descriptor and payload invalidated before they are
// read) against a get of one of the reader's own blocks; and what one
// invalidation with its fence costs on this machine.  The map's keys are
// string_views into the benchmark's key array, hashed by their first 8
// bytes (the keys are random), probed with the same chains in the same way
// on the same thread.
//
// Rates are in this thread's CPU time (the machine they were developed on
// is shared), the store's and the map's in alternating half-windows.
//
// One process plays every host (the claim protocol's waits are skipped: no
// other process claims these indices).  Each key's block is stored by a
// host drawn at random, so a chain's blocks are spread over every host's
// partition; each chain is cached up to a random length 0..32, so most
// chain lookups end with a miss.  The reader attaches NONCOHERENT (CXL 2.0
// sharing), so every read of another host's lines is preceded by its
// invalidation, as the store does on such an attach.
#include "bench.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include <string_view>
#include <unordered_map>

namespace bench {
namespace {

constexpr size_t kChain = 32;

// Claiming a host index waits about four heartbeat periods (lease / 8, see
// kvcache.h), so the hosts attach with short leases: the writers, detached
// before anything is timed, 80 ms (40 ms of claim wait each); the reader,
// whose keeper beats while the lookups are timed, 800 ms (one heartbeat
// every 100 ms, 0.4 s of claim wait).
constexpr uint32_t kReaderLeaseMs = 800;
constexpr uint32_t kWriterLeaseMs = 80;

// A cache of @hosts partitions in @reg: handles for every host (index 0,
// NONCOHERENT, is the reader; the others are detached by drop_writers()).
struct Hosts {
	beluga_kvc_config cfg;
	std::vector<beluga_kvc *> kv;
	uint64_t slots = 0;
	Hosts(Region &reg, uint32_t hosts, uint64_t payload)
	{
		beluga_kvc_config_init(&cfg);
		cfg.fingerprint = fingerprint(payload);
		cfg.eviction = BELUGA_KVC_EVICT_NONE;
		cfg.max_hosts = hosts;
		if (beluga_kvc_format(reg.bytes(), reg.size(), &cfg))
			throw std::runtime_error(beluga_kvc_last_error());
		for (uint32_t h = 0; h < hosts; h++) {
			beluga_kvc_attach_opts ao;
			beluga_kvc_attach_opts_init(&ao);
			ao.copy_threads = 1;
			ao.host_id = h;
			ao.lease_ms = h == 0 ? kReaderLeaseMs : kWriterLeaseMs;
			ao.coherence = BELUGA_KVC_NONCOHERENT;
			beluga_kvc *k = nullptr;
			if (beluga_kvc_attach(reg.bytes(), reg.size(), &cfg.fingerprint, &ao, &k)) {
				std::string e = beluga_kvc_last_error();
				close();
				throw std::runtime_error(e);
			}
			kv.push_back(k);
		}
		beluga_kvc_info info;
		beluga_kvc_get_info(kv[0], &info);
		slots = info.slots_per_host;
	}
	// The other hosts' blocks stay published after their handles go.
	void drop_writers()
	{
		for (size_t h = 1; h < kv.size(); h++) {
			beluga_kvc_detach(kv[h]);
			kv[h] = nullptr;
		}
	}
	void close()
	{
		for (beluga_kvc *k : kv)
			beluga_kvc_detach(k);
		kv.clear();
	}
	~Hosts() { close(); }
};

struct KeyHash {
	size_t operator()(std::string_view k) const
	{
		uint64_t h;
		std::memcpy(&h, k.data(), 8);
		return h;
	}
};

inline uint64_t next(uint64_t &x)
{
	x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x >> 33;
}

// This thread's CPU time, in seconds: the store and the map are timed by
// it, so that the time this shared machine gives other jobs counts for
// neither (cache pollution by them still does).
double thread_seconds()
{
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Rates {
	double store = 0, map = 0;
	uint64_t hits = 0, misses = 0;
};

// Probes per second (keys examined: the cached prefix and the first miss)
// of the store and of the map, over the same random sequence of chains.
Rates chain_rates(const Options &o, uint32_t hosts, size_t chains_wanted)
{
	size_t stored_wanted = chains_wanted * kChain / 2;
	// Room for the stored keys at 80 % of each host's slots, whatever the
	// random spread (64-byte blocks: about 200 bytes of region per slot).
	size_t bytes = std::max<size_t>(64u << 20, stored_wanted * 300 + (size_t(hosts) << 22));
	Region reg(bytes);
	Hosts c(reg, hosts, 64);
	size_t chains = std::min(chains_wanted, size_t(double(c.slots) * hosts * 0.8 * 2 / kChain));
	std::vector<Key> keys(chains * kChain);
	std::vector<uint8_t> len(chains);
	std::unordered_map<std::string_view, uint32_t, KeyHash> map;
	uint64_t x = 12345;
	std::vector<std::vector<beluga_kvc_put>> puts(hosts);
	uint8_t payload[64] = {};
	for (size_t ch = 0; ch < chains; ch++) {
		len[ch] = uint8_t(next(x) % (kChain + 1));
		for (size_t k = 0; k < kChain; k++) {
			Key &key = keys[ch * kChain + k];
			make_key(ch * kChain + k, key.b);
			if (k >= len[ch])
				continue;
			beluga_kvc_put p{};
			std::memcpy(p.key, key.b, 32);
			p.data = payload;
			p.len = sizeof(payload);
			puts[next(x) % hosts].push_back(p);
			map.emplace(std::string_view(reinterpret_cast<char *>(key.b), 32), uint32_t(k));
		}
	}
	for (uint32_t h = 0; h < hosts; h++) {
		std::vector<int> res(puts[h].size());
		long n = beluga_kvc_put_batch(c.kv[h], puts[h].data(), puts[h].size(), res.data());
		if (n != long(puts[h].size()))
			throw std::runtime_error(fmt("lookup-hosts: host %u stored %ld of %zu blocks", h, n,
						     puts[h].size()));
	}
	c.drop_writers();
	beluga_kvc *kv = c.kv[0];
	Rates r;
	// Warm-up (page tables, the reader's first look at every host), then
	// the store and the map alternately, twice, so that a load change on
	// this shared machine hits both columns alike.
	for (size_t ch = 0; ch < std::min<size_t>(chains, 20000); ch++)
		beluga_kvc_lookup_prefix(kv, key_array(keys) + ch * kChain, kChain);
	uint64_t sprobes = 0, mprobes = 0;
	double st = 0, mt = 0;
	for (int round = 0; round < 2; round++) {
		uint64_t y = 99 + round;
		auto t0 = Clock::now();
		double c0 = thread_seconds();
		while (seconds_since(t0) < o.seconds / 2)
			for (int rep = 0; rep < 256; rep++) {
				size_t ch = next(y) % chains;
				long n = beluga_kvc_lookup_prefix(kv, key_array(keys) + ch * kChain, kChain);
				if (n != len[ch])
					throw std::runtime_error(fmt("lookup-hosts: chain %zu: %ld cached, "
								     "expected %u", ch, n, len[ch]));
				sprobes += uint64_t(n) + (n < long(kChain));
				r.hits += uint64_t(n);
				r.misses += n < long(kChain);
			}
		st += thread_seconds() - c0;
		y = 99 + round;
		t0 = Clock::now();
		c0 = thread_seconds();
		uint64_t found = 0;
		while (seconds_since(t0) < o.seconds / 2)
			for (int rep = 0; rep < 256; rep++) {
				size_t ch = next(y) % chains;
				size_t k = 0;
				for (; k < kChain; k++)
					if (!map.count(std::string_view(
						    reinterpret_cast<char *>(keys[ch * kChain + k].b), 32)))
						break;
				found += k;
				mprobes += k + (k < kChain);
			}
		mt += thread_seconds() - c0;
		if (!found)
			throw std::runtime_error("lookup-hosts: the map found nothing");
	}
	r.store = double(sprobes) / st;
	r.map = double(mprobes) / mt;
	return r;
}

// Gets of 16 KiB blocks: from another host's partition and from our own.
void foreign_get(const Options &o, std::vector<Row> &rows)
{
	constexpr size_t kBlock = 16 * 1024;
	Region reg(std::max<size_t>(64u << 20, (o.region_mib << 20) / 4));
	Hosts c(reg, 2, kBlock);
	size_t n = c.slots * 8 / 10;
	Buffer src(kBlock), dst(kBlock);
	std::memset(src.data(), 0x5a, kBlock);
	for (uint32_t h = 0; h < 2; h++)
		for (size_t i = 0; i < n; i++) {
			beluga_kvc_put p{};
			make_key(uint64_t(h) << 40 | i, p.key);
			p.data = src.data();
			p.len = kBlock;
			int res;
			if (beluga_kvc_put_batch(c.kv[h], &p, 1, &res) != 1)
				throw std::runtime_error("lookup-hosts: put failed");
		}
	c.drop_writers();
	size_t samples = o.quick ? 20000 : 100000;
	auto timed = [&](uint32_t h) {
		std::vector<uint64_t> ns;
		ns.reserve(samples);
		uint64_t x = 5;
		auto t0 = Clock::now();
		for (size_t i = 0; i < samples && (i % 1024 || seconds_since(t0) < 2 * o.seconds); i++) {
			beluga_kvc_get g{};
			make_key(uint64_t(h) << 40 | next(x) % n, g.key);
			g.dst = dst.data();
			g.cap = kBlock;
			int res;
			uint64_t a = now_ns();
			long hit = beluga_kvc_get_batch(c.kv[0], &g, 1, &res);
			ns.push_back(now_ns() - a);
			if (hit != 1)
				throw std::runtime_error("lookup-hosts: get missed");
		}
		return percentiles(ns);
	};
	// Alternate, as above.
	Percentiles local = timed(0), remote = timed(1);
	Percentiles local2 = timed(0), remote2 = timed(1);
	auto us = [](double ns) { return fmt("%.2f us", ns / 1000); };
	double lp50 = std::min(local.p50, local2.p50), rp50 = std::min(remote.p50, remote2.p50);
	rows.push_back({"get 16 KiB published by another host, p50", us(rp50), "own host's " + us(lp50),
			ratio(rp50, lp50),
			fmt("p99 %s vs %s; %zu blocks per host, 2 rounds (lower p50 kept)",
			    us(std::min(remote.p99, remote2.p99)).c_str(),
			    us(std::min(local.p99, local2.p99)).c_str(), n)});
}

#if defined(__x86_64__)
__attribute__((target("clflushopt"))) void flush_opt(const void *p) { _mm_clflushopt(const_cast<void *>(p)); }

// The store's invalidation of one line (view.cpp): clflushopt where the CPU
// has it, else clflush; then a full fence.
bool has_clflushopt()
{
	unsigned a, b, c, d;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 23 & 1);
}

void invalidate_line(const void *p, bool opt)
{
	if (opt)
		flush_opt(p);
	else
		_mm_clflush(p);
	_mm_mfence();
}

// What a non-coherent read of another host's line costs at least: the
// invalidation of a line this CPU holds (clflushopt), the fence after it and
// the read from memory, against a read of a line not in the caches.  A
// lookup of several hosts pays the first once per call of up to 32 keys
// (one fence for all its lines); a lookup of one host pays neither.
void invalidation_cost(const Options &o, std::vector<Row> &rows)
{
	Region mem(256u << 20);
	size_t lines = mem.size() / 64, samples = o.quick ? 20000 : 200000;
	std::vector<uint64_t> inval, plain;
	inval.reserve(samples);
	plain.reserve(samples);
	uint64_t x = 11;
	volatile uint64_t sink = 0;
	volatile uint8_t *m = mem.bytes();
	bool opt = has_clflushopt();
	for (size_t i = 0; i < samples; i++) {
		const uint8_t *a = mem.bytes() + next(x) % lines * 64, *b = mem.bytes() + next(x) % lines * 64;
		sink = sink + m[a - mem.bytes()]; // cached, as a copy read earlier would be
		uint64_t t0 = now_ns();
		invalidate_line(a, opt);
		sink = sink + m[a - mem.bytes()];
		uint64_t t1 = now_ns();
		sink = sink + m[b - mem.bytes()];
		uint64_t t2 = now_ns();
		inval.push_back(t1 - t0);
		plain.push_back(t2 - t1);
	}
	Percentiles pi = percentiles(inval), pp = percentiles(plain);
	rows.push_back({"invalidate a cached line, fence, read it, p50", fmt("%.0f ns", pi.p50),
			fmt("read of a random line %.0f ns", pp.p50), ratio(pi.p50, pp.p50),
			fmt("%s + mfence; p99 %.0f vs %.0f ns; both include a clock read",
			    opt ? "clflushopt" : "clflush", pi.p99, pp.p99)});
}
#endif

} // namespace

void run_lookup_hosts(const Options &o, Report &rep)
{
	auto &rows = rep.section("Prefix lookup across host partitions (1 core, NONCOHERENT reader)");
	size_t chains = o.quick ? 4000 : 40000;
	double one = 0, one_ratio = 0;
	for (uint32_t hosts : {1u, 2u, 4u, 8u, 16u}) {
		Rates r = chain_rates(o, hosts, chains);
		if (hosts == 1) {
			one = r.store;
			one_ratio = r.store / r.map;
		}
		// "vs 1 host" twice: the raw rate, and the ratio to the map
		// divided by the one-host row's (a load change between rows,
		// which hits the map alike, cancels out).
		rows.push_back({fmt("32-block chains, %u host%s", hosts, hosts > 1 ? "s" : ""),
				fmt("%.2f M probes/s", r.store / 1e6),
				fmt("unordered_map %.2f M/s", r.map / 1e6), ratio(r.store, r.map),
				fmt("%s the 1-host rate (%s by ratio to the map); %.0f ns per probe; "
				    "%.1f %% misses",
				    ratio(r.store, one).c_str(), ratio(r.store / r.map, one_ratio).c_str(),
				    1e9 / r.store, 100.0 * double(r.misses) / double(r.hits + r.misses))});
	}
	foreign_get(o, rows);
#if defined(__x86_64__)
	invalidation_cost(o, rows);
#endif
}

} // namespace bench
