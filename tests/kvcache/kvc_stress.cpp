// SPDX-License-Identifier: Apache-2.0
// Multi-process stress test of the KV-block store, with SIGKILLs.
//
// W writer and R reader processes hammer one cache while the parent stops a
// random child at random moments (SIGSTOP, so that what it was doing can be
// read exactly), records whether it was mid-write or holding pins, SIGKILLs
// it and starts a replacement.  Every block a reader gets is checked against
// the content checksum the test wrote into it; a block the test knows is
// present and unchanged must never be missing.  At the end the cache is
// reclaimed and checked: no reservation, pin or session may be left, and
// every block the writers stored must be there, intact.
//
// The storm is sized by work, not by time, so that its verdict does not
// depend on how fast the machine is: the kills are spread over a number of
// stored blocks computed from the cache's capacity (with eviction: three
// times what the writers' partitions hold, so that the cache overfills and
// the later kills hit processes of a cache that is evicting), and the storm
// ends when that many blocks were stored and a reader has had a hit.  A kill
// that must catch a writer mid-write (or a reader holding pins) first tries
// random moments; when none catches one, the victim is asked to stop itself
// at its next such event (a hook in the store), so every run kills processes
// in both states.  Waits are bounded by operation counts: a store that keeps
// refusing puts fails the run instead of hanging it.
//
//   kvc_stress [--mode coherent|sim] [--backend memfd|user|kernel]
//              [--writers 4] [--readers 4] [--kills 120] [--seed N]
//              [--keys 800] [--block 131072] [--region-mib 64]
//              [--evict none|clock|lru] [--writes put|reserve|mixed]
//
// --evict none (default): a full partition refuses puts and writers remove
// blocks to make room, so a block known to be present must always hit.
// --evict clock|lru: puts evict; a present block may then miss, but one that
// a reader holds pinned stays in its slot (checked while the pin is held: a
// lookup misses it only while its owner's evictor considers it, and its slot
// must then still hold the pinned generation), and every hit must still be
// intact.  --keys is raised to four times the capacity of
// the writers' partitions (there must be more keys than room), and the run
// fails unless the store evicted while processes were being killed.
// --writes reserve|mixed: writers store (all, or half their batches) with
// beluga_kvc_reserve, write the blocks into the reserved slots and commit
// (one batch in ten is aborted instead), so kills land in processes holding
// half-written reservations.
// --mode sim: every process is a host of its own in the non-coherent
// simulation (a killed process is a host that crashed and lost its cache).
// Exit status: 0 pass, 1 fail, 77 backend unavailable.  Prints the seed.
#include "kvc_util.hpp"

#include "kvcache_test.h"

#include <beluga/beluga.h>

#include <CLI/CLI.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace kvt;

constexpr int kMaxChildren = 32;
constexpr uint32_t kMaxKeys = 1 << 16;

enum KeyState : uint8_t { kAbsent = 0, kPresent, kPutIntent, kRemoveIntent };

struct ChildStats {
	std::atomic<int> in_write, pins;
	std::atomic<int> stop_at; // a bkv::test event: SIGSTOP yourself at the next one
	std::atomic<int> working; // attached and done an operation since it started
	std::atomic<int> full_last; // the last put batch hit a full partition
	std::atomic<uint64_t> ops, puts, removes, hits, misses, pinned, bad, lost, nospace;
};

struct Shared {
	std::atomic<int> stop;
	std::atomic<int> evicting;	   // a writer saw its host's eviction counter move
	std::atomic<uint64_t> stored;	   // blocks the writers stored (progress of the storm)
	std::atomic<uint64_t> put_tries;   // blocks the writers tried to store
	std::atomic<uint64_t> reader_hits; // gets that found their block
	ChildStats child[kMaxChildren];
	std::atomic<uint32_t> state[kMaxKeys]; // version << 8 | KeyState
};

struct Options {
	bool sim = false;
	std::string backend = "memfd";
	int writers = 4, readers = 4, kills = 120;
	uint64_t seed = 0;
	uint32_t keys = 800;
	size_t block = 128 * 1024;
	size_t region_mib = 64;
	std::string evict = "none";
	std::string writes = "put";
};

Options g_opt;
Shared *g_sh;
int g_me = -1; // child index
void *g_base;  // memfd backend: the region
size_t g_size;
std::string g_name;
std::string g_user_dir; // user backend: a pool directory of our own
std::vector<pid_t> g_pids;

// ---------------------------------------------------------------- keys ---

