// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool source - hand a device-dax instance (a CXL region's
// devdax namespace) to the driver at run time and give it back: add releases
// daxX.Y from device_dax (sysfs unbind), reads its range and identity and
// pools the range; remove takes the source out of the pool (refused while a
// region uses it) and binds the device to device_dax again.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "commands.hpp"

namespace tool {

namespace fs = std::filesystem;

struct SourceArgs {
	std::string dax;
	Output out;
};

// sysfs root; BELUGA_TOOL_SYSFS replaces it (host tests with a fake tree).
static fs::path sysfs()
{
	const char *e = std::getenv("BELUGA_TOOL_SYSFS");

	return e && *e ? fs::path(e) : fs::path("/sys");
}

static bool is_dax_name(const std::string &s)
{
	static const std::regex re("dax[0-9]+\\.[0-9]+");

	return std::regex_match(s, re);
}

static std::optional<std::string> read_line(const fs::path &p)
{
	std::ifstream f(p);
	std::string s;

	if (!f || !std::getline(f, s))
		return std::nullopt;
	return s;
}

static void write_attr(const fs::path &p, const std::string &value)
{
	std::ofstream f(p);

	f << value << std::flush;
	if (!f)
		throw beluga::Error(errno ? errno : EIO, "write " + value + " to " + p.string());
}

static std::uint64_t parse_u64(const std::string &text, const fs::path &from)
{
	std::size_t used = 0;
	std::uint64_t v = 0;

	try {
		v = std::stoull(text, &used, 0);
	} catch (const std::exception &) {
		used = 0;
	}
	if (!used || used != text.size())
		throw beluga::Error(EIO, from.string() + ": unreadable value '" + text + "'");
	return v;
}

// The device's driver ("device_dax", "kmem") or "" when none is bound.
static std::string dax_driver(const fs::path &dev)
{
	std::error_code ec;
	fs::path link = fs::read_symlink(dev / "driver", ec);

	return ec ? std::string() : link.filename().string();
}

// What names the memory on every host that shares it: the interleave-set
// cookie of the NVDIMM/CXL region above the device (derived from the memdev
// serials and offsets, the same on every host), else a CXL region's uuid;
// empty when neither exists.
static std::string dax_identity(const fs::path &dev)
{
	std::error_code ec;
	fs::path d = fs::canonical(dev, ec);
	const fs::path root = sysfs();

	if (ec)
		return {};
	for (; d.has_relative_path() && d != root && d != d.root_path(); d = d.parent_path()) {
		if (auto c = read_line(d / "set_cookie"))
			return "set_cookie=" + *c;
		if (d.filename().string().rfind("region", 0) == 0)
			if (auto u = read_line(d / "uuid"); u && !u->empty())
				return "uuid=" + *u;
	}
	return {};
}

static void bind_device_dax(const std::string &dax)
{
	write_attr(sysfs() / "bus/dax/drivers/device_dax/bind", dax);
}

// What the driver's refusals mean for a source (beluga_strerror() speaks
// of regions).
static int source_error(const std::string &what, const beluga::Error &e, bool remove)
{
	const char *hint = nullptr;

	switch (e.code()) {
	case EADDRINUSE:
		hint = "its range overlaps a range source of the pool ('beluga-tool source list')";
		break;
	case ENXIO:
		hint = "its range is not memory the platform describes (/proc/iomem)";
		break;
	case EBUSY:
		hint = remove ? "busy: a region uses the source ('beluga-tool ls', 'shared list'; "
				"destroy them, or wait until pinned memory is released)"
			      : "busy: another driver owns part of the range (dmesg names it)";
		break;
	case EEXIST:
		hint = "a source of that name exists already ('beluga-tool source list')";
		break;
	case ENOENT:
		hint = "no source of that name ('beluga-tool source list')";
		break;
	case EOPNOTSUPP:
		hint = "a node source (nodes=) stays until the module is unloaded";
		break;
	case EPERM:
		hint = "needs root (CAP_SYS_ADMIN)";
		break;
	case ENOSPC:
		hint = "the pool has 16 sources already";
		break;
	default:
		break;
	}
	if (hint)
		std::fprintf(stderr, "beluga-tool: %s: %s\n", what.c_str(), hint);
	else
		std::fprintf(stderr, "beluga-tool: %s\n", e.what());
	return exit_code(e.code());
}

static int run_add(const Globals &g, const SourceArgs &a)
{
	const fs::path dev = sysfs() / "bus/dax/devices" / a.dax;

	if (!fs::exists(dev)) {
		std::fprintf(stderr,
			     "beluga-tool: %s: no such device-dax instance (cxl create-region, then "
			     "ndctl create-namespace -m devdax, create one; 'daxctl list' shows them)\n",
			     a.dax.c_str());
		return kNotFound;
	}
	auto pool = open_pool(g);
	if (pool.backend() != beluga::Backend::Kernel) {
		std::fprintf(stderr, "beluga-tool: sources need the kernel backend (the beluga "
				     "driver)\n");
		return kNoBackend;
	}
	auto res = read_line(dev / "resource");
	auto sz = read_line(dev / "size");
	if (!res || !sz)
		throw beluga::Error(EIO, (dev / "resource").string() + " or size: unreadable (run "
								    "as root)");
	const std::uint64_t start = parse_u64(*res, dev / "resource");
	const std::uint64_t size = parse_u64(*sz, dev / "size") / BELUGA_REGION_ALIGN *
				   BELUGA_REGION_ALIGN;
	if (start % BELUGA_REGION_ALIGN || !size) {
		std::fprintf(stderr,
			     "beluga-tool: %s starts at %#llx and has %s: the driver needs a 2 MiB "
			     "aligned start and at least 2 MiB (create the namespace with -a 2M)\n",
			     a.dax.c_str(), static_cast<unsigned long long>(start),
			     human_size(parse_u64(*sz, dev / "size")).c_str());
		return kUsage;
	}
	const std::string identity = dax_identity(dev);
	const std::string driver = dax_driver(dev);
	if (!driver.empty() && driver != "device_dax") {
		std::fprintf(stderr,
			     "beluga-tool: %s is bound to %s (system-ram mode): its memory belongs "
			     "to the kernel; give it to Beluga as a node (nodes=) or reconfigure it "
			     "(daxctl reconfigure-device --mode=devdax %s)\n",
			     a.dax.c_str(), driver.c_str(), a.dax.c_str());
		return kBusy;
	}
	if (!driver.empty())
		write_attr(dev / "driver/unbind", a.dax);

	std::uint32_t index = 0;
	try {
		index = pool.add_source(start, size, a.dax, identity);
	} catch (const beluga::Error &e) {
		if (!driver.empty())
			bind_device_dax(a.dax);	// give it back as we found it
		return source_error("add source " + a.dax, e, false);
	}
	if (a.out.json) {
		json j = { { "index", index },	 { "name", a.dax }, { "identity", identity },
			   { "start", start },	 { "size", size },  { "released_from", driver } };
		std::printf("%s\n", j.dump(2).c_str());
	} else {
		std::printf("added source %u: %s, %s at %#llx%s%s\n", index, a.dax.c_str(),
			    size_text(size, a.out).c_str(), static_cast<unsigned long long>(start),
			    identity.empty() ? "" : ", ", identity.c_str());
	}
	return kOk;
}

static int run_remove(const Globals &g, const SourceArgs &a)
{
	auto pool = open_pool(g);

	try {
		pool.remove_source(a.dax);
	} catch (const beluga::Error &e) {
		return source_error("remove source " + a.dax, e, true);
	}
	std::string rebound;
	const fs::path dev = sysfs() / "bus/dax/devices" / a.dax;
	if (is_dax_name(a.dax) && fs::exists(dev) && dax_driver(dev).empty()) {
		bind_device_dax(a.dax);
		rebound = ", given back to device_dax";
	}
	std::printf("removed source %s%s\n", a.dax.c_str(), rebound.c_str());
	return kOk;
}

static int run_list(const Globals &g, const SourceArgs &a)
{
	auto pool = open_pool(g);
	json j = json::array();

	if (!a.out.json)
		std::printf("%-6s %-5s %-5s %-12s %12s %12s  %s\n", "SOURCE", "KIND", "NODE", "NAME",
			    "TOTAL", "FREE", "IDENTITY");
	for (const auto &s : pool.sources()) {
		const fs::path dir = sysfs() / "kernel/beluga/sources" / std::to_string(s.index);
		std::string name = read_line(dir / "name").value_or("");
		std::string identity = read_line(dir / "identity").value_or("");

		if (a.out.json) {
			json e = source_json(s);

			e["name"] = name;
			e["identity"] = identity;
			j.push_back(e);
			continue;
		}
		std::printf("%-6u %-5s %-5d %-12s %12s %12s  %s\n", s.index,
			    s.kind == BELUGA_SOURCE_KIND_RANGE ? "range" : "node", s.node,
			    name.empty() ? "-" : name.c_str(), size_text(s.total_bytes, a.out).c_str(),
			    size_text(s.free_bytes, a.out).c_str(),
			    identity.empty() ? "-" : identity.c_str());
	}
	if (a.out.json)
		std::printf("%s\n", j.dump(2).c_str());
	return kOk;
}

Subcommand source_command()
{
	return { "source",
		 "Memory sources: hand a device-dax instance to Beluga at run time and give "
		 "it back",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<SourceArgs>();
			 sub.require_subcommand(1);

			 auto *add = sub.add_subcommand(
				 "add", "Release daxX.Y from device_dax and pool its range (root); "
					"the source is named after the device");
			 add->add_option("DAX", a->dax, "The device-dax instance, e.g. dax0.0")
				 ->required()
				 ->check([](const std::string &s) {
					 return is_dax_name(s) ? std::string()
							       : "expected daxX.Y, e.g. dax0.0";
				 });
			 add_output_flags(*add, a->out);

			 auto *remove = sub.add_subcommand(
				 "remove", "Take a source out of the pool (busy while a region uses "
					   "it) and give a dax device back to device_dax (root)");
			 remove->add_option("NAME", a->dax,
					    "The source's name: daxX.Y for a source added with 'add'")
				 ->required();

			 auto *list = sub.add_subcommand("list",
							 "List the sources with their names and "
							 "identities");
			 add_output_flags(*list, a->out);

			 for (auto *s : { add, remove, list })
				 s->fallthrough();
			 return [&g, a, add, remove] {
				 if (add->parsed())
					 return run_add(g, *a);
				 if (remove->parsed())
					 return run_remove(g, *a);
				 return run_list(g, *a);
			 };
		 } };
}

} // namespace tool
