// SPDX-License-Identifier: Apache-2.0
// The same put/get workload against the store LMCache users reach over the
// network: a real redis-server (Debian's), started by this benchmark on
// 127.0.0.1 at a free port with persistence off, one client (hiredis), SET
// and GET of 2 MiB blocks and 16 KiB latencies; stopped at the end.
// Loopback is Redis's best case: no NIC, no wire.
#include "bench.hpp"

#include "redis_server.hpp"

namespace bench {
namespace {

constexpr size_t kBig = 2u << 20, kSmall = 16 * 1024;

// SETs (or GETs of the @nkeys keys SET before) of 2 MiB values.
double rate(const Options &o, redisContext *c, bool put, Buffer &buf, int &nkeys)
{
	char key[32];
	uint64_t bytes = 0;
	auto t0 = Clock::now();
	int i = 0;
	for (; i < 100000 && (seconds_since(t0) < o.seconds || (put && i < nkeys)); i++) {
		int n = std::snprintf(key, sizeof(key), "blk:%d", i % nkeys);
		uint8_t *p = buf.data() + size_t(i % nkeys) * kBig;
		bool ok = put ? beluga_redis::set(c, key, size_t(n), p, kBig)
			      : beluga_redis::get(c, key, size_t(n), p, kBig) == long(kBig);
		if (!ok)
			throw std::runtime_error("redis: SET/GET failed");
		bytes += kBig;
	}
	if (put)
		nkeys = std::min(nkeys, i);
	return double(bytes) / seconds_since(t0);
}

// SETs of 16 KiB values (@nkeys: how many keys were set), or GETs of them.
Percentiles latency(const Options &o, redisContext *c, bool put, Buffer &buf, size_t &nkeys)
{
	char key[32];
	std::vector<uint64_t> ns;
	size_t n = o.quick ? 5000 : 50000;
	auto t0 = Clock::now();
	for (size_t i = 0; i < n && seconds_since(t0) < 4 * o.seconds; i++) {
		size_t which = put ? i % 4096 : i % nkeys;
		int k = std::snprintf(key, sizeof(key), "small:%zu", which);
		uint8_t *p = buf.data() + which * kSmall;
		uint64_t a = now_ns();
		bool ok = put ? beluga_redis::set(c, key, size_t(k), p, kSmall)
			      : beluga_redis::get(c, key, size_t(k), p, kSmall) == long(kSmall);
		ns.push_back(now_ns() - a);
		if (!ok)
			throw std::runtime_error("redis: SET/GET failed");
	}
	if (put)
		nkeys = std::min<size_t>(4096, ns.size());
	return percentiles(ns);
}

} // namespace

void run_redis(const Options &o, Report &rep)
{
	auto &rows = rep.section("Redis on loopback (same workload, same run)");
	try {
		beluga_redis::Server server(o.redis_server);
		redisContext *c = server.connect();
		int nkeys = 64; // 128 MiB of values
		size_t nsmall = 0;
		Buffer buf(std::max<size_t>(size_t(nkeys) * kBig, 4096 * kSmall));
		double set = rate(o, c, true, buf, nkeys);
		double get = rate(o, c, false, buf, nkeys);
		Percentiles ps = latency(o, c, true, buf, nsmall);
		Percentiles pg = latency(o, c, false, buf, nsmall);
		redisFree(c);
		server.stop();
		double mc = memcpy_rate(o, kBig, 1);
		rows.push_back({"Redis SET 2 MiB, 1 client", gbps(set), "memcpy " + gbps(mc),
				ratio(set, mc), ""});
		rows.push_back({"Redis GET 2 MiB, 1 client", gbps(get), "memcpy " + gbps(mc),
				ratio(get, mc), ""});
		for (auto [name, key, redis] : {std::tuple{"put", "put_2MiB_1t", set},
						std::tuple{"get", "get_2MiB_1t", get}}) {
			auto it = rep.values.find(key);
			if (it != rep.values.end())
				rows.push_back({std::string("Beluga ") + name + " 2 MiB vs Redis",
						gbps(it->second), "Redis " + gbps(redis),
						ratio(it->second, redis), "1 thread each"});
		}
		for (auto [name, p, key] : {std::tuple{"SET", ps, "put_16KiB_p50"},
					    std::tuple{"GET", pg, "get_16KiB_p50"}}) {
			auto it = rep.values.find(key);
			double beluga = it == rep.values.end() ? 0 : it->second;
			rows.push_back({std::string("Redis ") + name + " 16 KiB p50",
					fmt("%.2f us", p.p50 / 1000),
					fmt("Beluga %.2f us", beluga / 1000), ratio(p.p50, beluga),
					fmt("p90 %.2f us, p99 %.2f us, p99.9 %.2f us", p.p90 / 1000,
					    p.p99 / 1000, p.p999 / 1000)});
		}
	} catch (const std::exception &e) {
		rows.push_back({"Redis", "skipped", "", "", e.what()});
	}
}

} // namespace bench
