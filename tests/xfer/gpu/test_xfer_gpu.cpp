// SPDX-License-Identifier: Apache-2.0
// The GPU data path against the CPU reference, byte for byte: paged caches in
// device memory, pool blocks in registered or pinned host memory, every
// layout kind, kernel and copy-engine paths, layer-wise events, and proof
// that nothing waits for the stream.  Without a usable GPU every GPU test is
// skipped with the reason and the program exits 77.
#include <beluga/xfer.h>
#include <beluga/xfer_cuda.h>

#include "../layout_gen.hpp"
#include "checksum.hpp" // the KV store's own checksum (kvcache/src, libbeluga/cpu), compiled in
#include "gpu_util.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace {

using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;
using beluga::xfer::test::Limits;
using namespace beluga::xfer::gpu_test;

bool g_have_gpu = false;
std::string g_why;

#define REQUIRE_GPU()                                                                                          \
	do {                                                                                                   \
		if (!g_have_gpu)                                                                               \
			GTEST_SKIP() << "no GPU found: " << g_why;                                             \
	} while (0)

constexpr size_t kKernelOnly = SIZE_MAX;
constexpr size_t kBatchAlways = 1;

// Buffers of one case: the reference result on the host, and the same start
// state on the GPU side (paged cache in device memory, pool in host memory).
struct Rig {
	const Case &c;
	std::vector<unsigned char> ref_paged, ref_pool;
	DeviceBuf dev_paged;
	HostBuf pool;
	beluga_kv_paged paged{};
	std::vector<beluga_kv_block_ref> refs;

	Rig(const Case &cs, HostKind kind, std::mt19937_64 &rng)
		: c(cs), ref_paged(cs.paged_bytes), ref_pool(cs.pool_bytes), dev_paged(cs.paged_bytes),
		  pool(cs.pool_bytes, kind)
	{
		beluga::xfer::test::fill_random(ref_paged, rng);
		beluga::xfer::test::fill_random(ref_pool, rng);
		check(cudaMemcpy(dev_paged.get(), ref_paged.data(), c.paged_bytes, cudaMemcpyHostToDevice), "upload");
		std::memcpy(pool.host(), ref_pool.data(), c.pool_bytes);
		paged = c.paged_at(dev_paged.get());
		refs = c.refs_at(pool.dev());
	}

	beluga_kv_xfer xfer(uint32_t dir) const
	{
		return {&paged, refs.data(), refs.size(), c.layer_begin, c.layer_end, dir, 0};
	}

	// Runs the reference on the host copies.
	void reference(uint32_t dir)
	{
		const beluga_kv_paged hp = c.paged_at(ref_paged.data());
		const auto hr = c.refs_at(ref_pool.data());
		const beluga_kv_xfer x{&hp, hr.data(), hr.size(), c.layer_begin, c.layer_end, dir, 0};
		ASSERT_EQ(beluga_kv_ref_copy(&x), 0);
	}

	std::vector<unsigned char> download() const
	{
		std::vector<unsigned char> out(c.paged_bytes);
		check(cudaMemcpy(out.data(), dev_paged.get(), c.paged_bytes, cudaMemcpyDeviceToHost), "download");
		return out;
	}

	void expect_equal_to_reference() const
	{
		ASSERT_TRUE(download() == ref_paged) << "paged cache differs from the reference";
		ASSERT_EQ(std::memcmp(pool.host(), ref_pool.data(), c.pool_bytes), 0) << "pool differs from the reference";
	}
};