KeyState key_state(uint32_t k, uint32_t *ver = nullptr)
{
	uint32_t v = g_sh->state[k].load();
	if (ver)
		*ver = v >> 8;
	return KeyState(v & 0xff);
}

void set_state(uint32_t k, KeyState s)
{
	uint32_t v = g_sh->state[k].load();
	g_sh->state[k].store(((v >> 8) + 1) << 8 | s);
}

// ---------------------------------------------------------- attaching ---

int host_of(int child) { return g_opt.sim ? child : 0; }

beluga_kvc_fingerprint fingerprint() { return opaque_fp(g_opt.block, "stress-model"); }

beluga_pool *open_pool()
{
	beluga_pool_options o;
	beluga_pool_options_init(&o);
	o.backend = g_opt.backend == "kernel" ? BELUGA_BACKEND_KERNEL : BELUGA_BACKEND_USER;
	if (o.backend == BELUGA_BACKEND_USER) {
		o.user_dir = g_user_dir.c_str();
		o.hugetlbfs_dir = "none";
	}
	beluga_pool *pool = nullptr;
	int r = beluga_pool_open(&o, &pool);
	if (r) {
		std::fprintf(stderr, "beluga_pool_open: %s\n", beluga_strerror(r));
		return nullptr;
	}
	return pool;
}

beluga_kvc *attach(int host, beluga_pool **pool_out, int *err = nullptr)
{
	auto o = opts(uint32_t(host), g_opt.sim ? BELUGA_KVC_SIMULATE : BELUGA_KVC_COHERENT, 2);
	o.nt_min_bytes = 64 * 1024;
	beluga_kvc_fingerprint fp = fingerprint();
	beluga_kvc *kv = nullptr;
	int r;
	*pool_out = nullptr;
	if (g_opt.backend == "memfd") {
		r = beluga_kvc_attach(g_base, g_size, &fp, &o, &kv);
	} else {
		*pool_out = open_pool();
		r = *pool_out ? beluga_kvc_open(*pool_out, g_name.c_str(), &fp, nullptr, 0, 0, &o, &kv)
			      : -ENODEV;
	}
	if (err)
		*err = r;
	if (r)
		std::fprintf(stderr, "attach host %d: %s\n", host, beluga_kvc_last_error());
	return r ? nullptr : kv;
}

// ------------------------------------------------------------ children ---

void hook(int ev, int n)
{
	ChildStats &c = g_sh->child[g_me];
	if (ev == bkv::test::write_begin)
		c.in_write += n;
	else if (ev == bkv::test::write_end)
		c.in_write -= n;
	else if (ev == bkv::test::pinned)
		c.pins += n;
	else if (ev == bkv::test::unpinned)
		c.pins -= n;
	// The parent asked us to stop at this event (it is waiting for us).
	int want = ev;
	if (c.stop_at.load() == ev && c.stop_at.compare_exchange_strong(want, 0))
		raise(SIGSTOP);
}

// Store keys @ks with a put from private buffers.
void put_step(beluga_kvc *kv, const std::vector<uint32_t> &ks, std::vector<int> &res)
{
	std::vector<std::vector<uint8_t>> bufs(ks.size(), std::vector<uint8_t>(g_opt.block));
	std::vector<beluga_kvc_put> puts(ks.size());
	for (size_t i = 0; i < ks.size(); i++) {
		fill_block(ks[i], bufs[i].data(), g_opt.block);
		make_key(ks[i], puts[i].key);
		puts[i].data = bufs[i].data();
		puts[i].len = g_opt.block;
		set_state(ks[i], kPutIntent);
	}
	beluga_kvc_put_batch(kv, puts.data(), puts.size(), res.data());
}

// Store keys @ks by writing them into reserved slots (a kill often lands
// while a slot is half written), then commit; one batch in ten is aborted
// instead (its keys stay absent: -ECANCELED here).
void reserve_step(beluga_kvc *kv, std::mt19937_64 &rng, const std::vector<uint32_t> &ks,
		  std::vector<int> &res)
{
	std::vector<beluga_kvc_reservation> it(ks.size());
	for (size_t i = 0; i < ks.size(); i++) {
		make_key(ks[i], it[i].key);
		it[i].len = g_opt.block;
		set_state(ks[i], kPutIntent);
	}
	beluga_kvc_reserve(kv, it.data(), it.size(), res.data());
	for (size_t i = 0; i < ks.size(); i++)
		if (res[i] == 0)
			fill_block(ks[i], static_cast<uint8_t *>(it[i].data), g_opt.block);
	std::vector<int> done(ks.size());
	if (rng() % 10 == 0) {
		beluga_kvc_abort(kv, it.data(), it.size());
		for (size_t i = 0; i < ks.size(); i++)
			if (res[i] == 0)
				res[i] = -ECANCELED;
		return;
	}
	beluga_kvc_commit(kv, it.data(), it.size(), 0, done.data());
	for (size_t i = 0; i < ks.size(); i++)
		if (res[i] == 0)
			res[i] = done[i];
}

