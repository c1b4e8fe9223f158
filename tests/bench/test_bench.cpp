// SPDX-License-Identifier: Apache-2.0
// Description: tests of `beluga-tool bench` plumbing as a user runs it:
// argument errors exit 1 naming the option, --json parses and carries every
// documented key, methods this machine lacks are reported as skipped (never
// a failure), --plot writes PNGs (skipped without gnuplot) and says what to
// install when gnuplot is missing.  Timings are never asserted: every run is
// --quick with tiny sizes and 1 ms points.  The Beluga memory comes from the
// user-space backend in a private pool directory.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "run_tool.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#ifndef BELUGA_TOOL_PATH
#define BELUGA_TOOL_PATH "beluga-tool"
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using tooltest::Result;

std::string slurp(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream s;

	s << f.rdbuf();
	return s.str();
}

// Named at start-up, in the test process (a child's getpid() would differ).
const std::string g_pool_dir = "/dev/shm/beluga-benchtest-" + std::to_string(getpid());

const std::string &pool_dir()
{
	return g_pool_dir;
}

// Runs beluga-tool bench with @args on the user backend; @path overrides PATH.
Result bench(const std::vector<std::string> &args, const char *path = nullptr)
{
	std::vector<std::string> all{"bench"};
	all.insert(all.end(), args.begin(), args.end());
	tooltest::RunOpts o;
	o.env = {{"BELUGA_BACKEND", "user"}, {"BELUGA_USER_DIR", pool_dir()}};
	if (path)
		o.env.emplace_back("PATH", path);
	return tooltest::run_program(BELUGA_TOOL_PATH, all, o);
}

// The smallest complete run: every test, 1 ms per point.
const std::vector<std::string> kTiny = { "--quick",	  "-q",		"--duration", "1",
					 "--sizes",	  "64,4K",	"--chase-sizes", "4K,64K",
					 "--buffer",	  "4M",		"--threads",  "2" };

std::vector<std::string> tiny(std::vector<std::string> more)
{
	std::vector<std::string> v = kTiny;

	v.insert(v.end(), more.begin(), more.end());
	return v;
}

class Bench : public ::testing::Test {
protected:
	static void TearDownTestSuite() { fs::remove_all(pool_dir()); }
};

TEST_F(Bench, ArgumentErrorsExitOneAndNameTheOption)
{
	const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
		{ { "--sizes", "100" }, "--sizes" },
		{ { "--sizes", "4Q" }, "--sizes" },
		{ { "--chase-sizes", "32" }, "--chase-sizes" },
		{ { "--buffer", "1M" }, "--buffer" },
		{ { "--tests", "bogus" }, "--tests" },
		{ { "--methods", "store,bogus" }, "--methods" },
		{ { "--patterns", "linear" }, "--patterns" },
		{ { "--memory", "nvram" }, "--memory" },
		{ { "--duration", "0" }, "--duration" },
		{ { "--threads", "0" }, "--threads" },
		{ { "--zipf", "0" }, "--zipf" },
		{ { "--bogus" }, "--bogus" },
	};
	for (const auto &[args, opt] : cases) {
		auto r = bench(args);

		EXPECT_EQ(r.status, 1) << opt << ": " << r.err;
		EXPECT_NE(r.err.find(opt), std::string::npos) << opt << ": " << r.err;
		EXPECT_TRUE(r.out.empty()) << opt;
	}
}

TEST_F(Bench, HelpListsTheOptions)
{
	auto r = bench({ "--help" });

	EXPECT_EQ(r.status, 0);
	for (const char *o : { "--quick", "--json", "--plot", "--sizes", "--threads", "--memory" })
		EXPECT_NE(r.out.find(o), std::string::npos) << o;
}

TEST_F(Bench, MissingDriverExitsFour)
{
	auto r = bench(tiny({ "--backend", "kernel", "--device", "/nonexistent/beluga" }));

	EXPECT_EQ(r.status, 4) << r.err;
}

void expect_keys(const json &j, const std::vector<const char *> &keys, const std::string &where)
{
	for (const char *k : keys)
		EXPECT_TRUE(j.contains(k)) << where << " lacks " << k;
}