void check_case(beluga_kv_gpu *gpu, const Case &c, uint32_t dir, size_t threshold, HostKind kind, cudaStream_t s,
		std::mt19937_64 &rng)
{
	SCOPED_TRACE(c.describe() + (dir == BELUGA_KV_GATHER ? " gather " : " scatter ") + host_kind_name(kind) +
		     (threshold == kKernelOnly ? " kernel" : threshold == kBatchAlways ? " batch" : " auto"));
	Rig rig(c, kind, rng);
	rig.reference(dir);
	beluga_kv_gpu_set_batch_min_bytes(gpu, threshold);
	const beluga_kv_xfer x = rig.xfer(dir);
	ASSERT_EQ(beluga_kv_gpu_copy(gpu, &x, s), 0) << beluga_kv_gpu_last_error();
	check(cudaStreamSynchronize(s), "sync");
	rig.expect_equal_to_reference();
}

// Beluga regions are MAP_SHARED mappings that the GPU reaches through
// cudaHostRegister; say plainly if this machine refuses that.
TEST(GpuHost, RegistersASharedMapping)
{
	REQUIRE_GPU();
	EXPECT_EQ(register_support().flags, MAP_SHARED)
		<< "cudaHostRegister refused a MAP_SHARED mapping here (" << register_support().why
		<< "); the tests used " << host_kind_name(HostKind::Registered) << " instead";
}

TEST(GpuNoDevice, ReportsWhyAndENODEV)
{
	if (g_have_gpu)
		GTEST_SKIP() << "a GPU is present; this test covers machines without one";
	char why[256] = "unset";
	EXPECT_EQ(beluga_kv_gpu_available(why, sizeof(why)), 0);
	EXPECT_NE(std::string(why), "unset");
	EXPECT_FALSE(std::string(why).empty());
	beluga_kv_gpu *g = reinterpret_cast<beluga_kv_gpu *>(1);
	EXPECT_EQ(beluga_kv_gpu_create(nullptr, &g), -ENODEV);
	EXPECT_EQ(g, nullptr);
	EXPECT_STRNE(beluga_kv_gpu_last_error(), "");
}

