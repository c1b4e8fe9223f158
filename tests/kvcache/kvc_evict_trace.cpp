// SPDX-License-Identifier: Apache-2.0
// kvc_evict_trace: eviction policies' hit rates on a trace with shared
// prefixes, the eviction section of `make bench` (bench/bench_evict.cpp runs
// this program and turns its rows into the report's table).  A program of
// the store's tests because the replay through the store sets the store's
// clock to the request number (bkv::test::set_tick), which only the store's
// test interface can; beluga-bench uses the public headers only.
//
// The trace (seeded, the same every run) models a chat service in front of
// a prefix cache, in 16-token blocks: 8 system prompts (16..128 blocks,
// Zipf popularity); conversations of 1..12 turns, each turn's prompt being
// the system prompt, the whole history and a new question (so turn t+1
// re-reads turn t's blocks), 48 conversations active at a time in random
// order; and one request in four a one-off document (32..256 blocks after a
// system prompt) that is never seen again.  Each request looks up its
// longest cached prefix (those blocks are hits and are read), then stores
// the rest.  Hit rate = blocks hit / blocks requested.
//
// Policies: exact LRU (the baseline every ratio is taken against), textbook
// CLOCK, S3-FIFO (10 % small queue, ghost queue, 2-bit frequency) and SIEVE,
// simulated; and Beluga's own CLOCK and sampled LRU running the trace
// through the real store (64-byte blocks), with eviction at full
// (watermarks 100/100, like the simulators) and with the default 95/85
// watermarks.
//
// Output, one record a line, tab-separated:
//   trace  REQUESTS  BLOCKS  DISTINCT  CEILING_HITS
//   hits   CAPACITY_PERMILLE  CAPACITY_BLOCKS  POLICY  HITS  NOTE
// where CEILING_HITS is what an infinite cache hits and, for each capacity,
// the first `hits` line is exact LRU.  Exit status 1 when a policy hits more
// than the infinite cache (a broken replay), 2 on a usage error.
#include "kvc_util.hpp"

#include "kvcache_test.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <list>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using Trace = std::vector<std::vector<uint64_t>>;

uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

Trace make_trace(size_t requests, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	auto uni = [&](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };
	// System prompts: chains of their own, Zipf(1) popularity.
	std::vector<std::vector<uint64_t>> sys(8);
	std::vector<double> weight(sys.size());
	for (size_t s = 0; s < sys.size(); s++) {
		uint64_t id = mix(seed, s);
		for (uint64_t b = uni(16, 128); b--;)
			sys[s].push_back(id = mix(id, 1));
		weight[s] = 1.0 / double(s + 1);
	}
	std::discrete_distribution<size_t> pick_sys(weight.begin(), weight.end());
	struct Conv {
		std::vector<uint64_t> blocks; // system prompt + history
		int turns_left;
	};
	uint64_t next_id = 1;
	auto new_conv = [&] {
		Conv c{sys[pick_sys(rng)], int(uni(1, 12))};
		for (uint64_t b = uni(4, 64); b--;)
			c.blocks.push_back(mix(c.blocks.back(), next_id++));
		return c;
	};
	std::vector<Conv> active(48);
	for (auto &c : active)
		c = new_conv();
	Trace t;
	while (t.size() < requests) {
		if (rng() % 4 == 0) { // a one-off document
			std::vector<uint64_t> r = sys[pick_sys(rng)];
			for (uint64_t b = uni(32, 256); b--;)
				r.push_back(mix(r.back(), next_id++));
			t.push_back(std::move(r));
			continue;
		}
		Conv &c = active[rng() % active.size()];
		t.push_back(c.blocks);
		if (--c.turns_left == 0) {
			c = new_conv();
			continue;
		}
		for (uint64_t b = uni(4, 32); b--;) // the answer and the next question
			c.blocks.push_back(mix(c.blocks.back(), next_id++));
	}
	return t;
}

