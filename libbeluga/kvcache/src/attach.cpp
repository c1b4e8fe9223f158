// SPDX-License-Identifier: Apache-2.0
// beluga_kvc_attach / beluga_kvc_detach: validating a superblock, building
// the handle, taking a session.
#include "error.hpp"
#include "fingerprint.hpp"
#include "internal.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <new>

namespace bkv {
namespace {

bool within(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

// a * b + c, or ~0 when that overflows: a forged header with huge counts
// must not wrap around into a layout that seems to fit.
uint64_t span(uint64_t a, uint64_t b, uint64_t c = 0)
{
	uint64_t r;
	if (__builtin_mul_overflow(a, b, &r) || __builtin_add_overflow(r, c, &r))
		return ~0ull;
	return r;
}

void copy_geometry(const Super &s, Geo &g)
{
	g.region = s.region_bytes;
	g.hosts = s.max_hosts;
	g.sessions = s.max_sessions;
	g.pins = s.max_pins;
	g.batch = s.max_batch;
	g.slots = s.slots_per_host;
	g.buckets = s.buckets_per_host;
	g.payload = s.payload_bytes;
	g.stride = s.slot_stride;
	g.host_off = s.host_area_off;
	g.host_bytes = s.host_area_bytes;
	g.part_off = s.part_off;
	g.part_bytes = s.part_bytes;
	g.index_off = s.index_off;
	g.desc_off = s.desc_off;
	g.data_off = s.data_off;
	g.session_off = s.session_off;
	g.session_bytes = s.session_bytes;
	g.pins_off = s.pins_off;
	g.access_off = s.access_off;
	g.access_bytes = s.access_bytes;
	g.summary_off = s.summary_off;
	g.summary_words = s.summary_words;
}

// Everything the superblock says must fit the region, or we refuse it.
// Every field is untrusted (the header checksum only catches accidents):
// sums and products are overflow-checked.  Returns the first field that is
// out of bounds, or nullptr.
const char *geometry_from(const Super &s, uint64_t size, Geo &g)
{
	copy_geometry(s, g);
	const struct {
		bool ok;
		const char *field;
	} rules[] = {
		{g.region == size, "region_bytes"},
		{g.hosts >= 1 && g.hosts <= BELUGA_KVC_MAX_HOSTS, "max_hosts"},
		{g.sessions >= 1 && g.sessions <= 0xffffff, "max_sessions"},
		{g.pins >= 1 && g.pins <= 0xffffffff, "max_pins"},
		{g.batch >= 1 && g.batch <= 0xffffffff, "max_batch"},
		{g.slots >= 1 && g.slots <= 0x7fffffff, "slots_per_host"},
		{g.buckets >= (g.slots + kBucketEntries - 1) / kBucketEntries && g.buckets <= size / kLine,
		 "buckets_per_host"},
		{g.payload >= 1 && g.payload <= 0xffffffff, "payload_bytes"},
		{g.stride >= g.payload && g.stride % kLine == 0, "slot_stride"},
		{g.host_off >= kHeaderBytes && g.host_off <= size, "host_area_off"},
		{g.host_bytes % kLine == 0, "host_area_bytes"},
		{g.pins_off >= span(4, g.batch, kSesResv), "pins_off"},
		{g.session_bytes >= span(16, g.pins, g.pins_off), "session_bytes"},
		{g.session_off >= kHostFixed, "session_off"},
		{g.access_off >= span(g.sessions, g.session_bytes, g.session_off), "access_off"},
		{g.access_bytes >= span(g.hosts * 4, g.slots), "access_bytes"},
		{g.host_bytes >= span(1, g.access_off, g.access_bytes), "host_area_bytes"},
		{g.part_off % kLine == 0 &&
			 g.part_off >= span(g.hosts, g.host_bytes, g.host_off), "part_off"},
		{g.desc_off >= span(g.buckets, kLine, g.index_off), "desc_off"},
		{g.data_off % kLine == 0 && g.data_off >= span(g.slots, kLine, g.desc_off),
		 "data_off"},
		{g.summary_off ? g.summary_off % kLine == 0 && g.hosts > 1 &&
					 g.summary_off >= span(g.slots, kLine, g.desc_off)
			       : !g.summary_words && g.hosts == 1, "summary_off"},
		{!g.summary_off || (g.summary_words && g.summary_words % kSumWordAlign == 0 &&
				    g.summary_words <= size / 8),
		 "summary_words"},
		{!g.summary_off || g.data_off >= span(g.summary_words, 8, g.summary_off + kSumWords),
		 "data_off"},
		{g.part_bytes >= span(g.slots, g.stride, g.data_off), "part_bytes"},
		{within(g.part_off, span(g.hosts, g.part_bytes), size), "part_bytes"},
	};
	for (const auto &r : rules)
		if (!r.ok)
			return r.field;
	return nullptr;
}

int read_super(View &v, uint64_t size, Super &s)
{
	if (size < kHeaderBytes)
		return fail(-BELUGA_KVC_EFORMAT, "the region (%" PRIu64 " bytes) is too small "
						 "to hold a Beluga KV cache", size);
	// The ready word first, the superblock after it: the formatter writes
	// them in the other order, so a header read after the ready word is
	// complete.  A header read before it is never used.
	v.invalidate(kReadyOff, kLine);
	uint64_t ready = v.ld(kReadyOff);
	v.fence();
	v.invalidate(0, kPage);
	std::memcpy(&s, v.ptr(0), sizeof(s));
	static const char zero[8] = {};
	if (!std::memcmp(s.magic, zero, 8) && ready == 0)
		return fail(-BELUGA_KVC_ENOTREADY, "the region is empty: not formatted yet (or its "
						   "creator died before formatting it)");
	// Without the ready word, a magic being written (each byte 0 or the
	// magic's) is a format in progress; any other bytes are not a cache.
	bool magic_so_far = true;
	for (int i = 0; i < 8; i++)
		magic_so_far &= s.magic[i] == 0 || s.magic[i] == kMagic[i];
	if (ready == 0 && !magic_so_far)
		return fail(-BELUGA_KVC_EFORMAT, "the region does not hold a Beluga KV cache "
						 "(no BELUGAKV magic)");
	// Formatting clears the ready word first and sets it last: anything
	// but 0 or the magic is damage, not a format in progress.
	if (ready != kReadyMagic)
		return ready ? fail(-BELUGA_KVC_EFORMAT, "the cache's ready word is damaged "
							 "(0x%016" PRIx64 ")", ready)
			     : fail(-BELUGA_KVC_ENOTREADY, "the cache is still being formatted");
	if (std::memcmp(s.magic, kMagic, 8))
		return fail(-BELUGA_KVC_EFORMAT, "the region does not hold a Beluga KV cache "
						 "(no BELUGAKV magic)");
	if (s.version_major != BELUGA_KVC_FORMAT_MAJOR)
		return fail(-BELUGA_KVC_EVERSION, "the cache's format version is %u.%u; this "
						  "library reads %u.x only: run one library version on "
						  "every host of the cache, then format it again (its "
						  "blocks are lost; `beluga-tool wipe` empties a shared "
						  "region)", s.version_major, s.version_minor,
			    BELUGA_KVC_FORMAT_MAJOR);
	if (s.header_sum != f64(&s, offsetof(Super, header_sum)))
		return fail(-BELUGA_KVC_EFORMAT, "the cache header's checksum is wrong (damaged "
						 "header)");
	// A newer minor may have given meaning to bytes this library leaves
	// alone (and would not keep up): refuse it.  Rolling upgrades: every
	// host's library first, then a cache formatted at the new version.
	if (s.version_minor > BELUGA_KVC_FORMAT_MINOR)
		return fail(-BELUGA_KVC_EVERSION, "the cache's format version is %u.%u, newer than "
						  "this library's %u.%u: upgrade libbeluga on this "
						  "host", s.version_major, s.version_minor,
			    BELUGA_KVC_FORMAT_MAJOR, BELUGA_KVC_FORMAT_MINOR);
	return 0;
}

// read_super, waiting up to @wait_ms while the region is being formatted.
int read_super_wait(View &v, uint64_t size, Super &s, unsigned wait_ms)
{
	for (unsigned waited = 0;; waited++) {
		int r = read_super(v, size, s);
		if (r != -BELUGA_KVC_ENOTREADY || waited >= wait_ms)
			return r;
		timespec ms = {0, 1000000};
		nanosleep(&ms, nullptr);
	}
}

unsigned default_threads()
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return unsigned(std::clamp<long>(n, 1, 4));
}

// Several hosts: the heartbeat (every heartbeat period) and the lease.
void keeper_loop(beluga_kvc *kv)
{
	auto period = std::chrono::milliseconds(beat_period_ms(kv->lease_ns / 1000000));
	std::unique_lock<std::mutex> l(kv->keeper_mu);
	while (!kv->keeper_stop) {
		kv->keeper_cv.wait_for(l, period);
		// Tests that freeze the clock beat hosts themselves.
		if (!kv->keeper_stop && !g_test_mono.load()) {
			lease_renew(kv, false);
			flush_stats(kv); // lookups leave theirs to this (misc.cpp)
		}
	}
}

void prefault(View &v)
{
	uint64_t sum = 0;
	for (uint64_t off = 0; off < v.size(); off += kPage)
		sum += *static_cast<volatile uint8_t *>(v.shared(off));
	asm volatile("" : : "r"(sum));
}

int check_opts(const beluga_kvc_attach_opts &o)
{
	if (o.size != sizeof(o))
		return fail(-EINVAL, "attach options: size is %zu, expected %zu "
				     "(use beluga_kvc_attach_opts_init)", o.size, sizeof(o));
	if (o.coherence > BELUGA_KVC_SIMULATE ||
	    (o.flags & ~(BELUGA_KVC_ATTACH_OBSERVE | BELUGA_KVC_ATTACH_PREFAULT |
			 BELUGA_KVC_ATTACH_FORMAT)) ||
	    o.copy_threads > 256)
		return fail(-EINVAL, "attach options: unknown coherence mode or flags, or more "
				     "than 256 copy threads");
	if ((o.flags & BELUGA_KVC_ATTACH_OBSERVE) && o.coherence == BELUGA_KVC_SIMULATE)
		return fail(-EINVAL, "attach options: an observer cannot simulate a host");
	for (uint64_t r : o.reserved)
		if (r)
			return fail(-EINVAL, "attach options: reserved fields must be 0");
	return 0;
}

// @fp NULL: an observer that accepts any fingerprint.  @like: take_over's
// handle acting as another host (@like's identity; no claim, no session).
int attach(uint8_t *mem, size_t size, const beluga_kvc_fingerprint *fp,
	   const beluga_kvc_attach_opts &o, beluga_kvc **out, beluga_kvc *like = nullptr)
{
	if (int r = check_opts(o))
		return r;
	bool observer = o.flags & BELUGA_KVC_ATTACH_OBSERVE;
	if (!fp && !observer && !like)
		return fail(-EINVAL, "beluga_kvc_attach: NULL fingerprint (only observers may "
				     "omit it)");
	beluga_kvc_fingerprint mine;
	if (fp) {
		if (int r = fingerprint_normalize(*fp, mine))
			return r;
	}
	Super s;
	{
		View probe(mem, size, View::noncoherent);
		if (int r = read_super_wait(probe, size, s, observer ? 0 : o.ready_wait_ms))
			return r;
	}
	Geo g;
	if (const char *field = geometry_from(s, size, g))
		return fail(-BELUGA_KVC_EFORMAT, "the cache header describes a layout that does not "
						 "fit the %zu-byte region (damaged header: %s)",
			    size, field);
	if (fp) {
		if (int r = fingerprint_compare(s.fp, mine))
			return r;
	}
	if (o.host_id >= g.hosts)
		return fail(-EINVAL, "host_id %u is out of range: the cache has %" PRIu64 " hosts",
			    o.host_id, g.hosts);
	View::Mode mode = View::coherent;
	if (o.coherence == BELUGA_KVC_SIMULATE)
		mode = View::simulate;
	else if (o.coherence == BELUGA_KVC_NONCOHERENT ||
		 (o.coherence == BELUGA_KVC_AUTO && g.hosts > 1))
		mode = View::noncoherent;

	auto kv = std::make_unique<beluga_kvc>(o.copy_threads ? o.copy_threads : default_threads());
	kv->view = std::make_unique<View>(mem, size, mode);
	kv->view->set_owned(g.host(o.host_id), g.host_bytes, g.part(o.host_id), g.part_bytes);
	kv->g = g;
	kv->fp = s.fp;
	kv->host = o.host_id;
	kv->observer = observer;
	kv->created_ns = s.created_ns;
	kv->lease_ns = uint64_t(o.lease_ms ? o.lease_ms : 30000) * 1000000ull;
	kv->nt_min = o.nt_min_bytes ? o.nt_min_bytes : 64 * 1024;
	if (int r = summary_init(kv.get()))
		return r;
	if (like) {
		kv->internal = true;
		kv->pid = like->pid;
		kv->boot = like->boot;
		kv->start = like->start;
		kv->machine = like->machine;
		std::memcpy(kv->name, like->name, sizeof(kv->name));
		kv->lease_ns = like->lease_ns;
		*out = kv.release();
		return 0;
	}
	if (int r = identity(kv.get(), mode == View::simulate))
		return r;
	host_identity(kv.get());
	if (o.flags & BELUGA_KVC_ATTACH_PREFAULT)
		prefault(*kv->view);
	if (observer) { // no session, no lease: it writes nothing
		*out = kv.release();
		return 0;
	}
	if (g.hosts > 1) {
		if (int r = host_claim(kv.get()))
			return r;
	}
	if (int r = session_open(kv.get()))
		return r;
	if (g.hosts > 1) {
		try {
			kv->keeper = std::thread(keeper_loop, kv.get());
		} catch (...) {
			session_close(kv.get());
			throw;
		}
	}
	*out = kv.release();
	return 0;
}

} // namespace

void stop_keeper(beluga_kvc *kv)
{
	if (kv->keeper.joinable()) {
		{
			std::lock_guard<std::mutex> l(kv->keeper_mu);
			kv->keeper_stop = true;
		}
		kv->keeper_cv.notify_all();
		kv->keeper.join();
	}
}

int attach_internal(beluga_kvc *like, uint32_t host, beluga_kvc **out)
{
	beluga_kvc_attach_opts o;
	beluga_kvc_attach_opts_init(&o);
	o.host_id = host;
	o.copy_threads = 1;
	View::Mode m = like->v().mode();
	o.coherence = m == View::simulate    ? BELUGA_KVC_SIMULATE
		      : m == View::coherent ? BELUGA_KVC_COHERENT
					    : BELUGA_KVC_NONCOHERENT;
	try {
		return attach(like->v().shared(0), like->v().size(), nullptr, o, out, like);
	} catch (const std::bad_alloc &) {
		return fail(-ENOMEM, "beluga_kvc_take_over: out of memory");
	}
}

} // namespace bkv

