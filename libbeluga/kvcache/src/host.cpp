// SPDX-License-Identifier: Apache-2.0
// Hosts of a multi-host cache: who holds which host index, whether it is
// alive, and taking over the index of a host that died
// (kvcache-format.md, "Host identity and liveness", is the protocol).
//
// Hosts share no atomics and no coherence (CXL 2.0), and their clocks are
// not compared.  So:
//  - a host index is claimed by writing the claim line and re-reading it
//    after the claim window (longer than a heartbeat period): of hosts that
//    wrote at once, the one whose write landed last keeps it; a claimant
//    first watches the line for a window, so it never overwrites a live
//    holder (whose heartbeat moves) or a claim in progress;
//  - the holder advances a heartbeat counter every heartbeat period; an
//    observer judges it dead only after watching the counter not move for
//    longer than the holder's lease, on the observer's own monotonic clock;
//  - a session's lease is a deadline on its own host's clock, compared
//    with the clock that host published at its latest heartbeat.
#include "error.hpp"
#include "internal.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

namespace bkv {

std::atomic<uint64_t> g_test_mono{0};
void (*g_test_wait)(uint64_t ms) = nullptr;
TestIdentity g_test_identity;

uint64_t mono_ms()
{
	if (uint64_t t = g_test_mono.load(std::memory_order_relaxed))
		return t;
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

uint64_t beat_period_ms(uint64_t lease_ms) { return std::clamp<uint64_t>(lease_ms / 8, 1, 1000); }

namespace {

constexpr uint64_t kDefaultLeaseMs = 30000;

uint64_t fnv(const void *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ static_cast<const uint8_t *>(p)[i]) * 0x100000001b3ull;
	return h;
}

uint64_t real_machine_id()
{
	for (const char *path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
		char buf[128] = {};
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0)
			return fnv(buf, size_t(n)) | 1;
	}
	utsname u;
	if (!uname(&u))
		return fnv(u.nodename, std::strlen(u.nodename)) | 1;
	return 1;
}

uint64_t lease_of(beluga_kvc *kv) { return std::max<uint64_t>(kv->lease_ns / 1000000, 1); }

// The claim protocol's waits: on this host's monotonic clock (tests replace
// them, so that what other hosts do meanwhile is decided by the test).
void wait_ms(uint64_t ms)
{
	if (g_test_wait) {
		g_test_wait(ms);
		return;
	}
	if (g_test_mono.load())
		return; // a frozen clock without a wait function: nothing would pass
	for (uint64_t end = mono_ms() + ms, now; (now = mono_ms()) < end;) {
		uint64_t step = std::min<uint64_t>(end - now, 10);
		timespec ts{time_t(step / 1000), long(step % 1000) * 1000000};
		nanosleep(&ts, nullptr);
	}
}

struct Claim {
	uint64_t machine = 0, boot = 0, beat = 0, clock = 0, since = 0;
	uint32_t lease_ms = 0, served_by = 0;
	char name[64] = {};

