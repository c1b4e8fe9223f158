// SPDX-License-Identifier: Apache-2.0
// GPU data-path benchmark: gather (GPU -> pool) and scatter (pool -> GPU) of
// 16-token KV blocks of Llama-3-8B and Qwen2.5-32B (bf16, 8 KV heads of 128)
// in vLLM's layouts, through the kernel, the copy engines
// (cudaMemcpyBatchAsync) and the automatic choice, against one big
// cudaMemcpyAsync of the same bytes and the device's host<->device bandwidth
// measured in the same run; then the kernel/copy-engine crossover table and
// layer-wise loading overhead.  Pool memory is a MAP_SHARED mapping registered
// with cudaHostRegister, as a Beluga region is.
//
// Usage: bench_xfer_gpu [--json FILE] [--quick]
// Prints a table; writes JSON to FILE (default $OUT/xfer-bench.json when $OUT is set).
// Exits 77 when no usable GPU is found.
#include <beluga/xfer_cuda.h>

#include "bench_util.hpp"
#include "gpu_util.hpp"

#include <algorithm>
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

BenchReport g_bench{5, {}};

struct Model {
	const char *name;
	beluga_kv_shape shape;
	std::vector<size_t> batches; // blocks per transfer
};

struct Layout {
	const char *name;
	bool cross;
	uint32_t backend, order;
};

const Layout kLayouts[] = {
	{"flash_attn/NHD", false, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD},
	{"flash_attn/HND", false, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_HND},
	{"flashinfer/NHD", false, BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_NHD},
	{"flashinfer/HND", false, BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_HND},
	{"cross-layer/NHD", true, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD},
};

struct Bandwidth {
	double h2d = 0, d2h = 0;
};

Bandwidth measure_bandwidth(HostKind kind, cudaStream_t s)
{
	const size_t n = size_t(256) << 20;
	HostBuf host(n, kind);
	DeviceBuf dev(n);
	std::memset(host.host(), 1, n);
	Bandwidth bw;
	bw.h2d = gbps(n, g_bench.time_ms(s, [&] { check(cudaMemcpyAsync(dev.get(), host.host(), n, cudaMemcpyHostToDevice, s), "h2d"); }));
	bw.d2h = gbps(n, g_bench.time_ms(s, [&] { check(cudaMemcpyAsync(host.host(), dev.get(), n, cudaMemcpyDeviceToHost, s), "d2h"); }));
	std::printf("host<->device bandwidth (%s, 256 MiB cudaMemcpyAsync): H2D %.1f GB/s, D2H %.1f GB/s\n",
		    host_kind_name(kind).c_str(), bw.h2d, bw.d2h);
	char row[256];
	std::snprintf(row, sizeof(row), "{\"kind\": \"bandwidth\", \"host\": \"%s\", \"h2d_gbps\": %.2f, \"d2h_gbps\": %.2f}",
		      host_kind_name(kind).c_str(), bw.h2d, bw.d2h);
	g_bench.row(row);
	return bw;
}