void writer_step(beluga_kvc *kv, std::mt19937_64 &rng, ChildStats &c)
{
	uint32_t per = g_opt.keys / g_opt.writers;
	auto pick = [&] { return uint32_t(rng() % per) * g_opt.writers + g_me; };
	uint32_t k = pick();
	// Remove now and then, and always when the last put found no room.  With
	// eviction on, puts make room themselves: remove less, so the cache
	// overfills.
	unsigned remove_pct = g_opt.evict == "none" ? 35 : 10;
	if (key_state(k) == kPresent && (c.full_last.load() || rng() % 100 < remove_pct)) {
		uint8_t key[1][32];
		make_key(k, key[0]);
		int res;
		set_state(k, kRemoveIntent);
		beluga_kvc_remove(kv, key, 1, &res);
		if (res != 0 && !(res == -ENOENT && g_opt.evict != "none"))
			c.lost++; // the test knew it was there (and nothing evicts)
		set_state(k, kAbsent);
		c.removes++;
		c.full_last = 0;
		return;
	}
	// A batch of up to three of our keys that are not known to be present.
	std::vector<uint32_t> ks;
	for (int i = 0; i < 3; i++) {
		uint32_t x = i ? pick() : k;
		if (key_state(x) != kPresent && std::find(ks.begin(), ks.end(), x) == ks.end())
			ks.push_back(x);
	}
	std::vector<int> res(ks.size());
	g_sh->put_tries += ks.size();
	bool reserve = g_opt.writes == "reserve" || (g_opt.writes == "mixed" && rng() % 2);
	if (reserve)
		reserve_step(kv, rng, ks, res);
	else
		put_step(kv, ks, res);
	c.full_last = std::count(res.begin(), res.end(), -ENOSPC) > 0;
	for (size_t i = 0; i < ks.size(); i++) {
		if (res[i] == 0 || res[i] == BELUGA_KVC_EXISTS) {
			set_state(ks[i], kPresent);
			c.puts += res[i] == 0;
			g_sh->stored += res[i] == 0;
		} else {
			set_state(ks[i], kAbsent);
			c.nospace += res[i] == -ENOSPC;
			// No other error is expected (-ECANCELED: aborted on purpose).
			c.bad += res[i] != -ENOSPC && res[i] != -ECANCELED;
		}
	}
	// Until the first eviction: has this host's store evicted yet?
	beluga_kvc_stats hs;
	if (g_opt.evict != "none" && !g_sh->evicting.load() &&
	    beluga_kvc_get_stats(kv, host_of(g_me), &hs) == 0 && hs.evictions > 0)
		g_sh->evicting = 1;
}

void reader_get(beluga_kvc *kv, std::mt19937_64 &rng, ChildStats &c)
{
	size_t n = 1 + rng() % 4;
	std::vector<uint32_t> ks(n), ver(n);
	std::vector<KeyState> st(n);
	std::vector<std::vector<uint8_t>> outs(n, std::vector<uint8_t>(g_opt.block));
	std::vector<beluga_kvc_get> gets(n);
	for (size_t i = 0; i < n; i++) {
		ks[i] = uint32_t(rng() % g_opt.keys);
		st[i] = key_state(ks[i], &ver[i]);
		make_key(ks[i], gets[i].key);
		gets[i].dst = outs[i].data();
		gets[i].cap = g_opt.block;
	}
	std::vector<int> res(n);
	beluga_kvc_get_batch(kv, gets.data(), n, res.data());
	for (size_t i = 0; i < n; i++) {
		uint32_t v2;
		KeyState s2 = key_state(ks[i], &v2);
		if (res[i] > 0) {
			c.hits++;
			g_sh->reader_hits++;
			if (size_t(res[i]) != g_opt.block || !check_block(ks[i], outs[i].data(), g_opt.block))
				c.bad++;
		} else {
			c.misses++;
			// Present before and after, never touched in between: must hit
			// (unless eviction may have taken it).
			if (st[i] == kPresent && s2 == kPresent && ver[i] == v2 && g_opt.evict == "none")
				c.lost++;
			if (res[i] != -ENOENT)
				c.bad++;
		}
	}
}

