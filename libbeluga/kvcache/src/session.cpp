// SPDX-License-Identifier: Apache-2.0
// Sessions: one per attached process, in its host's area.  A session records
// the blocks its process is reserving and the blocks it holds pinned, so that
// when the process dies (SIGKILL included) the next process of the same host
// can undo exactly that: reservations go back to the allocator, pins vanish.
// Liveness: processes of the same host are checked directly (boot id, pid,
// start time from /proc); other hosts' sessions count while their host is
// not dead (its heartbeat watched, host.cpp) and their lease, a deadline on
// their host's clock renewed by each call and by a keeper thread, is not
// behind the clock that host published at its latest heartbeat.
#include "error.hpp"
#include "internal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace bkv {

HookFn g_hook = nullptr;
std::atomic<uint32_t> g_test_tick{0};
std::atomic<int64_t> g_test_skew{0};

uint64_t now_ns()
{
	timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec) +
	       uint64_t(g_test_skew.load(std::memory_order_relaxed));
}

uint32_t tick_now(beluga_kvc *kv)
{
	if (uint32_t t = g_test_tick.load(std::memory_order_relaxed))
		return t;
	uint64_t now = now_ns();
	uint64_t ms = now > kv->created_ns ? (now - kv->created_ns) / 1000000 + 1 : 1;
	return uint32_t(std::min<uint64_t>(ms, 0xffffffffull));
}

namespace {

uint64_t fnv1a(const void *p, size_t n, uint64_t h = 0xcbf29ce484222325ull)
{
	auto b = static_cast<const uint8_t *>(p);
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

// Field 3 (state) and 22 (start time) of /proc/<pid>/stat; false if gone.
bool proc_stat(uint32_t pid, char &state, uint64_t &start)
{
	char path[64], buf[1024];
	std::snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *p = std::strrchr(buf, ')'); // the command name may hold spaces
	if (!p || !p[1])
		return false;
	state = p[2];
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = std::strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	start = std::strtoull(p, nullptr, 10);
	return true;
}

uint64_t real_boot_id()
{
	char buf[64] = {};
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0)
			return fnv1a(buf, size_t(n)) | 1;
	}
	return 1;
}

void zero_lines(View &v, uint64_t off, uint64_t len)
{
	for (uint64_t o = 0; o < len; o += 8)
		if (v.ld(off + o))
			v.st(off + o, 0);
}

} // namespace

int identity(beluga_kvc *kv, bool simulate)
{
	kv->pid = uint32_t(getpid());
	char state;
	if (!proc_stat(kv->pid, state, kv->start))
		return fail(-EIO, "cannot read /proc/self/stat");
	kv->boot = real_boot_id();
	if (simulate) {
		// Each simulating process is a host of its own that booted when it
		// started: when it dies, its host "rebooted" and lost its cache.
		uint64_t x[3] = {kv->boot, kv->pid, kv->start};
		kv->boot = fnv1a(x, sizeof(x)) | 1;
	}
	return 0;
}

bool local_alive(beluga_kvc *kv, uint64_t lock, uint64_t boot, uint64_t start)
{
	if (boot && boot != kv->boot)
		return false; // its host rebooted since
	uint32_t pid = uint32_t(lock);
	char state;
	uint64_t st;
	if (!proc_stat(pid, state, st) || state == 'Z' || state == 'X')
		return false;
	// start 0: the owner took the lock and has not written its identity yet.
	return !start || st == start;
}

void lease_renew(beluga_kvc *kv, bool force)
{
	if (kv->g.hosts == 1)
		return; // nobody else to honour our pins
	host_beat(kv, false);
	uint64_t off = kv->g.session(kv->host, kv->session);
	uint64_t now = mono_ms(), lease = kv->lease_ns / 1000000;
	if (!force && kv->v().ld(off + kSesLease) > now + lease / 2)
		return;
	kv->v().st(off + kSesLease, now + lease);
	kv->v().flush(off, kLine);
}