	bool same(const Claim &o) const
	{
		return machine == o.machine && boot == o.boot && beat == o.beat;
	}
	uint64_t lease() const { return lease_ms ? lease_ms : kDefaultLeaseMs; }
};

// Host @h's claim line and name.  @fresh: invalidate them first (another
// host may have written them).
Claim read_claim(beluga_kvc *kv, uint32_t h, bool fresh)
{
	View &v = kv->v();
	uint64_t off = kv->g.host(h);
	if (fresh)
		v.invalidate(off + kHostClaim, 2 * kLine, Point::inval_claim);
	Claim c;
	c.machine = v.ld(off + kClMachine);
	c.boot = v.ld(off + kClBoot);
	c.beat = v.ld(off + kClBeat);
	c.clock = v.ld(off + kClClock);
	c.since = v.ld(off + kClSince);
	uint64_t lw = v.ld(off + kClLease);
	c.lease_ms = uint32_t(lw);
	c.served_by = uint32_t(lw >> 32);
	for (unsigned i = 0; i < 63; i++) {
		char ch = char(v.ptr(off + kHostName)[i]);
		if (!ch)
			break;
		c.name[i] = ch >= 0x20 && ch < 0x7f ? ch : '?'; // untrusted bytes
	}
	return c;
}

// Write host @h's claim: @machine/@boot hold it (0: free), served by host
// @served (index + 1; 0: itself).  Name line first, the claim line last.
void write_claim(beluga_kvc *kv, uint32_t h, uint64_t machine, uint64_t boot, uint64_t beat,
		 uint32_t served, Point p)
{
	View &v = kv->v();
	uint64_t off = kv->g.host(h);
	uint64_t words[8] = {};
	std::memcpy(words, kv->name, std::min(sizeof(words) - 1, std::strlen(kv->name)));
	for (unsigned i = 0; i < 8; i++)
		v.st(off + kHostName + 8 * i, words[i]);
	v.st(off + kClBoot, boot);
	v.st(off + kClBeat, beat);
	v.st(off + kClClock, mono_ms());
	v.st(off + kClLease, uint64_t(served) << 32 | lease_of(kv));
	v.st(off + kClSince, now_ns());
	v.st(off + kClMachine, machine);
	v.flush(off + kHostClaim, 2 * kLine, p);
}

int refuse(beluga_kvc *kv, const Claim &before, const Claim &after, uint64_t watched)
{
	uint32_t h = kv->host;
	if (!before.machine && after.machine)
		return fail(-EADDRINUSE, "host index %u was claimed by host \"%s\" (machine %016" PRIx64
					 ") while this host was claiming it: every host needs a "
					 "host_id of its own", h, after.name, after.machine);
	if (!before.same(after))
		return fail(-EADDRINUSE, "host index %u is held by host \"%s\" (machine %016" PRIx64
					 ", boot %016" PRIx64 "), which is alive: its heartbeat moved "
					 "from %" PRIu64 " to %" PRIu64 " in the %" PRIu64 " ms this "
					 "host watched it; every host needs a host_id of its own",
			    h, after.name, after.machine, after.boot, before.beat, after.beat,
			    watched);
	return fail(-EADDRINUSE, "host index %u is held by host \"%s\" (machine %016" PRIx64 "), "
				 "whose heartbeat (%" PRIu64 ") did not move in the %" PRIu64 " ms "
				 "this host watched it: if that host is gone for good, take its "
				 "index over (beluga-tool kv takeover CACHE --host %u --by <a live "
				 "host>, --release to free it)",
		    h, after.name, after.machine, after.beat, watched, h);
}

} // namespace

void host_identity(beluga_kvc *kv)
{
	kv->machine = g_test_identity.machine ? g_test_identity.machine : real_machine_id();
	if (g_test_identity.boot)
		kv->boot = g_test_identity.boot;
	const char *name = g_test_identity.name[0] ? g_test_identity.name : std::getenv("BELUGA_KVC_HOST_NAME");
	utsname u;
	if (!name || !*name)
		name = !uname(&u) ? u.nodename : "?";
	std::memset(kv->name, 0, sizeof(kv->name));
	std::memcpy(kv->name, name, strnlen(name, sizeof(kv->name) - 1));
}