void reader_pin(beluga_kvc *kv, std::mt19937_64 &rng, ChildStats &c)
{
	size_t n = 1 + rng() % 2;
	uint8_t keys[2][32];
	uint32_t ks[2], ver[2];
	KeyState st[2];
	for (size_t i = 0; i < n; i++) {
		ks[i] = uint32_t(rng() % g_opt.keys);
		st[i] = key_state(ks[i], &ver[i]);
		make_key(ks[i], keys[i]);
	}
	beluga_kvc_ref refs[2];
	int res[2];
	beluga_kvc_pin(kv, keys, n, rng() % 2 ? BELUGA_KVC_PIN_VERIFY : 0, refs, res);
	for (size_t i = 0; i < n; i++) {
		if (res[i])
			continue;
		c.pinned++;
		// Read the block in place while holding the pin.
		if (refs[i].len != g_opt.block ||
		    !check_block(ks[i], static_cast<const uint8_t *>(refs[i].data), refs[i].len))
			c.bad++;
		// A pinned block is never evicted: unless a writer removed it
		// meanwhile, it is still cached, and a prefix lookup (which
		// answers from the index) finds it, also while its owner's evictor
		// considers it (EVICTING keeps the entry; the evictor then sees our
		// pin and puts the block back).
		uint32_t v2;
		long still = beluga_kvc_lookup_prefix(kv, &keys[i], 1);
		if (st[i] == kPresent && key_state(ks[i], &v2) == kPresent && v2 == ver[i] && still != 1)
			c.lost++;
		if (beluga_kvc_unpin(kv, &refs[i], 1))
			c.bad++;
	}
}

void reader_step(beluga_kvc *kv, std::mt19937_64 &rng, ChildStats &c)
{
	unsigned r = unsigned(rng() % 100);
	if (r < 60) {
		reader_get(kv, rng, c);
	} else if (r < 85) {
		reader_pin(kv, rng, c);
	} else {
		uint8_t keys[4][32];
		for (auto &k : keys)
			make_key(rng() % g_opt.keys, k);
		if (beluga_kvc_lookup_prefix(kv, keys, 4) < 0)
			c.bad++;
	}
}

[[noreturn]] void child_main(int idx, uint64_t seed)
{
	g_me = idx;
	ChildStats &c = g_sh->child[idx];
	c.in_write = 0;
	c.pins = 0;
	c.working = 0;
	bkv::test::set_hook(hook);
	beluga_pool *pool;
	beluga_kvc *kv = attach(host_of(idx), &pool);
	if (!kv)
		_exit(2);
	std::mt19937_64 rng(seed);
	bool writer = idx < g_opt.writers;
	while (!g_sh->stop.load()) {
		if (writer)
			writer_step(kv, rng, c);
		else
			reader_step(kv, rng, c);
		c.ops++;
		c.working = 1;
	}
	// The simulation counts lines written back that this host does not own.
	if (bkv::test::sim_violations(kv))
		c.bad++;
	beluga_kvc_detach(kv);
	beluga_pool_close(pool);
	_exit(0);
}

pid_t spawn(int idx, uint64_t seed)
{
	pid_t pid = fork();
	if (pid == 0)
		child_main(idx, seed);
	return pid;
}

// -------------------------------------------------------------- parent ---

