// SPDX-License-Identifier: Apache-2.0
// Zero-copy saves from the GPU into the KV store: a store formatted in host
// memory registered with CUDA (as a Beluga region is), slots reserved for a
// batch of keys, paged KV blocks of every layout gathered straight into them
// with their checksums computed on the GPU (beluga_kv_gpu_gather_sum), the
// slots committed with those sums (beluga_kv_gpu_commit), then read back
// through the store's verified paths (get, pin with verification) byte for
// byte against the CPU reference gather; and a slot committed with a wrong
// sum, which a verified read must refuse.  In both coherence modes.  Without
// a usable GPU every test is skipped with the reason and the program exits 77.
// Built only in the main build (it needs the store); scripts/gpu-check.sh
// runs it from the GPU bundle.
#include <beluga/kvcache.h>
#include <beluga/xfer.h>
#include <beluga/xfer_cuda.h>

#include "../layout_gen.hpp"
#include "gpu_util.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace {

using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;
using namespace beluga::xfer::gpu_test;

bool g_have_gpu = false;
std::string g_why;

#define REQUIRE_GPU()                                                                                          \
	do {                                                                                                   \
		if (!g_have_gpu)                                                                               \
			GTEST_SKIP() << "no GPU found: " << g_why;                                             \
	} while (0)

void make_key(uint64_t i, uint8_t out[BELUGA_KVC_KEY_BYTES])
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 0x5851f42d4c957f2dull;
	for (int w = 0; w < 4; w++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		std::memcpy(out + 8 * w, &x, 8);
	}
}

// A store in registered host memory: the CPU sees it at host(), the GPU at
// dev(host pointer).
class Store {
public:
	Store(size_t size, uint64_t payload, uint32_t coherence) : mem_(size, HostKind::Registered)
	{
		std::memset(mem_.host(), 0, size);
		beluga_kvc_config cfg;
		beluga_kvc_config_init(&cfg);
		std::memset(&cfg.fingerprint, 0, sizeof(cfg.fingerprint));
		std::strcpy(cfg.fingerprint.model_id, "gpu-save-test");
		std::strcpy(cfg.fingerprint.hash_fn, "sha256_cbor");
		std::strcpy(cfg.fingerprint.hash_seed, "0");
		cfg.fingerprint.tp_size = 1;
		cfg.fingerprint.layout = BELUGA_KVC_LAYOUT_OPAQUE;
		cfg.fingerprint.payload_bytes = payload;
		cfg.max_hosts = 1;
		if (int rc = beluga_kvc_format(mem_.host(), size, &cfg))
			throw std::runtime_error(std::string("beluga_kvc_format: ") + beluga_kvc_last_error() + " (" +
						 std::to_string(rc) + ")");
		beluga_kvc_attach_opts o;
		beluga_kvc_attach_opts_init(&o);
		o.coherence = coherence;
		if (int rc = beluga_kvc_attach(mem_.host(), size, &cfg.fingerprint, &o, &kv_))
			throw std::runtime_error(std::string("beluga_kvc_attach: ") + beluga_kvc_last_error() + " (" +
						 std::to_string(rc) + ")");
	}
	~Store() { beluga_kvc_detach(kv_); }
	Store(const Store &) = delete;
	Store &operator=(const Store &) = delete;
	beluga_kvc *kv() const { return kv_; }
	void *dev(void *host) const { return mem_.dev() + (static_cast<char *>(host) - mem_.host()); }

private:
	HostBuf mem_;
	beluga_kvc *kv_ = nullptr;
};

// One batch: a paged cache in device memory (and its host copy), reserved
// slots, the reference gather of the same blocks on the host.
struct Save {
	Case c;
	size_t block = 0;
	std::vector<unsigned char> host_paged;
	DeviceBuf dev_paged;
	beluga_kv_paged paged{};
	std::vector<beluga_kvc_reservation> items;
	std::vector<beluga_kv_block_ref> refs;
	std::vector<unsigned char> want; // block i at i * block
	HostBuf sums;

	Save(const Case &cs, uint64_t key0, std::mt19937_64 &rng)
		: c(cs), block(beluga_kv_block_bytes(&cs.shape)), host_paged(cs.paged_bytes), dev_paged(cs.paged_bytes),
		  sums(cs.blocks.size() * sizeof(uint64_t), HostKind::Pinned)
	{
		c.layer_begin = 0;
		c.layer_end = c.shape.num_layers;
		beluga::xfer::test::fill_random(host_paged, rng);
		check(cudaMemcpy(dev_paged.get(), host_paged.data(), c.paged_bytes, cudaMemcpyHostToDevice), "upload");
		paged = c.paged_at(dev_paged.get());
		items.resize(c.blocks.size());
		for (size_t i = 0; i < items.size(); i++) {
			std::memset(&items[i], 0, sizeof(items[i]));
			make_key(key0 + i, items[i].key);
			items[i].len = block;
		}
		// The reference: the same blocks gathered on the host, side by side.
		want.assign(items.size() * block, 0);
		const beluga_kv_paged hp = c.paged_at(host_paged.data());
		std::vector<beluga_kv_block_ref> hr(items.size());
		for (size_t i = 0; i < hr.size(); i++)
			hr[i] = {c.blocks[i], want.data() + i * block};
		const beluga_kv_xfer x{&hp, hr.data(), hr.size(), 0, c.layer_end, BELUGA_KV_GATHER, 0};
		if (beluga_kv_ref_copy(&x))
			throw std::runtime_error("reference gather failed");
	}