TEST(GpuApi, RejectsBadArgumentsWithoutTouchingTheGpu)
{
	beluga_kv_xfer x{};
	EXPECT_EQ(beluga_kv_gpu_copy(nullptr, &x, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_copy_layerwise(nullptr, &x, nullptr, nullptr), -EINVAL);
	beluga_kv_layer_events *ev = nullptr;
	EXPECT_EQ(beluga_kv_layer_events_create(0, &ev), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_create(BELUGA_KV_MAX_LAYERS + 1, &ev), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_create(4, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_wait(nullptr, 0, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_sync(nullptr, 0), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_query(nullptr, 0), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_get(nullptr, 0), nullptr);
	EXPECT_EQ(beluga_kv_gpu_calibrate(nullptr, nullptr, nullptr, 0, nullptr, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_create(nullptr, nullptr), -EINVAL);
	beluga_kv_gpu_opts o{};
	o.device = -1;
	beluga_kv_gpu *g = nullptr;
	EXPECT_EQ(beluga_kv_gpu_create(&o, &g), -EINVAL);
	uint64_t sum = 0;
	EXPECT_EQ(beluga_kv_gpu_gather_sum(nullptr, &x, BELUGA_KV_SUM_AUTO, &sum, nullptr), -EINVAL);
	const void *buf = &sum;
	const size_t len = sizeof(sum);
	EXPECT_EQ(beluga_kv_gpu_checksum(nullptr, &buf, &len, 1, &sum, nullptr), -EINVAL);
}

class GpuVsRef : public ::testing::TestWithParam<int> {};

TEST_P(GpuVsRef, KernelMatchesReference)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 31 * GetParam());
	Gpu gpu;
	Stream s;
	for (int i = 0; i < 24 && !HasFatalFailure(); i++) {
		const Case c = gen.make(Kind(GetParam()));
		const HostKind hk = i % 2 ? HostKind::Registered : HostKind::Pinned;
		check_case(gpu.get(), c, BELUGA_KV_GATHER, kKernelOnly, hk, s.get(), gen.rng());
		check_case(gpu.get(), c, BELUGA_KV_SCATTER, kKernelOnly, hk, s.get(), gen.rng());
	}
}

TEST_P(GpuVsRef, CopyEnginesMatchReference)
{
	REQUIRE_GPU();
	Gpu gpu;
	if (!beluga_kv_gpu_has_batch_copy(gpu.get()))
		GTEST_SKIP() << "cudaMemcpyBatchAsync is not available with this driver";
	Generator gen(beluga::xfer::test::test_seed() + 37 * GetParam());
	Stream s;
	for (int i = 0; i < 12 && !HasFatalFailure(); i++) {
		const Case c = gen.make(Kind(GetParam()));
		const HostKind hk = i % 2 ? HostKind::Pinned : HostKind::Registered;
		check_case(gpu.get(), c, BELUGA_KV_GATHER, kBatchAlways, hk, s.get(), gen.rng());
		check_case(gpu.get(), c, BELUGA_KV_SCATTER, kBatchAlways, hk, s.get(), gen.rng());
	}
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, GpuVsRef, ::testing::Range(0, int(Kind::Count)),
			 [](const auto &info) { return beluga::xfer::test::kind_param_name(info.param); });

// Real model shapes in every vLLM layout, each path and the automatic choice
// at the built-in default threshold (1 MiB: the kernel, except for
// cross-layer NHD transfers of 16 layers or more, whose layers merge into one
// run of at least 1 MiB).
TEST(GpuModels, Llama8BAndQwen32BAllLayoutsAllPaths)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 41);
	Gpu gpu;
	Stream s;
	const beluga_kv_shape shapes[] = {{32, 16, 8, 128, BELUGA_KV_BF16, 0}, {64, 16, 8, 128, BELUGA_KV_BF16, 0}};
	for (const beluga_kv_shape &shape : shapes)
		for (int k = 0; k < int(Kind::Count) && !HasFatalFailure(); k++) {
			const Case c = gen.make_shape(Kind(k), shape, 10, 5);
			for (size_t th : {kKernelOnly, kBatchAlways, size_t(BELUGA_KV_GPU_BATCH_MIN_DEFAULT)})
				for (uint32_t dir : {BELUGA_KV_GATHER, BELUGA_KV_SCATTER})
					check_case(gpu.get(), c, dir, th, HostKind::Registered, s.get(), gen.rng());
		}
}

// The legacy default stream cannot take cudaMemcpyBatchAsync: the kernel is used.
TEST(GpuStreams, LegacyDefaultStreamFallsBackToKernel)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 43);
	Gpu gpu;
	for (int i = 0; i < 6 && !HasFatalFailure(); i++) {
		const Case c = gen.make(Kind::CrossNHD);
		check_case(gpu.get(), c, i % 2 ? BELUGA_KV_GATHER : BELUGA_KV_SCATTER, kBatchAlways, HostKind::Pinned,
			   nullptr, gen.rng());
	}
}

// The call returns while its stream is held, the caller may reuse its refs
// array at once, and the work lands once the stream moves.
void no_wait_case(size_t threshold)
{
	Generator gen(beluga::xfer::test::test_seed() + 47);
	Gpu gpu;
	if (threshold == kBatchAlways && !beluga_kv_gpu_has_batch_copy(gpu.get()))
		GTEST_SKIP() << "cudaMemcpyBatchAsync is not available with this driver";
	Stream s;
	const Case c = gen.make_shape(Kind::FlashAttnNHD, {8, 16, 8, 128, BELUGA_KV_FP16, 0}, 12, 6);
	Rig rig(c, HostKind::Registered, gen.rng());
	rig.reference(BELUGA_KV_GATHER);
	const std::vector<unsigned char> before(rig.pool.host(), rig.pool.host() + c.pool_bytes);
	beluga_kv_gpu_set_batch_min_bytes(gpu.get(), threshold);
	Gate gate;
	gate.shut(s.get());
	const beluga_kv_xfer x = rig.xfer(BELUGA_KV_GATHER);
	ASSERT_EQ(beluga_kv_gpu_copy(gpu.get(), &x, s.get()), 0) << beluga_kv_gpu_last_error();
	EXPECT_EQ(std::memcmp(rig.pool.host(), before.data(), c.pool_bytes), 0) << "pool written before the stream ran";
	EXPECT_EQ(cudaStreamQuery(s.get()), cudaErrorNotReady);
	for (auto &r : rig.refs) // the copier staged its own copy of the refs
		r = {0, rig.pool.dev()};
	gate.open();
	s.sync();
	EXPECT_FALSE(gate.timed_out());
	rig.expect_equal_to_reference();
}