// A simulated cache: contains(), touch() on a hit, insert() of a new block.
class Lru {
public:
	explicit Lru(size_t cap) : cap_(cap) {}
	bool contains(uint64_t k) const { return map_.count(k); }
	void touch(uint64_t k) { list_.splice(list_.begin(), list_, map_[k]); }
	void insert(uint64_t k)
	{
		if (map_.size() == cap_) {
			map_.erase(list_.back());
			list_.pop_back();
		}
		list_.push_front(k);
		map_[k] = list_.begin();
	}

private:
	size_t cap_;
	std::list<uint64_t> list_;
	std::unordered_map<uint64_t, std::list<uint64_t>::iterator> map_;
};

class ClockSim {
public:
	explicit ClockSim(size_t cap) : keys_(cap), ref_(cap) {}
	bool contains(uint64_t k) const { return map_.count(k); }
	void touch(uint64_t k) { ref_[map_[k]] = 1; }
	void insert(uint64_t k)
	{
		size_t slot;
		if (used_ < keys_.size()) {
			slot = used_++;
		} else {
			while (ref_[hand_]) {
				ref_[hand_] = 0;
				hand_ = (hand_ + 1) % keys_.size();
			}
			slot = hand_;
			map_.erase(keys_[slot]);
			hand_ = (hand_ + 1) % keys_.size();
		}
		keys_[slot] = k;
		ref_[slot] = 0;
		map_[k] = slot;
	}

private:
	std::vector<uint64_t> keys_;
	std::vector<uint8_t> ref_;
	std::unordered_map<uint64_t, size_t> map_;
	size_t used_ = 0, hand_ = 0;
};

// S3-FIFO (Yang et al., SOSP'23).
class S3Fifo {
public:
	explicit S3Fifo(size_t cap) : cap_(cap), small_cap_(std::max<size_t>(1, cap / 10)) {}
	bool contains(uint64_t k) const { return freq_.count(k); }
	void touch(uint64_t k)
	{
		uint8_t &f = freq_[k];
		f = uint8_t(std::min(3, f + 1));
	}
	void insert(uint64_t k)
	{
		while (freq_.size() >= cap_)
			evict();
		if (ghost_set_.erase(k))
			main_.push_back(k);
		else
			small_.push_back(k);
		freq_[k] = 0;
	}

private:
	void evict()
	{
		if (small_.size() >= small_cap_ || main_.empty()) {
			uint64_t t = small_.front();
			small_.pop_front();
			if (freq_[t] > 0) {
				freq_[t] = 0;
				main_.push_back(t);
			} else {
				freq_.erase(t);
				ghost_.push_back(t);
				ghost_set_.insert(t);
				if (ghost_.size() > cap_ - small_cap_) {
					ghost_set_.erase(ghost_.front());
					ghost_.pop_front();
				}
			}
			return;
		}
		for (;;) {
			uint64_t t = main_.front();
			main_.pop_front();
			if (freq_[t] > 0) {
				freq_[t]--;
				main_.push_back(t);
			} else {
				freq_.erase(t);
				return;
			}
		}
	}
	size_t cap_, small_cap_;
	std::list<uint64_t> small_, main_, ghost_;
	std::unordered_set<uint64_t> ghost_set_;
	std::unordered_map<uint64_t, uint8_t> freq_;
};

// SIEVE (Zhang et al., NSDI'24).
class Sieve {
public:
	explicit Sieve(size_t cap) : cap_(cap) {}
	bool contains(uint64_t k) const { return map_.count(k); }
	void touch(uint64_t k) { map_[k]->visited = true; }
	void insert(uint64_t k)
	{
		if (map_.size() == cap_)
			evict();
		list_.push_front({k, false});
		map_[k] = list_.begin();
	}

private:
	struct Node {
		uint64_t key;
		bool visited;
	};
	void evict()
	{
		auto o = hand_valid_ ? hand_ : std::prev(list_.end());
		while (o->visited) {
			o->visited = false;
			o = o == list_.begin() ? std::prev(list_.end()) : std::prev(o);
		}
		hand_valid_ = o != list_.begin();
		if (hand_valid_)
			hand_ = std::prev(o);
		map_.erase(o->key);
		list_.erase(o);
	}
	size_t cap_;
	std::list<Node> list_;
	std::unordered_map<uint64_t, std::list<Node>::iterator> map_;
	std::list<Node>::iterator hand_;
	bool hand_valid_ = false;
};