// Parse the command line into g_opt: -1 to go on, else the exit status
// (0 after --help, 2 for a usage error).
int parse(int argc, char **argv)
{
	CLI::App app{"Multi-process stress test of the KV-block store, with SIGKILLs.\n"
		     "Exit status: 0 pass, 1 fail, 2 usage, 77 backend unavailable."};
	std::string mode = "coherent";
	app.add_option("--mode", mode, "coherent, or sim: every process a host of the "
				       "non-coherent simulation")
		->check(CLI::IsMember({"coherent", "sim"}))
		->capture_default_str();
	app.add_option("--backend", g_opt.backend, "where the cache lives")
		->check(CLI::IsMember({"memfd", "user", "kernel"}))
		->capture_default_str();
	app.add_option("--writers", g_opt.writers, "writer processes")
		->check(CLI::Range(1, kMaxChildren - 1))
		->capture_default_str();
	app.add_option("--readers", g_opt.readers, "reader processes")
		->check(CLI::Range(1, kMaxChildren - 1))
		->capture_default_str();
	app.add_option("--kills", g_opt.kills, "SIGKILLs during the storm")
		->check(CLI::NonNegativeNumber)
		->capture_default_str();
	app.add_option("--seed", g_opt.seed, "random seed (default: $BELUGA_TEST_SEED, else the clock)");
	app.add_option("--keys", g_opt.keys, "distinct keys (raised with --evict)")
		->check(CLI::Range(1u, kMaxKeys))
		->capture_default_str();
	app.add_option("--block", g_opt.block, "block size in bytes")
		->check(CLI::Range(size_t(16), size_t(1) << 30))
		->capture_default_str();
	app.add_option("--region-mib", g_opt.region_mib, "region size in MiB")
		->check(CLI::Range(size_t(1), size_t(1) << 20))
		->capture_default_str();
	app.add_option("--evict", g_opt.evict, "eviction policy")
		->check(CLI::IsMember({"none", "clock", "lru"}))
		->capture_default_str();
	app.add_option("--writes", g_opt.writes, "how writers store: put, reserve (write in "
						 "place, commit or abort), or mixed")
		->check(CLI::IsMember({"put", "reserve", "mixed"}))
		->capture_default_str();
	try {
		app.parse(argc, argv);
		if (g_opt.writers + g_opt.readers > kMaxChildren)
			throw CLI::ValidationError("--writers + --readers",
						   "at most " + std::to_string(kMaxChildren));
		if (g_opt.keys < uint32_t(g_opt.writers))
			throw CLI::ValidationError("--keys", "at least one key per writer");
	} catch (const CLI::ParseError &e) {
		int r = app.exit(e);
		return r == 0 ? 0 : 2;
	}
	g_opt.sim = mode == "sim";
	return -1;
}

beluga_kvc_config make_config()
{
	beluga_kvc_config c = config(fingerprint(), g_opt.sim ? g_opt.writers + g_opt.readers : 1);
	c.max_pins = 64;
	c.max_sessions = 16;
	c.max_batch = 8;
	c.eviction = g_opt.evict == "clock" ? BELUGA_KVC_EVICT_CLOCK
		     : g_opt.evict == "lru" ? BELUGA_KVC_EVICT_LRU
					    : BELUGA_KVC_EVICT_NONE;
	return c;
}

// Create the region and format the cache.  0, or 77 if the backend is absent.
int setup(std::unique_ptr<ShmRegion> &shm)
{
	g_size = g_opt.region_mib << 20;
	beluga_kvc_config c = make_config();
	if (g_opt.backend == "memfd") {
		shm = std::make_unique<ShmRegion>(g_size);
		g_base = shm->base();
		return beluga_kvc_format(g_base, g_size, &c) ? 1 : 0;
	}
	g_name = "kvc-stress-" + std::to_string(getpid());
	g_user_dir = "/dev/shm/" + g_name;
	beluga_pool *pool = open_pool();
	if (!pool)
		return 77;
	beluga_kvc *kv = nullptr;
	auto o = opts(0, g_opt.sim ? BELUGA_KVC_SIMULATE : BELUGA_KVC_COHERENT);
	int r = beluga_kvc_open(pool, g_name.c_str(), &c.fingerprint, &c, g_size, 0600, &o, &kv);
	if (r)
		std::fprintf(stderr, "beluga_kvc_open: %s\n", beluga_kvc_last_error());
	beluga_kvc_detach(kv);
	beluga_pool_close(pool);
	return r ? 1 : 0;
}

void teardown()
{
	if (g_opt.backend == "memfd")
		return;
	if (beluga_pool *pool = open_pool()) {
		beluga_region_destroy(pool, g_name.c_str());
		beluga_pool_close(pool);
	}
	if (g_opt.backend == "user")
		std::filesystem::remove_all(g_user_dir);
}

struct Totals {
	int kills = 0, mid_write = 0, pinned = 0, while_evicting = 0;
	uint64_t ops = 0, puts = 0, removes = 0, hits = 0, misses = 0, pins = 0, bad = 0, lost = 0,
		 nospace = 0;
};