TEST(GpuAsync, KernelPathDoesNotWaitForTheStream)
{
	REQUIRE_GPU();
	no_wait_case(kKernelOnly);
}

TEST(GpuAsync, CopyEnginePathDoesNotWaitForTheStream)
{
	REQUIRE_GPU();
	no_wait_case(kBatchAlways);
}

// More transfers in flight than staging slots, and a batch larger than the
// slots were sized for: the copier waits for or grows its own slots only.
TEST(GpuAsync, SlotReuseAndGrowth)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 53);
	beluga_kv_gpu_opts o{};
	o.staging_slots = 2;
	o.staging_refs = 2;
	o.batch_min_bytes = SIZE_MAX;
	Gpu gpu(&o);
	Stream s;
	std::vector<std::unique_ptr<Rig>> rigs;
	std::vector<Case> cases;
	for (int i = 0; i < 10; i++)
		cases.push_back(gen.make_random(Limits{4, 16, 4, 64, 16, 7}));
	for (const Case &c : cases) {
		rigs.push_back(std::make_unique<Rig>(c, HostKind::Pinned, gen.rng()));
		rigs.back()->reference(BELUGA_KV_SCATTER);
		const beluga_kv_xfer x = rigs.back()->xfer(BELUGA_KV_SCATTER);
		ASSERT_EQ(beluga_kv_gpu_copy(gpu.get(), &x, s.get()), 0) << beluga_kv_gpu_last_error();
	}
	s.sync();
	for (auto &r : rigs) {
		SCOPED_TRACE(r->c.describe());
		r->expect_equal_to_reference();
	}
}