int session_open(beluga_kvc *kv)
{
	View &v = kv->v();
	const Geo &g = kv->g;
	uint64_t hctl = g.host(kv->host);
	reclaim_dead(kv);
	for (uint32_t s = 0; s < g.sessions; s++) {
		uint64_t off = g.session(kv->host, s);
		if (v.ld(off + kSesLock))
			continue;
		uint64_t inc = (v.add(hctl + kHostSessionSeq, 1) + 1) & 0xffffffff;
		v.flush(hctl, kLine); // a host that crashes must not hand it out again
		if (!inc)
			inc = 1;
		uint64_t lock = inc << 32 | kv->pid, zero = 0;
		if (!v.cas(off + kSesLock, zero, lock))
			continue;
		kv->session = s;
		kv->lock_word = lock;
		v.st(off + kSesBoot, kv->boot);
		v.st(off + kSesStart, kv->start);
		v.st(off + kSesLease, mono_ms() + kv->lease_ns / 1000000);
		v.st(off + kSesPinsHwm, 0);
		v.flush(off, g.session_bytes);
		if (v.ld(hctl + kHostActive) != kv->boot) {
			v.st(hctl + kHostActive, kv->boot);
			v.flush(hctl, kLine);
		}
		for (uint32_t i = uint32_t(g.pins); i-- > 0;)
			kv->free_pins.push_back(i);
		for (uint32_t i = uint32_t(g.batch); i-- > 0;)
			kv->free_resv.push_back(i);
		kv->stat(kStSessionsOpened, 1);
		flush_stats(kv);
		return 0;
	}
	return fail(-EBUSY, "all %llu sessions of host %u are held by live processes "
			    "(raise max_sessions when formatting)",
		    (unsigned long long)g.sessions, kv->host);
}

void session_close(beluga_kvc *kv)
{
	View &v = kv->v();
	uint64_t off = kv->g.session(kv->host, kv->session);
	zero_lines(v, off + kv->g.pins_off, 16 * kv->pins_hwm);
	zero_lines(v, off + kSesResv, 4 * kv->g.batch);
	v.st(off + kSesBoot, 0);
	v.st(off + kSesStart, 0);
	v.st(off + kSesLease, 0);
	v.st(off + kSesPinsHwm, 0);
	v.flush(off, kv->g.session_bytes);
	v.st(off + kSesLock, 0);
	v.flush(off, kLine);
	flush_stats(kv);
}

namespace {

// Is the process in @lock (a lock word) a live holder of some session?
bool reclaimer_alive(beluga_kvc *kv, uint64_t lock)
{
	View &v = kv->v();
	for (uint32_t s = 0; s < kv->g.sessions; s++) {
		uint64_t off = kv->g.session(kv->host, s);
		if (v.ld(off + kSesLock) == lock)
			return local_alive(kv, lock, v.ld(off + kSesBoot), v.ld(off + kSesStart));
	}
	return false;
}

// Undo what a dead session held.  Every step is idempotent, so a reclaimer
// that dies half-way is simply redone by the next one.
void reclaim_one(beluga_kvc *kv, uint32_t s, uint64_t lock)
{
	View &v = kv->v();
	const Geo &g = kv->g;
	uint64_t off = g.session(kv->host, s);
	uint32_t inc = uint32_t(lock >> 32);
	for (uint32_t i = 0; i < g.batch; i++) {
		uint32_t e = v.ld32(g.resv(kv->host, s, i));
		if (!e)
			continue;
		if (e <= g.slots)
			slot_reclaim(kv, e - 1, s, inc);
		v.st32(g.resv(kv->host, s, i), 0);
	}
	uint64_t hwm = std::min<uint64_t>(v.ld(off + kSesPinsHwm), g.pins), pins = 0;
	for (uint64_t i = 0; i < hwm; i++)
		if (v.ld(g.pin(kv->host, s, i))) {
			v.st(g.pin(kv->host, s, i), 0);
			pins++;
		}
	kv->stat(kStPinsReclaimed, pins);
	kv->stat(kStSessionsReclaimed, 1);
	v.st(off + kSesBoot, 0);
	v.st(off + kSesStart, 0);
	v.st(off + kSesLease, 0);
	v.st(off + kSesPinsHwm, 0);
	v.flush(off, g.session_bytes);
	v.st(off + kSesReclaimer, 0);
	v.st(off + kSesLock, 0);
	v.flush(off, kLine);
}

} // namespace