// Final state: reclaim every host, check structure, read every key.
bool verify()
{
	bool ok = true;
	int hosts = g_opt.sim ? g_opt.writers + g_opt.readers : 1;
	beluga_kvc_stats all{};
	for (int h = 0; h < hosts; h++) {
		beluga_pool *pool;
		beluga_kvc *kv = attach(h, &pool); // reclaims what died on host h
		if (!kv)
			return false;
		if (h + 1 < hosts) {
			beluga_kvc_detach(kv);
			beluga_pool_close(pool);
			continue;
		}
		beluga_kvc_check_report rep;
		beluga_kvc_check(kv, 1, &rep);
		std::printf("check: slots %" PRIu64 " free %" PRIu64 " published %" PRIu64
			    " retired %" PRIu64 " reserved %" PRIu64 " live sessions %" PRIu64
			    " dead %" PRIu64 " pins %" PRIu64 " errors %" PRIu64 "\n",
			    rep.slots, rep.free_slots, rep.published_slots, rep.retired_slots,
			    rep.reserved_slots, rep.live_sessions, rep.dead_sessions, rep.held_pins,
			    rep.errors);
		ok &= rep.errors == 0 && rep.reserved_slots == 0 && rep.dead_sessions == 0 &&
		      rep.held_pins == 0 && rep.live_sessions == 1;
		std::vector<uint8_t> out(g_opt.block);
		uint64_t present = 0, wrong = 0;
		for (uint32_t k = 0; k < g_opt.keys; k++) {
			beluga_kvc_get g{};
			make_key(k, g.key);
			g.dst = out.data();
			g.cap = out.size();
			int res;
			beluga_kvc_get_batch(kv, &g, 1, &res);
			KeyState s = key_state(k);
			bool hit = res > 0 && check_block(k, out.data(), g_opt.block);
			bool evictable = g_opt.evict != "none" && res == -ENOENT;
			present += hit;
			if ((s == kPresent && !hit && !evictable) || (s == kAbsent && res != -ENOENT) ||
			    (res > 0 && !hit))
				wrong++;
		}
		// The hosts' occupancy counters after all the kills: off by at most
		// what puts running during a resync were doing.
		uint64_t counted = 0;
		for (int x = 0; x < hosts; x++) {
			beluga_kvc_eviction ev;
			beluga_kvc_get_eviction(kv, x, &ev);
			counted += ev.used_blocks;
		}
		uint64_t held = rep.published_slots + rep.reserved_slots;
		uint64_t off = counted > held ? counted - held : held - counted;
		std::printf("occupancy: counters %" PRIu64 ", blocks held %" PRIu64 "\n", counted, held);
		ok &= off <= uint64_t(g_opt.writers) * 8;
		beluga_kvc_get_stats(kv, -1, &all);
		if (std::getenv("KVC_STRESS_DEBUG"))
			for (int x = 0; x < hosts; x++) {
				beluga_kvc_stats hs;
				beluga_kvc_get_stats(kv, x, &hs);
				std::printf("host %d: opened %" PRIu64 " reclaimed %" PRIu64 " puts %" PRIu64 " gets %" PRIu64 "\n",
					    x, hs.sessions_opened, hs.sessions_reclaimed, hs.puts, hs.gets);
			}
		std::printf("final read: %" PRIu64 " blocks present, %" PRIu64 " wrong\n", present,
			    wrong);
		ok &= wrong == 0;
		beluga_kvc_detach(kv);
		beluga_pool_close(pool);
	}
	std::printf("region stats: puts %" PRIu64 " gets %" PRIu64 " hits %" PRIu64
		    " checksum_failures %" PRIu64 " sessions_reclaimed %" PRIu64
		    " reservations_reclaimed %" PRIu64 " pins_reclaimed %" PRIu64
		    " dup_retracted %" PRIu64 " sessions_opened %" PRIu64 " evictions %" PRIu64
		    " evict_pinned %" PRIu64 "\n",
		    all.puts, all.gets, all.get_hits, all.checksum_failures, all.sessions_reclaimed,
		    all.reservations_reclaimed, all.pins_reclaimed, all.dup_retracted,
		    all.sessions_opened, all.evictions, all.evict_pinned);
	ok &= all.reservations_reclaimed > 0 && all.pins_reclaimed > 0 &&
	      all.sessions_reclaimed > 0;
	if (g_opt.evict != "none")
		ok &= all.evictions > 0; // the storm overfilled the writers' partitions
	return ok;
}

void collect(Totals &t, ChildStats &c)
{
	t.ops += c.ops.exchange(0);
	t.puts += c.puts.exchange(0);
	t.removes += c.removes.exchange(0);
	t.hits += c.hits.exchange(0);
	t.misses += c.misses.exchange(0);
	t.pins += c.pinned.exchange(0);
	t.bad += c.bad.exchange(0);
	t.lost += c.lost.exchange(0);
	t.nospace += c.nospace.exchange(0);
}