struct Result {
	uint64_t hits = 0, blocks = 0;
	double rate() const { return blocks ? double(hits) / double(blocks) : 0; }
};

template <typename Cache> Result simulate(const Trace &t, size_t cap)
{
	Cache c(cap);
	Result r;
	for (const auto &req : t) {
		size_t k = 0;
		while (k < req.size() && c.contains(req[k]))
			k++;
		for (size_t i = 0; i < k; i++)
			c.touch(req[i]);
		for (size_t i = k; i < req.size(); i++)
			if (!c.contains(req[i]))
				c.insert(req[i]);
		r.hits += k;
		r.blocks += req.size();
	}
	return r;
}

Result infinite(const Trace &t)
{
	std::unordered_set<uint64_t> seen;
	Result r;
	for (const auto &req : t) {
		size_t k = 0;
		while (k < req.size() && seen.count(req[k]))
			k++;
		r.hits += k;
		r.blocks += req.size();
		seen.insert(req.begin(), req.end());
	}
	return r;
}

// The trace through the real store: lookup, get the hits, put the rest.
Result store(const Trace &t, size_t cap, uint32_t policy, uint32_t high, uint32_t low)
{
	constexpr size_t kPayload = 64;
	size_t bytes = std::max<size_t>(32u << 20, cap * 400 + (16u << 20));
	kvt::ShmRegion reg(bytes);
	beluga_kvc_config cfg = kvt::config(kvt::opaque_fp(kPayload, "kvc-evict-trace"));
	cfg.max_batch = 256;
	beluga_kvc *kv = nullptr;
	beluga_kvc_attach_opts ao = kvt::opts(0, BELUGA_KVC_COHERENT);
	if (beluga_kvc_format(reg.bytes(), reg.size(), &cfg) ||
	    beluga_kvc_attach(reg.bytes(), reg.size(), &cfg.fingerprint, &ao, &kv))
		throw std::runtime_error(beluga_kvc_last_error());
	beluga_kvc_eviction e{};
	e.policy = policy;
	e.capacity_blocks = cap;
	e.high_watermark_pct = high;
	e.low_watermark_pct = low;
	if (beluga_kvc_set_eviction(kv, &e)) {
		std::string err = beluga_kvc_last_error();
		beluga_kvc_detach(kv);
		throw std::runtime_error(err);
	}
	Result r;
	std::vector<std::array<uint8_t, 32>> keys;
	std::vector<uint8_t> payload(kPayload * 512);
	std::vector<beluga_kvc_get> gets;
	std::vector<beluga_kvc_put> puts;
	std::vector<int> res;
	for (size_t q = 0; q < t.size(); q++) {
		bkv::test::set_tick(uint32_t(q + 1)); // one "millisecond" per request
		const auto &req = t[q];
		keys.resize(req.size());
		for (size_t i = 0; i < req.size(); i++)
			kvt::make_key(req[i], keys[i].data());
		long k = beluga_kvc_lookup_prefix(kv, reinterpret_cast<const uint8_t(*)[32]>(keys.data()),
						  req.size());
		if (k < 0) {
			std::string err = beluga_kvc_last_error();
			beluga_kvc_detach(kv);
			throw std::runtime_error(err);
		}
		gets.resize(size_t(k));
		puts.resize(req.size() - size_t(k));
		res.resize(req.size());
		if (payload.size() < req.size() * kPayload)
			payload.resize(req.size() * kPayload);
		for (size_t i = 0; i < size_t(k); i++) {
			std::memcpy(gets[i].key, keys[i].data(), 32);
			gets[i].dst = payload.data() + i * kPayload;
			gets[i].cap = kPayload;
		}
		r.hits += size_t(beluga_kvc_get_batch(kv, gets.data(), gets.size(), res.data()));
		for (size_t i = size_t(k); i < req.size(); i++) {
			beluga_kvc_put &p = puts[i - size_t(k)];
			std::memcpy(p.key, keys[i].data(), 32);
			p.data = payload.data();
			p.len = kPayload;
		}
		beluga_kvc_put_batch(kv, puts.data(), puts.size(), res.data());
		r.blocks += req.size();
	}
	bkv::test::set_tick(0);
	beluga_kvc_detach(kv);
	return r;
}

} // namespace