	uint64_t *got() const { return reinterpret_cast<uint64_t *>(sums.host()); }

	// Reserve, then gather into the slots with their sums, on s.
	void reserve_and_gather(const Store &st, cudaStream_t s)
	{
		std::vector<int> res(items.size(), 99);
		ASSERT_EQ(beluga_kvc_reserve(st.kv(), items.data(), items.size(), res.data()), long(items.size()))
			<< beluga_kvc_last_error();
		refs.resize(items.size());
		for (size_t i = 0; i < items.size(); i++) {
			ASSERT_EQ(res[i], 0) << "item " << i;
			refs[i] = {c.blocks[i], st.dev(items[i].data)};
		}
		const beluga_kv_xfer x{&paged, refs.data(), refs.size(), 0, c.layer_end, BELUGA_KV_GATHER, 0};
		ASSERT_EQ(beluga_kv_gpu_gather_sum(gpu_, &x, BELUGA_KV_SUM_AUTO, got(), s), 0)
			<< beluga_kv_gpu_last_error();
	}

	beluga_kv_gpu *gpu_ = nullptr;
};

// A verified read of key i: the get's result, and the bytes compared.
int verified_get(beluga_kvc *kv, const Save &sv, size_t i)
{
	std::vector<unsigned char> out(sv.block);
	beluga_kvc_get g{};
	std::memcpy(g.key, sv.items[i].key, sizeof(g.key));
	g.dst = out.data();
	g.cap = out.size();
	int res = 99;
	beluga_kvc_get_batch(kv, &g, 1, &res);
	if (res > 0 && (size_t(res) != sv.block || std::memcmp(out.data(), sv.want.data() + i * sv.block, sv.block)))
		return -EBADMSG; // a hit with the wrong bytes
	return res;
}

int pin_verified(beluga_kvc *kv, const Save &sv, size_t i)
{
	uint8_t key[1][BELUGA_KVC_KEY_BYTES];
	std::memcpy(key[0], sv.items[i].key, BELUGA_KVC_KEY_BYTES);
	beluga_kvc_ref ref{};
	int res = 99;
	beluga_kvc_pin(kv, key, 1, BELUGA_KVC_PIN_VERIFY, &ref, &res);
	if (res == 0) {
		const bool same = ref.len == sv.block && !std::memcmp(ref.data, sv.want.data() + i * sv.block, sv.block);
		beluga_kvc_unpin(kv, &ref, 1);
		if (!same)
			return -EBADMSG;
	}
	return res;
}

std::string coherence_name(const ::testing::TestParamInfo<uint32_t> &info)
{
	return info.param == BELUGA_KVC_COHERENT ? "coherent" : "noncoherent";
}

class GpuSave : public ::testing::TestWithParam<uint32_t> {};

// Every layout kind: gather into reserved slots, commit with the GPU's sums,
// read back verified, byte for byte.
TEST_P(GpuSave, GatherIntoReservedSlotsCommitThenVerifiedReads)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 71);
	Gpu gpu;
	Stream s;
	const beluga_kv_shape shape{4, 16, 2, 64, BELUGA_KV_BF16, 0}; // 32 KiB blocks
	Store st(64 << 20, beluga_kv_block_bytes(&shape), GetParam());
	for (int k = 0; k < int(Kind::Count) && !HasFatalFailure(); k++) {
		SCOPED_TRACE(beluga::xfer::test::kind_name(Kind(k)));
		Save sv(gen.make_shape(Kind(k), shape, 20, 12), uint64_t(k) << 16, gen.rng());
		sv.gpu_ = gpu.get();
		sv.reserve_and_gather(st, s.get());
		ASSERT_FALSE(HasFatalFailure());
		std::vector<int> res(sv.items.size(), 99);
		ASSERT_EQ(beluga_kv_gpu_commit(st.kv(), sv.items.data(), sv.items.size(), sv.got(), s.get(), res.data()),
			  long(sv.items.size()))
			<< beluga_kvc_last_error();
		for (size_t i = 0; i < sv.items.size(); i++) {
			EXPECT_EQ(res[i], 0) << "commit of item " << i;
			EXPECT_EQ(sv.items[i].data, nullptr) << "item " << i << " still holds its reservation";
			EXPECT_EQ(sv.got()[i], beluga_kvc_checksum(sv.want.data() + i * sv.block, sv.block)) << i;
			EXPECT_EQ(verified_get(st.kv(), sv, i), int(sv.block)) << "get of item " << i;
			EXPECT_EQ(pin_verified(st.kv(), sv, i), 0) << "verified pin of item " << i;
		}
	}
	beluga_kvc_stats stats{};
	ASSERT_EQ(beluga_kvc_get_stats(st.kv(), -1, &stats), 0);
	EXPECT_EQ(stats.checksum_failures, 0u);
}