// Stop child @i (SIGSTOP: what it is doing can then be read exactly).
void stop_child(pid_t pid, int i)
{
	int st;
	kill(pid, SIGSTOP);
	if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st)) {
		std::fprintf(stderr, "child %d ended on its own (status %d)\n", i, st);
		std::exit(1);
	}
}

// Whom to kill.  Kind 0: a writer caught mid-write; kind 1: a reader caught
// holding pins; kind 2: a child at work; kind 3: anyone, including one still
// attaching or reclaiming.  Kinds 0 and 1 first stop random working children
// at random moments (a bounded number of tries); when none was caught in that
// state, one is asked to stop itself at its next write or pin, so that every
// run has such kills however the machine schedules the children.
int pick_victim(std::mt19937_64 &rng, int n, int kind)
{
	timespec pause = {0, long(100000 + rng() % 2000000)};
	nanosleep(&pause, nullptr);
	for (int tries = 0; tries < 200; tries++) {
		int i = kind == 0 ? int(rng() % g_opt.writers)
		      : kind == 1 ? g_opt.writers + int(rng() % g_opt.readers)
				  : int(rng() % n);
		ChildStats &c = g_sh->child[i];
		if (kind == 3 || (kind == 2 && c.working.load())) {
			stop_child(g_pids[i], i);
			return i;
		}
		if (kind < 2 && c.working.load()) {
			stop_child(g_pids[i], i);
			if (kind == 0 ? c.in_write.load() > 0 : c.pins.load() > 0)
				return i;
			kill(g_pids[i], SIGCONT);
		}
		timespec gap = {0, long(50000 + rng() % 200000)};
		nanosleep(&gap, nullptr);
	}
	if (kind >= 2) {
		int i = int(rng() % n);
		stop_child(g_pids[i], i);
		return i;
	}
	int i = kind == 0 ? int(rng() % g_opt.writers) : g_opt.writers + int(rng() % g_opt.readers);
	ChildStats &c = g_sh->child[i];
	c.stop_at = kind == 0 ? bkv::test::write_begin : bkv::test::pinned;
	int st;
	if (waitpid(g_pids[i], &st, WUNTRACED) != g_pids[i] || !WIFSTOPPED(st)) {
		std::fprintf(stderr, "child %d ended on its own (status %d)\n", i, st);
		std::exit(1);
	}
	return i;
}

// The storm's size: blocks the writers must store.  Without eviction, half
// the keys (the partition never fills by much); with eviction, three times
// the capacity of the partitions the writers store into.
uint64_t g_target;
uint64_t g_writer_capacity; // blocks the writers' partitions hold

// Wait until the writers stored @blocks blocks (and, with @hit, a reader
// had a hit).  Bounded by work, not time: false when the writers tried
// fifty times that many puts without storing them.
bool wait_for_work(uint64_t blocks, bool hit)
{
	uint64_t limit = 50 * g_target + 10000;
	while (g_sh->stored.load() < blocks || (hit && g_sh->reader_hits.load() == 0)) {
		if (g_sh->put_tries.load() > limit) {
			std::printf("storm: the writers tried %" PRIu64 " puts and stored %" PRIu64
				    " blocks (%" PRIu64 " needed), readers hit %" PRIu64 " times\n",
				    g_sh->put_tries.load(), g_sh->stored.load(), blocks,
				    g_sh->reader_hits.load());
			return false;
		}
		timespec gap = {0, 1000000};
		nanosleep(&gap, nullptr); // polling, not a timing condition
	}
	return true;
}

// Capacity of the partitions the writers fill, read from the cache; with
// eviction, raise --keys so that there are more keys than room.
bool size_storm()
{
	beluga_pool *pool;
	beluga_kvc *kv = attach(0, &pool);
	if (!kv)
		return false;
	beluga_kvc_eviction ev;
	int r = beluga_kvc_get_eviction(kv, 0, &ev);
	beluga_kvc_detach(kv);
	beluga_pool_close(pool);
	if (r)
		return false;
	// Coherent: every writer stores into host 0; sim: each into its own.
	g_writer_capacity = ev.capacity_blocks * (g_opt.sim ? uint64_t(g_opt.writers) : 1);
	if (g_opt.evict == "none") {
		g_target = g_opt.keys / 2;
		return true;
	}
	uint64_t keys = 4 * g_writer_capacity;
	if (keys > kMaxKeys) {
		std::printf("the writers' partitions hold %" PRIu64 " blocks: too many for %u keys; "
			    "use a smaller --region-mib or a larger --block\n",
			    g_writer_capacity, kMaxKeys);
		return false;
	}
	if (g_opt.keys < keys) {
		std::printf("keys: %" PRIu64 " (four times the %" PRIu64
			    " blocks the writers' partitions hold)\n",
			    keys, g_writer_capacity);
		g_opt.keys = uint32_t(keys);
	}
	g_target = 3 * g_writer_capacity;
	return true;
}