int main(int argc, char **argv)
{
	size_t requests = 20000;
	std::vector<unsigned> capacities{5, 10, 20, 50};
	CLI::App app{"Hit rates of eviction policies on a shared-prefix trace, simulated and through "
		     "the store, against exact LRU (the eviction section of make bench)"};
	app.add_option("--requests", requests, "requests in the trace")
		->check(CLI::Range(size_t(1), size_t(1) << 24))
		->capture_default_str();
	// The active conversations and system prompts need about 2 % of the
	// distinct blocks: the smaller capacities are where policies differ.
	app.add_option("--capacity", capacities,
		       "cache capacities, in thousandths of the trace's distinct blocks")
		->check(CLI::Range(1u, 1000u))
		->delimiter(',')
		->capture_default_str();
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		return app.exit(e) == 0 ? 0 : 2;
	}
	try {
		Trace t = make_trace(requests, 42);
		std::unordered_set<uint64_t> distinct;
		uint64_t blocks = 0;
		for (const auto &r : t) {
			distinct.insert(r.begin(), r.end());
			blocks += r.size();
		}
		Result ceiling = infinite(t);
		std::printf("trace\t%zu\t%" PRIu64 "\t%zu\t%" PRIu64 "\n", t.size(), blocks,
			    distinct.size(), ceiling.hits);
		std::fflush(stdout);
		bool sane = true;
		for (unsigned permille : capacities) {
			size_t cap = distinct.size() * permille / 1000;
			auto row = [&](const char *name, const Result &r, const char *note) {
				std::printf("hits\t%u\t%zu\t%s\t%" PRIu64 "\t%s\n", permille, cap, name,
					    r.hits, note);
				std::fflush(stdout);
				if (r.hits > ceiling.hits || r.blocks != blocks) {
					std::fprintf(stderr,
						     "kvc_evict_trace: %s at %zu blocks: %" PRIu64
						     " hits of %" PRIu64 " blocks, but an infinite cache "
						     "hits %" PRIu64 " of %" PRIu64 "\n",
						     name, cap, r.hits, r.blocks, ceiling.hits, blocks);
					sane = false;
				}
			};
			row("LRU (exact)", simulate<Lru>(t, cap), "baseline");
			row("CLOCK", simulate<ClockSim>(t, cap), "simulated");
			row("S3-FIFO", simulate<S3Fifo>(t, cap), "simulated");
			row("SIEVE", simulate<Sieve>(t, cap), "simulated");
			row("Beluga CLOCK", store(t, cap, BELUGA_KVC_EVICT_CLOCK, 100, 100),
			    "the store, at full");
			row("Beluga LRU (sampled)", store(t, cap, BELUGA_KVC_EVICT_LRU, 100, 100),
			    "the store, at full");
			row("Beluga CLOCK 95/85", store(t, cap, BELUGA_KVC_EVICT_CLOCK, 95, 85),
			    "the store, default watermarks");
		}
		return sane ? 0 : 1;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "kvc_evict_trace: %s\n", e.what());
		return 1;
	}
}
