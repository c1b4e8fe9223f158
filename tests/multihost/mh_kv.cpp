// SPDX-License-Identifier: Apache-2.0
//
// mh_kv: the KV store (libbeluga/kvcache) shared by guests that each run
// their own kernel (profile multihost-shared: every guest's beluga.ko pools
// the same CXL memory, and every guest defines the same shared region over
// it).  Every guest runs the same test and takes its role from
// BELUGA_VM_HOST: guest h attaches as host index h; host 0 ("A") is the one
// configured to format, except where a test says otherwise.  Each test uses
// an extent of its own, so no test sees another's cache.
//
//   mh_kv publish       A stores blocks of many lengths; B reads each back
//                       byte for byte (get, lookup, a verified pin)
//   mh_kv concurrent    every host stores into its own partition while
//                       reading the others' (every hit byte for byte, a
//                       remove of another host's block refused); then every
//                       host finds all of every other host's blocks
//   mh_kv duplicate     B attaches with A's host index: refused
//                       (-EADDRINUSE) with a message naming A; then B
//                       attaches with its own
//   mh_kv format-race one|all   every host opens the cache at once with a
//                       configuration; "one": only A has the format flag (a
//                       deployment's configuration), "all": every host has
//                       it.  Exactly one format in all (counted by the store's
//                       test hook), one creation time seen by every host, and
//                       every host reads every other host's block
//   mh_kv crash         A (a child process that plays one boot of A's
//                       machine) stores blocks, then dies by SIGKILL at the
//                       start of a write in the middle of a storm; B reads
//                       throughout, every hit byte for byte, then finds all
//                       A published and nothing of the torn write, and sees
//                       A dead once its heartbeat stood still for its lease;
//                       A's machine "reboots" (a process with the real boot
//                       id), re-attaches at once, reclaims what the old boot
//                       held and stores again; B reads it all
//   mh_kv kill          B's `beluga-tool kv takeover` of A's partition is
//                       refused while A lives; the runner kills A's QEMU
//                       while A is inside a write of a storm (A asks for it
//                       from the store's write hook); B reads A's blocks
//                       throughout and after (none torn), sees A dead, takes
//                       A's partition over with the command and stores into
//                       it.  Run it last: it kills a guest.
//   mh_kv wipe          `beluga-tool wipe` of the extent of a cache A
//                       formatted: on the last host (the wiper), refused
//                       (exit 8) while it maps the region itself, then
//                       while A is attached (naming A, alive); once A
//                       detached, wiped; every host then reads zeroes in
//                       the whole extent, A formats a new cache there and
//                       the others find its block and none of the old ones
//
// Host 0 zeroes each test's extent before the hosts meet to attach, so no
// test depends on what ran before it on the shared memory.
//
// Every wait is bounded (BELUGA_MH_TIMEOUT, default 240 s, only to catch a
// hang) and goes through the rendezvous keyed by the run's nonce, or watches
// the store; block keys and contents are derived from the nonce.  Verdicts
// are on what was read, never on how much got done in a time.
// Exit status 0 pass, 1 fail, 77 skip (no range source).
#include <beluga/beluga.h>
#include <beluga/kvcache.hpp>

#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvc_util.hpp"
#include "kvcache_test.h"
#include "rendezvous.hpp"
#include "run_tool.hpp"

namespace {

using beluga::mh::Rendezvous;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kExtent = 16 * kMiB;
constexpr size_t kPayload = 64 * 1024;
// A short lease keeps the claim window (two heartbeat periods: 500 ms) and
// a takeover's watch (lease + a period) short; it is still far longer than
// any stall of these guests' keeper threads.
constexpr uint32_t kLeaseMs = 2000;

struct Skip {
	std::string why;
};
struct Fail : std::runtime_error {
	using std::runtime_error::runtime_error;
};

double timeout_s()
{
	const char *t = std::getenv("BELUGA_MH_TIMEOUT");
	double v = t && *t ? std::strtod(t, nullptr) : 0;
	return v > 0 ? v : 240;
}

// Where each test's extent starts in the range source (mh_shared uses the
// first 8 MiB).
uint64_t extent_of(const std::string &test)
{
	static const char *order[] = {"publish",   "concurrent", "duplicate", "format-race-one",
				      "format-race-all", "crash", "kill", "wipe"};
	for (size_t i = 0; i < std::size(order); i++)
		if (test == order[i])
			return 64 * kMiB + i * kExtent;
	throw Fail("no extent for " + test);
}

std::string node_name()
{
	utsname u;
	return uname(&u) ? "?" : u.nodename;
}

beluga_pool *open_kernel_pool()
{
	beluga_pool_options o;
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_KERNEL;
	beluga_pool *pool = nullptr;
	if (int r = beluga_pool_open(&o, &pool))
		throw Fail(std::string("beluga_pool_open: ") + beluga_strerror(r));
	return pool;
}

// One shared region over this test's extent, defined on this guest; the
// definition is destroyed (on this guest; the bytes stay) at the end.
class Shared {
public:
	// Host 0 zeroes the extent (a shared extent keeps whatever earlier
	// tests left there, and a format expects zeroes); every test meets at
	// a barrier after this, before any host attaches.
	Shared(const Rendezvous &rv, const std::string &test)
		: name_("mh-kv-" + test), pool_(open_kernel_pool())
	{
		beluga_pool_info info;
		if (int r = beluga_pool_get_info(pool_, &info))
			throw Fail(std::string("beluga_pool_get_info: ") + beluga_strerror(r));
		int src = -1;
		for (uint32_t i = 0; i < info.nr_sources; i++) {
			beluga_pool_source_info s;
			if (!beluga_pool_get_source(pool_, i, &s) && s.kind == BELUGA_SOURCE_KIND_RANGE)
				src = int(i);
		}
		if (src < 0)
			throw Skip{"no range source: the profile must release the CXL device to beluga.ko"};
		beluga_region *r = nullptr;
		if (int e = beluga_shared_define(pool_, name_.c_str(), uint32_t(src), extent_of(test),
						 kExtent, 0600, &r))
			throw Fail("beluga_shared_define " + name_ + ": " + beluga_strerror(e));
		int e = rv.host() == 0 ? zero(r) : 0;
		beluga_region_close(r);
		if (e)
			throw Fail("zeroing " + name_ + ": " + beluga_strerror(e));
	}
	~Shared()
	{
		if (int r = beluga_region_destroy(pool_, name_.c_str()))
			std::printf("destroying this guest's definition of %s: %s\n", name_.c_str(),
				    beluga_strerror(r));
		beluga_pool_close(pool_);
	}
	Shared(const Shared &) = delete;
	Shared &operator=(const Shared &) = delete;
	beluga_pool *pool() const { return pool_; }
	const std::string &name() const { return name_; }

private:
	static int zero(beluga_region *r)
	{
		beluga_mapping *m = nullptr;
		if (int e = beluga_region_map(r, 0, 0, BELUGA_PROT_READ | BELUGA_PROT_WRITE, &m))
			return e;
		static const std::vector<char> zeroes(2 * kMiB);
		auto *p = static_cast<char *>(beluga_mapping_addr(m));
		for (size_t off = 0; off < beluga_mapping_size(m); off += zeroes.size())
			beluga_copy_nt(p + off, zeroes.data(), zeroes.size());
		beluga_mapping_unmap(m);
		return 0;
	}

