// SPDX-License-Identifier: Apache-2.0
// Description: the timed loop.  The coordinating thread only sleeps and
// flips the phase (warm-up, measure, stop); each worker times its own
// measured operations, so an operation in flight when the phase changes is
// counted whole, never cut, and large operations (64 MiB) stay accurate.
#include "runner.hpp"

#include <sched.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

void pin_to_cpu(unsigned i)
{
	cpu_set_t allowed, one;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return;
	int n = CPU_COUNT(&allowed);
	if (n <= 0)
		return;
	unsigned want = i % static_cast<unsigned>(n);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || want--)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(0, sizeof(one), &one);	// best effort
		return;
	}
}

namespace {

struct Shared {
	std::atomic<int> ready{ 0 };
	std::atomic<int> phase{ 0 };	// 0 warm-up, 1 measure, 2 stop
};

struct Result {
	double seconds = 0;
	std::size_t ops = 0, bytes = 0;
};

void worker(const Config &cfg, unsigned t, const MakeOp &make_op, Shared &s, Result &r)
{
	if (cfg.pin)
		pin_to_cpu(t);
	OpFn op = make_op(t);

	s.ready.fetch_add(1);
	while (s.phase.load(std::memory_order_relaxed) == 0)
		op();
	auto t0 = Clock::now();
	// At least one measured operation, even if it outlasts the duration.
	do {
		r.bytes += op();
		r.ops++;
	} while (s.phase.load(std::memory_order_relaxed) == 1);
	r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

void sleep_ms(double ms)
{
	std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

} // namespace

Timing run_timed(const Config &cfg, unsigned nthreads, const MakeOp &make_op)
{
	Shared s;
	std::vector<Result> res(nthreads);
	std::vector<std::jthread> threads;

	for (unsigned t = 0; t < nthreads; t++)
		threads.emplace_back([&, t] { worker(cfg, t, make_op, s, res[t]); });
	while (s.ready.load() < static_cast<int>(nthreads))
		std::this_thread::yield();
	sleep_ms(cfg.duration_ms / 4);
	s.phase.store(1);
	sleep_ms(cfg.duration_ms);
	s.phase.store(2);
	threads.clear();	// joins

	Timing tm;
	for (const auto &r : res) {
		if (r.seconds > 0)
			tm.bytes_per_s += static_cast<double>(r.bytes) / r.seconds;
		tm.seconds_per_op += r.seconds / static_cast<double>(r.ops) / nthreads;
	}
	return tm;
}

} // namespace bench