// A slot committed with a sum that does not match its payload is stored, but
// every verified read refuses it (a miss, counted); its neighbours are fine.
TEST_P(GpuSave, AWrongSumIsCaughtByVerifiedReads)
{
	REQUIRE_GPU();
	Generator gen(beluga::xfer::test::test_seed() + 73);
	Gpu gpu;
	Stream s;
	const beluga_kv_shape shape{4, 16, 2, 64, BELUGA_KV_FP16, 0};
	Store st(64 << 20, beluga_kv_block_bytes(&shape), GetParam());
	Case c = gen.make_shape(Kind::FlashAttnNHD, shape, 8, 4);
	while (c.blocks.size() < 2) // a bad block and good neighbours
		c = gen.make_shape(Kind::FlashAttnNHD, shape, 8, 4);
	Save sv(c, 1 << 20, gen.rng());
	sv.gpu_ = gpu.get();
	sv.reserve_and_gather(st, s.get());
	ASSERT_FALSE(HasFatalFailure());
	s.sync();
	sv.got()[1] ^= 1; // one bit off
	std::vector<int> res(sv.items.size(), 99);
	ASSERT_EQ(beluga_kv_gpu_commit(st.kv(), sv.items.data(), sv.items.size(), sv.got(), s.get(), res.data()),
		  long(sv.items.size()))
		<< beluga_kvc_last_error();
	beluga_kvc_stats before{}, after{};
	ASSERT_EQ(beluga_kvc_get_stats(st.kv(), -1, &before), 0);
	for (size_t i = 0; i < sv.items.size(); i++) {
		const bool bad = i == 1;
		EXPECT_EQ(verified_get(st.kv(), sv, i), bad ? -ENOENT : int(sv.block)) << "get of item " << i;
		EXPECT_EQ(pin_verified(st.kv(), sv, i), bad ? -ENOENT : 0) << "verified pin of item " << i;
	}
	ASSERT_EQ(beluga_kvc_get_stats(st.kv(), -1, &after), 0);
	EXPECT_GE(after.checksum_failures, before.checksum_failures + 1);
}

// Arguments the commit refuses before touching the stream or the store.
TEST(GpuSaveApi, CommitRejectsNullArrays)
{
	int res = 0;
	uint64_t sum = 0;
	beluga_kvc_reservation it{};
	EXPECT_EQ(beluga_kv_gpu_commit(nullptr, &it, 1, &sum, nullptr, &res), -EINVAL);
	EXPECT_STRNE(beluga_kv_gpu_last_error(), "");
	auto *kv = reinterpret_cast<beluga_kvc *>(&it); // never dereferenced: the arrays are checked first
	EXPECT_EQ(beluga_kv_gpu_commit(kv, nullptr, 1, &sum, nullptr, &res), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_commit(kv, &it, 1, nullptr, nullptr, &res), -EINVAL);
	EXPECT_EQ(beluga_kv_gpu_commit(kv, &it, 1, &sum, nullptr, nullptr), -EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Modes, GpuSave, ::testing::Values(uint32_t(BELUGA_KVC_COHERENT), uint32_t(BELUGA_KVC_NONCOHERENT)),
			 coherence_name);

} // namespace

int main(int argc, char **argv)
{
	std::setvbuf(stdout, nullptr, _IOLBF, 0); // output survives a timeout kill
	::testing::InitGoogleTest(&argc, argv);
	char why[256];
	g_have_gpu = beluga_kv_gpu_available(why, sizeof(why)) == 1;
	g_why = why;
	if (g_have_gpu)
		std::printf("store memory: %s%s%s\n", host_kind_name(HostKind::Registered).c_str(),
			    register_support().why.empty() ? "" : "; refused: ", register_support().why.c_str());
	else
		std::printf("no GPU found: %s; GPU tests are skipped\n", why);
	beluga::xfer::test::test_seed();
	const int rc = RUN_ALL_TESTS();
	if (rc == 0 && !g_have_gpu)
		return 77; // CTest: skipped
	return rc;
}