// Layer-wise loading: one event per layer; layer i is complete once its event
// fires (checked while later layers may still be in flight), a compute stream
// can wait on it, and nothing fires while the copy stream is held.
void layerwise_case(size_t threshold)
{
	Generator gen(beluga::xfer::test::test_seed() + 59);
	Gpu gpu;
	Stream s, compute, probe;
	const beluga_kv_shape shape = {12, 16, 4, 64, BELUGA_KV_BF16, 0};
	for (Kind kind : {Kind::FlashAttnNHD, Kind::CrossNHD, Kind::FlashInferHND}) {
		SCOPED_TRACE(beluga::xfer::test::kind_name(kind));
		Case c = gen.make_shape(kind, shape, 8, 5);
		c.layer_begin = 2, c.layer_end = 11;
		Rig rig(c, HostKind::Registered, gen.rng());
		rig.reference(BELUGA_KV_SCATTER);
		beluga_kv_gpu_set_batch_min_bytes(gpu.get(), threshold);
		beluga_kv_layer_events *ev = nullptr;
		ASSERT_EQ(beluga_kv_layer_events_create(shape.num_layers, &ev), 0);
		Gate gate;
		gate.shut(s.get());
		const beluga_kv_xfer x = rig.xfer(BELUGA_KV_SCATTER);
		ASSERT_EQ(beluga_kv_gpu_copy_layerwise(gpu.get(), &x, s.get(), ev), 0) << beluga_kv_gpu_last_error();
		EXPECT_EQ(beluga_kv_layer_events_query(ev, c.layer_begin), 0);
		ASSERT_NE(beluga_kv_layer_events_get(ev, c.layer_begin), nullptr);
		for (uint32_t l = c.layer_begin; l < c.layer_end; l++)
			ASSERT_EQ(beluga_kv_layer_events_wait(ev, l, compute.get()), 0);
		gate.open();
		const beluga_kv_paged host_ref = c.paged_at(rig.ref_paged.data());
		std::vector<unsigned char> now(c.paged_bytes);
		for (uint32_t l = c.layer_begin; l < c.layer_end; l++) {
			ASSERT_EQ(beluga_kv_layer_events_sync(ev, l), 0);
			EXPECT_EQ(beluga_kv_layer_events_query(ev, l), 1);
			check(cudaMemcpyAsync(now.data(), rig.dev_paged.get(), c.paged_bytes, cudaMemcpyDeviceToHost,
					      probe.get()),
			      "probe");
			probe.sync();
			// Every row of layer l of every ref is in place.
			for (const auto &r : rig.refs)
				for (uint32_t k = 0; k < 2; k++)
					for (uint32_t t = 0; t < shape.block_size; t++)
						for (uint32_t h = 0; h < shape.num_kv_heads; h++) {
							const int64_t e = beluga_kv_paged_elem_offset(&host_ref, r.paged_block, k, t, h);
							const size_t off = c.layer_off[l] + size_t(e) * c.esize();
							ASSERT_EQ(std::memcmp(&now[off], &rig.ref_paged[off], beluga_kv_row_bytes(&shape)), 0)
								<< "layer " << l << " incomplete after its event";
						}
		}
		compute.sync();
		s.sync();
		EXPECT_FALSE(gate.timed_out());
		rig.expect_equal_to_reference();
		beluga_kv_layer_events_destroy(ev);
	}
}

TEST(GpuLayerwise, KernelPerLayerEvents)
{
	REQUIRE_GPU();
	layerwise_case(kKernelOnly);
}

TEST(GpuLayerwise, CopyEnginePerLayerEvents)
{
	REQUIRE_GPU();
	layerwise_case(kBatchAlways);
}

TEST(GpuLayerwise, EventsMustCoverTheLayers)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 61);
	Gpu gpu;
	Stream s;
	const Case c = gen.make_shape(Kind::CrossNHD, {6, 16, 2, 64, BELUGA_KV_FP16, 0}, 4, 2);
	Rig rig(c, HostKind::Pinned, gen.rng());
	beluga_kv_layer_events *ev = nullptr;
	ASSERT_EQ(beluga_kv_layer_events_create(c.layer_end - 1, &ev), 0);
	const beluga_kv_xfer x = rig.xfer(BELUGA_KV_SCATTER);
	EXPECT_EQ(beluga_kv_gpu_copy_layerwise(gpu.get(), &x, s.get(), ev), -EINVAL);
	EXPECT_EQ(beluga_kv_layer_events_sync(ev, c.layer_end - 1), -EINVAL);
	beluga_kv_layer_events_destroy(ev);
}

TEST(GpuApi, MalformedTransferIsRefused)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 67);
	Gpu gpu;
	Stream s;
	const Case c = gen.make(Kind::FlashInferNHD);
	Rig rig(c, HostKind::Pinned, gen.rng());
	beluga_kv_xfer x = rig.xfer(BELUGA_KV_GATHER);
	x.layer_end = c.shape.num_layers + 1;
	EXPECT_EQ(beluga_kv_gpu_copy(gpu.get(), &x, s.get()), -EINVAL);
	EXPECT_STRNE(beluga_kv_gpu_last_error(), "");
	x = rig.xfer(BELUGA_KV_GATHER);
	rig.refs[0].paged_block = c.num_blocks;
	EXPECT_EQ(beluga_kv_gpu_copy(gpu.get(), &x, s.get()), -EINVAL);
}