int reclaim_dead(beluga_kvc *kv)
{
	View &v = kv->v();
	int n = 0;
	for (uint32_t s = 0; s < kv->g.sessions; s++) {
		uint64_t off = kv->g.session(kv->host, s);
		uint64_t lock = v.ld(off + kSesLock);
		if (!lock || lock == kv->lock_word ||
		    local_alive(kv, lock, v.ld(off + kSesBoot), v.ld(off + kSesStart)))
			continue;
		uint64_t r = v.ld(off + kSesReclaimer);
		uint64_t me = kv->lock_word ? kv->lock_word : (uint64_t(1) << 63 | kv->pid);
		if (r && r != me && (r >> 63 ? local_alive(kv, r & 0xffffffff, 0, 0)
					     : reclaimer_alive(kv, r)))
			continue; // someone else is at it
		if (!v.cas(off + kSesReclaimer, r, me))
			continue;
		if (v.ld(off + kSesLock) != lock) { // released meanwhile
			v.st(off + kSesReclaimer, 0);
			continue;
		}
		reclaim_one(kv, s, lock);
		n++;
	}
	if (n) {
		// The dead may have died between a slot change and the occupancy
		// counter's update: count again.
		used_resync(kv);
		flush_stats(kv);
	}
	return n;
}

bool slot_pinned(beluga_kvc *kv, uint32_t slot, uint64_t gen)
{
	View &v = kv->v();
	const Geo &g = kv->g;
	uint64_t want = kPinValid | uint64_t(kv->host) << 32 | slot;
	uint64_t hosts = active_hosts(kv);
	uint64_t live = live_hosts(kv);
	for (uint32_t h = 0; h < g.hosts; h++) {
		if (!(hosts >> h & 1))
			continue;
		bool foreign = kv->foreign(h);
		for (uint32_t s = 0; s < g.sessions; s++) {
			uint64_t off = g.session(h, s);
			if (foreign)
				v.invalidate(off, kLine, Point::inval_pins);
			if (!v.ld(off + kSesLock))
				continue;
			// A dead process of our own host keeps its pins until it is
			// reclaimed (conservative); another host's, until its lease ends
			// or its host is dead.
			if (foreign && !foreign_session_live(kv, h, off, live))
				continue;
			uint64_t hwm = std::min<uint64_t>(v.ld(off + kSesPinsHwm), g.pins);
			if (foreign)
				v.invalidate(g.pin(h, s, 0), 16 * hwm, Point::inval_pins);
			for (uint64_t i = 0; i < hwm; i++)
				if (v.ld(g.pin(h, s, i)) == want && v.ld(g.pin(h, s, i) + 8) == gen)
					return true;
		}
	}
	return false;
}

// Record the pin before validating the block (store, flush, fence), so that
// a host about to reuse the slot either sees the pin or we see its change.
int pin_take(beluga_kvc *kv, const Found &f)
{
	uint32_t idx;
	{
		std::lock_guard<std::mutex> l(kv->mu);
		if (kv->free_pins.empty())
			return -ENOBUFS;
		idx = kv->free_pins.back();
		kv->free_pins.pop_back();
		if (idx >= kv->pins_hwm) {
			kv->pins_hwm = idx + 1;
			uint64_t off = kv->g.session(kv->host, kv->session);
			kv->v().st(off + kSesPinsHwm, kv->pins_hwm);
			kv->v().flush(off, kLine, Point::pin_flush);
		}
	}
	View &v = kv->v();
	uint64_t off = kv->g.pin(kv->host, kv->session, idx);
	v.st(off + 8, f.gen);
	v.st(off, kPinValid | uint64_t(f.host) << 32 | f.slot);
	v.flush(off, 16, Point::pin_flush);
	v.fence();
	return int(idx);
}

void pin_drop(beluga_kvc *kv, uint32_t idx)
{
	View &v = kv->v();
	uint64_t off = kv->g.pin(kv->host, kv->session, idx);
	v.st(off, 0);
	v.flush(off, 16);
	std::lock_guard<std::mutex> l(kv->mu);
	kv->free_pins.push_back(idx);
}

} // namespace bkv
