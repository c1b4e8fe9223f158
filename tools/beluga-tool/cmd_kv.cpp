// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool kv - the Beluga KV caches of the pool, read as an
// observer (nothing is written to the cache): `kv stats` (hit rate,
// occupancy, evictions, reclaimed leases, fingerprint), `kv ls` (blocks:
// key, size, age, pins, checksum), `kv inspect` (one block), `kv metrics`
// (Prometheus text, optionally served over HTTP: cmd_kv_http.cpp), and the
// one subcommand that writes: `kv takeover` (a dead host's index taken over
// by a surviving host, beluga_kvc_take_over).
#include <cstdio>
#include <ctime>

#include "cmd_kv.hpp"
#include "commands.hpp"

namespace tool {
namespace kv {
namespace {

struct Args {
	std::vector<std::string> names; // stats, metrics
	std::string cache, key;		 // ls, inspect
	int host = -1;
	bool verify = false;
	std::uint64_t limit = 0;
	long watch_ms = -1;		 // stats: how long to watch the heartbeats
	std::uint32_t by = 0;		 // takeover: the surviving host
	bool release = false;		 // takeover: free the index instead
	Output out;
	HttpOptions http;
};

double ratio(std::uint64_t a, std::uint64_t b) { return b ? double(a) / double(b) : 0.0; }

std::string pct(std::uint64_t a, std::uint64_t b)
{
	char buf[32];

	std::snprintf(buf, sizeof(buf), "%.1f %%", 100.0 * ratio(a, b));
	return buf;
}

std::string seconds(double s)
{
	char buf[32];

	if (s < 120)
		std::snprintf(buf, sizeof(buf), "%.1fs", s);
	else if (s < 7200)
		std::snprintf(buf, sizeof(buf), "%.1fm", s / 60);
	else
		std::snprintf(buf, sizeof(buf), "%.1fh", s / 3600);
	return buf;
}

// Milliseconds since the cache was formatted, as seconds before now.
double age_of(const beluga_kvc_info &info, std::uint64_t ms)
{
	timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	double now = double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
	return now - (double(info.created_ns) / 1e9 + double(ms) / 1e3);
}

json fingerprint_json(const beluga_kvc_fingerprint &f)
{
	return {
		{ "model_id", f.model_id }, { "dtype", dtype_name(f.shape.dtype) },
		{ "num_layers", f.shape.num_layers }, { "num_kv_heads", f.shape.num_kv_heads },
		{ "head_size", f.shape.head_size }, { "block_size", f.shape.block_size },
		{ "tp_rank", f.tp_rank }, { "tp_size", f.tp_size },
		{ "layout", f.layout == BELUGA_KVC_LAYOUT_KV_BLOCK ? "kv_block" : "opaque" },
		{ "hash_fn", f.hash_fn }, { "hash_seed", f.hash_seed },
		{ "payload_bytes", f.payload_bytes },
	};
}

json stats_json(const Snapshot &s)
{
	const beluga_kvc_stats &t = s.total;
	json hosts = json::array();

	for (std::size_t h = 0; h < s.eviction.size(); h++) {
		const beluga_kvc_eviction &e = s.eviction[h];
		const beluga_kvc_stats &x = s.hosts[h];
		hosts.push_back({ { "host", h }, { "policy", policy_name(e.policy) },
				  { "capacity_blocks", e.capacity_blocks },
				  { "used_blocks", e.used_blocks },
				  { "occupancy", ratio(e.used_blocks, e.capacity_blocks) },
				  { "high_watermark_pct", e.high_watermark_pct },
				  { "low_watermark_pct", e.low_watermark_pct },
				  { "puts", x.puts }, { "evictions", x.evictions },
				  { "gets", x.gets }, { "get_hits", x.get_hits },
				  { "hit_rate", ratio(x.get_hits, x.gets) },
				  { "lookup_hit_rate", ratio(x.lookup_hits, x.lookup_keys) } });
		if (h < s.host_info.size()) {
			const beluga_kvc_host_info &i = s.host_info[h];
			json &j = hosts.back();
			j["name"] = i.name;
			j["state"] = host_state_name(i.state);
			j["attached"] = i.sessions > 0;
			j["processes"] = i.sessions;
			j["heartbeat"] = i.heartbeat;
			j["heartbeat_age_ms"] = i.observed_ms;
			j["lease_ms"] = i.lease_ms;
			j["served_by"] = i.served_by;
			j["machine_id"] = i.machine_id;
			j["boot_id"] = i.boot_id;
		}
	}
	return {
		{ "cache", s.name },
		{ "format", std::to_string(s.info.format_major) + "." + std::to_string(s.info.format_minor) },
		{ "region_bytes", s.info.region_bytes },
		{ "max_hosts", s.info.max_hosts },
		{ "slots_per_host", s.info.slots_per_host },
		{ "fingerprint", fingerprint_json(s.info.fingerprint) },
		{ "hit_rate", ratio(t.get_hits, t.gets) },
		{ "lookup_hit_rate", ratio(t.lookup_hits, t.lookup_keys) },
		{ "blocks_cached", s.check.published_slots },
		{ "hosts", hosts },
		{ "heartbeat_watch_ms", s.watched_ms },
		{ "counters", {
			{ "puts", t.puts }, { "put_bytes", t.put_bytes }, { "put_exists", t.put_exists },
			{ "put_nospace", t.put_nospace }, { "gets", t.gets }, { "get_hits", t.get_hits },
			{ "get_misses", t.get_misses }, { "get_bytes", t.get_bytes },
			{ "checksum_failures", t.checksum_failures }, { "lookups", t.lookups },
			{ "lookup_keys", t.lookup_keys }, { "lookup_hits", t.lookup_hits },
			{ "pins", t.pins }, { "unpins", t.unpins }, { "removes", t.removes },
			{ "dup_retracted", t.dup_retracted }, { "evictions", t.evictions },
			{ "evict_scanned", t.evict_scanned }, { "evict_pinned", t.evict_pinned },
			{ "evict_rounds", t.evict_rounds }, { "sessions_opened", t.sessions_opened },
			{ "sessions_reclaimed", t.sessions_reclaimed },
			{ "reservations_reclaimed", t.reservations_reclaimed },
			{ "pins_reclaimed", t.pins_reclaimed } } },
		{ "live_sessions", s.check.live_sessions },
		{ "dead_sessions", s.check.dead_sessions },
		{ "held_pins", s.check.held_pins },
		{ "errors", s.check.errors },
	};
}

void print_stats(const Snapshot &s, const Output &out)
{
	const beluga_kvc_info &i = s.info;
	const beluga_kvc_fingerprint &f = i.fingerprint;
	const beluga_kvc_stats &t = s.total;

	std::printf("cache:        %s (%s region, format %u.%u, %u host%s, blocks of %s)\n",
		    s.name.c_str(), size_text(i.region_bytes, out).c_str(), i.format_major,
		    i.format_minor, i.max_hosts, i.max_hosts == 1 ? "" : "s",
		    size_text(i.payload_bytes, out).c_str());
	std::printf("fingerprint:  %s, %s, %u layers, %u KV heads x %u, %u tokens/block, "
		    "TP %u/%u, %s, %s seed \"%s\"\n",
		    f.model_id, dtype_name(f.shape.dtype).c_str(), f.shape.num_layers,
		    f.shape.num_kv_heads, f.shape.head_size, f.shape.block_size, f.tp_rank,
		    f.tp_size, f.layout == BELUGA_KVC_LAYOUT_KV_BLOCK ? "KV-block layout" : "opaque",
		    f.hash_fn, f.hash_seed);
	std::printf("hit rate:     %s of blocks asked for (%llu hits, %llu misses); "
		    "lookups found %s of keys probed\n",
		    pct(t.get_hits, t.gets).c_str(), (unsigned long long)t.get_hits,
		    (unsigned long long)t.get_misses, pct(t.lookup_hits, t.lookup_keys).c_str());
	for (std::size_t h = 0; h < s.eviction.size(); h++) {
		const beluga_kvc_eviction &e = s.eviction[h];
		std::printf("occupancy:    host %zu: %llu of %llu blocks (%s), %s, watermarks %u/%u %%\n",
			    h, (unsigned long long)e.used_blocks, (unsigned long long)e.capacity_blocks,
			    pct(e.used_blocks, e.capacity_blocks).c_str(), policy_name(e.policy).c_str(),
			    e.high_watermark_pct, e.low_watermark_pct);
	}
	if (!s.host_info.empty())
		std::printf("hosts:        %zu indexes; heartbeats watched for %.1f s from here (a host is "
			    "dead once still for its lease)\n", s.host_info.size(),
			    double(s.watched_ms) / 1e3);
	for (const beluga_kvc_host_info &hi : s.host_info) {
		if (!hi.machine_id) {
			std::printf("host %u:       free (no host holds this index)\n", hi.host);
			continue;
		}
		const beluga_kvc_stats &x = s.hosts[hi.host];
		char served[48] = "";
		if (hi.served_by != hi.host)
			std::snprintf(served, sizeof(served), ", taken over by host %u", hi.served_by);
		std::printf("host %u:       \"%s\" %s, heartbeat %llu (%s %.1f s ago as seen here, "
			    "lease %.1f s), %llu process%s attached, %llu of %llu blocks, hit rate %s "
			    "(%llu of %llu), lookups found %s%s\n",
			    hi.host, hi.name, host_state_name(hi.state).c_str(),
			    (unsigned long long)hi.heartbeat,
			    hi.state == BELUGA_KVC_HOST_ALIVE ? "moved" : "unchanged since",
			    double(hi.observed_ms) / 1e3, double(hi.lease_ms) / 1e3,
			    (unsigned long long)hi.sessions, hi.sessions == 1 ? "" : "es",
			    (unsigned long long)hi.used_blocks, (unsigned long long)hi.capacity_blocks,
			    pct(x.get_hits, x.gets).c_str(), (unsigned long long)x.get_hits,
			    (unsigned long long)x.gets, pct(x.lookup_hits, x.lookup_keys).c_str(), served);
	}
	std::printf("evictions:    %llu (%llu rounds, %llu blocks scanned, %llu kept as pinned)\n",
		    (unsigned long long)t.evictions, (unsigned long long)t.evict_rounds,
		    (unsigned long long)t.evict_scanned, (unsigned long long)t.evict_pinned);
	std::printf("reclaimed:    %llu sessions of dead processes, %llu reservations, %llu pins\n",
		    (unsigned long long)t.sessions_reclaimed,
		    (unsigned long long)t.reservations_reclaimed, (unsigned long long)t.pins_reclaimed);
	std::printf("traffic:      %llu puts (%s), %llu already cached, %llu refused; %s read; "
		    "%llu checksum failures\n",
		    (unsigned long long)t.puts, size_text(t.put_bytes, out).c_str(),
		    (unsigned long long)t.put_exists, (unsigned long long)t.put_nospace,
		    size_text(t.get_bytes, out).c_str(), (unsigned long long)t.checksum_failures);
	std::printf("now:          %llu blocks cached, %llu processes attached, %llu pins held%s\n",
		    (unsigned long long)s.check.published_slots,
		    (unsigned long long)s.check.live_sessions, (unsigned long long)s.check.held_pins,
		    s.check.errors ? " -- INCONSISTENCIES FOUND (beluga_kvc_check)" : "");
}

json block_json(const beluga_kvc_info &info, const beluga_kvc_block_info &b)
{
	static const char *const sums[] = { "unchecked", "ok", "bad", "changed" };

	return {
		{ "key", key_hex(b.key) }, { "host", b.host }, { "slot", b.slot }, { "bytes", b.len },
		{ "generation", b.gen }, { "checksum", b.checksum },
		{ "age_s", age_of(info, b.inserted_ms) },
		{ "last_read_s", b.accessed_ms ? json(age_of(info, b.accessed_ms)) : json(nullptr) },
		{ "pins", b.pins }, { "checksum_state", sums[b.checksum_state & 3] },
	};
}

int run_stats(const Globals &g, const Args &a)
{
	auto pool = open_pool(g);
	std::vector<std::string> names = a.names.empty() ? discover(pool) : a.names;
	json all = json::array();

	for (std::size_t n = 0; n < names.size(); n++) {
		auto cache = observe(pool, names[n]);
		Snapshot s = snapshot(cache, names[n], a.watch_ms);
		if (a.out.json) {
			all.push_back(stats_json(s));
			continue;
		}
		if (n)
			std::printf("\n");
		print_stats(s, a.out);
	}
	if (a.out.json)
		std::printf("%s\n", (a.names.size() == 1 ? all[0] : all).dump(2).c_str());
	else if (names.empty())
		std::printf("no KV caches in this pool\n");
	return kOk;
}

int run_ls(const Globals &g, const Args &a)
{
	auto pool = open_pool(g);
	auto cache = observe(pool, a.cache);
	beluga_kvc_info info = cache.info();
	auto blocks = cache.blocks(a.host, a.verify ? BELUGA_KVC_LIST_VERIFY : 0);
	static const char *const sums[] = { "-", "ok", "BAD", "changed" };

	if (a.limit && blocks.size() > a.limit)
		blocks.resize(a.limit);
	if (a.out.json) {
		json j = json::array();
		for (const auto &b : blocks)
			j.push_back(block_json(info, b));
		std::printf("%s\n", j.dump(2).c_str());
		return kOk;
	}
	std::printf("%-4s %-7s %-18s %10s %8s %9s %4s %s\n", "HOST", "SLOT", "KEY", "SIZE", "AGE",
		    "LAST-READ", "PINS", "CHECKSUM");
	for (const auto &b : blocks)
		std::printf("%-4u %-7u %-18s %10s %8s %9s %4u %s\n", b.host, b.slot,
			    (key_hex(b.key).substr(0, 16) + "..").c_str(),
			    size_text(b.len, a.out).c_str(), seconds(age_of(info, b.inserted_ms)).c_str(),
			    b.accessed_ms ? seconds(age_of(info, b.accessed_ms)).c_str() : "never",
			    b.pins, sums[b.checksum_state & 3]);
	std::printf("%zu blocks\n", blocks.size());
	return kOk;
}

bool parse_key(const std::string &hex, beluga::kvc::Key &k)
{
	if (hex.size() != 2 * k.size())
		return false;
	for (std::size_t i = 0; i < k.size(); i++) {
		unsigned v;
		if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1 || !std::isxdigit(hex[2 * i + 1]))
			return false;
		k[i] = std::uint8_t(v);
	}
	return true;
}

int run_inspect(const Globals &g, const Args &a)
{
	beluga::kvc::Key k;

	if (!parse_key(a.key, k)) {
		std::fprintf(stderr, "beluga-tool: a key is 64 hex digits (as `beluga-tool kv ls "
				     "--json` prints them)\n");
		return kUsage;
	}
	auto pool = open_pool(g);
	auto cache = observe(pool, a.cache);
	beluga_kvc_block_info b;
	if (!cache.inspect(k, b, BELUGA_KVC_LIST_VERIFY)) {
		std::fprintf(stderr, "beluga-tool: key %s is not cached in %s\n", a.key.c_str(),
			     a.cache.c_str());
		return kNotFound;
	}
	json j = block_json(cache.info(), b);
	if (a.out.json) {
		std::printf("%s\n", j.dump(2).c_str());
		return kOk;
	}
	for (const auto &[field, v] : j.items())
		std::printf("%-15s %s\n", (field + ":").c_str(),
			    v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
	return kOk;
}

int run_metrics(const Globals &g, const Args &a)
{
	if (!a.http.listen.empty())
		return serve(g, a.names, a.http);
	auto pool = open_pool(g);
	std::vector<std::string> names = a.names.empty() ? discover(pool) : a.names;
	std::vector<Snapshot> snaps;

	for (const auto &n : names) {
		auto cache = observe(pool, n);
		snaps.push_back(snapshot(cache, n));
	}
	std::fputs(prometheus(snaps).c_str(), stdout);
	return kOk;
}

// Take host a.host of cache a.cache over for host a.by, which runs here:
// attach as a.by (its index must be this machine's, or free), then
// beluga_kvc_take_over.
int run_takeover(const Globals &g, const Args &a)
{
	auto pool = open_pool(g);
	beluga_kvc_info info;
	{
		auto obs = observe(pool, a.cache);
		info = obs.info();
	}
	if (info.max_hosts < 2 || a.host < 0 || std::uint32_t(a.host) >= info.max_hosts ||
	    a.by >= info.max_hosts || std::uint32_t(a.host) == a.by) {
		std::fprintf(stderr, "beluga-tool: %s has %u host%s: --host and --by must be two "
				     "different hosts below that\n", a.cache.c_str(), info.max_hosts,
			     info.max_hosts == 1 ? "" : "s");
		return kUsage;
	}
	beluga_kvc_attach_opts o;
	beluga_kvc_attach_opts_init(&o);
	o.host_id = a.by;
	o.lease_ms = 1000; // this short-lived process's own lease; claim window 250 ms
	auto cache = beluga::kvc::Cache::open(pool.get(), a.cache, info.fingerprint, nullptr, 0, 0, &o);
	beluga_kvc_host_info before;
	beluga_kvc_get_host(cache.get(), std::uint32_t(a.host), &before);
	int n = beluga_kvc_take_over(cache.get(), std::uint32_t(a.host),
				     a.release ? BELUGA_KVC_TAKEOVER_RELEASE : 0);
	if (n < 0) {
		std::fprintf(stderr, "beluga-tool: %s\n", beluga_kvc_last_error());
		return exit_for(-n);
	}
	if (a.out.json) {
		json j = { { "cache", a.cache }, { "host", a.host }, { "name", before.name },
			   { "by", a.by }, { "released", a.release },
			   { "sessions_reclaimed", n } };
		std::printf("%s\n", j.dump(2).c_str());
	} else if (a.release) {
		std::printf("host %d (\"%s\") declared dead; its index is free; %d session%s "
			    "reclaimed; its blocks stay cached\n", a.host, before.name, n,
			    n == 1 ? "" : "s");
	} else {
		std::printf("host %d (\"%s\") declared dead and taken over by host %u: processes "
			    "of this machine may attach with host_id %d; %d session%s reclaimed; its "
			    "blocks stay cached\n", a.host, before.name, a.by, a.host, n,
			    n == 1 ? "" : "s");
	}
	return kOk;
}

// Runs @fn, turning the cache library's errors into exit codes.
int guarded(const std::function<int()> &fn)
{
	try {
		return fn();
	} catch (const beluga::kvc::Error &e) {
		std::fprintf(stderr, "beluga-tool: %s\n", e.what());
		return exit_for(e.code().value());
	}
}

} // namespace

int exit_for(int err)
{
	switch (err) {
	case BELUGA_KVC_EFORMAT:
	case BELUGA_KVC_ENOTREADY:
		return kNotFound;	// no (usable) cache in that region
	case BELUGA_KVC_EVERSION:
	case BELUGA_KVC_EFINGERPRINT:
		return kOther;
	default:
		return exit_code(err);
	}
}

} // namespace kv

Subcommand kv_command()
{
	return { "kv", "Beluga KV caches: statistics, blocks, Prometheus metrics (read-only); "
		       "taking a dead host over",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<kv::Args>();
			 sub.require_subcommand(1);

			 auto *stats = sub.add_subcommand(
				 "stats", "Hit rate, occupancy, evictions, reclaimed leases, fingerprint");
			 stats->add_option("NAME", a->names, "Cache regions (default: every cache)");
			 stats->add_option("--watch-ms", a->watch_ms,
					   "Several hosts: watch the heartbeats this long (default: two "
					   "heartbeat periods; 0: one look)")
				 ->check(CLI::Range(0L, 600000L));
			 add_output_flags(*stats, a->out);

			 auto *ls = sub.add_subcommand("ls", "List the cached blocks of a cache");
			 ls->add_option("NAME", a->cache, "Cache region")->required();
			 ls->add_option("--host", a->host, "Only this host's partition")
				 ->check(CLI::Range(0, BELUGA_KVC_MAX_HOSTS - 1));
			 ls->add_flag("--verify", a->verify, "Recompute every block's checksum");
			 ls->add_option("-n,--limit", a->limit, "Show at most this many blocks");
			 add_output_flags(*ls, a->out);

			 auto *inspect = sub.add_subcommand("inspect", "One block in detail, checksum verified");
			 inspect->add_option("NAME", a->cache, "Cache region")->required();
			 inspect->add_option("KEY", a->key, "Block key, 64 hex digits")->required();
			 add_output_flags(*inspect, a->out);

			 auto *metrics = sub.add_subcommand(
				 "metrics", "The counters in Prometheus text format, or served over HTTP");
			 metrics->add_option("NAME", a->names, "Cache regions (default: every cache)");
			 metrics->add_option("--listen", a->http.listen,
					     "Serve GET /metrics on ADDR:PORT (e.g. 127.0.0.1:9464; "
					     "port 0 picks one) until SIGINT/SIGTERM");
			 metrics->add_flag("--allow-remote", a->http.allow_remote,
					   "Allow a --listen address other than loopback");
			 metrics->add_option("--max-requests", a->http.max_requests,
					     "Stop after answering this many requests");
			 auto *takeover = sub.add_subcommand(
				 "takeover", "Declare a host dead (its heartbeat stopped) and take its partition over "
					     "(writes to the cache; run it on the surviving host)");
			 takeover->add_option("NAME", a->cache, "Cache region")->required();
			 takeover->add_option("--host", a->host, "The dead host's index")
				 ->required()->check(CLI::Range(0, BELUGA_KVC_MAX_HOSTS - 1));
			 takeover->add_option("--by", a->by, "The surviving host's index (this machine's)")
				 ->required()->check(CLI::Range(0, BELUGA_KVC_MAX_HOSTS - 1));
			 takeover->add_flag("--release", a->release,
					    "Only declare it dead: free its index for any host to claim");
			 add_output_flags(*takeover, a->out);
			 for (auto *s : { stats, ls, inspect, metrics, takeover })
				 s->fallthrough();
			 return [&g, a, stats, ls, inspect, takeover] {
				 return kv::guarded([&] {
					 if (takeover->parsed())
						 return kv::run_takeover(g, *a);
					 if (stats->parsed())
						 return kv::run_stats(g, *a);
					 if (ls->parsed())
						 return kv::run_ls(g, *a);
					 if (inspect->parsed())
						 return kv::run_inspect(g, *a);
					 return kv::run_metrics(g, *a);
				 });
			 };
		 } };
}

} // namespace tool
