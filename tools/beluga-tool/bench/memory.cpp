// SPDX-License-Identifier: Apache-2.0
// Description: the memories under test.  Local DRAM is an anonymous mapping
// (transparent huge pages requested, optionally bound to one NUMA node);
// Beluga memory is an ephemeral region of the pool, so a crashed or
// interrupted bench leaves nothing behind in the pool.  Both are prefaulted
// before timing, so page faults never enter a measurement.
#include <numaif.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <beluga/beluga.hpp>

#include "bench.hpp"

namespace bench {

namespace {

class Dram final : public Memory {
public:
	Dram(std::size_t len, int node)
	{
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (p == MAP_FAILED)
			throw std::runtime_error(std::string("local DRAM buffer: ") +
						 std::strerror(errno));
		data = static_cast<std::byte *>(p);
		size = len;
		name = "dram";
		madvise(p, len, MADV_HUGEPAGE);	// like the 2 MiB pages of a region
		description = "local DRAM, anonymous mmap";
		if (node >= 0)
			bind(node);
		std::memset(p, 0, len);		// prefault (after the binding)
	}
	~Dram() override { munmap(data, size); }
	Dram(const Dram &) = delete;
	Dram &operator=(const Dram &) = delete;

private:
	void bind(int node)
	{
		unsigned long mask[16] = {};

		mask[node / 64] = 1ul << (node % 64);
		if (mbind(data, size, MPOL_BIND, mask, sizeof(mask) * 8, 0)) {
			int e = errno;

			munmap(data, size);
			throw std::runtime_error("--dram-node " + std::to_string(node) +
						 ": mbind: " + std::strerror(e));
		}
		description += ", bound to node " + std::to_string(node);
	}
};

class BelugaMemory final : public Memory {
public:
	BelugaMemory(beluga::Pool pool, std::size_t len, int source)
		: pool_(std::move(pool)),
		  region_(pool_.create_region("", round_up(len),
					      { .mode = 0600, .ephemeral = true,
						.source = source })),
		  map_(region_.map())
	{
		data = static_cast<std::byte *>(map_.data());
		size = len;
		name = "beluga";
		auto info = pool_.info();
		description = std::string(info.backend == BELUGA_BACKEND_KERNEL
						  ? "Beluga region, kernel backend"
						  : "Beluga region, user-space backend");
		if (region_.info().flags & BELUGA_INFO_HUGETLB)
			description += " (hugetlbfs)";
		if (source >= 0)
			description += ", source " + std::to_string(source);
		std::memset(data, 0, size);	// chunks are zeroed; touch the page tables
	}

private:
	static std::uint64_t round_up(std::size_t len)
	{
		return (len + BELUGA_REGION_ALIGN - 1) / BELUGA_REGION_ALIGN * BELUGA_REGION_ALIGN;
	}

	beluga::Pool pool_;
	beluga::Region region_;
	beluga::Mapping map_;
};

} // namespace

std::unique_ptr<Memory> make_dram(std::size_t size, int node)
{
	if (node >= 1024)	// the mbind mask above
		throw std::invalid_argument("--dram-node: at most 1023");
	return std::make_unique<Dram>(size, node);
}

std::unique_ptr<Memory> make_beluga(beluga::Pool pool, std::size_t size, int source)
{
	return std::make_unique<BelugaMemory>(std::move(pool), size, source);
}

} // namespace bench
