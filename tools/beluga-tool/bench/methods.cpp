// SPDX-License-Identifier: Apache-2.0
// Description: the access-method catalogue.  The coherence methods are the
// ones the paper compares (its section 5.1 and Table 4): a writer makes its
// data reach memory with non-temporal stores or a flush after storing, a
// reader invalidates stale lines with a flush before loading.  Methods that
// need hardware or mappings this machine lacks (DSA, uncached or
// write-combining memory, an instruction cpuid does not report) stay in the
// catalogue so the report can say they were skipped, and why.
#include "methods.hpp"

#include <glob.h>

#include <cstring>
#include <stdexcept>

#include <beluga/beluga.hpp>

#include "kernels.hpp"

namespace bench {

static void m_load(std::byte *d, const std::byte *, std::size_t n, std::uint64_t &sink)
{
	sink += read_block(d, n);
}

// Flush before read: the reader's copy of the lines may be stale (CXL 2.0 has
// no host-to-host coherence), so it invalidates them and then loads.
static void m_flush_load(std::byte *d, const std::byte *, std::size_t n, std::uint64_t &sink)
{
	if (cpu().clflushopt)
		clflushopt_block(d, n);
	else
		clflush_block(d, n);
	mfence();	// loads must not pass the flushes
	sink += read_block(d, n);
}

static void m_store(std::byte *d, const std::byte *, std::size_t n, std::uint64_t &sink)
{
	store_block(d, n, ++sink);
}

static void m_ntstore(std::byte *d, const std::byte *, std::size_t n, std::uint64_t &sink)
{
	nt_store_block(d, n, ++sink);
	sfence();	// the data is in memory when the fence retires
}

static void m_store_clflush(std::byte *d, const std::byte *, std::size_t n, std::uint64_t &sink)
{
	store_block(d, n, ++sink);
	clflush_block(d, n);
	sfence();
}

static void m_store_clflushopt(std::byte *d, const std::byte *, std::size_t n,
			       std::uint64_t &sink)
{
	store_block(d, n, ++sink);
	clflushopt_block(d, n);
	sfence();	// clflushopt is only ordered by a fence
}

static void m_store_clwb(std::byte *d, const std::byte *, std::size_t n, std::uint64_t &sink)
{
	store_block(d, n, ++sink);
	clwb_block(d, n);
	sfence();
}

static void m_memcpy(std::byte *d, const std::byte *s, std::size_t n, std::uint64_t &)
{
	std::memcpy(d, s, n);
}

static void m_loadstore(std::byte *d, const std::byte *s, std::size_t n, std::uint64_t &)
{
	copy_block(d, s, n);
}

static void m_copy_nt(std::byte *d, const std::byte *s, std::size_t n, std::uint64_t &)
{
	beluga::copy_nt(d, s, n);
}

static void m_copy_bulk(std::byte *d, const std::byte *s, std::size_t n, std::uint64_t &)
{
	beluga::copy_bulk(d, s, n);
}

const std::vector<Method> &all_methods()
{
	static const std::vector<Method> v = {
		{ "load", "read", "plain loads (may hit stale cached lines)", m_load },
		{ "flush+load", "read", "clflushopt (else clflush) each line, then load", m_flush_load },
		{ "uc-load", "read", "loads from an uncached (UC) mapping", nullptr },
		{ "dsa-read", "read", "Intel DSA copy from the memory", nullptr },
		{ "store", "write", "plain stores (stay in this CPU's cache)", m_store },
		{ "ntstore", "write", "non-temporal stores + sfence", m_ntstore },
		{ "store+clflush", "write", "stores, clflush each line, sfence", m_store_clflush },
		{ "store+clflushopt", "write", "stores, clflushopt each line, sfence",
		  m_store_clflushopt },
		{ "store+clwb", "write", "stores, clwb each line, sfence", m_store_clwb },
		{ "uc-store", "write", "stores to an uncached (UC) mapping", nullptr },
		{ "wc-store", "write", "stores to a write-combining (WC) mapping", nullptr },
		{ "dsa-write", "write", "Intel DSA copy into the memory", nullptr },
		{ "memcpy", "copy", "glibc memcpy", m_memcpy },
		{ "loadstore", "copy", "16-byte load/store loop", m_loadstore },
		{ "copy_nt", "copy", "libbeluga beluga_copy_nt (non-temporal stores)", m_copy_nt },
		{ "copy_bulk", "copy", "libbeluga beluga_copy_bulk (threads + non-temporal)",
		  m_copy_bulk },
		{ "dsa-copy", "copy", "Intel DSA memmove", nullptr },
	};

	return v;
}

const Method *find_method(const std::string &name)
{
	for (const auto &m : all_methods())
		if (name == m.name)
			return &m;
	return nullptr;
}

const Method &default_method(const std::string &op)
{
	const char *name = op == "read" ? "load" : op == "write" ? "store" : "memcpy";

	return *find_method(name);
}

static bool have_dsa_queue()
{
	glob_t g;
	bool found = glob("/dev/dsa/wq*", 0, nullptr, &g) == 0 && g.gl_pathc > 0;

	globfree(&g);
	return found;
}

static std::string dsa_reason()
{
	if (!have_dsa_queue())
		return "no DSA work queue (/dev/dsa/wq*): no Intel DSA, or idxd not configured";
	return "DSA work queues exist but beluga-tool bench does not submit DSA descriptors yet";
}

std::string skip_reason(const Method &m)
{
	std::string name = m.name;
	const CpuFeatures &c = cpu();

	if (name.starts_with("dsa"))
		return dsa_reason();
	if (name.starts_with("uc-") || name.starts_with("wc-"))
		return "libbeluga maps regions write-back only (neither backend offers "
		       "uncached or write-combining mappings)";
	if (!c.x86 && (name.find("flush") != std::string::npos || name.find("clwb") !=
			std::string::npos || name == "ntstore"))
		return "not an x86-64 build: no user-space cache maintenance";
	if (name == "store+clflushopt" && !c.clflushopt)
		return "cpuid: no clflushopt";
	if (name == "store+clwb" && !c.clwb)
		return "cpuid: no clwb";
	if (name.find("clflush") != std::string::npos && !c.clflush)
		return "cpuid: no clflush";
	return {};
}

} // namespace bench