TEST(GpuCalibrate, ChoosesAThresholdFromMeasurements)
{
	REQUIRE_GPU();
	Gpu gpu;
	Stream s;
	beluga_kv_gpu_calib_point pts[BELUGA_KV_GPU_CALIB_POINTS];
	size_t th = 0;
	ASSERT_EQ(beluga_kv_gpu_calibrate(gpu.get(), s.get(), nullptr, 0, pts, &th), 0) << beluga_kv_gpu_last_error();
	bool in_table = th == SIZE_MAX;
	for (const auto &p : pts) {
		EXPECT_GT(p.kernel_h2d_gbps, 0) << p.piece_bytes;
		EXPECT_GT(p.kernel_d2h_gbps, 0) << p.piece_bytes;
		in_table |= p.piece_bytes == th;
		std::printf("  calib %8zu B: kernel h2d %6.1f d2h %6.1f | batch h2d %6.1f d2h %6.1f GB/s\n", p.piece_bytes,
			    p.kernel_h2d_gbps, p.kernel_d2h_gbps, p.batch_h2d_gbps, p.batch_d2h_gbps);
	}
	EXPECT_TRUE(in_table) << th;
	EXPECT_EQ(beluga_kv_gpu_batch_min_bytes(gpu.get()), th);
	HostBuf host(32 << 20, HostKind::Registered);
	EXPECT_EQ(beluga_kv_gpu_calibrate(gpu.get(), s.get(), host.host(), 16 << 20, nullptr, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_calibrate(gpu.get(), s.get(), host.dev(), host.size(), nullptr, &th), 0)
		<< beluga_kv_gpu_last_error();
}

// ---- checksums of GPU-written blocks (beluga_kv_gpu_checksum, _gather_sum) ----

// The store's checksum of `len` bytes: its own code (bkv::f64, as
// beluga_kvc_checksum), not a copy.
uint64_t store_sum(const void *p, size_t len)
{
	return bkv::f64(p, len);
}

// Every length up to 320 bytes and a spread of larger ones, at every
// alignment, in device memory and in registered host memory, in one call per
// memory kind, against the store's checksum of the same bytes.
TEST(GpuChecksum, MatchesTheStoreAtEveryLengthAndAlignment)
{
	REQUIRE_GPU();
	std::mt19937_64 rng(beluga::xfer::test::test_seed() + 53);
	Gpu gpu;
	Stream s;
	constexpr size_t kBuf = 300 << 10;
	std::vector<unsigned char> host(kBuf);
	beluga::xfer::test::fill_random(host, rng);
	DeviceBuf dev(kBuf);
	check(cudaMemcpy(dev.get(), host.data(), kBuf, cudaMemcpyHostToDevice), "upload");
	HostBuf reg(kBuf, HostKind::Registered);
	std::memcpy(reg.host(), host.data(), kBuf);
	std::vector<size_t> lens;
	for (size_t l = 0; l <= 320; l++)
		lens.push_back(l);
	for (size_t l : {1023, 1024, 1025, 4097, 65535, 65536, 65537, 131096, 2 << 20 >> 3, 250000})
		lens.push_back(l);
	for (int i = 0; i < 40; i++)
		lens.push_back(rng() % 250000);
	for (int where = 0; where < 2; where++) {
		SCOPED_TRACE(where ? host_kind_name(HostKind::Registered) : "device memory");
		const char *base = where ? reg.dev() : dev.get();
		std::vector<const void *> bufs;
		std::vector<size_t> ls;
		std::vector<size_t> offs;
		for (size_t len : lens)
			for (size_t mis = 0; mis < 16; mis++) {
				bufs.push_back(base + 64 + mis);
				ls.push_back(len);
				offs.push_back(64 + mis);
			}
		HostBuf sums(bufs.size() * sizeof(uint64_t), HostKind::Pinned);
		auto *got = reinterpret_cast<uint64_t *>(sums.host());
		ASSERT_EQ(beluga_kv_gpu_checksum(gpu.get(), bufs.data(), ls.data(), bufs.size(), got, s.get()), 0)
			<< beluga_kv_gpu_last_error();
		s.sync();
		for (size_t i = 0; i < bufs.size(); i++)
			ASSERT_EQ(got[i], store_sum(host.data() + offs[i], ls[i]))
				<< "len " << ls[i] << " misalignment " << offs[i] - 64;
	}
}

const char *sum_method_name(uint32_t m)
{
	switch (m) {
	case BELUGA_KV_SUM_FUSED:
		return "fused";
	case BELUGA_KV_SUM_SOURCE:
		return "source";
	case BELUGA_KV_SUM_READBACK:
		return "readback";
	default:
		return "auto";
	}
}

// One whole-block gather with its checksums: the pool as the reference has
// it, byte for byte, and each block's sum the store's sum of those bytes.
void check_gather_sum(beluga_kv_gpu *gpu, Case c, uint32_t method, size_t threshold, HostKind kind, cudaStream_t s,
		      std::mt19937_64 &rng)
{
	c.layer_begin = 0;
	c.layer_end = c.shape.num_layers;
	SCOPED_TRACE(c.describe() + " " + sum_method_name(method) + " " + host_kind_name(kind) +
		     (threshold == kKernelOnly ? " kernel" : threshold == kBatchAlways ? " batch" : " default"));
	Rig rig(c, kind, rng);
	rig.reference(BELUGA_KV_GATHER);
	beluga_kv_gpu_set_batch_min_bytes(gpu, threshold);
	HostBuf sums(c.blocks.size() * sizeof(uint64_t), HostKind::Pinned);
	auto *got = reinterpret_cast<uint64_t *>(sums.host());
	const beluga_kv_xfer x = rig.xfer(BELUGA_KV_GATHER);
	ASSERT_EQ(beluga_kv_gpu_gather_sum(gpu, &x, method, got, s), 0) << beluga_kv_gpu_last_error();
	check(cudaStreamSynchronize(s), "sync");
	rig.expect_equal_to_reference();
	const size_t block = beluga_kv_block_bytes(&c.shape);
	for (size_t r = 0; r < c.blocks.size(); r++)
		ASSERT_EQ(got[r], store_sum(rig.ref_pool.data() + c.pool_off[r], block)) << "ref " << r;
}

TEST_P(GpuVsRef, GatherSumMatchesReferenceAndStoreChecksum)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 59 * GetParam());
	Gpu gpu;
	Stream s;
	const bool engines = beluga_kv_gpu_has_batch_copy(gpu.get());
	for (int i = 0; i < 8 && !HasFatalFailure(); i++) {
		const Case c = gen.make(Kind(GetParam()));
		const HostKind hk = i % 2 ? HostKind::Registered : HostKind::Pinned;
		for (uint32_t m : {BELUGA_KV_SUM_AUTO, BELUGA_KV_SUM_FUSED, BELUGA_KV_SUM_SOURCE, BELUGA_KV_SUM_READBACK})
			check_gather_sum(gpu.get(), c, m, kKernelOnly, hk, s.get(), gen.rng());
		if (engines)
			for (uint32_t m : {BELUGA_KV_SUM_AUTO, BELUGA_KV_SUM_SOURCE})
				check_gather_sum(gpu.get(), c, m, kBatchAlways, hk, s.get(), gen.rng());
	}
}