using namespace bkv;

extern "C" {

void beluga_kvc_attach_opts_init(beluga_kvc_attach_opts *o)
{
	if (!o)
		return;
	std::memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
}

int beluga_kvc_attach(void *base, size_t size, const beluga_kvc_fingerprint *fp,
		      const beluga_kvc_attach_opts *opts, beluga_kvc **out)
{
	if (!base || !out)
		return fail(-EINVAL, "beluga_kvc_attach: NULL argument");
	beluga_kvc_attach_opts def;
	beluga_kvc_attach_opts_init(&def);
	try {
		return attach(static_cast<uint8_t *>(base), size, fp, opts ? *opts : def, out);
	} catch (const std::bad_alloc &) {
		return fail(-ENOMEM, "beluga_kvc_attach: out of memory");
	} catch (const std::system_error &e) {
		return fail(-EAGAIN, "beluga_kvc_attach: cannot start a thread: %s", e.what());
	}
}

void beluga_kvc_detach(beluga_kvc *kv)
{
	if (!kv)
		return;
	stop_keeper(kv);
	if (!kv->observer && !kv->internal) {
		reserve_abort_all(kv); // reservations never committed
		session_close(kv);
	}
	void (*release)(void *) = kv->release;
	void *arg = kv->release_arg;
	delete kv;
	if (release)
		release(arg);
}

} // extern "C"