int host_claim(beluga_kvc *kv)
{
	uint32_t h = kv->host;
	uint64_t window = 2 * beat_period_ms(lease_of(kv));
	Claim c0 = read_claim(kv, h, true);
	if (c0.machine && c0.boot == kv->boot)
		return 0; // held by this boot of this host: another of its processes
	if (c0.machine && c0.machine == kv->machine) {
		// This machine rebooted (simulated: a process of it restarted);
		// a machine runs one boot at a time, so the old one is gone.
		write_claim(kv, h, kv->machine, kv->boot, c0.beat + 1, c0.served_by,
			    Point::claim_flush);
		return 0;
	}
	if (c0.machine) {
		// Another machine's: watch for two of its heartbeat periods.  Alive
		// or not, it stays its own until taken over (beluga_kvc_take_over).
		uint64_t w = 2 * beat_period_ms(c0.lease()) + 1;
		wait_ms(w);
		Claim c1 = read_claim(kv, h, true);
		if (c1.machine && c1.boot == kv->boot)
			return 0;
		return refuse(kv, c0, c1, w);
	}
	// Free.  Watch for the claim window: a claim written before ours would
	// land in it.  Then claim, and re-read after the window: of claims
	// written at once, memory keeps one, and every claimant reads the same.
	wait_ms(window);
	Claim c1 = read_claim(kv, h, true);
	if (c1.machine) {
		if (c1.boot == kv->boot)
			return 0;
		return refuse(kv, c0, c1, window);
	}
	write_claim(kv, h, kv->machine, kv->boot, c1.beat + 1, 0, Point::claim_flush);
	wait_ms(window);
	Claim c2 = read_claim(kv, h, true);
	if (c2.machine != kv->machine || c2.boot != kv->boot)
		return refuse(kv, c0, c2, window);
	return 0;
}

void host_beat(beluga_kvc *kv, bool force)
{
	if (kv->g.hosts == 1 || kv->observer || kv->internal || kv->lost.load())
		return;
	View &v = kv->v();
	uint64_t off = kv->g.host(kv->host);
	uint64_t now = mono_ms();
	uint64_t last = v.ld(off + kClClock);
	if (!force && now >= last && now - last < beat_period_ms(lease_of(kv)))
		return;
	std::lock_guard<std::mutex> l(kv->beat_mu);
	// Still ours?  A host that stalled for longer than its lease may have
	// been taken over; it must then stop writing, not beat over the claim.
	Claim c = read_claim(kv, kv->host, true);
	if (c.machine != kv->machine || c.boot != kv->boot) {
		kv->lost.store(true);
		return;
	}
	last = v.ld(off + kClClock);
	if (!force && now >= last && now - last < beat_period_ms(lease_of(kv)))
		return;
	v.st(off + kClClock, now);
	v.st(off + kClBeat, v.ld(off + kClBeat) + 1);
	v.flush(off + kHostClaim, kLine, Point::beat_flush);
}

HostView host_view(beluga_kvc *kv, uint32_t h)
{
	bool self = h == kv->host && !kv->observer;
	Claim c = read_claim(kv, h, !self);
	HostView hv{};
	hv.machine = c.machine;
	hv.boot = c.boot;
	hv.beat = c.beat;
	hv.clock = c.clock;
	hv.since = c.since;
	hv.lease_ms = uint32_t(c.lease());
	hv.served_by = c.served_by && c.served_by <= kv->g.hosts ? c.served_by - 1 : h;
	if (self) {
		hv.state = BELUGA_KVC_HOST_SELF;
		return hv;
	}
	if (!c.machine) {
		hv.state = BELUGA_KVC_HOST_FREE;
		return hv;
	}
	uint64_t now = mono_ms();
	std::lock_guard<std::mutex> l(kv->seen_mu);
	beluga_kvc::Seen &s = kv->seen[h];
	if (!s.valid || s.machine != c.machine || s.boot != c.boot || s.beat != c.beat) {
		s.moved = s.valid;
		s.valid = true;
		s.machine = c.machine;
		s.boot = c.boot;
		s.beat = c.beat;
		s.at_ms = now;
	}
	hv.observed_ms = now - std::min(now, s.at_ms);
	hv.state = hv.observed_ms > c.lease() ? BELUGA_KVC_HOST_DEAD
		   : s.moved		       ? BELUGA_KVC_HOST_ALIVE
						: BELUGA_KVC_HOST_SILENT;
	return hv;
}