	std::string name_;
	beluga_pool *pool_ = nullptr;
};

beluga_kvc_config cache_config()
{
	auto c = kvt::config(kvt::opaque_fp(kPayload, "mh-kv"), 0);
	c.max_hosts = 0; // set below: every guest of the run is a host
	// Nothing is evicted: every block stored must stay readable.
	c.eviction = BELUGA_KVC_EVICT_NONE;
	return c;
}

beluga_kvc_attach_opts attach_opts(uint32_t host, bool format, uint32_t lease_ms = kLeaseMs)
{
	auto o = kvt::opts(host, BELUGA_KVC_AUTO);
	o.lease_ms = lease_ms;
	o.ready_wait_ms = uint32_t(std::min(timeout_s() * 1000, 4e9));
	if (format)
		o.flags |= BELUGA_KVC_ATTACH_FORMAT;
	return o;
}

// Open the cache in region @name as host @host; @format: with the
// configuration and the format flag (else without a configuration: wait
// for the cache).
beluga::kvc::Cache open_cache(beluga_pool *pool, const std::string &name, const Rendezvous &rv,
			      uint32_t host, bool format, uint32_t lease_ms = kLeaseMs)
{
	auto cfg = cache_config();
	cfg.max_hosts = rv.hosts();
	auto o = attach_opts(host, format, lease_ms);
	return beluga::kvc::Cache::open(pool, name, cfg.fingerprint, format ? &cfg : nullptr, 0, 0600,
					&o);
}

beluga::kvc::Cache open_cache(const Shared &s, const Rendezvous &rv, uint32_t host, bool format,
			      uint32_t lease_ms = kLeaseMs)
{
	return open_cache(s.pool(), s.name(), rv, host, format, lease_ms);
}

// Block @i of host @h in test @tag: its key id (nonce-derived), length and
// bytes.
struct Block {
	uint64_t id;
	size_t len;
};

Block block(const Rendezvous &rv, uint64_t tag, unsigned h, uint64_t i)
{
	uint64_t s = rv.nonce() ^ tag << 40 ^ uint64_t(h) << 32 ^ i;
	uint64_t id = kvt::splitmix(s);
	// Lengths from 16 bytes to the whole payload, odd ones included.
	size_t len = kPayload - size_t(i * 12289 % (kPayload - 16));
	return {id, len};
}

beluga::kvc::Key key_of(const Block &b)
{
	beluga::kvc::Key k;
	kvt::make_key(b.id, k.data());
	return k;
}

int put(beluga::kvc::Cache &c, const Block &b)
{
	std::vector<uint8_t> buf(b.len);
	kvt::fill_block(b.id, buf.data(), b.len);
	return c.put(key_of(b), buf.data(), b.len);
}

enum class Read { hit, miss, bad };

// Get @b and compare it byte for byte with what was stored.
Read read_block(beluga::kvc::Cache &c, const Block &b, std::string *why = nullptr)
{
	std::vector<uint8_t> got(kPayload + 64), want(b.len);
	int n = c.get(key_of(b), got.data(), got.size());
	if (n == -ENOENT)
		return Read::miss;
	kvt::fill_block(b.id, want.data(), b.len);
	if (n < 0 || size_t(n) != b.len || std::memcmp(got.data(), want.data(), b.len)) {
		if (why) {
			size_t first = 0;
			while (n > 0 && first < std::min(size_t(n), b.len) && got[first] == want[first])
				first++;
			*why = "get returned " + std::to_string(n) + " for a " + std::to_string(b.len) +
			       "-byte block; first differing byte " + std::to_string(first);
		}
		return Read::bad;
	}
	return Read::hit;
}

// Every block in [from, to) of host @h must be there byte for byte.
bool expect_all(beluga::kvc::Cache &c, const Rendezvous &rv, uint64_t tag, unsigned h, uint64_t from,
		uint64_t to, const char *what)
{
	uint64_t bad = 0, miss = 0;
	for (uint64_t i = from; i < to; i++) {
		std::string why;
		Read r = read_block(c, block(rv, tag, h, i), &why);
		if (r == Read::bad && !bad++)
			std::printf("  %s: block %" PRIu64 " of host %u differs: %s\n", what, i, h, why.c_str());
		if (r == Read::miss && !miss++)
			std::printf("  %s: block %" PRIu64 " of host %u is missing\n", what, i, h);
	}
	std::printf("host %u: %s: %" PRIu64 " blocks of host %u [%" PRIu64 ", %" PRIu64
		    "): %" PRIu64 " differ, %" PRIu64 " missing\n",
		    rv.host(), what, to - from, h, from, to, bad, miss);
	return !bad && !miss;
}

// No block in [from, to) of host @h may be found.
bool expect_none(beluga::kvc::Cache &c, const Rendezvous &rv, uint64_t tag, unsigned h, uint64_t from,
		 uint64_t to, const char *what)
{
	uint64_t found = 0;
	for (uint64_t i = from; i < to; i++)
		found += read_block(c, block(rv, tag, h, i)) != Read::miss;
	std::printf("host %u: %s: %" PRIu64 " of host %u's blocks [%" PRIu64 ", %" PRIu64
		    ") found (none may be)\n",
		    rv.host(), what, found, h, from, to);
	return !found;
}

// What the store's checker finds in the whole cache.
bool check_clean(beluga::kvc::Cache &c, const Rendezvous &rv, const char *when)
{
	auto r = c.check_all(true);
	std::printf("host %u: check %s: %" PRIu64 " published, %" PRIu64 " reserved, %" PRIu64
		    " dead sessions, %" PRIu64 " errors\n",
		    rv.host(), when, r.published_slots, r.reserved_slots, r.dead_sessions, r.errors);
	return !r.errors && !r.reserved_slots && !r.dead_sessions;
}

const char *state_name(uint32_t s)
{
	switch (s) {
	case BELUGA_KVC_HOST_FREE: return "free";
	case BELUGA_KVC_HOST_SELF: return "self";
	case BELUGA_KVC_HOST_ALIVE: return "alive";
	case BELUGA_KVC_HOST_SILENT: return "silent";
	case BELUGA_KVC_HOST_DEAD: return "dead";
	}
	return "?";
}

// Watch host @h until the store judges it @state (bounded).
bool wait_state(beluga::kvc::Cache &c, const Rendezvous &rv, uint32_t h, uint32_t state)
{
	auto end = Clock::now() + std::chrono::duration<double>(timeout_s());
	beluga_kvc_host_info i;
	for (;;) {
		i = c.host(h);
		if (i.state == state)
			break;
		if (Clock::now() > end) {
			std::printf("host %u: host %u is still %s (heartbeat %" PRIu64 "), not %s\n",
				    rv.host(), h, state_name(i.state), i.heartbeat, state_name(state));
			return false;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	}
	std::printf("host %u: host %u (\"%s\") is %s: heartbeat %" PRIu64 ", unchanged for %" PRIu64
		    " ms as seen here, lease %u ms\n",
		    rv.host(), h, i.name, state_name(i.state), i.heartbeat, i.observed_ms, i.lease_ms);
	return true;
}

// Reads host @h's storm blocks until block @last is there, checking every
// hit byte for byte; then returns whether all reads were intact.  Bounded.
bool read_until(beluga::kvc::Cache &c, const Rendezvous &rv, uint64_t tag, unsigned h,
		uint64_t last, uint64_t span)
{
	auto end = Clock::now() + std::chrono::duration<double>(timeout_s());
	uint64_t hits = 0, bad = 0, passes = 0;
	for (bool done = false; !done; passes++) {
		if (Clock::now() > end)
			throw Fail("host " + std::to_string(h) + "'s block " + std::to_string(last) +
				   " never appeared");
		done = read_block(c, block(rv, tag, h, last)) == Read::hit;
		for (uint64_t i = 0; i < span; i++) {
			std::string why;
			Read r = read_block(c, block(rv, tag, h, i), &why);
			hits += r == Read::hit;
			if (r == Read::bad && !bad++)
				std::printf("  block %" PRIu64 " of host %u read torn: %s\n", i, h, why.c_str());
		}
	}
	std::printf("host %u: read host %u's storm in %" PRIu64 " passes: %" PRIu64
		    " intact hits, %" PRIu64 " torn or wrong\n",
		    rv.host(), h, passes, hits, bad);
	return !bad;
}

std::string tool_path()
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		throw Fail("readlink /proc/self/exe failed");
	std::string p(exe, size_t(n));
	// <build>/tests/multihost/mh_kv -> <build>/tools/beluga-tool
	for (int up = 0; up < 3; up++)
		p.erase(p.rfind('/'));
	return p + "/tools/beluga-tool";
}

// ---------------------------------------------------------------- tests

constexpr uint64_t kTagPublish = 1, kTagConc = 2, kTagRace = 3, kTagCrash = 4, kTagStorm = 5,
		   kTagAfter = 6, kTagKill = 7, kTagTaken = 8;

int test_publish(Rendezvous &rv)
{
	constexpr uint64_t kBlocks = 40;
	Shared s(rv, "publish");
	rv.barrier("kv-publish-defined");
	bool ok = true;
	if (rv.host() == 0) {
		auto c = open_cache(s, rv, 0, true);
		for (uint64_t i = 0; i < kBlocks; i++) {
			int r = put(c, block(rv, kTagPublish, 0, i));
			if (r) {
				std::printf("host 0: put of block %" PRIu64 " answered %d\n", i, r);
				ok = false;
			}
		}
		std::printf("host 0: stored %" PRIu64 " blocks of 16 B to 64 KiB\n", kBlocks);
		rv.barrier("kv-publish-stored");
		rv.barrier("kv-publish-read");
		return ok ? 0 : 1;
	}
	rv.barrier("kv-publish-stored");
	auto c = open_cache(s, rv, rv.host(), false);
	ok &= expect_all(c, rv, kTagPublish, 0, 0, kBlocks, "get, byte for byte");
	std::vector<beluga::kvc::Key> chain;
	for (uint64_t i = 0; i < kBlocks; i++)
		chain.push_back(key_of(block(rv, kTagPublish, 0, i)));
	size_t prefix = c.lookup_prefix(chain);
	std::printf("host %u: lookup_prefix of host 0's %" PRIu64 " keys: %zu\n", rv.host(), kBlocks,
		    prefix);
	ok &= prefix == kBlocks;
	uint64_t pinned_ok = 0;
	for (uint64_t i = 0; i < kBlocks; i++) {
		Block b = block(rv, kTagPublish, 0, i);
		auto p = c.pin(key_of(b), BELUGA_KVC_PIN_VERIFY);
		std::vector<uint8_t> want(b.len);
		kvt::fill_block(b.id, want.data(), b.len);
		pinned_ok += p && p.size() == b.len && !std::memcmp(p.data(), want.data(), b.len);
	}
	std::printf("host %u: %" PRIu64 " of %" PRIu64 " verified pins match byte for byte\n", rv.host(),
		    pinned_ok, kBlocks);
	ok &= pinned_ok == kBlocks;
	auto st = c.stats(int(rv.host()));
	std::printf("host %u: its counters: %" PRIu64 " gets hit, %" PRIu64 " checksum failures\n",
		    rv.host(), st.get_hits, st.checksum_failures);
	ok &= st.checksum_failures == 0;
	rv.barrier("kv-publish-read");
	return ok ? 0 : 1;
}

int test_concurrent(Rendezvous &rv)
{
	constexpr uint64_t kBlocks = 48;
	Shared s(rv, "concurrent");
	rv.barrier("kv-conc-defined");
	std::optional<beluga::kvc::Cache> c;
	if (rv.host() == 0)
		c.emplace(open_cache(s, rv, 0, true));
	rv.barrier("kv-conc-formatted");
	if (rv.host() != 0)
		c.emplace(open_cache(s, rv, rv.host(), false));
	rv.barrier("kv-conc-attached");
	bool ok = true;
	uint64_t hits = 0, bad = 0, refused = 0;
	for (uint64_t i = 0; i < kBlocks; i++) {
		int r = put(*c, block(rv, kTagConc, rv.host(), i));
		if (r) {
			std::printf("host %u: put of its block %" PRIu64 " answered %d\n", rv.host(), i, r);
			ok = false;
		}
		// Read the other hosts' latest blocks (any of them may be there
		// or not yet: this host cannot tell how far they are).
		for (unsigned h = 0; h < rv.hosts(); h++) {
			if (h == rv.host())
				continue;
			for (uint64_t j = i >= 7 ? i - 7 : 0; j <= i; j++) {
				std::string why;
				Read rr = read_block(*c, block(rv, kTagConc, h, j), &why);
				hits += rr == Read::hit;
				if (rr == Read::bad && !bad++)
					std::printf("  block %" PRIu64 " of host %u read wrong: %s\n", j, h,
						    why.c_str());
			}
			// Another host's block is its own: removing it is refused.
			if (i == kBlocks / 2) {
				int rm = c->remove(key_of(block(rv, kTagConc, h, 0)));
				refused += rm == -EXDEV;
				if (rm != -EXDEV && rm != -ENOENT) {
					std::printf("host %u: remove of host %u's block answered %d, not -EXDEV\n",
						    rv.host(), h, rm);
					ok = false;
				}
			}
		}
	}
	std::printf("host %u: stored %" PRIu64 " blocks while reading the others': %" PRIu64
		    " intact hits, %" PRIu64 " wrong, %" PRIu64 " removes of theirs refused\n",
		    rv.host(), kBlocks, hits, bad, refused);
	ok &= !bad;
	rv.barrier("kv-conc-stored");
	for (unsigned h = 0; h < rv.hosts(); h++)
		ok &= expect_all(*c, rv, kTagConc, h, 0, kBlocks, "after both stored");
	auto e = c->eviction();
	std::printf("host %u: its partition holds %" PRIu64 " blocks\n", rv.host(), e.used_blocks);
	ok &= e.used_blocks == kBlocks;
	rv.barrier("kv-conc-checked");
	ok &= check_clean(*c, rv, "at the end");
	rv.barrier("kv-conc-done");
	return ok ? 0 : 1;
}

int test_duplicate(Rendezvous &rv)
{
	Shared s(rv, "duplicate");
	rv.barrier("kv-dup-defined");
	std::optional<beluga::kvc::Cache> c;
	bool ok = true;
	if (rv.host() == 0) {
		c.emplace(open_cache(s, rv, 0, true));
		rv.publish(node_name());
	}
	rv.barrier("kv-dup-held");
	if (rv.host() != 0) {
		std::string holder = rv.peer_value(0);
		try {
			auto dup = open_cache(s, rv, 0, false);
			std::printf("host %u: attached with host index 0, which host 0 (\"%s\") holds\n",
				    rv.host(), holder.c_str());
			ok = false;
		} catch (const beluga::kvc::Error &e) {
			std::string msg = e.what();
			std::printf("host %u: attaching with host index 0: error %d: %s\n", rv.host(),
				    e.code().value(), msg.c_str());
			// Whether the message calls the holder alive or silent
			// depends on whether its heartbeat moved within the claim
			// window (a stalled guest's may not): not judged.
			bool names = msg.find('"' + holder + '"') != std::string::npos;
			std::printf("host %u: -EADDRINUSE: %s; names the holder \"%s\": %s\n", rv.host(),
				    e.code().value() == EADDRINUSE ? "yes" : "NO", holder.c_str(),
				    names ? "yes" : "NO");
			ok &= e.code().value() == EADDRINUSE && names;
		}
		c.emplace(open_cache(s, rv, rv.host(), false));
		int r = put(*c, block(rv, kTagRace, rv.host(), 0));
		std::printf("host %u: attached with its own index and stored a block: %d\n", rv.host(), r);
		ok &= r == 0;
	}
	rv.barrier("kv-dup-refused");
	// Host 0 still holds its index, and sees the other hosts alive.
	if (rv.host() == 0) {
		ok &= c->host(0).state == BELUGA_KVC_HOST_SELF;
		for (unsigned h = 1; h < rv.hosts(); h++) {
			ok &= wait_state(*c, rv, h, BELUGA_KVC_HOST_ALIVE);
			ok &= expect_all(*c, rv, kTagRace, h, 0, 1, "the refused host's own block");
		}
	}
	rv.barrier("kv-dup-done");
	return ok ? 0 : 1;
}

std::atomic<int> g_formats{0};

void count_formats(int event, int)
{
	if (event == bkv::test::formatted)
		g_formats++;
}

int test_format_race(Rendezvous &rv, bool all)
{
	Shared s(rv, all ? "format-race-all" : "format-race-one");
	bkv::test::set_hook(count_formats);
	rv.barrier(all ? "kv-race-all-defined" : "kv-race-one-defined");
	// Every host opens with the configuration at once (after one barrier);
	// those without the format flag wait for the cache.
	bool flagged = all || rv.host() == 0;
	auto cfg = cache_config();
	cfg.max_hosts = rv.hosts();
	auto o = attach_opts(rv.host(), flagged);
	auto c = beluga::kvc::Cache::open(s.pool(), s.name(), cfg.fingerprint, &cfg, 0, 0600, &o);
	uint64_t created = c.info().created_ns;
	bool ok = put(c, block(rv, kTagRace, rv.host(), 1)) == 0;
	std::printf("host %u (format flag: %s): formatted %d time(s); the cache was created at %" PRIu64
		    " ns\n",
		    rv.host(), flagged ? "yes" : "no", g_formats.load(), created);
	rv.publish(std::to_string(g_formats.load()) + " " + std::to_string(created));
	rv.barrier(all ? "kv-race-all-attached" : "kv-race-one-attached");
	int formats = 0;
	for (unsigned h = 0; h < rv.hosts(); h++) {
		unsigned n = 0;
		unsigned long long t = 0;
		std::string v = h == rv.host() ? std::to_string(g_formats.load()) + " " + std::to_string(created)
					       : rv.peer_value(h);
		if (std::sscanf(v.c_str(), "%u %llu", &n, &t) != 2)
			throw Fail("host " + std::to_string(h) + " published \"" + v + "\"");
		formats += int(n);
		if (t != created) {
			std::printf("host %u saw the cache created at %llu, this host at %" PRIu64 "\n", h, t,
				    created);
			ok = false;
		}
		if (h != rv.host())
			ok &= expect_all(c, rv, kTagRace, h, 1, 2, "the other host's block");
	}
	std::printf("host %u: formats over all hosts: %d (exactly one expected)\n", rv.host(), formats);
	ok &= formats == 1;
	ok &= c.info().created_ns == created;
	rv.barrier(all ? "kv-race-all-done" : "kv-race-one-done");
	bkv::test::set_hook(nullptr);
	return ok ? 0 : 1;
}

// The storm's victim: counts published blocks and acts at the start of
// the write after the @g_victim_at-th publish.
std::atomic<int> g_published{0};
int g_victim_at = -1;
void (*g_victim_act)() = nullptr;

void victim_hook(int event, int)
{
	if (event == bkv::test::published)
		g_published++;
	else if (event == bkv::test::write_begin && g_published.load() == g_victim_at && g_victim_act)
		g_victim_act();
}

constexpr uint64_t kPre = 16, kStormAt = 12, kStormSpan = 24, kAfter = 8;

void die_now() { raise(SIGKILL); }

// A's old boot: a child process with a boot id of its own (the machine is
// the real one); it stores kPre blocks, tells the parent, waits for "go",
// then storms and SIGKILLs itself at the start of storm block kStormAt.
[[noreturn]] void crash_child(Rendezvous &rv, const Shared &s, int to_parent, int from_parent)
{
	bkv::test::set_identity(0, rv.nonce() | 1, nullptr);
	// A pool handle of its own (the parent's is not shared across fork).
	beluga_pool *pool = open_kernel_pool();
	auto c = open_cache(pool, s.name(), rv, 0, true);
	for (uint64_t i = 0; i < kPre; i++)
		if (put(c, block(rv, kTagCrash, 0, i)))
			_exit(3);
	char b = 'p';
	if (write(to_parent, &b, 1) != 1 || read(from_parent, &b, 1) != 1)
		_exit(4);
	g_victim_at = int(kStormAt); // publishes counted from here
	g_victim_act = die_now;
	bkv::test::set_hook(victim_hook);
	for (uint64_t i = 0; i < kStormSpan; i++)
		put(c, block(rv, kTagStorm, 0, i));
	_exit(5); // the hook never fired
}

int test_crash(Rendezvous &rv)
{
	Shared s(rv, "crash");
	rv.barrier("kv-crash-defined");
	bool ok = true;
	if (rv.host() == 0) {
		int up[2], down[2];
		if (pipe(up) || pipe(down))
			throw Fail("pipe failed");
		std::fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			throw Fail("fork failed");
		if (pid == 0)
			crash_child(rv, s, up[1], down[0]);
		close(up[1]);
		close(down[0]);
		char b;
		if (read(up[0], &b, 1) != 1)
			throw Fail("A's old boot ended before storing its blocks");
		std::printf("host 0: A's old boot (pid %d) stored %" PRIu64 " blocks\n", int(pid), kPre);
		rv.barrier("kv-crash-stored");
		rv.barrier("kv-crash-attached");
		if (write(down[1], "g", 1) != 1)
			throw Fail("cannot tell A's old boot to go");
		int st = 0;
		waitpid(pid, &st, 0);
		bool killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
		std::printf("host 0: A's old boot %s\n",
			    killed ? "died by SIGKILL at the start of storm block 12"
				   : ("ended otherwise: status " + std::to_string(st)).c_str());
		ok &= killed;
		rv.barrier("kv-crash-died");
		rv.barrier("kv-crash-seen-dead");
		// The machine comes back: this process has the real boot id.
		auto c = open_cache(s, rv, 0, false);
		auto st0 = c.stats(0);
		std::printf("host 0: re-attached; reclaimed so far: %" PRIu64 " sessions, %" PRIu64
			    " reservations\n",
			    st0.sessions_reclaimed, st0.reservations_reclaimed);
		ok &= st0.sessions_reclaimed >= 1 && st0.reservations_reclaimed == 1;
		ok &= check_clean(c, rv, "after A re-attached");
		for (uint64_t i = 0; i < kAfter; i++)
			ok &= put(c, block(rv, kTagAfter, 0, i)) == 0;
		// The torn write's key is free to store now.
		ok &= put(c, block(rv, kTagStorm, 0, kStormAt)) == 0;
		ok &= expect_all(c, rv, kTagCrash, 0, 0, kPre, "its old boot's blocks");
		ok &= expect_all(c, rv, kTagStorm, 0, 0, kStormAt + 1, "its storm blocks");
		rv.barrier("kv-crash-reclaimed");
		rv.barrier("kv-crash-done");
		return ok ? 0 : 1;
	}
	rv.barrier("kv-crash-stored");
	auto c = open_cache(s, rv, rv.host(), false);
	ok &= expect_all(c, rv, kTagCrash, 0, 0, kPre, "A's blocks before the storm");
	rv.barrier("kv-crash-attached");
	// A storms and dies at the start of storm block kStormAt: every block
	// before it was published first.  Read until the last one is there.
	ok &= read_until(c, rv, kTagStorm, 0, kStormAt - 1, kStormSpan);
	rv.barrier("kv-crash-died");
	ok &= expect_all(c, rv, kTagCrash, 0, 0, kPre, "A's blocks after its death");
	ok &= expect_all(c, rv, kTagStorm, 0, 0, kStormAt, "A's storm blocks after its death");
	ok &= expect_none(c, rv, kTagStorm, 0, kStormAt, kStormSpan,
			  "the torn write and what A never stored");
	ok &= wait_state(c, rv, 0, BELUGA_KVC_HOST_DEAD);
	rv.barrier("kv-crash-seen-dead");
	rv.barrier("kv-crash-reclaimed");
	ok &= wait_state(c, rv, 0, BELUGA_KVC_HOST_ALIVE);
	ok &= expect_all(c, rv, kTagCrash, 0, 0, kPre, "A's old blocks after its reboot");
	ok &= expect_all(c, rv, kTagStorm, 0, 0, kStormAt + 1, "A's storm blocks after its reboot");
	ok &= expect_all(c, rv, kTagAfter, 0, 0, kAfter, "A's new blocks");
	rv.barrier("kv-crash-done");
	return ok ? 0 : 1;
}

Rendezvous *g_rv = nullptr;

// At the start of a write: ask the runner to kill this guest, and stay in
// the write until it does (bounded: a runner that never kills fails).
void request_kill_now()
{
	std::printf("host %u: inside storm block %" PRIu64 "'s write: asking the runner to kill "
		    "this guest\n",
		    g_rv->host(), kStormAt);
	std::fflush(stdout);
	g_rv->request_kill();
	auto end = Clock::now() + std::chrono::duration<double>(timeout_s());
	while (Clock::now() < end)
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	std::printf("host %u: still alive %.0f s after asking to be killed\n", g_rv->host(), timeout_s());
	std::fflush(stdout);
	_exit(1);
}

void takeover_tool(const Rendezvous &rv, const Shared &s, int want, bool *ok)
{
	auto r = tooltest::run_program(tool_path(), {"--backend", "kernel", "kv", "takeover", s.name(),
						     "--host", "0", "--by", std::to_string(rv.host())});
	std::printf("host %u: beluga-tool kv takeover %s --host 0 --by %u: exit %d (%d expected)\n%s%s",
		    rv.host(), s.name().c_str(), rv.host(), r.status, want, r.out.c_str(), r.err.c_str());
	*ok &= r.status == want;
}

// The refused takeover must see the victim's heartbeat move within its
// lease: a lease longer than any stall of a loaded emulated guest.
constexpr uint32_t kVictimLeaseMs = 5000;

int test_kill(Rendezvous &rv)
{
	Shared s(rv, "kill");
	rv.barrier("kv-kill-defined");
	const unsigned victim = 0;
	bool ok = true;
	std::optional<beluga::kvc::Cache> c;
	if (rv.host() == victim) {
		c.emplace(open_cache(s, rv, 0, true, kVictimLeaseMs));
		for (uint64_t i = 0; i < kPre; i++)
			ok &= put(*c, block(rv, kTagKill, 0, i)) == 0;
	}
	rv.barrier("kv-kill-stored");
	if (rv.host() != victim) {
		c.emplace(open_cache(s, rv, rv.host(), false));
		ok &= expect_all(*c, rv, kTagKill, 0, 0, kPre, "A's blocks");
		// Only one host runs the command (one taker).
		if (rv.host() == 1) {
			takeover_tool(rv, s, 8, &ok);
			ok &= wait_state(*c, rv, 0, BELUGA_KVC_HOST_ALIVE);
		}
	}
	rv.barrier("kv-kill-refused");
	if (rv.host() == victim) {
		if (!ok) {
			std::printf("host 0: failed before the storm\n");
			return 1; // the others then fail at their next barrier
		}
		g_rv = &rv;
		g_victim_at = int(kStormAt); // publishes counted from here
		g_victim_act = request_kill_now;
		bkv::test::set_hook(victim_hook);
		for (uint64_t i = 0; i < kStormSpan; i++)
			put(*c, block(rv, kTagStorm, 0, i));
		std::printf("host 0: the storm ended without the kill hook firing\n");
		return 1;
	}
	ok &= read_until(*c, rv, kTagStorm, 0, kStormAt - 1, kStormSpan);
	uint64_t why = rv.wait_gone(victim);
	std::printf("host %u: host %u's QEMU is gone (%s)\n", rv.host(), victim,
		    why == beluga::mh::kGoneKilled ? "killed on its request" : "it exited");
	ok &= why == beluga::mh::kGoneKilled;
	ok &= expect_all(*c, rv, kTagKill, 0, 0, kPre, "A's blocks after the kill");
	ok &= expect_all(*c, rv, kTagStorm, 0, 0, kStormAt, "A's storm blocks after the kill");
	ok &= expect_none(*c, rv, kTagStorm, 0, kStormAt, kStormSpan,
			  "the write A was killed in and what it never stored");
	ok &= wait_state(*c, rv, 0, BELUGA_KVC_HOST_DEAD);
	if (rv.host() == 1) {
		takeover_tool(rv, s, 0, &ok);
		auto hi = c->host(0);
		auto st0 = c->stats(0);
		std::printf("host 1: host 0 is now served by host %u; its partition's counters: %" PRIu64
			    " sessions and %" PRIu64 " reservations reclaimed\n",
			    hi.served_by, st0.sessions_reclaimed, st0.reservations_reclaimed);
		ok &= hi.served_by == 1 && st0.sessions_reclaimed == 1 &&
		      st0.reservations_reclaimed == 1;
		// This machine may now store into A's partition.
		auto o = attach_opts(0, false);
		auto t = beluga::kvc::Cache::open(s.pool(), s.name(), cache_config().fingerprint, nullptr, 0,
						  0600, &o);
		for (uint64_t i = 0; i < kAfter; i++)
			ok &= put(t, block(rv, kTagTaken, 0, i)) == 0;
		ok &= put(t, block(rv, kTagStorm, 0, kStormAt)) == 0;
		ok &= expect_all(*c, rv, kTagTaken, 0, 0, kAfter, "blocks stored into A's partition by its taker");
		ok &= expect_all(*c, rv, kTagKill, 0, 0, kPre, "A's blocks after the takeover");
		ok &= check_clean(*c, rv, "after the takeover");
	}
	rv.barrier("kv-kill-checked", true);
	return ok ? 0 : 1;
}

// `beluga-tool wipe` across hosts, run by the last host (the wiper) on the
// extent host 0 formats a cache in.
tooltest::Result wipe_tool(const Rendezvous &rv, const Shared &s, std::vector<std::string> extra)
{
	std::vector<std::string> args = {"--backend", "kernel", "wipe", s.name(), "--yes"};
	args.insert(args.end(), extra.begin(), extra.end());
	auto r = tooltest::run_program(tool_path(), args);
	std::string line = "beluga-tool";
	for (const auto &a : args)
		line += " " + a;
	std::printf("host %u: %s: exit %d\n%s%s", rv.host(), line.c_str(), r.status, r.out.c_str(),
		    r.err.c_str());
	return r;
}

bool has(const std::string &text, const std::string &what, const Rendezvous &rv)
{
	if (text.find(what) != std::string::npos)
		return true;
	std::printf("host %u: the tool's output lacks \"%s\"\n", rv.host(), what.c_str());
	return false;
}

// Every byte of the extent, read through a mapping of this host's
// definition after invalidating it, must be zero.
bool expect_zeroes(const Shared &s, const Rendezvous &rv)
{
	beluga_region *r = nullptr;
	beluga_mapping *m = nullptr;
	if (int e = beluga_region_open(s.pool(), s.name().c_str(), BELUGA_REGION_RDONLY, &r))
		throw Fail("opening " + s.name() + ": " + beluga_strerror(e));
	int e = beluga_region_map(r, 0, 0, BELUGA_PROT_READ, &m);
	beluga_region_close(r);
	if (e)
		throw Fail("mapping " + s.name() + ": " + beluga_strerror(e));
	const auto *w = static_cast<const volatile uint64_t *>(beluga_mapping_addr(m));
	size_t n = beluga_mapping_size(m) / 8, nonzero = 0, first = 0;
	beluga_flush(beluga_mapping_addr(m), beluga_mapping_size(m));
	for (size_t i = 0; i < n; i++)
		if (w[i] && !nonzero++)
			first = i;
	beluga_mapping_unmap(m);
	std::printf("host %u: %zu of %zu words of %s not zero%s\n", rv.host(), nonzero, n,
		    s.name().c_str(),
		    nonzero ? (", the first at byte " + std::to_string(first * 8)).c_str() : "");
	return !nonzero;
}

int test_wipe(Rendezvous &rv)
{
	constexpr uint64_t kBlocks = 8;
	constexpr uint64_t kTagOld = 9, kTagNew = 10;
	Shared s(rv, "wipe");
	rv.barrier("kv-wipe-defined");
	const unsigned wiper = rv.hosts() - 1;
	bool ok = true;
	std::optional<beluga::kvc::Cache> c;
	if (rv.host() == 0) {
		c.emplace(open_cache(s, rv, 0, true));
		for (uint64_t i = 0; i < kBlocks; i++)
			ok &= put(*c, block(rv, kTagOld, 0, i)) == 0;
	}
	rv.barrier("kv-wipe-stored");
	if (rv.host() == wiper) {
		// Mapped on this host: refused for that alone.
		{
			beluga_region *r = nullptr;
			beluga_mapping *m = nullptr;
			if (int e = beluga_region_open(s.pool(), s.name().c_str(), 0, &r))
				throw Fail("opening " + s.name() + ": " + beluga_strerror(e));
			int e = beluga_region_map(r, 0, 0, BELUGA_PROT_READ, &m);
			if (e) {
				beluga_region_close(r);
				throw Fail("mapping " + s.name() + ": " + beluga_strerror(e));
			}
			auto t = wipe_tool(rv, s, {"--watch-ms", "0"});
			ok &= t.status == 8 && has(t.err, "in use on this host", rv);
			beluga_mapping_unmap(m);
			beluga_region_close(r);
		}
		// Host 0 attached, its heartbeat moving: refused, naming it.
		auto t = wipe_tool(rv, s, {"--json"});
		ok &= t.status == 8 && has(t.err, "host 0 (", rv) && has(t.err, "is alive", rv) &&
		      has(t.out, "\"wiped\": false", rv);
	}
	rv.barrier("kv-wipe-refused");
	if (rv.host() == 0)
		c.reset(); // detached: no process left, the heartbeat stops
	rv.barrier("kv-wipe-detached");
	if (rv.host() == wiper) {
		auto t = wipe_tool(rv, s, {});
		ok &= t.status == 0 && has(t.out, "wiped " + s.name(), rv) &&
		      has(t.out, "the KV cache it held is gone", rv);
	}
	rv.barrier("kv-wipe-wiped");
	ok &= expect_zeroes(s, rv);
	rv.barrier("kv-wipe-checked");
	// The extent takes a new cache: host 0 formats it again, every host
	// attaches; none of the old cache's blocks is found.
	if (rv.host() == 0) {
		c.emplace(open_cache(s, rv, 0, true));
		ok &= put(*c, block(rv, kTagNew, 0, 0)) == 0;
	}
	rv.barrier("kv-wipe-reformatted");
	if (rv.host() != 0) {
		c.emplace(open_cache(s, rv, rv.host(), false));
		ok &= expect_all(*c, rv, kTagNew, 0, 0, 1, "the new cache's block");
		ok &= expect_none(*c, rv, kTagOld, 0, 0, kBlocks, "the wiped cache's blocks");
	}
	rv.barrier("kv-wipe-done");
	return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	std::string what = argc >= 2 ? argv[1] : "";
	std::string arg = argc >= 3 ? argv[2] : "";
	bool known = what == "publish" || what == "concurrent" || what == "duplicate" ||
		     what == "crash" || what == "kill" || what == "wipe" ||
		     (what == "format-race" && (arg == "one" || arg == "all"));
	if (!known) {
		std::fprintf(stderr, "usage: mh_kv publish|concurrent|duplicate|crash|kill|wipe|"
				     "format-race one|all\n");
		return 2;
	}
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	try {
		Rendezvous rv = Rendezvous::from_env();
		if (rv.hosts() < 2)
			throw Skip{"needs at least two hosts"};
		if (what == "publish")
			return test_publish(rv);
		if (what == "concurrent")
			return test_concurrent(rv);
		if (what == "duplicate")
			return test_duplicate(rv);
		if (what == "format-race")
			return test_format_race(rv, arg == "all");
		if (what == "crash")
			return test_crash(rv);
		if (what == "wipe")
			return test_wipe(rv);
		return test_kill(rv);
	} catch (const Skip &s) {
		std::printf("SKIP: %s\n", s.why.c_str());
		return 77;
	} catch (const std::exception &e) {
		std::printf("mh_kv %s: %s\n", what.c_str(), e.what());
		return 1;
	}
}
