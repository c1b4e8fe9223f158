// SPDX-License-Identifier: Apache-2.0
// beluga-bench: the KV store's benchmarks (`make bench`).  Every figure is
// printed with a baseline measured in the same run on the same machine, and
// their ratio, so runs on different machines (or on one busy machine) can be
// compared by ratio.
//
//   beluga-bench [--quick] [--seconds S] [--region-mib N] [--threads N]
//                [--only throughput,latency,lookup,redis,eviction,reserve,lookup-hosts]
//                [--redis-server PATH] [--out FILE]
//
// Prints a Markdown report (the machine, the command, the table) and writes
// it to --out as well.
#include "bench.hpp"

#include <CLI/CLI.hpp>

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace bench {

std::string fmt(const char *f, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, f);
	std::vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

std::string gbps(double bytes_per_s) { return fmt("%.2f GB/s", bytes_per_s / 1e9); }

std::string ratio(double a, double b) { return b > 0 ? fmt("%.2fx", a / b) : "-"; }

std::string Report::markdown() const
{
	std::ostringstream o;
	for (const auto &[title, rows] : sections) {
		o << "\n### " << title << "\n\n| figure | measured | baseline (same run) | ratio | notes |\n"
		  << "|---|---|---|---|---|\n";
		for (const Row &r : rows)
			o << "| " << r.what << " | " << r.value << " | " << r.baseline << " | " << r.ratio
			  << " | " << r.note << " |\n";
	}
	return o.str();
}

namespace {

// `lscpu` lines that identify the machine, and the load it was under.
std::string machine()
{
	std::string out;
	if (FILE *p = popen("lscpu 2>/dev/null", "r")) {
		char line[512];
		while (std::fgets(line, sizeof(line), p)) {
			std::string l = line;
			for (const char *k : {"Architecture:", "Model name:", "CPU(s):", "Thread(s) per core:",
					      "Core(s) per socket:", "Socket(s):", "NUMA node(s):",
					      "L3 cache:", "Hypervisor vendor:", "CPU max MHz:"})
				if (l.rfind(k, 0) == 0)
					out += "    " + l;
		}
		pclose(p);
	}
	std::ifstream load("/proc/loadavg"), mem("/proc/meminfo");
	std::string l1, l5, mt;
	load >> l1 >> l5;
	std::getline(mem, mt);
	out += "    Load average (1, 5 min) at the start: " + l1 + " " + l5 + "\n";
	out += "    " + mt + "\n";
	return out;
}

bool wanted(const std::string &only, const char *name)
{
	return only.empty() || ("," + only + ",").find(std::string(",") + name + ",") != std::string::npos;
}

} // namespace
} // namespace bench

int main(int argc, char **argv)
{
	using namespace bench;
	Options o;
	std::string only, out = "beluga-bench.md", command = "beluga-bench";
	for (int i = 1; i < argc; i++)
		command += std::string(" ") + argv[i];
	CLI::App app{"The KV store's benchmarks against memcpy, non-temporal copy, Redis and exact "
		     "LRU, each with its baseline measured in the same run (make bench)"};
	app.add_flag("--quick", o.quick, "short windows and a smaller region (smoke run)");
	app.add_option("--seconds", o.seconds, "measuring window per point")
		->check(CLI::PositiveNumber)
		->capture_default_str();
	app.add_option("--region-mib", o.region_mib, "region size")
		->check(CLI::PositiveNumber)
		->capture_default_str();
	app.add_option("--threads", o.threads, "most copy threads measured")
		->check(CLI::Range(1u, 256u))
		->capture_default_str();
	app.add_option("--only", only,
		       "comma-separated subset: throughput,latency,lookup,redis,eviction,reserve,"
		       "lookup-hosts");
	app.add_option("--redis-server", o.redis_server, "redis-server to start, or none")
		->capture_default_str();
	app.add_option("--out", out, "Markdown report file")->capture_default_str();
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		return app.exit(e) == 0 ? 0 : 2;
	}
	if (o.quick) {
		o.seconds = std::min(o.seconds, 0.3);
		o.region_mib = std::min<size_t>(o.region_mib, 256);
	}
	Report rep;
	try {
		if (wanted(only, "throughput"))
			run_throughput(o, rep);
		if (wanted(only, "latency"))
			run_latency(o, rep);
		if (wanted(only, "lookup"))
			run_lookup(o, rep);
		if (wanted(only, "redis"))
			run_redis(o, rep);
		if (wanted(only, "eviction"))
			run_eviction(o, rep);
		if (wanted(only, "reserve"))
			run_reserve(o, rep);
		if (wanted(only, "lookup-hosts"))
			run_lookup_hosts(o, rep);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "beluga-bench: %s\n", e.what());
		return 1;
	}
	std::string text = "## beluga-bench\n\nCommand: `" + command + "`\n\nMachine:\n\n" + machine() +
			   rep.markdown();
	std::fputs(text.c_str(), stdout);
	std::ofstream(out) << text;
	std::fprintf(stderr, "beluga-bench: report written to %s\n", out.c_str());
	return 0;
}
