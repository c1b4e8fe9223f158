// SPDX-License-Identifier: Apache-2.0
// The CPU data path: memcpy of the plan's contiguous pieces, large transfers
// split across a worker pool, pool writes with non-temporal stores (or, for
// small ones, ordinary stores written back: the pool is read by hosts that
// do not see this one's caches).
#include <beluga/xfer.h>

#include <beluga/cpu.h>

#include "plan.hpp"
#include "worker_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <system_error>
#include <thread>

using beluga::xfer::Plan;

struct beluga_kv_cpu {
	beluga_kv_cpu_opts opts{};
	std::unique_ptr<beluga::xfer::WorkerPool> pool;
	std::mutex call_mu; // one copy at a time: the pool runs one job
};

namespace {

constexpr size_t kDefaultNtMin = 256 * 1024;
constexpr size_t kDefaultMtMin = 1024 * 1024;
constexpr unsigned kMaxThreads = 16;
// Large pieces (a whole cross-layer block is megabytes) are cut into chunks
// so that a few blocks still spread over every thread.
constexpr size_t kChunk = 256 * 1024;

struct Job {
	const beluga_kv_xfer *x;
	Plan plan;
	uint64_t chunks_per_piece;
	uint64_t units; // pieces * chunks_per_piece
	bool nt;
};

void copy_units(const Job &j, uint64_t begin, uint64_t end)
{
	const Plan &pl = j.plan;
	const beluga_kv_paged &paged = *j.x->paged;
	const bool gather = j.x->dir == BELUGA_KV_GATHER;
	for (uint64_t u = begin; u < end; u++) {
		const uint64_t piece = u / j.chunks_per_piece;
		const size_t off = size_t(u % j.chunks_per_piece) * kChunk;
		const size_t len = std::min(kChunk, pl.run_bytes - off);
		const beluga_kv_block_ref &ref = j.x->refs[piece / pl.pieces_per_ref];
		const auto a = beluga::xfer::piece_addr(pl, ref.paged_block, piece % pl.pieces_per_ref);
		char *paged_p = static_cast<char *>(paged.layer_base[a.layer]) + a.paged_off + off;
		char *pool_p = static_cast<char *>(ref.pool) + a.pool_off + off;
		char *dst = gather ? pool_p : paged_p;
		const char *src = gather ? paged_p : pool_p;
		if (j.nt) {
			bcpu_copy_nt(dst, src, len); // ends with a store fence
		} else {
			std::memcpy(dst, src, len);
			if (gather)
				bcpu_writeback(dst, len);
		}
	}
}

beluga_kv_cpu_opts fill_defaults(const beluga_kv_cpu_opts *in)
{
	beluga_kv_cpu_opts o = in ? *in : beluga_kv_cpu_opts{};
	if (o.threads == 0)
		o.threads = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
	if (o.nt_min_bytes == 0)
		o.nt_min_bytes = kDefaultNtMin;
	if (o.mt_min_bytes == 0)
		o.mt_min_bytes = kDefaultMtMin;
	return o;
}

bool use_nt(const beluga_kv_cpu_opts &o, const beluga_kv_xfer &x, uint64_t total_bytes)
{
	switch (o.nt_mode) {
	case BELUGA_KV_NT_ALWAYS:
		return true;
	case BELUGA_KV_NT_NEVER:
		return false;
	default:
		return x.dir == BELUGA_KV_GATHER && total_bytes >= o.nt_min_bytes;
	}
}

} // namespace

extern "C" {

int beluga_kv_cpu_create(const beluga_kv_cpu_opts *opts, beluga_kv_cpu **out)
{
	if (!out || (opts && opts->nt_mode > BELUGA_KV_NT_NEVER) || (opts && opts->threads > 1024))
		return -EINVAL;
	*out = nullptr;
	auto cpu = std::unique_ptr<beluga_kv_cpu>(new (std::nothrow) beluga_kv_cpu);
	if (!cpu)
		return -ENOMEM;
	cpu->opts = fill_defaults(opts);
	try {
		cpu->pool = std::make_unique<beluga::xfer::WorkerPool>(cpu->opts.threads);
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	} catch (const std::system_error &) {
		return -EAGAIN;
	}
	*out = cpu.release();
	return 0;
}

void beluga_kv_cpu_destroy(beluga_kv_cpu *cpu)
{
	delete cpu;
}

int beluga_kv_cpu_copy(beluga_kv_cpu *cpu, const beluga_kv_xfer *x)
{
	if (int rc = beluga_kv_xfer_check(x))
		return rc;
	if (x->nrefs == 0)
		return 0;
	const beluga_kv_cpu_opts opts = cpu ? cpu->opts : fill_defaults(nullptr);
	Job j;
	j.x = x;
	j.plan = beluga::xfer::make_plan(*x);
	j.chunks_per_piece = (j.plan.run_bytes + kChunk - 1) / kChunk;
	j.units = x->nrefs * j.plan.pieces_per_ref * j.chunks_per_piece;
	const uint64_t total = x->nrefs * j.plan.pieces_per_ref * j.plan.run_bytes;
	j.nt = use_nt(opts, *x, total);

	if (!cpu || total < opts.mt_min_bytes || cpu->pool->size() == 1) {
		copy_units(j, 0, j.units);
		return 0;
	}
	std::lock_guard lk(cpu->call_mu);
	const unsigned parts = unsigned(std::min<uint64_t>(cpu->pool->size(), j.units));
	cpu->pool->run(parts, [&](unsigned i) {
		copy_units(j, j.units * i / parts, j.units * (i + 1) / parts);
	});
	return 0;
}

} // extern "C"