// One model, one layout, one batch size: every path, both directions.
void bench_case(beluga_kv_gpu *gpu, cudaStream_t s, const Model &m, const Layout &lay, size_t nblocks,
		const Bandwidth &bw, std::mt19937_64 &rng)
{
	const beluga_kv_shape &sh = m.shape;
	const uint64_t cache_blocks = 2 * nblocks + 8;
	const size_t block_bytes = beluga_kv_block_bytes(&sh);
	const size_t layer_tensor = cache_blocks * beluga_kv_layer_bytes(&sh);
	DeviceBuf cache(layer_tensor * sh.num_layers);
	check(cudaMemset(cache.get(), 3, cache.size()), "memset");
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
	HostBuf pool(nblocks * block_bytes, HostKind::Registered);
	std::memset(pool.host(), 5, pool.size());
	std::vector<uint64_t> ids(cache_blocks);
	std::iota(ids.begin(), ids.end(), 0);
	std::shuffle(ids.begin(), ids.end(), rng);
	std::vector<beluga_kv_block_ref> refs(nblocks);
	for (size_t i = 0; i < nblocks; i++)
		refs[i] = {ids[i], pool.dev() + i * block_bytes};
	const double bytes = double(nblocks) * block_bytes;
	DeviceBuf flat{size_t(bytes)};

	const double big_h2d = gbps(bytes, g_bench.time_ms(s, [&] {
		check(cudaMemcpyAsync(flat.get(), pool.host(), size_t(bytes), cudaMemcpyHostToDevice, s), "memcpy");
	}));
	const double big_d2h = gbps(bytes, g_bench.time_ms(s, [&] {
		check(cudaMemcpyAsync(pool.host(), flat.get(), size_t(bytes), cudaMemcpyDeviceToHost, s), "memcpy");
	}));
	const size_t auto_th = beluga_kv_gpu_batch_min_bytes(gpu);
	struct Path {
		const char *name;
		size_t threshold;
	} paths[] = {{"kernel", SIZE_MAX}, {"batch", 1}, {"auto", auto_th}};
	size_t run = 0;
	uint64_t runs = 0;
	{
		const beluga_kv_xfer x{&paged, refs.data(), refs.size(), 0, sh.num_layers, BELUGA_KV_SCATTER, 0};
		beluga_kv_xfer_runs(&x, &run, &runs);
	}
	for (uint32_t dir : {BELUGA_KV_SCATTER, BELUGA_KV_GATHER}) {
		const bool h2d = dir == BELUGA_KV_SCATTER;
		const beluga_kv_xfer x{&paged, refs.data(), refs.size(), 0, sh.num_layers, dir, 0};
		for (const Path &p : paths) {
			if (p.threshold == 1 && !beluga_kv_gpu_has_batch_copy(gpu))
				continue;
			// Hundreds of thousands of 256-byte descriptors are a known loss
			// and cost seconds of host time per call: measured only up to 64Ki.
			if (p.threshold == 1 && runs > 65536)
				continue;
			beluga_kv_gpu_set_batch_min_bytes(gpu, p.threshold);
			const double ms = g_bench.time_ms(s, [&] {
				if (beluga_kv_gpu_copy(gpu, &x, s))
					throw std::runtime_error(beluga_kv_gpu_last_error());
			});
			const double rate = gbps(bytes, ms);
			const double big = h2d ? big_h2d : big_d2h;
			const double link = h2d ? bw.h2d : bw.d2h;
			std::printf("%-12s %-16s %4zu blk %8zu B x %-7llu %-7s %-6s %9.3f ms %7.1f GB/s  %5.0f%% of 1 memcpy  "
				    "%5.0f%% of link\n",
				    m.name, lay.name, nblocks, run, (unsigned long long)runs, h2d ? "scatter" : "gather", p.name,
				    ms, rate, 100 * rate / big, 100 * rate / link);
			char row[512];
			std::snprintf(row, sizeof(row),
				      "{\"kind\": \"xfer\", \"model\": \"%s\", \"layout\": \"%s\", \"blocks\": %zu, "
				      "\"block_bytes\": %zu, \"run_bytes\": %zu, \"runs\": %llu, \"dir\": \"%s\", \"path\": \"%s\", "
				      "\"ms\": %.4f, \"gbps\": %.2f, \"one_memcpy_gbps\": %.2f, \"link_gbps\": %.2f}",
				      m.name, lay.name, nblocks, block_bytes, run, (unsigned long long)runs,
				      h2d ? "scatter" : "gather", p.name, ms, rate, big, link);
			g_bench.row(row);
		}
	}
	beluga_kv_gpu_set_batch_min_bytes(gpu, auto_th);
}

void bench_crossover(beluga_kv_gpu *gpu, cudaStream_t s, HostKind kind)
{
	HostBuf host(size_t(32) << 20, kind);
	beluga_kv_gpu_calib_point pts[BELUGA_KV_GPU_CALIB_POINTS];
	size_t th = 0;
	if (beluga_kv_gpu_calibrate(gpu, s, host.dev(), host.size(), pts, &th))
		throw std::runtime_error(std::string("calibrate: ") + beluga_kv_gpu_last_error());
	std::printf("\nkernel vs cudaMemcpyBatchAsync, 32 MiB per timing, pool in %s (GB/s)\n", host_kind_name(kind).c_str());
	std::printf("%10s %12s %12s %12s %12s\n", "piece", "kernel-h2d", "batch-h2d", "kernel-d2h", "batch-d2h");
	for (const auto &p : pts) {
		std::printf("%10zu %12.1f %12.1f %12.1f %12.1f\n", p.piece_bytes, p.kernel_h2d_gbps, p.batch_h2d_gbps,
			    p.kernel_d2h_gbps, p.batch_d2h_gbps);
		char row[320];
		std::snprintf(row, sizeof(row),
			      "{\"kind\": \"crossover\", \"host\": \"%s\", \"piece_bytes\": %zu, \"kernel_h2d_gbps\": %.2f, "
			      "\"batch_h2d_gbps\": %.2f, \"kernel_d2h_gbps\": %.2f, \"batch_d2h_gbps\": %.2f}",
			      host_kind_name(kind).c_str(), p.piece_bytes, p.kernel_h2d_gbps, p.batch_h2d_gbps, p.kernel_d2h_gbps,
			      p.batch_d2h_gbps);
		g_bench.row(row);
	}
	std::printf("chosen threshold: %s\n", th == SIZE_MAX ? "never (kernel always)" : std::to_string(th).c_str());
	char row[160];
	std::snprintf(row, sizeof(row), "{\"kind\": \"threshold\", \"host\": \"%s\", \"batch_min_bytes\": %lld}",
		      host_kind_name(kind).c_str(), th == SIZE_MAX ? -1LL : (long long)th);
	g_bench.row(row);
}

