// SPDX-License-Identifier: Apache-2.0
// CPU data-path benchmark (not a test): gather and scatter of 16-token
// Llama-3-8B blocks (32 layers, 8 KV heads of 128, bf16; 2 MiB per block) in
// vLLM's layouts through the CPU path, against one memcpy of the same bytes
// and against the naive reference.  Run: bench_xfer_cpu [--benchmark_filter=...]
#include <beluga/xfer.h>

#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

namespace {

constexpr beluga_kv_shape kLlama8B = {32, 16, 8, 128, BELUGA_KV_BF16, 0};
constexpr size_t kBlocks = 8;
constexpr uint64_t kCacheBlocks = 3 * kBlocks;

enum LayoutId { FaNhd, FaHnd, FiNhd, FiHnd, CrossNhd };
const char *const kLayoutNames[] = {"flash_attn/NHD", "flash_attn/HND", "flashinfer/NHD", "flashinfer/HND",
				    "cross-layer/NHD"};

// A paged cache, pool blocks and refs for kBlocks scattered blocks.
struct Setup {
	std::vector<unsigned char> cache, pool;
	beluga_kv_paged paged{};
	std::vector<beluga_kv_block_ref> refs;

	explicit Setup(LayoutId id)
		: cache(kCacheBlocks * beluga_kv_block_bytes(&kLlama8B)), pool(kBlocks * beluga_kv_block_bytes(&kLlama8B))
	{
		std::memset(cache.data(), 1, cache.size());
		std::memset(pool.data(), 2, pool.size());
		const uint32_t backend = (id == FiNhd || id == FiHnd) ? BELUGA_KV_VLLM_FLASHINFER : BELUGA_KV_VLLM_FLASH_ATTN;
		const uint32_t order = (id == FaHnd || id == FiHnd) ? BELUGA_KV_HND : BELUGA_KV_NHD;
		int rc;
		if (id == CrossNhd) {
			rc = beluga_kv_paged_vllm_cross_layer(&paged, &kLlama8B, kCacheBlocks, backend, order, cache.data());
		} else {
			std::vector<void *> t(kLlama8B.num_layers);
			const size_t per_layer = kCacheBlocks * beluga_kv_layer_bytes(&kLlama8B);
			for (uint32_t l = 0; l < kLlama8B.num_layers; l++)
				t[l] = cache.data() + l * per_layer;
			rc = beluga_kv_paged_vllm_per_layer(&paged, &kLlama8B, kCacheBlocks, backend, order, t.data());
		}
		if (rc)
			std::abort();
		std::vector<uint64_t> ids(kCacheBlocks);
		std::iota(ids.begin(), ids.end(), 0);
		std::shuffle(ids.begin(), ids.end(), std::mt19937_64(1));
		for (size_t i = 0; i < kBlocks; i++)
			refs.push_back({ids[i], pool.data() + i * beluga_kv_block_bytes(&kLlama8B)});
	}

	beluga_kv_xfer xfer(uint32_t dir) const
	{
		return {&paged, refs.data(), refs.size(), 0, kLlama8B.num_layers, dir, 0};
	}
};

void BM_Memcpy(benchmark::State &st)
{
	const size_t n = kBlocks * beluga_kv_block_bytes(&kLlama8B);
	std::vector<unsigned char> a(n, 1), b(n, 2);
	for (auto _ : st) {
		std::memcpy(b.data(), a.data(), n);
		benchmark::ClobberMemory();
	}
	st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(n));
}
BENCHMARK(BM_Memcpy)->UseRealTime();

// Args: layout, direction (0 gather, 1 scatter), threads, nt mode.
void BM_Cpu(benchmark::State &st)
{
	const Setup s(LayoutId(st.range(0)));
	const uint32_t dir = st.range(1) ? BELUGA_KV_SCATTER : BELUGA_KV_GATHER;
	const beluga_kv_cpu_opts o{uint32_t(st.range(2)), uint32_t(st.range(3)), 0, 0};
	beluga_kv_cpu *cpu = nullptr;
	if (beluga_kv_cpu_create(&o, &cpu))
		std::abort();
	const beluga_kv_xfer x = s.xfer(dir);
	for (auto _ : st) {
		if (beluga_kv_cpu_copy(cpu, &x))
			std::abort();
		benchmark::ClobberMemory();
	}
	beluga_kv_cpu_destroy(cpu);
	st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(kBlocks * beluga_kv_block_bytes(&kLlama8B)));
	st.SetLabel(std::string(kLayoutNames[st.range(0)]) + (dir == BELUGA_KV_GATHER ? " gather" : " scatter") +
		    (st.range(3) == BELUGA_KV_NT_NEVER ? " cached-stores" : " nt-auto"));
}
BENCHMARK(BM_Cpu)
	->ArgsProduct({{FaNhd, FaHnd, FiNhd, FiHnd, CrossNhd}, {0, 1}, {1, 2}, {BELUGA_KV_NT_AUTO}})
	->ArgsProduct({{FaNhd, CrossNhd}, {0}, {1, 2}, {BELUGA_KV_NT_NEVER}})
	->UseRealTime();

void BM_Reference(benchmark::State &st)
{
	const Setup s(LayoutId(st.range(0)));
	const beluga_kv_xfer x = s.xfer(BELUGA_KV_GATHER);
	for (auto _ : st)
		if (beluga_kv_ref_copy(&x))
			std::abort();
	st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(kBlocks * beluga_kv_block_bytes(&kLlama8B)));
	st.SetLabel(std::string(kLayoutNames[st.range(0)]) + " gather (naive reference)");
}
BENCHMARK(BM_Reference)->Arg(FaNhd)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
