// SPDX-License-Identifier: Apache-2.0
// Small-block (16 KiB) put/get latency percentiles against memcpy of 16 KiB
// timed the same way, and prefix lookup: blocks probed per second on one
// core and the latency of one probe, against a private std::unordered_map
// holding the same keys (what an index that nobody else shares costs).
// Each operation is timed on its own with CLOCK_MONOTONIC (about 20 ns of
// the figures is the clock itself, in both columns).
#include "bench.hpp"

#include <string_view>
#include <unordered_map>

namespace bench {
namespace {

constexpr size_t kSmall = 16 * 1024;

struct Store {
	Region reg;
	beluga_kvc_config cfg;
	beluga_kvc *kv = nullptr;
	uint64_t slots = 0;
	Store(size_t bytes, size_t payload) : reg(bytes)
	{
		beluga_kvc_config_init(&cfg);
		cfg.fingerprint = fingerprint(payload);
		cfg.eviction = BELUGA_KVC_EVICT_NONE;
		beluga_kvc_attach_opts ao;
		beluga_kvc_attach_opts_init(&ao);
		ao.copy_threads = 1;
		if (beluga_kvc_format(reg.bytes(), reg.size(), &cfg) ||
		    beluga_kvc_attach(reg.bytes(), reg.size(), &cfg.fingerprint, &ao, &kv))
			throw std::runtime_error(beluga_kvc_last_error());
		beluga_kvc_info info;
		beluga_kvc_get_info(kv, &info);
		slots = info.slots_per_host;
	}
	~Store() { beluga_kvc_detach(kv); }
};

size_t samples(const Options &o) { return o.quick ? 20000 : 200000; }

// Time @op(i) one call at a time, for samples() calls or o.seconds.
template <typename Op> std::vector<uint64_t> timed(const Options &o, Op op)
{
	std::vector<uint64_t> ns;
	ns.reserve(samples(o));
	auto t0 = Clock::now();
	for (size_t i = 0; i < samples(o) && (i % 1024 || seconds_since(t0) < 4 * o.seconds); i++) {
		uint64_t a = now_ns();
		op(i);
		ns.push_back(now_ns() - a);
	}
	return ns;
}

std::string us(double ns) { return fmt("%.2f us", ns / 1000); }

void add_latency(std::vector<Row> &rows, const std::string &what, const Percentiles &p,
		 const Percentiles &base, const char *base_name)
{
	rows.push_back({what + " p50", us(p.p50), std::string(base_name) + " " + us(base.p50),
			ratio(p.p50, base.p50), fmt("p90 %s, p99 %s, p99.9 %s (%zu samples)",
						    us(p.p90).c_str(), us(p.p99).c_str(),
						    us(p.p999).c_str(), p.n)});
}

void small_blocks(const Options &o, std::vector<Row> &rows, std::map<std::string, double> &rep_values)
{
	Store s(std::max<size_t>(64u << 20, (o.region_mib << 20) / 4), kSmall);
	Buffer src(64u << 20);
	size_t nsrc = src.size() / kSmall, fill = s.slots * 9 / 10;
	std::vector<Key> keys(fill);
	uint64_t id = 0;
	size_t used = 0;
	// Put: one block a call; the cache is emptied (not timed) when 90 % full.
	std::vector<uint64_t> put_ns;
	auto t0 = Clock::now();
	for (size_t i = 0; i < samples(o) && (i % 1024 || seconds_since(t0) < 4 * o.seconds); i++) {
		if (used == fill) {
			std::vector<int> rm(fill);
			beluga_kvc_remove(s.kv, key_array(keys), fill, rm.data());
			used = 0;
		}
		beluga_kvc_put p{};
		make_key(id++, p.key);
		std::memcpy(keys[used++].b, p.key, 32);
		p.data = src.data() + (i % nsrc) * kSmall;
		p.len = kSmall;
		int r;
		uint64_t a = now_ns();
		beluga_kvc_put_batch(s.kv, &p, 1, &r);
		put_ns.push_back(now_ns() - a);
	}
	auto put = percentiles(put_ns);
	// Get: random cached blocks.
	for (size_t k = used; k < fill; k++) {
		beluga_kvc_put p{};
		make_key(id++, p.key);
		std::memcpy(keys[k].b, p.key, 32);
		p.data = src.data() + (k % nsrc) * kSmall;
		p.len = kSmall;
		int r;
		beluga_kvc_put_batch(s.kv, &p, 1, &r);
	}
	uint64_t x = 99;
	auto get = percentiles(timed(o, [&](size_t i) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		beluga_kvc_get g{};
		std::memcpy(g.key, keys[(x >> 33) % fill].b, 32);
		g.dst = src.data() + (i % nsrc) * kSmall;
		g.cap = kSmall;
		int r;
		beluga_kvc_get_batch(s.kv, &g, 1, &r);
	}));
	// Baselines: memcpy of 16 KiB into and out of the same region.
	size_t nreg = s.reg.size() / kSmall;
	auto into = percentiles(timed(o, [&](size_t i) {
		std::memcpy(s.reg.bytes() + ((i * 7919) % nreg) * kSmall, src.data() + (i % nsrc) * kSmall,
			    kSmall);
	}));
	auto outof = percentiles(timed(o, [&](size_t i) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		std::memcpy(src.data() + (i % nsrc) * kSmall, s.reg.bytes() + ((x >> 33) % nreg) * kSmall,
			    kSmall);
	}));
	rep_values["put_16KiB_p50"] = put.p50;
	rep_values["get_16KiB_p50"] = get.p50;
	add_latency(rows, "put 16 KiB", put, into, "memcpy");
	add_latency(rows, "get 16 KiB", get, outof, "memcpy");
}