uint64_t live_hosts(beluga_kvc *kv)
{
	if (kv->g.hosts == 1)
		return 1;
	uint64_t mask = 0;
	for (uint32_t h = 0; h < kv->g.hosts; h++) {
		uint32_t st = host_view(kv, h).state;
		if (st == BELUGA_KVC_HOST_SELF || st == BELUGA_KVC_HOST_ALIVE ||
		    st == BELUGA_KVC_HOST_SILENT)
			mask |= 1ull << h;
	}
	return mask;
}

bool foreign_session_live(beluga_kvc *kv, uint32_t h, uint64_t off, uint64_t live)
{
	View &v = kv->v();
	if (!v.ld(off + kSesLock) || !(live >> h & 1))
		return false;
	// Both numbers come from host @h's clock: its session's deadline and
	// the time it published at its latest heartbeat (read by host_view).
	return v.ld(off + kSesLease) >= v.ld(kv->g.host(h) + kClClock);
}

int take_over(beluga_kvc *kv, uint32_t h, uint32_t flags)
{
	if (h >= kv->g.hosts || h == kv->host)
		return fail(-EINVAL, "beluga_kvc_take_over: host %u is this handle's own or out of "
				     "range (0..%u)", h, unsigned(kv->g.hosts) - 1);
	if (flags & ~uint32_t(BELUGA_KVC_TAKEOVER_RELEASE))
		return fail(-EINVAL, "beluga_kvc_take_over: unknown flags 0x%x", flags);
	// A handle acting as host @h (its lines are written only after we
	// decided that @h is dead): no claim, no session, no heartbeat.
	beluga_kvc *raw = nullptr;
	if (int r = attach_internal(kv, h, &raw))
		return r;
	std::unique_ptr<beluga_kvc, void (*)(beluga_kvc *)> t(raw, beluga_kvc_detach);
	View &v = t->v();
	Claim c0 = read_claim(t.get(), h, true);
	// Signs of life a host can check directly: a live process of this boot.
	for (uint32_t s = 0; s < kv->g.sessions; s++) {
		uint64_t off = kv->g.session(h, s);
		v.invalidate(off, kLine);
		uint64_t lock = v.ld(off + kSesLock);
		if (lock && v.ld(off + kSesBoot) == kv->boot &&
		    local_alive(kv, lock, v.ld(off + kSesBoot), v.ld(off + kSesStart)))
			return fail(-EBUSY, "host %u is alive: process %u of this host is attached "
					    "to it", h, unsigned(uint32_t(lock)));
	}
	// Its heartbeat, watched for longer than its lease.
	if (c0.machine) {
		uint64_t w = c0.lease() + beat_period_ms(c0.lease()) + 1;
		wait_ms(w);
		Claim c1 = read_claim(t.get(), h, true);
		if (!c0.same(c1))
			return fail(-EBUSY, "host %u (\"%s\") is alive: its heartbeat moved from %" PRIu64
					    " to %" PRIu64 " in the %" PRIu64 " ms this host watched "
					    "it", h, c1.name, c0.beat, c1.beat, w);
	}
	bool release = flags & BELUGA_KVC_TAKEOVER_RELEASE;
	uint64_t machine = release ? 0 : kv->machine, boot = release ? 0 : kv->boot;
	write_claim(t.get(), h, machine, boot, c0.beat + 1, release ? 0 : kv->host + 1,
		    Point::takeover_flush);
	wait_ms(2 * beat_period_ms(lease_of(kv)));
	Claim c2 = read_claim(t.get(), h, true);
	if (c2.machine != machine || c2.boot != boot)
		return fail(-EBUSY, "host %u was claimed by host \"%s\" (machine %016" PRIx64 ") "
				    "while this host was taking it over", h, c2.name, c2.machine);
	// Every session it left is dead now: undo them as its successor would.
	return reclaim_dead(t.get());
}

} // namespace bkv
