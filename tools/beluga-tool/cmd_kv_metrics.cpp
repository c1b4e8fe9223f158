// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool kv - opening caches as observers, snapshots of
// their counters, and the Prometheus text exposition (format 0.0.4) of the
// same figures `kv stats` prints.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "cmd_kv.hpp"

namespace tool::kv {

beluga::kvc::Cache observe(const beluga::Pool &pool, const std::string &name)
{
	return beluga::kvc::Cache::observe(pool.get(), name);
}

namespace {

std::vector<beluga_kvc_host_info> host_infos(beluga::kvc::Cache &cache, std::uint32_t hosts)
{
	std::vector<beluga_kvc_host_info> v(hosts);

	for (std::uint32_t h = 0; h < hosts; h++)
		beluga_kvc_get_host(cache.get(), h, &v[h]);
	return v;
}

} // namespace

std::string host_state_name(std::uint32_t state)
{
	static const char *const names[] = { "free", "self", "alive", "silent", "dead" };

	return state < 5 ? names[state] : "?";
}

Snapshot snapshot(beluga::kvc::Cache &cache, const std::string &name, long watch_ms)
{
	Snapshot s;

	s.name = name;
	s.info = cache.info();
	s.total = cache.stats(-1);
	for (std::uint32_t h = 0; h < s.info.max_hosts; h++) {
		s.hosts.push_back(cache.stats(int(h)));
		s.eviction.push_back(cache.eviction(int(h)));
	}
	if (s.info.max_hosts > 1) {
		s.host_info = host_infos(cache, s.info.max_hosts);
		if (watch_ms < 0) { // two heartbeat periods (lease / 8, at most 1 s) of the slowest
			watch_ms = 0;
			for (const auto &hi : s.host_info)
				if (hi.machine_id)
					watch_ms = std::max<long>(watch_ms, 2 * std::clamp<long>(hi.lease_ms / 8, 1, 1000) + 20);
		}
		if (watch_ms > 0) {
			timespec ts{ time_t(watch_ms / 1000), long(watch_ms % 1000) * 1000000 };
			nanosleep(&ts, nullptr);
			s.host_info = host_infos(cache, s.info.max_hosts);
		}
		s.watched_ms = watch_ms;
	}
	s.check = cache.check_all(false);
	return s;
}

std::vector<std::string> discover(const beluga::Pool &pool)
{
	std::vector<std::string> names;

	for (const auto &r : pool.list_regions()) {
		if (!*r.name || (r.flags & BELUGA_INFO_DESTROYED))
			continue;
		try {
			observe(pool, r.name); // not a cache, or not ours to read: skipped
			names.emplace_back(r.name);
		} catch (const beluga::kvc::Error &) {
		}
	}
	return names;
}

std::string dtype_name(uint32_t dtype)
{
	static const char *const names[] = { "?", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp32" };

	return dtype < 6 ? names[dtype] : "?";
}

std::string key_hex(const uint8_t *key)
{
	std::string s;
	char b[3];

	for (int i = 0; i < BELUGA_KVC_KEY_BYTES; i++) {
		std::snprintf(b, sizeof(b), "%02x", key[i]);
		s += b;
	}
	return s;
}

std::string policy_name(uint32_t policy)
{
	return policy == BELUGA_KVC_EVICT_NONE ? "no eviction"
	       : policy == BELUGA_KVC_EVICT_LRU ? "LRU"
						: "CLOCK";
}

namespace {

// Label values: backslash, double quote and newline escaped.
std::string escape(const std::string &v)
{
	std::string o;

	for (char c : v) {
		if (c == '\n')
			o += "\\n";
		else if (c == '\\' || c == '"')
			o += std::string("\\") + c;
		else
			o += c;
	}
	return o;
}

class Text {
public:
	// One metric family: HELP and TYPE once, then its samples.
	void family(const char *name, const char *type, const char *help)
	{
		std::snprintf(buf_, sizeof(buf_), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
		out_ += buf_;
		name_ = name;
	}
	void sample(const std::string &labels, double v)
	{
		std::snprintf(buf_, sizeof(buf_), "%s{%s} %.17g\n", name_, labels.c_str(), v);
		out_ += buf_;
	}
	void sample(const std::string &labels, std::uint64_t v)
	{
		std::snprintf(buf_, sizeof(buf_), "%s{%s} %" PRIu64 "\n", name_, labels.c_str(), v);
		out_ += buf_;
	}
	std::string take() { return std::move(out_); }

private:
	std::string out_;
	const char *name_ = "";
	char buf_[1024];
};

std::string cache_label(const Snapshot &s) { return "cache=\"" + escape(s.name) + "\""; }

std::string host_label(const Snapshot &s, std::size_t h)
{
	return cache_label(s) + ",host=\"" + std::to_string(h) + "\"";
}

// A per-host counter of struct beluga_kvc_stats, by member.
struct Counter {
	const char *name, *help;
	std::uint64_t beluga_kvc_stats::*field;
};

const Counter kCounters[] = {
	{ "beluga_kv_puts_total", "Blocks stored.", &beluga_kvc_stats::puts },
	{ "beluga_kv_put_bytes_total", "Bytes stored.", &beluga_kvc_stats::put_bytes },
	{ "beluga_kv_put_exists_total", "Puts of a block that was already cached.",
	  &beluga_kvc_stats::put_exists },
	{ "beluga_kv_put_nospace_total", "Puts refused: no room and nothing evictable.",
	  &beluga_kvc_stats::put_nospace },
	{ "beluga_kv_gets_total", "Blocks asked for (get and pin).", &beluga_kvc_stats::gets },
	{ "beluga_kv_get_hits_total", "Blocks found and read intact.", &beluga_kvc_stats::get_hits },
	{ "beluga_kv_get_misses_total", "Blocks asked for and not found.",
	  &beluga_kvc_stats::get_misses },
	{ "beluga_kv_get_bytes_total", "Bytes read.", &beluga_kvc_stats::get_bytes },
	{ "beluga_kv_checksum_failures_total", "Copies that failed the sequence or checksum check.",
	  &beluga_kvc_stats::checksum_failures },
	{ "beluga_kv_lookups_total", "Prefix lookups.", &beluga_kvc_stats::lookups },
	{ "beluga_kv_lookup_keys_total", "Keys probed by prefix lookups.",
	  &beluga_kvc_stats::lookup_keys },
	{ "beluga_kv_lookup_hits_total", "Keys found by prefix lookups.",
	  &beluga_kvc_stats::lookup_hits },
	{ "beluga_kv_pins_total", "Blocks pinned for zero-copy reading.", &beluga_kvc_stats::pins },
	{ "beluga_kv_removes_total", "Blocks removed.", &beluga_kvc_stats::removes },
	{ "beluga_kv_evictions_total", "Blocks evicted to make room.", &beluga_kvc_stats::evictions },
	{ "beluga_kv_evict_scanned_total", "Blocks the eviction hand looked at.",
	  &beluga_kvc_stats::evict_scanned },
	{ "beluga_kv_evict_pinned_total", "Eviction victims kept because they were pinned.",
	  &beluga_kvc_stats::evict_pinned },
	{ "beluga_kv_evict_rounds_total", "Times a put crossed the high watermark.",
	  &beluga_kvc_stats::evict_rounds },
	{ "beluga_kv_sessions_opened_total", "Processes attached.",
	  &beluga_kvc_stats::sessions_opened },
	{ "beluga_kv_sessions_reclaimed_total", "Sessions (leases) of dead processes reclaimed.",
	  &beluga_kvc_stats::sessions_reclaimed },
	{ "beluga_kv_reservations_reclaimed_total", "Blocks a dead writer had reserved, given back.",
	  &beluga_kvc_stats::reservations_reclaimed },
	{ "beluga_kv_pins_reclaimed_total", "Pins a dead reader held, released.",
	  &beluga_kvc_stats::pins_reclaimed },
};

} // namespace

std::string prometheus(const std::vector<Snapshot> &snaps)
{
	Text t;

	t.family("beluga_kv_info", "gauge", "The cache's fingerprint (value 1).");
	for (const auto &s : snaps) {
		const beluga_kvc_fingerprint &f = s.info.fingerprint;
		t.sample(cache_label(s) + ",model=\"" + escape(f.model_id) + "\",dtype=\"" +
				 dtype_name(f.shape.dtype) + "\",layers=\"" +
				 std::to_string(f.shape.num_layers) + "\",kv_heads=\"" +
				 std::to_string(f.shape.num_kv_heads) + "\",head_size=\"" +
				 std::to_string(f.shape.head_size) + "\",block_tokens=\"" +
				 std::to_string(f.shape.block_size) + "\",tp=\"" +
				 std::to_string(f.tp_rank) + "/" + std::to_string(f.tp_size) +
				 "\",hash=\"" + escape(f.hash_fn) + "\"",
			 std::uint64_t(1));
	}
	t.family("beluga_kv_hit_ratio", "gauge", "Blocks read intact / blocks asked for.");
	for (const auto &s : snaps)
		t.sample(cache_label(s), s.total.gets ? double(s.total.get_hits) / double(s.total.gets)
						     : 0.0);
	t.family("beluga_kv_block_bytes", "gauge", "Bytes of one block (the largest).");
	for (const auto &s : snaps)
		t.sample(cache_label(s), s.info.payload_bytes);
	t.family("beluga_kv_blocks", "gauge", "Blocks cached now (all hosts).");
	for (const auto &s : snaps)
		t.sample(cache_label(s), s.check.published_slots);
	t.family("beluga_kv_attached_processes", "gauge", "Processes attached now.");
	for (const auto &s : snaps)
		t.sample(cache_label(s), s.check.live_sessions);
	t.family("beluga_kv_pins_held", "gauge", "Pins held now.");
	for (const auto &s : snaps)
		t.sample(cache_label(s), s.check.held_pins);
	t.family("beluga_kv_used_blocks", "gauge", "Blocks held or being written, per host partition.");
	for (const auto &s : snaps)
		for (std::size_t h = 0; h < s.eviction.size(); h++)
			t.sample(host_label(s, h), s.eviction[h].used_blocks);
	t.family("beluga_kv_capacity_blocks", "gauge", "Blocks a host partition may hold.");
	for (const auto &s : snaps)
		for (std::size_t h = 0; h < s.eviction.size(); h++)
			t.sample(host_label(s, h), s.eviction[h].capacity_blocks);
	t.family("beluga_kv_occupancy_ratio", "gauge", "Used / capacity, per host partition.");
	for (const auto &s : snaps)
		for (std::size_t h = 0; h < s.eviction.size(); h++)
			t.sample(host_label(s, h), s.eviction[h].capacity_blocks
							   ? double(s.eviction[h].used_blocks) /
								     double(s.eviction[h].capacity_blocks)
							   : 0.0);
	// Several hosts: liveness as this exporter observed it (a long-running
	// exporter watches the heartbeats across scrapes; one look says "up").
	bool hosts = false;
	for (const auto &s : snaps)
		hosts |= !s.host_info.empty();
	if (hosts) {
		auto each = [&](auto value) {
			for (const auto &s : snaps)
				for (const auto &hi : s.host_info)
					if (hi.machine_id)
						t.sample(host_label(s, hi.host), value(hi));
		};
		t.family("beluga_kv_host_up", "gauge",
			 "1 while the host's heartbeat has not stood still for longer than its lease.");
		each([](const beluga_kvc_host_info &hi) {
			return std::uint64_t(hi.state != BELUGA_KVC_HOST_DEAD);
		});
		t.family("beluga_kv_host_heartbeat", "gauge", "The host's heartbeat counter.");
		each([](const beluga_kvc_host_info &hi) { return hi.heartbeat; });
		t.family("beluga_kv_host_heartbeat_age_seconds", "gauge",
			 "Since the heartbeat was last seen to change (or first seen).");
		each([](const beluga_kvc_host_info &hi) { return double(hi.observed_ms) / 1e3; });
		t.family("beluga_kv_host_processes", "gauge", "Processes of the host attached now.");
		each([](const beluga_kvc_host_info &hi) { return hi.sessions; });
	}
	for (const Counter &c : kCounters) {
		t.family(c.name, "counter", c.help);
		for (const auto &s : snaps)
			for (std::size_t h = 0; h < s.hosts.size(); h++)
				t.sample(host_label(s, h), s.hosts[h].*c.field);
	}
	return t.take();
}

} // namespace tool::kv