struct KeyHash {
	size_t operator()(std::string_view k) const
	{
		uint64_t h;
		std::memcpy(&h, k.data(), 8);
		return h;
	}
};

void lookups(const Options &o, std::vector<Row> &rows)
{
	constexpr size_t kChain = 32;
	Store s(std::max<size_t>(64u << 20, (o.region_mib << 20) / 4), 64);
	size_t nkeys = std::min<size_t>(s.slots * 8 / 10, o.quick ? 100000 : 1000000) / kChain * kChain;
	std::vector<Key> keys(nkeys);
	std::unordered_map<std::string_view, uint32_t, KeyHash> map;
	map.reserve(nkeys);
	uint8_t payload[64] = {};
	for (size_t k = 0; k < nkeys; k += 64) {
		beluga_kvc_put p[64];
		int r[64];
		size_t n = std::min<size_t>(64, nkeys - k);
		for (size_t b = 0; b < n; b++) {
			make_key(k + b, keys[k + b].b);
			std::memcpy(p[b].key, keys[k + b].b, 32);
			p[b].data = payload;
			p[b].len = sizeof(payload);
			map.emplace(std::string_view(reinterpret_cast<char *>(keys[k + b].b), 32),
				    uint32_t(k + b));
		}
		beluga_kvc_put_batch(s.kv, p, n, r);
	}
	size_t chains = nkeys / kChain;
	// Throughput: whole cached chains of 32 keys.
	uint64_t x = 7, probes = 0;
	auto t0 = Clock::now();
	while (seconds_since(t0) < o.seconds)
		for (int rep = 0; rep < 256; rep++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			size_t c = (x >> 33) % chains;
			probes += size_t(beluga_kvc_lookup_prefix(s.kv, key_array(keys) + c * kChain, kChain));
		}
	double rate = double(probes) / seconds_since(t0);
	uint64_t found = 0, mprobes = 0;
	t0 = Clock::now();
	while (seconds_since(t0) < o.seconds)
		for (int rep = 0; rep < 256; rep++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			size_t c = (x >> 33) % chains;
			for (size_t k = 0; k < kChain; k++, mprobes++)
				found += map.count(std::string_view(
					reinterpret_cast<char *>(keys[c * kChain + k].b), 32));
		}
	double mrate = double(mprobes) / seconds_since(t0);
	rows.push_back({"prefix lookup, 32-block chains, 1 core",
			fmt("%.1f M probes/s", rate / 1e6),
			fmt("unordered_map %.1f M/s", mrate / 1e6), ratio(rate, mrate),
			fmt("%.0f ns per probe", 1e9 / rate)});
	// Latency of one probe (a one-key lookup).
	auto one = percentiles(timed(o, [&](size_t) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		beluga_kvc_lookup_prefix(s.kv, key_array(keys) + (x >> 33) % nkeys, 1);
	}));
	auto mone = percentiles(timed(o, [&](size_t) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		found += map.count(std::string_view(reinterpret_cast<char *>(keys[(x >> 33) % nkeys].b), 32));
	}));
	add_latency(rows, "one-key lookup", one, mone, "unordered_map");
	rows.back().note += found ? "" : " (map empty?)";
	rows.push_back({"one-key lookup p99", us(one.p99), "unordered_map " + us(mone.p99),
			ratio(one.p99, mone.p99), ""});
}

} // namespace

void run_latency(const Options &o, Report &rep)
{
	small_blocks(o, rep.section("16 KiB put/get latency (one block per call)"), rep.values);
}

void run_lookup(const Options &o, Report &rep)
{
	lookups(o, rep.section("Prefix lookup (1 core)"));
}

} // namespace bench
