// SPDX-License-Identifier: Apache-2.0
// Where to compute the block checksum of a GPU-written save: the cost of each
// design, same run, same buffers.  Gathers of 16-token Llama-3-8B blocks
// (bf16, 8 KV heads of 128, 2 MiB) from paged GPU KV in vLLM's layouts into
// registered host memory (a MAP_SHARED mapping, as a Beluga region):
//
//   copy      beluga_kv_gpu_copy, no checksum (the baseline)
//   fused     beluga_kv_gpu_gather_sum FUSED: the gather kernel sums what it stores
//   source    ... SOURCE: the copy, then a kernel summing the paged source (GPU memory)
//   readback  ... READBACK: the copy, then a kernel reading the pool back over the bus
//   auto      ... AUTO: what a save uses
//   cpu       the copy, then the store's CPU checksum of the pool blocks, one
//             thread (what beluga_kvc_commit does without
//             BELUGA_KVC_COMMIT_CHECKSUM, minus its write-back and threads)
//
// GPU rows: best of N of cudaEvent time around the call (scratch allocation,
// refs upload and the sums' download included).  The cpu row adds the
// checksum's wall time after the copy has completed.
//
// Usage: bench_xfer_gpu_sum [--json FILE] [--quick]
// JSON default: $OUT/xfer-sum-bench.json when $OUT is set.  Exits 77 without a GPU.
#include <beluga/xfer_cuda.h>

#include "checksum.hpp" // the store's CPU checksum (kvcache/src, libbeluga/cpu), compiled in
#include "bench_util.hpp"
#include "gpu_util.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace beluga::xfer::gpu_test;

BenchReport g_bench{7, {}};

struct Layout {
	const char *name;
	bool cross;
	uint32_t backend, order;
};

const Layout kLayouts[] = {
	{"flash_attn/NHD", false, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD},
	{"flash_attn/HND", false, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_HND},
	{"flashinfer/NHD", false, BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_NHD},
	{"cross-layer/NHD", true, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD},
};

void bench_case(beluga_kv_gpu *gpu, cudaStream_t s, const beluga_kv_shape &sh, const Layout &lay, size_t nblocks,
		std::mt19937_64 &rng)
{
	const uint64_t cache_blocks = 2 * nblocks + 8;
	const size_t block = beluga_kv_block_bytes(&sh);
	const size_t layer_tensor = cache_blocks * beluga_kv_layer_bytes(&sh);
	DeviceBuf cache(layer_tensor * sh.num_layers);
	{
		std::vector<unsigned char> fill(cache.size());
		for (auto &c : fill)
			c = uint8_t(rng());
		check(cudaMemcpy(cache.get(), fill.data(), fill.size(), cudaMemcpyHostToDevice), "upload");
	}
	beluga_kv_paged paged;
	int rc;
	if (lay.cross) {
		rc = beluga_kv_paged_vllm_cross_layer(&paged, &sh, cache_blocks, lay.backend, lay.order, cache.get());
	} else {
		std::vector<void *> t(sh.num_layers);
		for (uint32_t l = 0; l < sh.num_layers; l++)
			t[l] = cache.get() + l * layer_tensor;
		rc = beluga_kv_paged_vllm_per_layer(&paged, &sh, cache_blocks, lay.backend, lay.order, t.data());
	}
	if (rc)
		throw std::runtime_error("layout constructor failed");
	HostBuf pool(nblocks * block, HostKind::Registered);
	std::memset(pool.host(), 5, pool.size());
	HostBuf sums(nblocks * sizeof(uint64_t), HostKind::Pinned);
	auto *got = reinterpret_cast<uint64_t *>(sums.host());
	std::vector<uint64_t> ids(cache_blocks);
	std::iota(ids.begin(), ids.end(), 0);
	std::shuffle(ids.begin(), ids.end(), rng);
	std::vector<beluga_kv_block_ref> refs(nblocks);
	for (size_t i = 0; i < nblocks; i++)
		refs[i] = {ids[i], pool.dev() + i * block};
	const beluga_kv_xfer x{&paged, refs.data(), refs.size(), 0, sh.num_layers, BELUGA_KV_GATHER, 0};
	const double bytes = double(nblocks) * block;

	struct Row {
		const char *name;
		double ms;
	};
	std::vector<Row> rows;
	rows.push_back({"copy", g_bench.time_ms(s, [&] {
				if (beluga_kv_gpu_copy(gpu, &x, s))
					throw std::runtime_error(beluga_kv_gpu_last_error());
			})});
	const struct {
		const char *name;
		uint32_t method;
	} methods[] = {{"fused", BELUGA_KV_SUM_FUSED},
		       {"source", BELUGA_KV_SUM_SOURCE},
		       {"readback", BELUGA_KV_SUM_READBACK},
		       {"auto", BELUGA_KV_SUM_AUTO}};
	for (const auto &m : methods)
		rows.push_back({m.name, g_bench.time_ms(s, [&] {
					if (beluga_kv_gpu_gather_sum(gpu, &x, m.method, got, s))
						throw std::runtime_error(beluga_kv_gpu_last_error());
				})});
	// The sums just computed must be the store's (a benchmark that measured
	// wrong work would be worthless).
	for (size_t i = 0; i < nblocks; i++)
		if (got[i] != bkv::f64(pool.host() + i * block, block))
			throw std::runtime_error(std::string("GPU checksum differs from the store's: ") + lay.name);
	// The CPU design: the copy, then one thread reads the blocks back.
	double cpu_ms = 0;
	for (int i = 0; i <= g_bench.reps; i++) {
		check(cudaStreamSynchronize(s), "sync");
		const auto t0 = std::chrono::steady_clock::now();
		uint64_t acc = 0;
		for (size_t b = 0; b < nblocks; b++)
			acc ^= bkv::f64(pool.host() + b * block, block);
		const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
		if (acc == 0x12345) // keep the sums alive
			std::printf(" ");
		if (i > 0 && (cpu_ms == 0 || ms < cpu_ms))
			cpu_ms = ms;
	}
	rows.push_back({"cpu", rows[0].ms + cpu_ms});
	const double base = rows[0].ms;
	for (const Row &r : rows) {
		std::printf("%-16s %3zu blk  %-8s %9.3f ms %7.1f GB/s  %+6.1f%% vs copy\n", lay.name, nblocks, r.name, r.ms,
			    gbps(bytes, r.ms), 100 * (r.ms - base) / base);
		char row[384];
		std::snprintf(row, sizeof(row),
			      "{\"kind\": \"gather_sum\", \"layout\": \"%s\", \"blocks\": %zu, \"block_bytes\": %zu, "
			      "\"method\": \"%s\", \"ms\": %.4f, \"gbps\": %.2f, \"copy_ms\": %.4f}",
			      lay.name, nblocks, block, r.name, r.ms, gbps(bytes, r.ms), base);
		g_bench.row(row);
	}
}