// Model shapes, every layout, at the default threshold (AUTO then fuses for
// every layout but cross-layer NHD, whose whole-block runs go to the copy
// engines and are summed from GPU memory).
TEST(GpuChecksum, GatherSumLlama8BAllLayouts)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 61);
	Gpu gpu;
	Stream s;
	const beluga_kv_shape shape{32, 16, 8, 128, BELUGA_KV_BF16, 0};
	for (int k = 0; k < int(Kind::Count) && !HasFatalFailure(); k++) {
		const Case c = gen.make_shape(Kind(k), shape, 10, 5);
		for (uint32_t m : {BELUGA_KV_SUM_AUTO, BELUGA_KV_SUM_FUSED})
			check_gather_sum(gpu.get(), c, m, BELUGA_KV_GPU_BATCH_MIN_DEFAULT, HostKind::Registered, s.get(),
					 gen.rng());
	}
}

TEST(GpuChecksum, RejectsWhatItCannotSum)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 67);
	Gpu gpu;
	Stream s;
	Case c = gen.make_shape(Kind::FlashAttnNHD, {4, 16, 2, 64, BELUGA_KV_FP16, 0}, 4, 2);
	c.layer_begin = 0;
	c.layer_end = 4;
	Rig rig(c, HostKind::Pinned, gen.rng());
	uint64_t sums[8] = {};
	beluga_kv_xfer x = rig.xfer(BELUGA_KV_SCATTER);
	EXPECT_EQ(beluga_kv_gpu_gather_sum(gpu.get(), &x, BELUGA_KV_SUM_AUTO, sums, s.get()), -EINVAL);
	x = rig.xfer(BELUGA_KV_GATHER);
	x.layer_begin = 1; // part of a block: no checksum of it
	EXPECT_EQ(beluga_kv_gpu_gather_sum(gpu.get(), &x, BELUGA_KV_SUM_AUTO, sums, s.get()), -EINVAL);
	EXPECT_STRNE(beluga_kv_gpu_last_error(), "");
	x = rig.xfer(BELUGA_KV_GATHER);
	EXPECT_EQ(beluga_kv_gpu_gather_sum(gpu.get(), &x, BELUGA_KV_SUM_READBACK + 1, sums, s.get()), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_gather_sum(gpu.get(), &x, BELUGA_KV_SUM_AUTO, nullptr, s.get()), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_checksum(gpu.get(), nullptr, nullptr, 1, sums, s.get()), -EINVAL);
	const void *null_buf = nullptr;
	const size_t one = 1;
	EXPECT_EQ(beluga_kv_gpu_checksum(gpu.get(), &null_buf, &one, 1, sums, s.get()), -EINVAL);
	s.sync();
	EXPECT_TRUE(rig.download() == rig.ref_paged) << "a rejected call touched the paged cache";
	EXPECT_EQ(std::memcmp(rig.pool.host(), rig.ref_pool.data(), c.pool_bytes), 0) << "a rejected call wrote the pool";
}

} // namespace