TEST_F(Bench, JsonHasTheDocumentedSchema)
{
	auto r = bench(tiny({ "--json" }));
	ASSERT_EQ(r.status, 0) << r.err;
	json j = json::parse(r.out);

	expect_keys(j, { "schema_version", "library_version", "machine", "config", "memories",
			 "baseline", "sections", "crossover", "skipped", "plots", "seconds" },
		    "report");
	EXPECT_EQ(j["schema_version"], 1);
	EXPECT_EQ(j["baseline"], "dram");
	expect_keys(j["machine"], { "cpu", "cpus", "clflush", "clflushopt", "clwb", "flush_method" },
		    "machine");
	ASSERT_EQ(j["memories"].size(), 2u);
	EXPECT_EQ(j["memories"][0]["name"], "dram");
	EXPECT_EQ(j["memories"][1]["name"], "beluga");
	for (const char *s : { "latency", "bandwidth", "methods", "patterns", "coherence",
			       "crossover", "interference", "interference_load" }) {
		ASSERT_TRUE(j["sections"].contains(s)) << s;
		const json &sec = j["sections"][s];

		expect_keys(sec, { "title", "unit", "higher_is_better", "points" }, s);
		ASSERT_FALSE(sec["points"].empty()) << s;
		for (const auto &p : sec["points"]) {
			expect_keys(p, { "op", "method", "pattern", "metric", "threads", "size",
					 "values", "ratio_to_dram", "paper", "skipped" }, s);
			expect_keys(p["values"], { "dram", "beluga" }, s);
			if (p["skipped"].is_null() && std::string(s) != "interference_load") {
				EXPECT_TRUE(p["values"]["dram"].is_number()) << s << p.dump();
			}
		}
	}
	EXPECT_EQ(j["sections"]["latency"]["points"].size(), 2u);	// --chase-sizes 4K,64K
	EXPECT_EQ(j["crossover"].size(), 4u);	// 2 memories x (copy_nt, copy_bulk)
}

TEST_F(Bench, MissingMethodsAreReportedSkipped)
{
	auto r = bench(tiny({ "--json", "--tests", "coherence,methods" }));
	ASSERT_EQ(r.status, 0) << r.err;
	json j = json::parse(r.out);
	std::vector<std::string> skipped;

	for (const auto &k : j["skipped"]) {
		EXPECT_FALSE(k["reason"].get<std::string>().empty());
		skipped.push_back(k["method"]);
	}
	// Neither backend maps uncached memory, and the bench submits no DSA work.
	for (const char *m : { "uc-store", "uc-load", "dsa-write", "dsa-read" })
		EXPECT_NE(std::find(skipped.begin(), skipped.end(), m), skipped.end()) << m;
	for (const auto &p : j["sections"]["coherence"]["points"])
		if (!p["skipped"].is_null()) {
			EXPECT_TRUE(p["values"]["beluga"].is_null()) << p.dump();
		}

	auto t = bench(tiny({ "--tests", "coherence" }));
	ASSERT_EQ(t.status, 0) << t.err;
	EXPECT_NE(t.out.find("Skipped"), std::string::npos) << t.out;
	EXPECT_NE(t.out.find("uc-store: "), std::string::npos) << t.out;
	EXPECT_NE(t.out.find("beluga/dram"), std::string::npos) << t.out;
}

TEST_F(Bench, DramOnlyNeedsNoPool)
{
	auto r = bench(tiny({ "--json", "--memory", "dram", "--tests", "latency",
			      "--backend", "kernel", "--device", "/nonexistent/beluga" }));
	ASSERT_EQ(r.status, 0) << r.err;
	json j = json::parse(r.out);

	ASSERT_EQ(j["memories"].size(), 1u);
	for (const auto &p : j["sections"]["latency"]["points"])
		EXPECT_EQ(p["ratio_to_dram"]["dram"], 1.0);
}

TEST_F(Bench, PlotWritesPngs)
{
	if (system("command -v gnuplot >/dev/null 2>&1"))
		GTEST_SKIP() << "gnuplot is not installed (Debian: gnuplot-nox)";
	fs::path dir = fs::temp_directory_path() / ("beluga-bench-plot-" + std::to_string(getpid()));
	auto r = bench(tiny({ "--tests", "latency,bandwidth,crossover", "--plot", dir.string() }));

	ASSERT_EQ(r.status, 0) << r.err;
	for (const char *png : { "latency.png", "bandwidth.png", "crossover.png" }) {
		fs::path p = dir / png;

		ASSERT_TRUE(fs::exists(p)) << p;
		EXPECT_GT(fs::file_size(p), 0u) << p;
		EXPECT_EQ(slurp(p.string()).substr(1, 3), "PNG") << p;
		EXPECT_NE(r.out.find(p.string()), std::string::npos) << r.out;
	}
	fs::remove_all(dir);
}

TEST_F(Bench, PlotWithoutGnuplotSaysWhatToInstall)
{
	auto r = bench(tiny({ "--tests", "latency", "--plot", "/tmp/unused" }), "/nonexistent");

	EXPECT_EQ(r.status, 10) << r.err;
	EXPECT_NE(r.err.find("gnuplot-nox"), std::string::npos) << r.err;
	EXPECT_TRUE(r.out.empty());
}

} // namespace
