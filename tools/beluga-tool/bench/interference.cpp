// SPDX-License-Identifier: Apache-2.0
// Description: the interference test (the paper's Exp #4) - the latency
// distribution of dependent loads in one half of the memory while other
// threads stream through the other half, reading or writing.  The paper
// found the median flat and only the p99 rising, and only when the
// background runs in the same direction; the p50/p99 here show the same.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "chase.hpp"
#include "kernels.hpp"
#include "runner.hpp"

namespace bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kSample = 32;		// loads per latency sample
constexpr std::size_t kStream = 1 << 20;	// background access size

struct Outcome {
	double p50 = 0, p99 = 0, bg_gbps = 0;
};

// One background thread: streams through [base, base + len) until stopped.
void stream(std::byte *base, std::size_t len, bool write, unsigned cpu, bool pin,
	    const std::atomic<bool> &stop, double &gbps)
{
	std::uint64_t sink = 0, bytes = 0;
	std::size_t off = 0;

	if (pin)
		pin_to_cpu(cpu);
	auto t0 = Clock::now();
	while (!stop.load(std::memory_order_relaxed)) {
		if (write)
			store_block(base + off, kStream, ++sink);
		else
			sink += read_block(base + off, kStream);
		bytes += kStream;
		off = off + 2 * kStream > len ? 0 : off + kStream;
	}
	double sec = std::chrono::duration<double>(Clock::now() - t0).count();
	volatile std::uint64_t keep = sink;	// the reads must happen

	(void)keep;
	gbps = static_cast<double>(bytes) / sec / 1e9;
}

// The foreground: latency samples until the duration is over.
std::vector<double> samples(const Config &cfg, std::byte *base, std::size_t ws)
{
	std::vector<double> v;
	void *p = build_chase(base, ws, cfg.seed);

	if (cfg.pin)
		pin_to_cpu(0);
	p = chase(p, std::min<std::size_t>(ws / 64, 1 << 16));	// warm the TLB
	auto end = Clock::now() + std::chrono::duration<double, std::milli>(cfg.duration_ms);
	do {
		auto t0 = Clock::now();

		p = chase(p, kSample);
		auto t1 = Clock::now();
		v.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kSample);
	} while (Clock::now() < end);
	return v;
}

double percentile(std::vector<double> &v, double q)
{
	auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));

	std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
	return v[k];
}

Outcome run_one(const Config &cfg, Memory &m, const std::string &bg, unsigned bg_threads)
{
	std::size_t half = m.size / 2 / kStream * kStream;
	std::size_t ws = std::min<std::size_t>(half, 64 << 20);
	std::size_t share = half / std::max(1u, bg_threads) / kStream * kStream;
	std::atomic<bool> stop{ false };
	std::vector<double> gbps(bg_threads), lat;
	Outcome o;
	{
		std::vector<std::jthread> th;

		for (unsigned t = 0; bg != "none" && t < bg_threads; t++)
			th.emplace_back(stream, m.data + half + t * share, share, bg == "write",
					t + 1, cfg.pin, std::cref(stop), std::ref(gbps[t]));
		std::jthread fg([&] { lat = samples(cfg, m.data, ws); });
		fg.join();
		stop = true;
	}
	o.p50 = percentile(lat, 0.50);
	o.p99 = percentile(lat, 0.99);
	for (double g : gbps)
		o.bg_gbps += g;
	return o;
}

} // namespace

void run_interference(Context &c)
{
	Section &lat = add_section(c, "interference",
				   "Interference: dependent-load latency under a background stream",
				   "ns", false);
	Section &bw = add_section(c, "interference_load",
				  "Interference: bandwidth of the background stream", "GB/s", true);
	unsigned bg_threads = std::max(1u, c.cfg.threads.back() - 1);

	for (std::string bg : { "none", "read", "write" }) {
		Point p50, p99, load;

		p50.op = p99.op = load.op = "bg-" + bg;
		p50.metric = "p50";
		p99.metric = "p99";
		load.threads = p50.threads = p99.threads = bg == "none" ? 0 : bg_threads;
		measure_group(c, { { &lat, p50 }, { &lat, p99 }, { &bw, load } }, [&](Memory &m) {
			Outcome o = run_one(c.cfg, m, bg, bg_threads);

			return std::vector<double>{ o.p50, o.p99, o.bg_gbps };
		});
	}
}

} // namespace bench