int main(int argc, char **argv)
{
	std::setvbuf(stdout, nullptr, _IOLBF, 0); // output survives a timeout kill
	::testing::InitGoogleTest(&argc, argv);
	char why[256];
	g_have_gpu = beluga_kv_gpu_available(why, sizeof(why)) == 1;
	g_why = why;
	if (g_have_gpu) {
		int dev = 0;
		cudaDeviceProp prop{};
		cudaGetDevice(&dev);
		cudaGetDeviceProperties(&prop, dev);
		int drv = 0, rt = 0;
		cudaDriverGetVersion(&drv);
		cudaRuntimeGetVersion(&rt);
		std::printf("GPU: %s (sm_%d%d), driver CUDA %d.%d, runtime %d.%d\n", prop.name, prop.major, prop.minor,
			    drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
		std::printf("pool memory for the 'registered' cases: %s%s%s\n", host_kind_name(HostKind::Registered).c_str(),
			    register_support().why.empty() ? "" : "; refused: ", register_support().why.c_str());
	} else {
		std::printf("no GPU found: %s; GPU tests are skipped\n", why);
	}
	beluga::xfer::test::test_seed();
	const int rc = RUN_ALL_TESTS();
	if (rc == 0 && !g_have_gpu)
		return 77; // CTest: skipped
	return rc;
}