void write_json(const char *path, const std::string &device)
{
	FILE *f = std::fopen(path, "w");
	if (!f) {
		std::fprintf(stderr, "cannot write %s\n", path);
		return;
	}
	std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"rows\": [\n%s\n  ]\n}\n", device.c_str(), g_bench.json.c_str());
	std::fclose(f);
}

} // namespace

int main(int argc, char **argv)
{
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	std::string json;
	if (const char *out = std::getenv("OUT"))
		json = std::string(out) + "/xfer-sum-bench.json";
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!std::strcmp(argv[i], "--quick"))
			g_bench.reps = 2;
		else {
			std::fprintf(stderr, "usage: %s [--json FILE] [--quick]\n", argv[0]);
			return 2;
		}
	}
	char why[256];
	if (!beluga_kv_gpu_available(why, sizeof(why))) {
		std::printf("no GPU found: %s; benchmark skipped\n", why);
		return 77;
	}
	try {
		cudaDeviceProp prop{};
		check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
		const std::string device = std::string(prop.name) + ", sm_" + std::to_string(prop.major) +
					   std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) +
					   " SMs";
		std::printf("device: %s\npool memory: %s\n", device.c_str(), host_kind_name(HostKind::Registered).c_str());
		Stream s;
		Gpu gpu;
		std::printf("copy-engine threshold %zu B (cross-layer NHD goes to the copy engines; AUTO then sums the "
			    "source)\n\n",
			    beluga_kv_gpu_batch_min_bytes(gpu.get()));
		std::mt19937_64 rng(42);
		const beluga_kv_shape llama{32, 16, 8, 128, BELUGA_KV_BF16, 0};
		for (size_t n : {size_t(8), size_t(64)})
			for (const Layout &lay : kLayouts)
				bench_case(gpu.get(), s.get(), llama, lay, n, rng);
		if (!json.empty())
			write_json(json.c_str(), device);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "benchmark failed: %s\n", e.what());
		if (!json.empty())
			write_json(json.c_str(), std::string("FAILED: ") + e.what());
		return 1;
	}
	return 0;
}
