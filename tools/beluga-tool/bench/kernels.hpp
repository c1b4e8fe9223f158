// SPDX-License-Identifier: Apache-2.0
// Description: the benchmark's innermost loops - plain, non-temporal and
// flushed accesses to 64-byte-aligned blocks whose length is a multiple of
// 64 - and the CPU features that decide which of them can run.
#ifndef BELUGA_TOOL_BENCH_KERNELS_HPP
#define BELUGA_TOOL_BENCH_KERNELS_HPP

#include <cstddef>
#include <cstdint>

namespace bench {

struct CpuFeatures {
	bool x86 = false;
	bool clflush = false;
	bool clflushopt = false;
	bool clwb = false;
	bool movdir64b = false;
	unsigned line = 64;
};

const CpuFeatures &cpu();

// Every kernel takes 64-byte-aligned blocks whose length is a multiple of 64.
std::uint64_t read_block(const std::byte *p, std::size_t len);
void store_block(std::byte *p, std::size_t len, std::uint64_t v);
void nt_store_block(std::byte *p, std::size_t len, std::uint64_t v);
void copy_block(std::byte *dst, const std::byte *src, std::size_t len);	// load/store loop

// Cache maintenance; each needs the matching CpuFeatures bit.
void clflush_block(const std::byte *p, std::size_t len);
void clflushopt_block(const std::byte *p, std::size_t len);
void clwb_block(const std::byte *p, std::size_t len);
void sfence();
void mfence();

// One dependent load: the next pointer of a chase.
inline void *chase_step(void *p)
{
	return *static_cast<void *volatile *>(p);
}

} // namespace bench

#endif // BELUGA_TOOL_BENCH_KERNELS_HPP
