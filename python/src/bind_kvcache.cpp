// SPDX-License-Identifier: Apache-2.0
// beluga.KVCache over beluga::kvc::Cache: open in a pool region (also a
// shared region several hosts format once and attach to), or format/attach
// on any shared buffer such as a Mapping; batch put/get, prefix lookup,
// zero-copy pins, remove, eviction, stats, info, check; the host table and
// takeover of several hosts.  The GIL is released around every call that
// copies, scans or waits.
#include "objects.hpp"

#include <cstring>
#include <optional>
#include <utility>

namespace bpy {

namespace {

using beluga::kvc::Cache;
using OptU32 = std::optional<uint32_t>;

py::dict info_dict(const beluga_kvc_info &i)
{
	py::dict d;
	d["fingerprint"] = i.fingerprint;
	d["format_version"] = py::make_tuple(i.format_major, i.format_minor);
	d["max_hosts"] = i.max_hosts;
	d["host_id"] = i.host_id;
	d["max_sessions"] = i.max_sessions;
	d["max_pins"] = i.max_pins;
	d["max_batch"] = i.max_batch;
	d["coherence"] = beluga::kvc::coherence_name(i.coherence);
	d["region_bytes"] = i.region_bytes;
	d["payload_bytes"] = i.payload_bytes;
	d["slot_stride"] = i.slot_stride;
	d["slots_per_host"] = i.slots_per_host;
	d["capacity_slots"] = i.capacity_slots;
	d["high_watermark_pct"] = i.high_watermark_pct;
	d["low_watermark_pct"] = i.low_watermark_pct;
	d["eviction"] = beluga::kvc::policy_name(i.eviction);
	d["observer"] = bool(i.observer);
	d["created_ns"] = i.created_ns;
	return d;
}

py::dict stats_dict(const beluga_kvc_stats &s)
{
	py::dict d;
#define F(x) d[#x] = s.x
	F(puts); F(put_bytes); F(put_exists); F(put_nospace); F(gets); F(get_hits); F(get_misses);
	F(get_bytes); F(checksum_failures); F(lookups); F(lookup_keys); F(lookup_hits); F(pins);
	F(unpins); F(removes); F(dup_retracted); F(sessions_opened); F(sessions_reclaimed);
	F(reservations_reclaimed); F(pins_reclaimed); F(evictions); F(evict_scanned);
	F(evict_pinned); F(evict_rounds);
#undef F
	return d;
}

py::dict check_dict(const beluga_kvc_check_report &r)
{
	py::dict d;
#define F(x) d[#x] = r.x
	F(slots); F(free_slots); F(reserved_slots); F(published_slots); F(retired_slots);
	F(live_sessions); F(dead_sessions); F(held_pins); F(index_entries); F(tombstones);
	F(errors);
#undef F
	return d;
}

py::dict eviction_dict(const beluga_kvc_eviction &e)
{
	py::dict d;
	d["policy"] = beluga::kvc::policy_name(e.policy);
	d["capacity_blocks"] = e.capacity_blocks;
	d["used_blocks"] = e.used_blocks;
	d["high_watermark_pct"] = e.high_watermark_pct;
	d["low_watermark_pct"] = e.low_watermark_pct;
	return d;
}

py::dict block_info_dict(const beluga_kvc_block_info &b)
{
	py::dict d;
	d["key"] = py::bytes(reinterpret_cast<const char *>(b.key), BELUGA_KVC_KEY_BYTES);
	d["host"] = b.host;
	d["slot"] = b.slot;
	d["len"] = b.len;
	d["gen"] = b.gen;
	d["checksum"] = b.checksum;
	d["inserted_ms"] = b.inserted_ms;
	d["accessed_ms"] = b.accessed_ms;
	d["pins"] = b.pins;
	d["checksum_state"] = beluga::kvc::checksum_state_name(b.checksum_state);
	return d;
}

py::dict host_dict(const beluga_kvc_host_info &h)
{
	py::dict d;
	d["host"] = h.host;
	d["state"] = beluga::kvc::host_state_name(h.state);
	d["served_by"] = h.served_by;
	d["lease_ms"] = h.lease_ms;
	d["machine_id"] = h.machine_id;
	d["boot_id"] = h.boot_id;
	d["heartbeat"] = h.heartbeat;
	d["observed_ms"] = h.observed_ms;
	d["sessions"] = h.sessions;
	d["used_blocks"] = h.used_blocks;
	d["capacity_blocks"] = h.capacity_blocks;
	d["claimed_ns"] = h.claimed_ns;
	d["name"] = std::string(h.name, strnlen(h.name, sizeof(h.name)));
	return d;
}

beluga_kvc_config make_config(const beluga_kvc_fingerprint &fp, OptU32 max_hosts,
			      OptU32 max_sessions, OptU32 max_pins, OptU32 max_batch, OptU32 high_wm,
			      OptU32 low_wm, const std::string &eviction, uint64_t capacity_blocks)
{
	beluga_kvc_config c = beluga::kvc::default_config(fp);
	if (max_hosts) c.max_hosts = *max_hosts;
	if (max_sessions) c.max_sessions = *max_sessions;
	if (max_pins) c.max_pins = *max_pins;
	if (max_batch) c.max_batch = *max_batch;
	if (high_wm) c.high_watermark_pct = *high_wm;
	if (low_wm) c.low_watermark_pct = *low_wm;
	c.eviction = beluga::kvc::parse_policy(eviction);
	c.capacity_blocks = capacity_blocks;
	return c;
}

beluga_kvc_attach_opts make_opts(uint32_t host_id, const std::string &coherence, uint32_t copy_threads,
				 uint32_t lease_ms, uint64_t nt_min_bytes, uint32_t ready_wait_ms,
				 bool observe, bool prefault, bool may_format = false)
{
	beluga_kvc_attach_opts o = beluga::kvc::default_attach_opts();
	o.host_id = host_id;
	o.coherence = beluga::kvc::parse_coherence(coherence);
	o.copy_threads = copy_threads;
	o.lease_ms = lease_ms;
	o.nt_min_bytes = nt_min_bytes;
	o.ready_wait_ms = ready_wait_ms;
	o.flags = (observe ? BELUGA_KVC_ATTACH_OBSERVE : 0) | (prefault ? BELUGA_KVC_ATTACH_PREFAULT : 0) |
		  (may_format ? BELUGA_KVC_ATTACH_FORMAT : 0);
	return o;
}

#define CONFIG_ARGS                                                                              \
	py::arg("max_hosts") = py::none(), py::arg("max_sessions") = py::none(),                 \
		py::arg("max_pins") = py::none(), py::arg("max_batch") = py::none(),             \
		py::arg("high_watermark_pct") = py::none(), py::arg("low_watermark_pct") = py::none(), \
		py::arg("eviction") = "clock", py::arg("capacity_blocks") = 0
#define ATTACH_ARGS                                                                              \
	py::arg("host_id") = 0, py::arg("coherence") = "auto", py::arg("copy_threads") = 0,      \
		py::arg("lease_ms") = 0, py::arg("nt_min_bytes") = 0, py::arg("ready_wait_ms") = 0, \
		py::arg("observe") = false, py::arg("prefault") = false

KVCache open_cache(py::object pool_obj, const std::string &name, const beluga_kvc_fingerprint &fp,
		   bool create, uint64_t region_bytes, uint32_t mode, OptU32 max_hosts,
		   OptU32 max_sessions, OptU32 max_pins, OptU32 max_batch, OptU32 high_wm,
		   OptU32 low_wm, const std::string &eviction, uint64_t capacity_blocks,
		   uint32_t host_id, const std::string &coherence, uint32_t copy_threads,
		   uint32_t lease_ms, uint64_t nt_min_bytes, uint32_t ready_wait_ms, bool observe,
		   bool prefault, bool may_format)
{
	beluga_pool *pool = pool_obj.cast<Pool &>().get().get();
	auto cfg = make_config(fp, max_hosts, max_sessions, max_pins, max_batch, high_wm, low_wm,
			       eviction, capacity_blocks);
	auto opts = make_opts(host_id, coherence, copy_threads, lease_ms, nt_min_bytes, ready_wait_ms,
			      observe, prefault, may_format);
	if (create && region_bytes == 0)
		throw py::value_error("create=True needs region_bytes (a multiple of REGION_ALIGN)");
	// With may_format alone, the config formats an existing region that
	// holds no cache yet; region_bytes 0 never creates one.
	const beluga_kvc_config *c = create || may_format ? &cfg : nullptr;
	Cache cache = nogil([&] {
		return Cache::open(pool, name, observe ? nullptr : &fp, c, create ? region_bytes : 0,
				   mode, &opts);
	});
	return KVCache(std::move(cache), pool_obj, std::nullopt);
}

KVCache attach_cache(py::object buffer, const beluga_kvc_fingerprint &fp, uint32_t host_id,
		     const std::string &coherence, uint32_t copy_threads, uint32_t lease_ms,
		     uint64_t nt_min_bytes, uint32_t ready_wait_ms, bool observe, bool prefault)
{
	auto opts = make_opts(host_id, coherence, copy_threads, lease_ms, nt_min_bytes, ready_wait_ms,
			      observe, prefault);
	// An observer writes nothing: a read-only mapping will do.
	Buffer span(buffer, !observe);
	void *base = span.data();
	size_t size = span.size();
	Cache cache = nogil([&] { return Cache::attach(base, size, fp, &opts); });
	return KVCache(std::move(cache), buffer, std::move(span));
}

// format (once=false) or format_once (once=true: whether this call formatted).
bool format_buffer(py::object buffer, const beluga_kvc_fingerprint &fp, OptU32 max_hosts,
		   OptU32 max_sessions, OptU32 max_pins, OptU32 max_batch, OptU32 high_wm,
		   OptU32 low_wm, const std::string &eviction, uint64_t capacity_blocks, bool once)
{
	auto cfg = make_config(fp, max_hosts, max_sessions, max_pins, max_batch, high_wm, low_wm,
			       eviction, capacity_blocks);
	Buffer span(buffer, true);
	void *base = span.data();
	size_t size = span.size();
	return nogil([&] {
		if (once)
			return Cache::format_once(base, size, cfg);
		Cache::format(base, size, cfg);
		return true;
	});
}

// Put/get items over a batch's buffers.
template <class Item, class Fill>
std::vector<Item> items_of(const std::vector<beluga::kvc::Key> &keys, const BufferSet &bufs, Fill fill)
{
	std::vector<Item> items(keys.size());
	for (size_t i = 0; i < keys.size(); i++) {
		std::memcpy(items[i].key, keys[i].data(), BELUGA_KVC_KEY_BYTES);
		fill(items[i], bufs.parts[i]);
	}
	return items;
}

} // namespace

void register_kvcache(py::module_ &m)
{
	py::class_<KVCache>(m, "KVCache", R"doc(
A Beluga KV cache: the shared store of KV blocks kept inside one region.

  KVCache.open(pool, name, fingerprint, create=True, region_bytes=...)
  KVCache.format(buffer, fingerprint, ...); KVCache.attach(buffer, fingerprint)

Keys are 32 bytes (vLLM's block hashes unchanged, or beluga.hash_tokens()).
put/get/pin/remove take a list of keys (or one buffer of n*32 bytes) and
return per-item results as the C API does: misses are normal, not errors.
)doc")
		.def_static("open", &open_cache, py::arg("pool"), py::arg("name"), py::arg("fingerprint"),
			    py::kw_only(), py::arg("create") = true, py::arg("region_bytes") = 0,
			    py::arg("mode") = 0600, CONFIG_ARGS, ATTACH_ARGS, py::arg("may_format") = false,
			    "Open (create=True: create and format when missing) the cache in the pool "
			    "region `name` and attach with `fingerprint`.  may_format=True: also format "
			    "an existing region that holds no cache yet (a shared region: exactly one "
			    "host sets it); with create=False the region is never created.")
		.def_static("format", [](py::object buffer, const beluga_kvc_fingerprint &fp, OptU32 max_hosts,
					 OptU32 max_sessions, OptU32 max_pins, OptU32 max_batch,
					 OptU32 high_wm, OptU32 low_wm, const std::string &eviction,
					 uint64_t capacity_blocks) {
			format_buffer(buffer, fp, max_hosts, max_sessions, max_pins, max_batch, high_wm,
				      low_wm, eviction, capacity_blocks, false);
		}, py::arg("buffer"), py::arg("fingerprint"), py::kw_only(), CONFIG_ARGS,
		   "Lay out an empty cache in a zeroed, 4096-aligned shared buffer (e.g. a Mapping).")
		.def_static("format_once", [](py::object buffer, const beluga_kvc_fingerprint &fp,
					      OptU32 max_hosts, OptU32 max_sessions, OptU32 max_pins,
					      OptU32 max_batch, OptU32 high_wm, OptU32 low_wm,
					      const std::string &eviction, uint64_t capacity_blocks) {
			return format_buffer(buffer, fp, max_hosts, max_sessions, max_pins, max_batch,
					     high_wm, low_wm, eviction, capacity_blocks, true);
		}, py::arg("buffer"), py::arg("fingerprint"), py::kw_only(), CONFIG_ARGS,
		   "Format unless a cache is there or being formatted (one host's processes: "
		   "exactly one formats).  True when this call formatted it.")
		.def_static("attach", &attach_cache, py::arg("buffer"), py::arg("fingerprint"), py::kw_only(),
			    ATTACH_ARGS, "Attach to the cache formatted in `buffer` (held until detach()).")
		.def_property_readonly("attached", [](const KVCache &c) { return !c.closed(); })
		.def_property_readonly("fingerprint", [](const KVCache &c) { return c.get().info().fingerprint; })
		.def_property_readonly("payload_bytes", [](const KVCache &c) { return c.get().info().payload_bytes; })
		.def("info", [](const KVCache &c) { return info_dict(c.get().info()); })
		.def("put", [](KVCache &c, py::handle keys, py::handle blocks) {
			auto k = keys_of(keys);
			auto bufs = buffer_set(blocks, k.size(), false, "put");
			auto items = items_of<beluga_kvc_put>(k, bufs, [](beluga_kvc_put &p, auto part) {
				p.data = part.first;
				p.len = part.second;
			});
			Cache &cache = c.get();
			return nogil([&] { return cache.put(items); });
		}, py::arg("keys"), py::arg("blocks"), R"doc(
Store blocks (a list of buffers, or one buffer holding len(keys) equal blocks).
Per item: 0 stored, EXISTS already cached, -EINVAL bad length, -ENOSPC full.)doc")
		.def("reserve", [](py::object self, py::handle keys, size_t length) {
			auto k = keys_of(keys);
			Cache &cache = self.cast<KVCache &>().get();
			beluga::kvc::Reservation r = nogil([&] { return cache.reserve(k, length); });
			return py::cast(new Reservation(self, std::move(r)),
					py::return_value_policy::take_ownership);
		}, py::arg("keys"), py::arg("length"), R"doc(
Reserve slots of `length` bytes for a zero-copy store of `keys`: a
Reservation (see its help).  One lookup per key; keys already cached are
reported EXISTS and get no slot.)doc")
		.def("get", [](KVCache &c, py::handle keys, py::object out) -> py::object {
			auto k = keys_of(keys);
			size_t n = k.size();
			std::optional<py::bytearray> scratch;
			if (out.is_none()) {
				size_t payload = c.get().info().payload_bytes;
				scratch = py::bytearray(std::string(n * payload, '\0'));
				out = *scratch;
			}
			auto bufs = buffer_set(out, n, true, "get");
			auto items = items_of<beluga_kvc_get>(k, bufs, [](beluga_kvc_get &g, auto part) {
				g.dst = part.first;
				g.cap = part.second;
			});
			Cache &cache = c.get();
			std::vector<int> res = nogil([&] { return cache.get(items); });
			if (!scratch)
				return py::cast(res);
			py::list blocks;
			for (size_t i = 0; i < n; i++) {
				if (res[i] < 0)
					blocks.append(py::none());
				else
					blocks.append(py::bytes(static_cast<const char *>(bufs.parts[i].first),
								size_t(res[i])));
			}
			return blocks;
		}, py::arg("keys"), py::arg("out") = py::none(), R"doc(
Copy blocks out.  With `out` (a list of writable buffers, or one buffer split
evenly): per item the block length, -ENOENT miss (or a copy that failed its
checksum), -ENOBUFS buffer too small.  Without: a list of bytes or None.)doc")
		.def("lookup_prefix", [](KVCache &c, py::handle keys) {
			auto k = keys_of(keys);
			Cache &cache = c.get();
			return nogil([&] { return cache.lookup_prefix(k); });
		}, py::arg("keys"), "How many leading keys are cached (by any host); takes no lock.")
		.def("pin", [](py::object self, py::handle keys, bool verify) {
			auto k = keys_of(keys);
			Cache &cache = self.cast<KVCache &>().get();
			std::vector<beluga::kvc::Pin> pins = nogil([&] {
				return cache.pin(k, verify ? BELUGA_KVC_PIN_VERIFY : 0);
			});
			py::list out;
			for (size_t i = 0; i < k.size(); i++) {
				if (!pins[i]) {
					out.append(py::none());
					continue;
				}
				std::string key(reinterpret_cast<const char *>(k[i].data()), k[i].size());
				out.append(py::cast(new Pin(self, std::move(pins[i]), std::move(key)),
						    py::return_value_policy::take_ownership));
			}
			return out;
		}, py::arg("keys"), py::arg("verify") = false, R"doc(
Pin blocks for zero-copy reading: a list of Pin (buffers over the blocks in
the region), None where the block is not cached, failed its checksum
(verify=True) or no pin entry was free (max_pins per process).)doc")
		.def("remove", [](KVCache &c, py::handle keys) {
			auto k = keys_of(keys);
			Cache &cache = c.get();
			return nogil([&] { return cache.remove(k); });
		}, py::arg("keys"), "Drop blocks of this host's partition: 0, -ENOENT, -EXDEV or -EBUSY per item.")
		.def("eviction", [](const KVCache &c, int host) {
			return eviction_dict(c.get().eviction(host));
		}, py::arg("host") = -1, "A host's eviction policy, capacity, watermarks and occupancy.")
		.def("set_eviction", [](KVCache &c, std::optional<std::string> policy,
					std::optional<uint64_t> capacity_blocks, OptU32 high, OptU32 low) {
			Cache &cache = c.get();
			beluga_kvc_eviction e = cache.eviction();
			if (policy) e.policy = beluga::kvc::parse_policy(*policy);
			if (capacity_blocks) e.capacity_blocks = *capacity_blocks;
			if (high) e.high_watermark_pct = *high;
			if (low) e.low_watermark_pct = *low;
			nogil([&] { cache.set_eviction(e); });	// lowering the capacity evicts
		}, py::kw_only(), py::arg("policy") = py::none(), py::arg("capacity_blocks") = py::none(),
		   py::arg("high_watermark_pct") = py::none(), py::arg("low_watermark_pct") = py::none(),
		   "Change this host's eviction settings (unset arguments keep their value).")
		.def("evict", [](KVCache &c, uint64_t max_blocks) {
			Cache &cache = c.get();
			return nogil([&] { return cache.evict(max_blocks); });
		}, py::arg("max_blocks") = 0,
		   "Evict up to max_blocks of this host's blocks now (0: down to the low watermark).")
		.def("inspect", [](KVCache &c, py::handle key, bool verify) -> py::object {
			auto k = keys_of(py::make_tuple(key));
			beluga_kvc_block_info b;
			if (!c.get().inspect(k[0], b, verify ? BELUGA_KVC_LIST_VERIFY : 0))
				return py::none();
			return block_info_dict(b);
		}, py::arg("key"), py::arg("verify") = false, "One block's metadata (None if not cached).")
		.def("list_blocks", [](KVCache &c, int host, bool verify) {
			Cache &cache = c.get();
			auto blocks = nogil([&] { return cache.blocks(host, verify ? BELUGA_KVC_LIST_VERIFY : 0); });
			py::list out;
			for (const auto &b : blocks)
				out.append(block_info_dict(b));
			return out;
		}, py::arg("host") = -1, py::arg("verify") = false,
		   "Every cached block of one host's partition (-1: all), a lock-free snapshot.")
		.def("stats", [](const KVCache &c, int host) { return stats_dict(c.get().stats(host)); },
		     py::arg("host") = -1, "Counters kept in the region: one host's, or all (-1).")
		.def("host", [](const KVCache &c, uint32_t host) { return host_dict(c.get().host(host)); },
		     py::arg("host"), R"doc(
Host index `host` as this handle sees it: state ("free", "self", "alive",
"silent": not seen moving yet, "dead": its heartbeat stood still longer than
its lease), name, heartbeat, observed_ms, sessions, occupancy, served_by.)doc")
		.def("hosts", [](const KVCache &c) {
			py::list out;
			for (const auto &h : c.get().hosts())
				out.append(host_dict(h));
			return out;
		}, "host(i) for every host index of the cache.")
		.def("take_over", [](KVCache &c, uint32_t host, bool release) {
			Cache &cache = c.get();
			return nogil([&] { return cache.take_over(host, release ? BELUGA_KVC_TAKEOVER_RELEASE : 0); });
		}, py::arg("host"), py::arg("release") = false, R"doc(
Declare host index `host` dead and take its partition over for this machine
(beluga_kvc_take_over; the operator's command is `beluga-tool kv takeover`):
waits its lease plus a heartbeat period, raises BelugaError EBUSY if its
heartbeat moves meanwhile.  Its blocks stay cached.  release=True frees the
index for a replacement machine instead.  Returns the sessions reclaimed.)doc")
		.def("reclaim", [](KVCache &c) {
			Cache &cache = c.get();
			return nogil([&] { return cache.reclaim(); });
		}, "Clean up after dead processes of this host now; returns the sessions reclaimed.")
		.def("check", [](KVCache &c, bool verify_data) {
			Cache &cache = c.get();
			return check_dict(nogil([&] { return cache.check_all(verify_data); }));
		}, py::arg("verify_data") = false)
		.def_property_readonly("live_pins", [](const KVCache &c) { return c.live_pins; })
		.def("detach", &KVCache::detach, "Release the session (BufferError while Pins are held).")
		.def("close", &KVCache::detach)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](KVCache &c, py::args) { c.detach(); });

	m.def("checksum", [](py::handle data) {
		Buffer b(data, false);
		return beluga::kvc::checksum({ static_cast<const std::byte *>(b.data()), b.size() });
	}, py::arg("data"), "The block checksum (BKV-F64) of a buffer, as the store records it.");
}

} // namespace bpy