// Layer-wise scatter of 8 Llama-3-8B blocks: total time against the one-shot copy.
void bench_layerwise(beluga_kv_gpu *gpu, cudaStream_t s)
{
	const beluga_kv_shape sh = {32, 16, 8, 128, BELUGA_KV_BF16, 0};
	const size_t n = 8, nb = 32;
	const size_t layer_tensor = nb * beluga_kv_layer_bytes(&sh);
	DeviceBuf cache(layer_tensor * sh.num_layers);
	std::vector<void *> t(sh.num_layers);
	for (uint32_t l = 0; l < sh.num_layers; l++)
		t[l] = cache.get() + l * layer_tensor;
	beluga_kv_paged paged;
	if (beluga_kv_paged_vllm_per_layer(&paged, &sh, nb, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD, t.data()))
		throw std::runtime_error("layout");
	HostBuf pool(n * beluga_kv_block_bytes(&sh), HostKind::Registered);
	std::vector<beluga_kv_block_ref> refs(n);
	for (size_t i = 0; i < n; i++)
		refs[i] = {3 * i + 1, pool.dev() + i * beluga_kv_block_bytes(&sh)};
	const beluga_kv_xfer x{&paged, refs.data(), n, 0, sh.num_layers, BELUGA_KV_SCATTER, 0};
	beluga_kv_layer_events *ev = nullptr;
	if (beluga_kv_layer_events_create(sh.num_layers, &ev))
		throw std::runtime_error("events");
	const double one = g_bench.time_ms(s, [&] { beluga_kv_gpu_copy(gpu, &x, s); });
	const double lw = g_bench.time_ms(s, [&] { beluga_kv_gpu_copy_layerwise(gpu, &x, s, ev); });
	beluga_kv_layer_events_destroy(ev);
	std::printf("\nlayer-wise scatter, Llama-3-8B, 8 blocks (16 MiB), auto path: one call %.3f ms, "
		    "32 per-layer steps with events %.3f ms\n", one, lw);
	char row[200];
	std::snprintf(row, sizeof(row), "{\"kind\": \"layerwise\", \"model\": \"Llama-3-8B\", \"blocks\": 8, "
		      "\"one_call_ms\": %.4f, \"layerwise_ms\": %.4f}", one, lw);
	g_bench.row(row);
}

void write_json(const char *path, const std::string &device)
{
	FILE *f = std::fopen(path, "w");
	if (!f) {
		std::perror(path);
		return;
	}
	std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"results\": [\n%s\n  ]\n}\n", device.c_str(), g_bench.json.c_str());
	std::fclose(f);
	std::printf("\nJSON written to %s\n", path);
}

} // namespace

int main(int argc, char **argv)
{
	std::setvbuf(stdout, nullptr, _IOLBF, 0); // output survives a timeout kill
	std::string json;
	if (const char *out = std::getenv("OUT"); out && *out)
		json = std::string(out) + "/xfer-bench.json";
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
		int drv = 0, rt = 0;
		cudaDriverGetVersion(&drv);
		cudaRuntimeGetVersion(&rt);
		char rest[160];
		std::snprintf(rest, sizeof(rest), ", sm_%d%d, %d SMs, driver CUDA %d.%d, runtime %d.%d", prop.major,
			      prop.minor, prop.multiProcessorCount, drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
		const std::string device = std::string(prop.name) + rest;
		std::printf("device: %s\n", device.c_str());
		Stream s;
		Gpu gpu;
		std::printf("cudaMemcpyBatchAsync: %s; default threshold %zu B\n",
			    beluga_kv_gpu_has_batch_copy(gpu.get()) ? "available" : "NOT available",
			    beluga_kv_gpu_batch_min_bytes(gpu.get()));
		std::printf("pool memory: %s%s%s\n", host_kind_name(HostKind::Registered).c_str(),
			    register_support().why.empty() ? "" : "; refused: ", register_support().why.c_str());
		g_bench.row("{\"kind\": \"pool_memory\", \"registered_as\": \"" + host_kind_name(HostKind::Registered) + "\"}");
		const Bandwidth bw = measure_bandwidth(HostKind::Registered, s.get());
		measure_bandwidth(HostKind::Pinned, s.get());
		// Registered memory last: its threshold is the one the "auto" rows use.
		bench_crossover(gpu.get(), s.get(), HostKind::Pinned);
		bench_crossover(gpu.get(), s.get(), HostKind::Registered);
		std::printf("\n%-12s %-16s %8s %-20s %-7s %-6s %12s %12s\n", "model", "layout", "blocks", "runs", "dir",
			    "path", "time", "throughput");
		std::mt19937_64 rng(42);
		const Model models[] = {{"Llama-3-8B", {32, 16, 8, 128, BELUGA_KV_BF16, 0}, {1, 8, 64}},
					{"Qwen2.5-32B", {64, 16, 8, 128, BELUGA_KV_BF16, 0}, {1, 8, 32}}};
		for (const Model &m : models)
			for (size_t n : m.batches)
				for (const Layout &lay : kLayouts)
					bench_case(gpu.get(), s.get(), m, lay, n, bw, rng);
		bench_layerwise(gpu.get(), s.get());
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
