// SPDX-License-Identifier: Apache-2.0
// The KV-block store: Fingerprint, KVCache (open in a pool region, or
// format/attach on any shared buffer such as a Mapping), batch put/get,
// prefix lookup, zero-copy pins (Pin objects exporting the pinned block with
// the buffer protocol and DLPack), remove, stats, info, check.
// The GIL is released around every call that copies or scans.
#include "common.hpp"
#include "handles.hpp"

#include <beluga/kvcache.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

namespace bpy {

namespace {

const std::pair<const char *, uint32_t> kDtypes[] = {
	{"fp16", BELUGA_KV_FP16}, {"float16", BELUGA_KV_FP16}, {"bf16", BELUGA_KV_BF16},
	{"bfloat16", BELUGA_KV_BF16}, {"fp8_e4m3", BELUGA_KV_FP8_E4M3},
	{"fp8_e5m2", BELUGA_KV_FP8_E5M2}, {"fp32", BELUGA_KV_FP32}, {"float32", BELUGA_KV_FP32},
};

} // namespace

uint32_t dtype_of(py::handle d)
{
	if (py::isinstance<py::int_>(d))
		return d.cast<uint32_t>();
	std::string s = py::str(d);
	if (s.rfind("torch.", 0) == 0)	// accept torch.bfloat16 etc.
		s = s.substr(6);
	for (auto &[name, v] : kDtypes)
		if (s == name)
			return v;
	throw py::value_error("unknown dtype '" + s + "' (fp16, bf16, fp8_e4m3, fp8_e5m2, fp32)");
}

std::string dtype_name(uint32_t d)
{
	for (auto &[name, v] : kDtypes)
		if (v == d)
			return name;
	return std::to_string(d);
}

namespace {

void set_str(char *dst, size_t cap, const std::string &v, const char *field)
{
	if (v.size() >= cap || v.find('\0') != std::string::npos)
		throw py::value_error(std::string(field) + " must be shorter than " + std::to_string(cap) +
				      " bytes and contain no NUL");
	std::memset(dst, 0, cap);
	std::memcpy(dst, v.data(), v.size());
}

uint32_t layout_of(const std::string &s)
{
	if (s == "kv_block")
		return BELUGA_KVC_LAYOUT_KV_BLOCK;
	if (s == "opaque")
		return BELUGA_KVC_LAYOUT_OPAQUE;
	throw py::value_error("layout must be 'kv_block' or 'opaque'");
}

uint32_t coherence_of(const std::string &s)
{
	if (s == "auto")
		return BELUGA_KVC_AUTO;
	if (s == "coherent")
		return BELUGA_KVC_COHERENT;
	if (s == "noncoherent")
		return BELUGA_KVC_NONCOHERENT;
	if (s == "simulate")
		return BELUGA_KVC_SIMULATE;
	throw py::value_error("coherence must be 'auto', 'coherent', 'noncoherent' or 'simulate'");
}

uint32_t policy_of(const std::string &s)
{
	if (s == "clock")
		return BELUGA_KVC_EVICT_CLOCK;
	if (s == "none")
		return BELUGA_KVC_EVICT_NONE;
	if (s == "lru")
		return BELUGA_KVC_EVICT_LRU;
	throw py::value_error("eviction must be 'clock', 'lru' or 'none'");
}

const char *policy_name(uint32_t p)
{
	switch (p) {
	case BELUGA_KVC_EVICT_NONE: return "none";
	case BELUGA_KVC_EVICT_LRU: return "lru";
	default: return "clock";
	}
}

py::dict block_info_dict(const beluga_kvc_block_info &b)
{
	static const char *sums[] = {"unchecked", "ok", "bad", "changed"};
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
	d["checksum_state"] = b.checksum_state < 4 ? sums[b.checksum_state] : "unknown";
	return d;
}

py::dict eviction_dict(const beluga_kvc_eviction &e)
{
	py::dict d;
	d["policy"] = policy_name(e.policy);
	d["capacity_blocks"] = e.capacity_blocks;
	d["used_blocks"] = e.used_blocks;
	d["high_watermark_pct"] = e.high_watermark_pct;
	d["low_watermark_pct"] = e.low_watermark_pct;
	return d;
}

const char *coherence_name(uint32_t c)
{
	switch (c) {
	case BELUGA_KVC_COHERENT: return "coherent";
	case BELUGA_KVC_NONCOHERENT: return "noncoherent";
	case BELUGA_KVC_SIMULATE: return "simulate";
	default: return "auto";
	}
}

beluga_kvc_fingerprint make_fingerprint(const std::string &model_id, const std::string &hash_fn,
					const std::string &hash_seed, uint32_t num_layers,
					uint32_t block_size, uint32_t num_kv_heads, uint32_t head_size,
					py::handle dtype, uint32_t tp_rank, uint32_t tp_size,
					const std::string &layout, uint64_t payload_bytes)
{
	beluga_kvc_fingerprint fp;
	std::memset(&fp, 0, sizeof(fp));
	set_str(fp.model_id, sizeof(fp.model_id), model_id, "model_id");
	set_str(fp.hash_fn, sizeof(fp.hash_fn), hash_fn, "hash_fn");
	set_str(fp.hash_seed, sizeof(fp.hash_seed), hash_seed, "hash_seed");
	fp.shape = {num_layers, block_size, num_kv_heads, head_size, dtype_of(dtype), 0};
	fp.tp_rank = tp_rank;
	fp.tp_size = tp_size;
	fp.layout = layout_of(layout);
	fp.payload_bytes = payload_bytes;
	return fp;
}

py::dict fingerprint_dict(const beluga_kvc_fingerprint &f)
{
	py::dict d;
	d["model_id"] = std::string(f.model_id);
	d["hash_fn"] = std::string(f.hash_fn);
	d["hash_seed"] = std::string(f.hash_seed);
	d["num_layers"] = f.shape.num_layers;
	d["block_size"] = f.shape.block_size;
	d["num_kv_heads"] = f.shape.num_kv_heads;
	d["head_size"] = f.shape.head_size;
	d["dtype"] = dtype_name(f.shape.dtype);
	d["tp_rank"] = f.tp_rank;
	d["tp_size"] = f.tp_size;
	d["layout"] = f.layout == BELUGA_KVC_LAYOUT_KV_BLOCK ? "kv_block" : "opaque";
	d["payload_bytes"] = f.payload_bytes;
	return d;
}

// Keys: a list/tuple of 32-byte bytes-likes, or one buffer of n * 32 bytes.
std::vector<uint8_t> keys_of(py::handle keys)
{
	std::vector<uint8_t> out;
	if (!PyList_Check(keys.ptr()) && !PyTuple_Check(keys.ptr()) && PyObject_CheckBuffer(keys.ptr())) {
		Buffer b(keys, false);
		if (b.size() % BELUGA_KVC_KEY_BYTES)
			throw py::value_error("a packed key buffer must be a multiple of 32 bytes, not " +
					      std::to_string(b.size()));
		out.assign(static_cast<uint8_t *>(b.data()), static_cast<uint8_t *>(b.data()) + b.size());
		return out;
	}
	auto seq = py::list(py::reinterpret_borrow<py::iterable>(keys));
	out.reserve(py::len(seq) * BELUGA_KVC_KEY_BYTES);
	for (auto item : seq) {
		Buffer b(item, false);
		if (b.size() != BELUGA_KVC_KEY_BYTES)
			throw py::value_error("a key is 32 bytes (a vLLM sha256/sha256_cbor block hash), "
					      "this one has " + std::to_string(b.size()));
		auto *p = static_cast<uint8_t *>(b.data());
		out.insert(out.end(), p, p + BELUGA_KVC_KEY_BYTES);
	}
	return out;
}

using KeyRow = const uint8_t (*)[BELUGA_KVC_KEY_BYTES];

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

} // namespace

class KVCache;

// A pinned block: its bytes stay valid and unchanged until unpin().
class Pin : public Exportable {
public:
	Pin(py::object cache_obj, KVCache *cache, const beluga_kvc_ref &ref, std::string key);
	~Pin() override;
	void unpin();
	bool pinned() const { return pinned_; }
	const std::string &key() const { return key_; }
	const beluga_kvc_ref &ref() const { return ref_; }
	void *buf_data() const override { return pinned_ ? const_cast<void *>(ref_.data) : nullptr; }
	size_t buf_len() const override { return pinned_ ? ref_.len : 0; }
	bool buf_readonly() const override { return true; }
	const char *closed_message() const override { return "the block is no longer pinned"; }

private:
	py::object cache_obj_;	// keeps the cache attached while pinned
	KVCache *cache_;
	beluga_kvc_ref ref_;
	std::string key_;
	bool pinned_ = true;
};

class KVCache {
public:
	KVCache(beluga_kvc *kv, py::object keep, std::optional<Buffer> span)
		: kv_(kv), keep_(std::move(keep)), span_(std::move(span))
	{
	}
	KVCache(KVCache &&o) noexcept
		: live_pins(o.live_pins), kv_(std::exchange(o.kv_, nullptr)), keep_(std::move(o.keep_)),
		  span_(std::move(o.span_))
	{
	}
	KVCache(const KVCache &) = delete;
	KVCache &operator=(const KVCache &) = delete;
	KVCache &operator=(KVCache &&) = delete;
	~KVCache()
	{
		if (kv_)
			beluga_kvc_detach(kv_);
	}
	beluga_kvc *get() const
	{
		if (!kv_)
			throw py::value_error("the cache is detached");
		return kv_;
	}
	bool attached() const { return kv_ != nullptr; }
	void detach()
	{
		if (live_pins > 0) {
			PyErr_Format(PyExc_BufferError, "cannot detach: %d block(s) still pinned "
				     "(unpin them first)", live_pins);
			throw py::error_already_set();
		}
		if (kv_) {
			py::gil_scoped_release nogil;
			beluga_kvc_detach(kv_);
		}
		kv_ = nullptr;
		span_.reset();
		keep_ = py::none();
	}
	beluga_kvc_info info() const
	{
		beluga_kvc_info i;
		kvcheck(beluga_kvc_get_info(get(), &i), "cache info");
		return i;
	}
	int live_pins = 0;

private:
	beluga_kvc *kv_;
	py::object keep_;		// the pool, or the buffer's owner
	std::optional<Buffer> span_;	// attach(): the held buffer
};

Pin::Pin(py::object cache_obj, KVCache *cache, const beluga_kvc_ref &ref, std::string key)
	: cache_obj_(std::move(cache_obj)), cache_(cache), ref_(ref), key_(std::move(key))
{
	cache_->live_pins++;
}

Pin::~Pin()
{
	if (pinned_ && cache_->attached()) {
		beluga_kvc_unpin(cache_->get(), &ref_, 1);
		cache_->live_pins--;
	}
}

void Pin::unpin()
{
	if (!pinned_)
		return;
	ensure_no_exports("unpin the block");
	kvcheck(beluga_kvc_unpin(cache_->get(), &ref_, 1), "unpin");
	pinned_ = false;
	cache_->live_pins--;
}

namespace {

beluga_kvc_config make_config(const beluga_kvc_fingerprint &fp, std::optional<uint32_t> max_hosts,
			      std::optional<uint32_t> max_sessions, std::optional<uint32_t> max_pins,
			      std::optional<uint32_t> max_batch, std::optional<uint32_t> high_wm,
			      std::optional<uint32_t> low_wm, const std::string &eviction,
			      uint64_t capacity_blocks)
{
	beluga_kvc_config c;
	beluga_kvc_config_init(&c);
	c.fingerprint = fp;
	if (max_hosts) c.max_hosts = *max_hosts;
	if (max_sessions) c.max_sessions = *max_sessions;
	if (max_pins) c.max_pins = *max_pins;
	if (max_batch) c.max_batch = *max_batch;
	if (high_wm) c.high_watermark_pct = *high_wm;
	if (low_wm) c.low_watermark_pct = *low_wm;
	c.eviction = policy_of(eviction);
	c.capacity_blocks = capacity_blocks;
	return c;
}

beluga_kvc_attach_opts make_opts(uint32_t host_id, const std::string &coherence, uint32_t copy_threads,
				 uint32_t lease_ms, uint64_t nt_min_bytes, uint32_t ready_wait_ms,
				 bool observe, bool prefault)
{
	beluga_kvc_attach_opts o;
	beluga_kvc_attach_opts_init(&o);
	o.host_id = host_id;
	o.coherence = coherence_of(coherence);
	o.copy_threads = copy_threads;
	o.lease_ms = lease_ms;
	o.nt_min_bytes = nt_min_bytes;
	o.ready_wait_ms = ready_wait_ms;
	o.flags = (observe ? BELUGA_KVC_ATTACH_OBSERVE : 0) | (prefault ? BELUGA_KVC_ATTACH_PREFAULT : 0);
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

using OptU32 = std::optional<uint32_t>;

KVCache open_cache(py::object pool_obj, const std::string &name, const beluga_kvc_fingerprint &fp,
		   bool create, uint64_t region_bytes, uint32_t mode, OptU32 max_hosts,
		   OptU32 max_sessions, OptU32 max_pins, OptU32 max_batch, OptU32 high_wm,
		   OptU32 low_wm, const std::string &eviction, uint64_t capacity_blocks,
		   uint32_t host_id, const std::string &coherence, uint32_t copy_threads,
		   uint32_t lease_ms, uint64_t nt_min_bytes, uint32_t ready_wait_ms, bool observe,
		   bool prefault)
{
	Pool &pool = pool_obj.cast<Pool &>();
	auto cfg = make_config(fp, max_hosts, max_sessions, max_pins, max_batch, high_wm, low_wm,
			       eviction, capacity_blocks);
	auto opts = make_opts(host_id, coherence, copy_threads, lease_ms, nt_min_bytes, ready_wait_ms,
			      observe, prefault);
	if (create && region_bytes == 0)
		throw py::value_error("create=True needs region_bytes (a multiple of REGION_ALIGN)");
	beluga_kvc *kv = nullptr;
	long r;
	{
		py::gil_scoped_release nogil;
		r = beluga_kvc_open(pool.get(), name.c_str(), observe ? nullptr : &fp,
				    create ? &cfg : nullptr, region_bytes, mode, &opts, &kv);
		if (r < 0)	// read the sentence in this thread
			r = kvcheck(r, ("open cache '" + name + "'").c_str());
	}
	return KVCache(kv, pool_obj, std::nullopt);
}

KVCache attach_cache(py::object buffer, const beluga_kvc_fingerprint &fp, uint32_t host_id,
		     const std::string &coherence, uint32_t copy_threads, uint32_t lease_ms,
		     uint64_t nt_min_bytes, uint32_t ready_wait_ms, bool observe, bool prefault)
{
	auto opts = make_opts(host_id, coherence, copy_threads, lease_ms, nt_min_bytes, ready_wait_ms,
			      observe, prefault);
	// An observer writes nothing: a read-only mapping will do.
	Buffer span(buffer, !observe);
	beluga_kvc *kv = nullptr;
	void *base = span.data();
	size_t size = span.size();
	{
		py::gil_scoped_release nogil;
		long r = beluga_kvc_attach(base, size, &fp, &opts, &kv);
		if (r < 0)
			kvcheck(r, "attach");
	}
	return KVCache(kv, buffer, std::move(span));
}

} // namespace

void register_kvcache(py::module_ &m)
{
	py::class_<beluga_kvc_fingerprint>(m, "Fingerprint", R"doc(
What makes two instances' KV blocks interchangeable: model, dtype, shape,
tensor-parallel rank, layout and the key hash.  A cache refuses to attach
with a different fingerprint (BelugaError errno KVC_EFINGERPRINT, naming the
field) instead of silently missing.  payload_bytes 0 means "computed from the
shape" (kv_block layout); opaque layout needs it.
)doc")
		.def(py::init(&make_fingerprint), py::kw_only(), py::arg("model_id"),
		     py::arg("hash_fn") = "sha256_cbor", py::arg("hash_seed") = "",
		     py::arg("num_layers") = 0, py::arg("block_size") = 16, py::arg("num_kv_heads") = 0,
		     py::arg("head_size") = 0, py::arg("dtype") = "bf16", py::arg("tp_rank") = 0,
		     py::arg("tp_size") = 1, py::arg("layout") = "kv_block", py::arg("payload_bytes") = 0)
		.def_property_readonly("model_id", [](const beluga_kvc_fingerprint &f) { return std::string(f.model_id); })
		.def_property_readonly("hash_fn", [](const beluga_kvc_fingerprint &f) { return std::string(f.hash_fn); })
		.def_property_readonly("hash_seed", [](const beluga_kvc_fingerprint &f) { return std::string(f.hash_seed); })
		.def_property_readonly("num_layers", [](const beluga_kvc_fingerprint &f) { return f.shape.num_layers; })
		.def_property_readonly("block_size", [](const beluga_kvc_fingerprint &f) { return f.shape.block_size; })
		.def_property_readonly("num_kv_heads", [](const beluga_kvc_fingerprint &f) { return f.shape.num_kv_heads; })
		.def_property_readonly("head_size", [](const beluga_kvc_fingerprint &f) { return f.shape.head_size; })
		.def_property_readonly("dtype", [](const beluga_kvc_fingerprint &f) { return dtype_name(f.shape.dtype); })
		.def_property_readonly("tp_rank", [](const beluga_kvc_fingerprint &f) { return f.tp_rank; })
		.def_property_readonly("tp_size", [](const beluga_kvc_fingerprint &f) { return f.tp_size; })
		.def_property_readonly("layout", [](const beluga_kvc_fingerprint &f) {
			return f.layout == BELUGA_KVC_LAYOUT_KV_BLOCK ? "kv_block" : "opaque";
		})
		.def_property_readonly("payload_bytes", [](const beluga_kvc_fingerprint &f) { return f.payload_bytes; })
		.def("to_dict", &fingerprint_dict)
		.def("__eq__", [](const beluga_kvc_fingerprint &a, const beluga_kvc_fingerprint &b) {
			return std::memcmp(&a, &b, sizeof(a)) == 0;
		})
		.def("__repr__", [](const beluga_kvc_fingerprint &f) {
			return "Fingerprint(" + py::str(fingerprint_dict(f)).cast<std::string>() + ")";
		});

	py::class_<Pin>(m, "Pin", py::custom_type_setup(install_buffer_protocol<Pin>), R"doc(
A block pinned for zero-copy reading (KVCache.pin): a read-only buffer over
the block in the region (memoryview(pin), numpy.frombuffer(pin, ...)), valid
and unchanged until unpin().  unpin() raises BufferError while views exist;
a collected Pin unpins itself.  Never write through a DLPack tensor of it.
)doc")
		.def_property_readonly("key", [](const Pin &p) { return py::bytes(p.key()); })
		.def_property_readonly("pinned", &Pin::pinned)
		.def_property_readonly("address", [](const Pin &p) {
			return reinterpret_cast<uintptr_t>(p.buf_data());
		})
		.def("__len__", [](const Pin &p) { return p.buf_len(); })
		.def("unpin", &Pin::unpin)
		.def("__dlpack__", [](py::object self, py::object) {
			return make_dlpack(self, self.cast<Pin &>());
		}, py::arg("stream") = py::none())
		.def("__dlpack_device__", [](const Pin &) { return py::make_tuple(1, 0); })
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Pin &p, py::args) { p.unpin(); });

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
			    py::arg("mode") = 0600, CONFIG_ARGS, ATTACH_ARGS,
			    "Open (create=True: create and format when missing) the cache in the pool "
			    "region `name` and attach with `fingerprint`.")
		.def_static("format", [](py::object buffer, const beluga_kvc_fingerprint &fp, OptU32 max_hosts,
					 OptU32 max_sessions, OptU32 max_pins, OptU32 max_batch,
					 OptU32 high_wm, OptU32 low_wm, const std::string &eviction,
					 uint64_t capacity_blocks) {
			auto cfg = make_config(fp, max_hosts, max_sessions, max_pins, max_batch, high_wm, low_wm,
					       eviction, capacity_blocks);
			Buffer span(buffer, true);
			void *base = span.data();
			size_t size = span.size();
			py::gil_scoped_release nogil;
			long r = beluga_kvc_format(base, size, &cfg);
			if (r < 0)
				kvcheck(r, "format");
		}, py::arg("buffer"), py::arg("fingerprint"), py::kw_only(), CONFIG_ARGS,
		   "Lay out an empty cache in a zeroed, 4096-aligned shared buffer (e.g. a Mapping).")
		.def_static("attach", &attach_cache, py::arg("buffer"), py::arg("fingerprint"), py::kw_only(),
			    ATTACH_ARGS, "Attach to the cache formatted in `buffer` (held until detach()).")
		.def_property_readonly("attached", &KVCache::attached)
		.def_property_readonly("fingerprint", [](const KVCache &c) { return c.info().fingerprint; })
		.def_property_readonly("payload_bytes", [](const KVCache &c) { return c.info().payload_bytes; })
		.def("info", [](const KVCache &c) {
			auto i = c.info();
			py::dict d;
			d["fingerprint"] = i.fingerprint;
			d["format_version"] = py::make_tuple(i.format_major, i.format_minor);
			d["max_hosts"] = i.max_hosts;
			d["host_id"] = i.host_id;
			d["max_sessions"] = i.max_sessions;
			d["max_pins"] = i.max_pins;
			d["max_batch"] = i.max_batch;
			d["coherence"] = coherence_name(i.coherence);
			d["region_bytes"] = i.region_bytes;
			d["payload_bytes"] = i.payload_bytes;
			d["slot_stride"] = i.slot_stride;
			d["slots_per_host"] = i.slots_per_host;
			d["capacity_slots"] = i.capacity_slots;
			d["high_watermark_pct"] = i.high_watermark_pct;
			d["low_watermark_pct"] = i.low_watermark_pct;
			d["eviction"] = policy_name(i.eviction);
			d["observer"] = bool(i.observer);
			d["created_ns"] = i.created_ns;
			return d;
		})
		.def("put", [](KVCache &c, py::handle keys, py::handle blocks) {
			auto k = keys_of(keys);
			size_t n = k.size() / BELUGA_KVC_KEY_BYTES;
			auto bufs = buffer_set(blocks, n, false, "put");
			std::vector<beluga_kvc_put> items(n);
			for (size_t i = 0; i < n; i++) {
				std::memcpy(items[i].key, &k[i * BELUGA_KVC_KEY_BYTES], BELUGA_KVC_KEY_BYTES);
				items[i].data = bufs.parts[i].first;
				items[i].len = bufs.parts[i].second;
			}
			std::vector<int> res(n);
			beluga_kvc *kv = c.get();
			{
				py::gil_scoped_release nogil;
				long r = beluga_kvc_put_batch(kv, items.data(), n, res.data());
				if (r < 0)
					kvcheck(r, "put");
			}
			return res;
		}, py::arg("keys"), py::arg("blocks"), R"doc(
Store blocks (a list of buffers, or one buffer holding len(keys) equal blocks).
Per item: 0 stored, EXISTS already cached, -EINVAL bad length, -ENOSPC full.)doc")
		.def("get", [](KVCache &c, py::handle keys, py::object out) -> py::object {
			auto k = keys_of(keys);
			size_t n = k.size() / BELUGA_KVC_KEY_BYTES;
			std::optional<py::bytearray> scratch;
			size_t payload = 0;
			if (out.is_none()) {
				payload = c.info().payload_bytes;
				scratch = py::bytearray(std::string(n * payload, '\0'));
				out = *scratch;
			}
			auto bufs = buffer_set(out, n, true, "get");
			std::vector<beluga_kvc_get> items(n);
			for (size_t i = 0; i < n; i++) {
				std::memcpy(items[i].key, &k[i * BELUGA_KVC_KEY_BYTES], BELUGA_KVC_KEY_BYTES);
				items[i].dst = bufs.parts[i].first;
				items[i].cap = bufs.parts[i].second;
			}
			std::vector<int> res(n);
			beluga_kvc *kv = c.get();
			{
				py::gil_scoped_release nogil;
				long r = beluga_kvc_get_batch(kv, items.data(), n, res.data());
				if (r < 0)
					kvcheck(r, "get");
			}
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
			beluga_kvc *kv = c.get();
			long r;
			{
				py::gil_scoped_release nogil;
				r = beluga_kvc_lookup_prefix(kv, reinterpret_cast<KeyRow>(k.data()),
							     k.size() / BELUGA_KVC_KEY_BYTES);
				if (r < 0)
					kvcheck(r, "lookup_prefix");
			}
			return r;
		}, py::arg("keys"), "How many leading keys are cached (by any host); takes no lock.")
		.def("pin", [](py::object self, py::handle keys, bool verify) {
			KVCache &c = self.cast<KVCache &>();
			auto k = keys_of(keys);
			size_t n = k.size() / BELUGA_KVC_KEY_BYTES;
			std::vector<beluga_kvc_ref> refs(n);
			std::vector<int> res(n);
			beluga_kvc *kv = c.get();
			{
				py::gil_scoped_release nogil;
				long r = beluga_kvc_pin(kv, reinterpret_cast<KeyRow>(k.data()), n,
							verify ? BELUGA_KVC_PIN_VERIFY : 0, refs.data(), res.data());
				if (r < 0)
					kvcheck(r, "pin");
			}
			py::list out;
			for (size_t i = 0; i < n; i++) {
				if (res[i] != 0) {
					out.append(py::none());
					continue;
				}
				std::string key(reinterpret_cast<const char *>(&k[i * BELUGA_KVC_KEY_BYTES]),
						BELUGA_KVC_KEY_BYTES);
				out.append(py::cast(new Pin(self, &c, refs[i], key),
						    py::return_value_policy::take_ownership));
			}
			return out;
		}, py::arg("keys"), py::arg("verify") = false, R"doc(
Pin blocks for zero-copy reading: a list of Pin (buffers over the blocks in
the region), None where the block is not cached, failed its checksum
(verify=True) or no pin entry was free (max_pins per process).)doc")
		.def("remove", [](KVCache &c, py::handle keys) {
			auto k = keys_of(keys);
			size_t n = k.size() / BELUGA_KVC_KEY_BYTES;
			std::vector<int> res(n);
			beluga_kvc *kv = c.get();
			{
				py::gil_scoped_release nogil;
				long r = beluga_kvc_remove(kv, reinterpret_cast<KeyRow>(k.data()), n, res.data());
				if (r < 0)
					kvcheck(r, "remove");
			}
			return res;
		}, py::arg("keys"), "Drop blocks of this host's partition: 0, -ENOENT, -EXDEV or -EBUSY per item.")
		.def("eviction", [](const KVCache &c, int host) {
			beluga_kvc_eviction e;
			kvcheck(beluga_kvc_get_eviction(c.get(), host, &e), "eviction");
			return eviction_dict(e);
		}, py::arg("host") = -1, "A host's eviction policy, capacity, watermarks and occupancy.")
		.def("set_eviction", [](KVCache &c, std::optional<std::string> policy,
					std::optional<uint64_t> capacity_blocks, OptU32 high, OptU32 low) {
			beluga_kvc_eviction e;
			kvcheck(beluga_kvc_get_eviction(c.get(), -1, &e), "eviction");
			if (policy) e.policy = policy_of(*policy);
			if (capacity_blocks) e.capacity_blocks = *capacity_blocks;
			if (high) e.high_watermark_pct = *high;
			if (low) e.low_watermark_pct = *low;
			beluga_kvc *kv = c.get();
			py::gil_scoped_release nogil;	// lowering the capacity evicts
			long r = beluga_kvc_set_eviction(kv, &e);
			if (r < 0)
				kvcheck(r, "set_eviction");
		}, py::kw_only(), py::arg("policy") = py::none(), py::arg("capacity_blocks") = py::none(),
		   py::arg("high_watermark_pct") = py::none(), py::arg("low_watermark_pct") = py::none(),
		   "Change this host's eviction settings (unset arguments keep their value).")
		.def("evict", [](KVCache &c, uint64_t max_blocks) {
			beluga_kvc *kv = c.get();
			py::gil_scoped_release nogil;
			long r = beluga_kvc_evict(kv, max_blocks);
			return r < 0 ? kvcheck(r, "evict") : r;
		}, py::arg("max_blocks") = 0,
		   "Evict up to max_blocks of this host's blocks now (0: down to the low watermark).")
		.def("inspect", [](KVCache &c, py::handle key, bool verify) -> py::object {
			auto k = keys_of(py::make_tuple(key));
			beluga_kvc_block_info b;
			int r = beluga_kvc_inspect(c.get(), k.data(), verify ? BELUGA_KVC_LIST_VERIFY : 0, &b);
			if (r == -ENOENT)
				return py::none();
			kvcheck(r, "inspect");
			return block_info_dict(b);
		}, py::arg("key"), py::arg("verify") = false, "One block's metadata (None if not cached).")
		.def("list_blocks", [](KVCache &c, int host, bool verify) {
			py::list out;
			uint64_t cursor = 0;
			std::vector<beluga_kvc_block_info> buf(256);
			beluga_kvc *kv = c.get();
			for (;;) {
				long n;
				{
					py::gil_scoped_release nogil;
					n = beluga_kvc_list_blocks(kv, host, &cursor, verify ? BELUGA_KVC_LIST_VERIFY : 0,
								   buf.data(), buf.size());
					if (n < 0)
						kvcheck(n, "list_blocks");
				}
				for (long i = 0; i < n; i++)
					out.append(block_info_dict(buf[size_t(i)]));
				if (size_t(n) < buf.size())
					return out;
			}
		}, py::arg("host") = -1, py::arg("verify") = false,
		   "Every cached block of one host's partition (-1: all), a lock-free snapshot.")
		.def("stats", [](const KVCache &c, int host) {
			beluga_kvc_stats s;
			kvcheck(beluga_kvc_get_stats(c.get(), host, &s), "stats");
			return stats_dict(s);
		}, py::arg("host") = -1, "Counters kept in the region: one host's, or all (-1).")
		.def("reclaim", [](KVCache &c) {
			beluga_kvc *kv = c.get();
			py::gil_scoped_release nogil;
			long r = beluga_kvc_reclaim(kv);
			return r < 0 ? kvcheck(r, "reclaim") : r;
		}, "Clean up after dead processes of this host now; returns the sessions reclaimed.")
		.def("check", [](KVCache &c, bool verify_data) {
			beluga_kvc_check_report rep;
			beluga_kvc *kv = c.get();
			{
				py::gil_scoped_release nogil;
				long r = beluga_kvc_check(kv, verify_data, &rep);
				if (r < 0)
					kvcheck(r, "check");
			}
			py::dict d;
#define F(x) d[#x] = rep.x
			F(slots); F(free_slots); F(reserved_slots); F(published_slots); F(retired_slots);
			F(live_sessions); F(dead_sessions); F(held_pins); F(index_entries); F(tombstones);
			F(errors);
#undef F
			return d;
		}, py::arg("verify_data") = false)
		.def_property_readonly("live_pins", [](const KVCache &c) { return c.live_pins; })
		.def("detach", &KVCache::detach, "Release the session (BufferError while Pins are held).")
		.def("close", &KVCache::detach)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](KVCache &c, py::args) { c.detach(); });

	m.def("checksum", [](py::handle data) {
		Buffer b(data, false);
		return beluga_kvc_checksum(b.data(), b.size());
	}, py::arg("data"), "The block checksum (BKV-F64) of a buffer, as the store records it.");
}

} // namespace bpy
