// SPDX-License-Identifier: Apache-2.0
//
// mh_shared: shared regions (BELUGA_IOC_SHARED_DEFINE, through libbeluga's
// C++ API) across kernels (profile multihost-shared: every guest's beluga.ko
// pools the shared CXL device's range, released from device-dax by
// tests/vm/cxl-setup.sh, as its range source; every guest runs the same test
// and picks its role from BELUGA_VM_HOST).
//
//   mh_shared bytes    every host defines the same 8 MiB extent under one
//                      name and maps it (one PMD fault per 2 MiB chunk); each
//                      host in turn writes a nonce-tagged pattern, every
//                      other host reads it back byte for byte
//   mh_shared persist  host 0 writes a pattern; the last host then creates
//                      private regions on the same source (its driver zeroes
//                      them, so they must stay out of the extent), destroys
//                      its definition and defines the extent again: every
//                      host, the last one included, still reads the pattern
//                      byte for byte (a shared extent is never zeroed)
//
// Exit status 0 pass, 1 fail, 77 skip (no range source).
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string>

#include "mh_beluga.hpp"

namespace {

using beluga::mh::Rendezvous;
using beluga::mh::check;
using beluga::mh::fill;
using beluga::mh::open_kernel_pool;
using beluga::mh::words;

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kSize = 8 * kMiB, kChunk = 2 * kMiB;
const std::string kName = "mh-shared";

struct Skip {
	std::string why;
};

// The index of the (one) range source.
std::uint32_t range_source(const beluga::Pool &pool)
{
	auto found = beluga::mh::range_source(pool);
	if (!found)
		throw Skip{"no range source: the profile must release the CXL device to beluga.ko"};
	return *found;
}

int test_bytes(Rendezvous &rv)
{
	beluga::Pool pool = open_kernel_pool();
	std::uint32_t src = range_source(pool);
	std::uint64_t pmd0 = pool.counters().pmd_faults;
	beluga::Region r = pool.define_shared(kName, src, 0, kSize, 0600);
	beluga::Mapping m = r.map();
	// Fault every chunk in by reading it: one PMD each.
	for (std::uint64_t off = 0; off < kSize; off += kChunk)
		(void)*static_cast<volatile char *>(static_cast<char *>(m.data()) + off);
	std::uint64_t pmds = pool.counters().pmd_faults - pmd0;
	std::printf("host %u: defined %s = source %u [0, %" PRIu64 " MiB), %" PRIu64
		    " PMD faults for %" PRIu64 " chunks\n",
		    rv.host(), kName.c_str(), src, kSize / kMiB, pmds, kSize / kChunk);
	bool ok = pmds >= kSize / kChunk;
	rv.barrier("shared-defined");
	for (unsigned writer = 0; writer < rv.hosts(); writer++) {
		std::uint64_t tag = 0x7368617265640000ULL | writer; // "shared" + writer
		if (rv.host() == writer)
			fill(words(m), rv.nonce(), tag);
		rv.barrier("shared-written-" + std::to_string(writer));
		ok &= check(words(m), rv.nonce(), tag,
			    "host " + std::to_string(rv.host()) + " reading host " +
				    std::to_string(writer) + "'s pattern");
		rv.barrier("shared-read-" + std::to_string(writer));
	}
	return ok ? 0 : 1;
}

int test_persist(Rendezvous &rv)
{
	constexpr std::uint64_t kTag = 0x70657273697374ULL; // "persist"
	const unsigned last = rv.hosts() - 1;
	beluga::Pool pool = open_kernel_pool();
	std::uint32_t src = range_source(pool);
	bool ok = true;
	{
		std::optional<beluga::Region> r(pool.open_region(kName));
		std::optional<beluga::Mapping> m(r->map());
		if (rv.host() == 0)
			fill(words(*m), rv.nonce(), kTag);
		rv.barrier("persist-written");
		if (rv.host() == last) {
			// Private regions from the same source while the extent is
			// defined here: the driver zeroes them, so they must lie
			// outside it.  Then let go of this host's definition and
			// define the extent again: neither may change a byte.
			beluga::CreateOptions co;
			co.source = static_cast<std::int32_t>(src);
			for (int i = 0; i < 3; i++)
				pool.create_region("mh-private-" + std::to_string(i), kChunk, co);
			for (int i = 0; i < 3; i++)
				pool.destroy_region("mh-private-" + std::to_string(i));
			m.reset();
			r.reset();
			pool.destroy_region(kName);
			r.emplace(pool.define_shared(kName, src, 0, kSize, 0600));
			m.emplace(r->map());
			std::printf("host %u: created 3 private regions on source %u, destroyed %s and "
				    "defined it again\n",
				    rv.host(), src, kName.c_str());
		}
		rv.barrier("persist-redefined");
		ok &= check(words(*m), rv.nonce(), kTag,
			    "host " + std::to_string(rv.host()) + " reading host 0's pattern");
		rv.barrier("persist-checked");
	}
	pool.destroy_region(kName); // this host's definition; the bytes stay
	return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	std::string what = argc == 2 ? argv[1] : "";
	if (what != "bytes" && what != "persist") {
		std::fprintf(stderr, "usage: mh_shared bytes|persist\n");
		return 2;
	}
	try {
		Rendezvous rv = Rendezvous::from_env();
		return what == "bytes" ? test_bytes(rv) : test_persist(rv);
	} catch (const Skip &s) {
		std::printf("SKIP: %s\n", s.why.c_str());
		return 77;
	} catch (const std::exception &e) {
		std::printf("mh_shared %s: %s\n", what.c_str(), e.what());
		return 1;
	}
}