int run()
{
	std::unique_ptr<ShmRegion> shm;
	if (int r = setup(shm))
		return r;
	void *p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		return 1;
	g_sh = new (p) Shared();
	if (!size_storm()) {
		teardown();
		std::printf("FAIL\n");
		return 1;
	}
	std::printf("storm: %d kills spread over %" PRIu64 " stored blocks (partitions hold %" PRIu64
		    ")\n", g_opt.kills, g_target, g_writer_capacity);
	std::fflush(stdout);
	std::mt19937_64 rng(g_opt.seed);
	int n = g_opt.writers + g_opt.readers;
	std::vector<pid_t> &pids = g_pids;
	pids.resize(n);
	for (int i = 0; i < n; i++)
		pids[i] = spawn(i, rng());
	Totals t;
	bool storm_ok = true;
	for (int k = 0; k < g_opt.kills && storm_ok; k++) {
		// Kill k once the writers stored their share of the storm's blocks.
		storm_ok = wait_for_work(g_target * uint64_t(k + 1) / uint64_t(g_opt.kills + 1), false);
		// Random pauses (not timing assertions: they only spread the kills
		// over the children's work); the victim comes back stopped.
		int i = pick_victim(rng, n, k % 4);
		int st;
		ChildStats &c = g_sh->child[i];
		t.mid_write += c.in_write.load() > 0;
		t.pinned += c.pins.load() > 0;
		t.while_evicting += g_sh->evicting.load();
		kill(pids[i], SIGKILL);
		waitpid(pids[i], &st, 0);
		t.kills++;
		collect(t, c);
		c.working = 0; // before the replacement runs: the next kill must wait for it
		c.in_write = 0;
		c.pins = 0;
		c.stop_at = 0;
		pids[i] = spawn(i, rng());
	}
	storm_ok = storm_ok && wait_for_work(g_target, true);
	g_sh->stop = 1;
	int failed_children = 0;
	for (int i = 0; i < n; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		failed_children += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		collect(t, g_sh->child[i]);
	}
	std::printf("kills %d (mid-write %d, holding pins %d, while evicting %d); ops %" PRIu64
		    " puts %" PRIu64 " removes %" PRIu64 " full %" PRIu64 " hits %" PRIu64
		    " misses %" PRIu64 " pinned reads %" PRIu64 "; bad reads %" PRIu64
		    " lost blocks %" PRIu64 "\n",
		    t.kills, t.mid_write, t.pinned, t.while_evicting, t.ops, t.puts, t.removes,
		    t.nospace, t.hits, t.misses, t.pins, t.bad, t.lost);
	bool ok = verify();
	teardown();
	ok &= storm_ok && failed_children == 0 && t.bad == 0 && t.lost == 0 && t.mid_write > 0 &&
	      t.pinned > 0 && t.hits > 0 && t.puts > 0;
	// With eviction: the store evicted while processes were being killed.
	if (g_opt.evict != "none")
		ok &= t.while_evicting > 0;
	std::printf("%s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	if (int r = parse(argc, argv); r >= 0)
		return r;
	if (!g_opt.seed) {
		const char *env = std::getenv("BELUGA_TEST_SEED");
		g_opt.seed = env ? std::strtoull(env, nullptr, 0)
				 : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
	}
	std::printf("kvc_stress: mode %s, backend %s, eviction %s, writes %s, %d writers, "
		    "%d readers, %d kills, block %zu, seed %" PRIu64 " (replay: --seed %" PRIu64 ")\n",
		    g_opt.sim ? "sim" : "coherent", g_opt.backend.c_str(), g_opt.evict.c_str(),
		    g_opt.writes.c_str(),
		    g_opt.writers, g_opt.readers, g_opt.kills, g_opt.block, g_opt.seed, g_opt.seed);
	std::fflush(stdout);
	return run();
}
