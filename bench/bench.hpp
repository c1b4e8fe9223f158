// SPDX-License-Identifier: Apache-2.0
// Shared pieces of beluga-bench: clocks, percentiles, the shared-memory
// region every store benchmark runs in, block keys, and the report table.
// Every figure is printed next to a baseline measured in the same run.
#pragma once

#include <beluga/kvcache.h>
#include <beluga/kvcache.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0)
{
	return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline uint64_t now_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Options shared by every section.
struct Options {
	bool quick = false;		// smaller sizes and shorter runs (a smoke test)
	double seconds = 1.0;		// per measured figure, at most
	size_t region_mib = 1024;	// shared region of the store benchmarks
	unsigned threads = 0;		// "all cores" (0: online CPUs)
	std::string redis_server = "/usr/bin/redis-server";
};

// Latency samples in nanoseconds -> percentiles.
struct Percentiles {
	double p50 = 0, p90 = 0, p99 = 0, p999 = 0;
	size_t n = 0;
};
inline Percentiles percentiles(std::vector<uint64_t> v)
{
	Percentiles p;
	p.n = v.size();
	if (v.empty())
		return p;
	std::sort(v.begin(), v.end());
	auto at = [&](double q) { return double(v[std::min(v.size() - 1, size_t(q * double(v.size())))]); };
	p.p50 = at(0.50);
	p.p90 = at(0.90);
	p.p99 = at(0.99);
	p.p999 = at(0.999);
	return p;
}

// Memory for the benchmarks: anonymous, 2 MiB aligned, with transparent
// huge pages where the kernel gives them (madvise), as the driver maps CXL
// memory in 2 MiB pages (the user-space backend uses hugetlbfs when it can).
// One process runs each benchmark, so the store needs no sharing here.
// Every page is written once at allocation: a process's first touch of a
// page costs a fault (in a VM with shadow paging, a slow one), which is
// set-up cost, not what the figures are about.
class Memory {
public:
	explicit Memory(size_t size) : size_((size + (2u << 20) - 1) & ~size_t((2u << 20) - 1))
	{
		void *p = mmap(nullptr, size_ + (2u << 20), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			throw std::runtime_error("bench: out of memory");
		map_ = p;
		base_ = reinterpret_cast<uint8_t *>((uintptr_t(p) + (2u << 20) - 1) & ~uintptr_t((2u << 20) - 1));
		madvise(base_, size_, MADV_HUGEPAGE);
		for (size_t i = 0; i < size_; i += 4096)
			base_[i] = 0;
	}
	~Memory() { munmap(map_, size_ + (2u << 20)); }
	Memory(const Memory &) = delete;
	Memory &operator=(const Memory &) = delete;
	uint8_t *bytes() const { return base_; }
	uint8_t *data() const { return base_; }
	size_t size() const { return size_; }

private:
	size_t size_;
	void *map_;
	uint8_t *base_;
};

// The cache's region, and a private buffer (the engine's side of a copy).
using Region = Memory;
using Buffer = Memory;

struct Key {
	uint8_t b[32];
};
inline const uint8_t (*key_array(const std::vector<Key> &v))[32]
{
	return reinterpret_cast<const uint8_t(*)[32]>(v.data());
}

inline void make_key(uint64_t id, uint8_t out[32])
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	for (int w = 0; w < 4; w++) {
		x ^= x >> 31;
		x *= 0xbf58476d1ce4e5b9ull;
		x ^= x >> 29;
		std::memcpy(out + 8 * w, &x, 8);
	}
}

// The benchmarks' fingerprint: opaque blocks of @payload bytes.
inline beluga_kvc_fingerprint fingerprint(uint64_t payload)
{
	return beluga::kvc::make_fingerprint({.model_id = "beluga-bench",
					      .hash_seed = "0",
					      .layout = BELUGA_KVC_LAYOUT_OPAQUE,
					      .payload_bytes = payload});
}

// The report: sections of rows "figure | value | baseline | ratio".
struct Row {
	std::string what, value, baseline, ratio, note;
};
struct Report {
	std::vector<std::pair<std::string, std::vector<Row>>> sections;
	std::map<std::string, double> values; // figures later sections compare with
	std::vector<Row> &section(const std::string &title)
	{
		sections.push_back({title, {}});
		return sections.back().second;
	}
	std::string markdown() const;
};

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string gbps(double bytes_per_s);
std::string ratio(double a, double b);

// Sections (one file each).
void run_throughput(const Options &o, Report &r);
void run_latency(const Options &o, Report &r);
void run_lookup(const Options &o, Report &r);
void run_redis(const Options &o, Report &r);
void run_eviction(const Options &o, Report &r);
void run_reserve(const Options &o, Report &r);
void run_lookup_hosts(const Options &o, Report &r);

// Shared by the throughput and Redis sections: single-thread memcpy of
// @block-byte blocks into a shared region, in bytes per second.
double memcpy_rate(const Options &o, size_t block, unsigned threads);

} // namespace bench
