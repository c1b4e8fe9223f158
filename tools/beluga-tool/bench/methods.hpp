// SPDX-License-Identifier: Apache-2.0
// Description: the access methods a benchmark point can use (plain
// load/store, non-temporal store, store + flush, flush before read, memcpy,
// ...), each with the check that says whether this machine can run it.
#ifndef BELUGA_TOOL_BENCH_METHODS_HPP
#define BELUGA_TOOL_BENCH_METHODS_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

// One access of @len bytes at @dst (read and write methods) or from @src to
// @dst (copy methods); @sink keeps reads alive.
using AccessFn = void (*)(std::byte *dst, const std::byte *src, std::size_t len,
			  std::uint64_t &sink);

struct Method {
	const char *name;	// stable: used on the command line and in JSON
	const char *op;		// read, write or copy
	const char *help;
	AccessFn fn;		// nullptr: never runnable here (see skip_reason)
};

const std::vector<Method> &all_methods();
const Method *find_method(const std::string &name);
// Empty when @m can run on this machine, else why not.
std::string skip_reason(const Method &m);
// The plain method of an op (load, store, memcpy).
const Method &default_method(const std::string &op);

} // namespace bench

#endif // BELUGA_TOOL_BENCH_METHODS_HPP
