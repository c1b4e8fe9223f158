// SPDX-License-Identifier: Apache-2.0
// Description: tests of beluga-tool as a user runs it: exit codes, --help on
// every subcommand, --json output that parses, human-readable and exact
// sizes, top without a terminal, and permission errors as uid 65534.  Runs
// against both backends (kernel skips without /dev/beluga).
//
// Options (before gtest's): --tool PATH (default: the one built alongside),
// --backend user|kernel (run only that backend's instances).
#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
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

using json = nlohmann::json;

std::string g_tool = BELUGA_TOOL_PATH;

using tooltest::Result;

// Run the tool with @env added to the environment, optionally as nobody.
Result run(const std::vector<std::string> &args,
	   const std::vector<std::pair<std::string, std::string>> &env = {},
	   bool as_nobody = false)
{
	return tooltest::run_program(g_tool, args, {env, as_nobody});
}

int count_lines_with(const std::string &text, const std::string &what)
{
	int n = 0;
	std::istringstream in(text);

	for (std::string line; std::getline(in, line);)
		n += line.find(what) != std::string::npos;
	return n;
}

// ---- not backend specific ------------------------------------------------------

// The subcommands --help lists.
std::vector<std::string> subcommands(const std::string &help)
{
	std::vector<std::string> v;
	std::istringstream in(help);
	bool on = false;

	for (std::string line; std::getline(in, line);) {
		if (line == "Subcommands:")
			on = true;
		else if (on && line.empty())
			break;
		else if (on && line.size() > 2 && line[2] != ' ')
			v.push_back(line.substr(2, line.find(' ', 2) - 2));
	}
	return v;
}

TEST(Tool, HelpOnEverySubcommand)
{
	auto top = run({ "--help" });
	EXPECT_EQ(top.status, 0);
	EXPECT_NE(top.out.find("Exit codes:"), std::string::npos);
	auto subs = subcommands(top.out);
	for (const char *required :
	     { "info", "ls", "create", "destroy", "wipe", "shared", "stat", "gpu", "top", "bench" })
		EXPECT_NE(std::find(subs.begin(), subs.end(), required), subs.end()) << required;
	for (const auto &sub : subs) {
		auto r = run({ sub, "--help" });
		EXPECT_EQ(r.status, 0) << sub;
		EXPECT_NE(r.out.find("Usage:"), std::string::npos) << sub;
		EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
	}
	auto v = run({ "--version" });
	EXPECT_EQ(v.status, 0);
	EXPECT_NE(v.out.find("beluga-tool "), std::string::npos);
}

TEST(Tool, UsageErrorsExitOne)
{
	const std::vector<std::vector<std::string>> cases = {
		{}, { "bogus" }, { "create", "x", "3M" }, { "create", "x", "4Q" },
		{ "create", "x", "4M", "--mode", "999" }, { "--backend", "bogus", "info" },
		{ "stat" }, { "top", "--once", "-i", "0" },
		{ "shared" }, { "shared", "define", "x", "--offset", "0", "--size", "2M" },
		{ "shared", "define", "x", "-s", "0", "--offset", "1M", "--size", "2M" },
		{ "shared", "define", "x", "-s", "0", "--offset", "0", "--size", "3M" },
		{ "shared", "define", "x", "-s", "0", "--offset", "0", "--size", "0" },
		{ "shared", "define", "x", "-s", "0", "-o", "0", "-S", "2M", "--mode", "888" },
		{ "shared", "undefine" },
		{ "wipe" }, { "wipe", "x", "--watch-ms", "-5" }, { "wipe", "x", "--bogus" },
		{ "wipe", "x", "--progress", "--no-progress" },
	};
	for (const auto &c : cases) {
		auto r = run(c, { { "BELUGA_BACKEND", "user" },
				  { "BELUGA_USER_DIR", "/dev/shm/beluga-tooltest-usage" } });
		std::string cmd;
		for (const auto &a : c)
			cmd += a + " ";
		EXPECT_EQ(r.status, 1) << cmd << r.err;
		EXPECT_FALSE(r.err.empty()) << cmd;
	}
	std::filesystem::remove_all("/dev/shm/beluga-tooltest-usage");
}

TEST(Tool, MissingDriverExitsFourAndSaysWhatToDo)
{
	auto r = run({ "--backend", "kernel", "--device", "/nonexistent/beluga", "info" });
	EXPECT_EQ(r.status, 4);
	EXPECT_NE(r.err.find("BELUGA_BACKEND=user"), std::string::npos) << r.err;
}

// ---- per backend -------------------------------------------------------------------

class ToolBackend : public ::testing::TestWithParam<std::string> {
protected:
	void SetUp() override
	{
		if (GetParam() == "kernel" && access("/dev/beluga", F_OK))
			GTEST_SKIP() << "no /dev/beluga here: the kernel backend runs in the VM suite";
		static int n;
		dir_ = "/dev/shm/beluga-tooltest-" + std::to_string(getpid()) + "-" +
		       std::to_string(++n);
		name_ = "tt-" + std::to_string(getpid()) + "-" + std::to_string(n);
		env_ = { { "BELUGA_BACKEND", GetParam() } };
		if (GetParam() == "user") {
			env_.push_back({ "BELUGA_USER_DIR", dir_ });
			env_.push_back({ "BELUGA_HUGETLBFS", "none" });
		}
	}
	void TearDown() override
	{
		run({ "destroy", "-f", name_ }, env_);
		std::filesystem::remove_all(dir_);
	}
	Result tool(const std::vector<std::string> &args, bool as_nobody = false)
	{
		return run(args, env_, as_nobody);
	}

	std::string dir_, name_;
	std::vector<std::pair<std::string, std::string>> env_;
};

TEST_P(ToolBackend, RegionLifecycleExitCodes)
{
	auto c = tool({ "create", name_, "4M", "--mode", "640" });
	ASSERT_EQ(c.status, 0) << c.err;
	EXPECT_NE(c.out.find("created " + name_), std::string::npos);
	auto again = tool({ "create", name_, "4M" });
	EXPECT_EQ(again.status, 5);
	EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;

	auto st = tool({ "stat", name_, "--json" });
	ASSERT_EQ(st.status, 0) << st.err;
	auto j = json::parse(st.out);
	EXPECT_EQ(j["name"], name_);
	EXPECT_EQ(j["size"], 4u << 20);
	EXPECT_EQ(j["mode"], "0640");
	EXPECT_EQ(j["nr_chunks"], 2);

	auto lay = tool({ "stat", name_, "--layout", "--json" });
	ASSERT_EQ(lay.status, 0) << lay.err;
	EXPECT_EQ(json::parse(lay.out)["layout"].size(), 2u);
	auto human = tool({ "stat", name_ });
	EXPECT_NE(human.out.find("4.0 MiB"), std::string::npos) << human.out;

	auto ls = tool({ "ls", "--json" });
	ASSERT_EQ(ls.status, 0);
	bool found = false;
	for (const auto &r : json::parse(ls.out))
		found |= r["name"] == name_;
	EXPECT_TRUE(found) << ls.out;
	auto bytes = tool({ "ls", "--bytes" });
	EXPECT_NE(bytes.out.find("4194304"), std::string::npos) << bytes.out;

	EXPECT_EQ(tool({ "destroy", name_ }).status, 0);
	auto gone = tool({ "destroy", name_ });
	EXPECT_EQ(gone.status, 2);
	EXPECT_NE(gone.err.find("beluga-tool ls"), std::string::npos) << gone.err;
	EXPECT_EQ(tool({ "destroy", "-f", name_ }).status, 0);
	EXPECT_EQ(tool({ "stat", name_ }).status, 2);
}

// Shared regions: the user backend refuses (exit 4); the driver refuses a
// node source (exit 1) and, with a range source, defines, lists, refuses an
// overlap (8) and a taken name (5), and undefines.
TEST_P(ToolBackend, SharedRegions)
{
	auto list = tool({ "shared", "list", "--json" });
	ASSERT_EQ(list.status, 0) << list.err;
	EXPECT_TRUE(json::parse(list.out).is_array());
	if (GetParam() == "user") {
		auto r = tool({ "shared", "define", name_, "-s", "0", "-o", "0", "-S", "2M" });
		EXPECT_EQ(r.status, 4);
		EXPECT_NE(r.err.find("kernel backend"), std::string::npos) << r.err;
		return;
	}
	auto info = json::parse(tool({ "info", "--json" }).out);
	int node = -1, range = -1;
	std::uint64_t range_bytes = 0;
	for (const auto &s : info["sources"]) {
		if (s["kind"] == "node" && node < 0)
			node = s["index"];
		if (s["kind"] == "range" && range < 0) {
			range = s["index"];
			range_bytes = s["total_bytes"];
		}
	}
	if (node >= 0) {
		auto r = tool({ "shared", "define", name_, "-s", std::to_string(node), "-o", "0",
				"-S", "2M" });
		EXPECT_EQ(r.status, 1);
		EXPECT_NE(r.err.find("only range sources"), std::string::npos) << r.err;
	}
	if (range < 0)
		GTEST_SKIP() << "no range source in this boot: define not exercised";
	const std::string off = std::to_string(range_bytes - (4u << 20));
	auto d = tool({ "shared", "define", name_, "-s", std::to_string(range), "-o", off, "-S",
			"4M", "--mode", "0640", "--uid", "65534", "--json" });
	ASSERT_EQ(d.status, 0) << d.err;
	auto j = json::parse(d.out);
	EXPECT_EQ(j["offset"], range_bytes - (4u << 20));
	EXPECT_EQ(j["uid"], 65534);
	EXPECT_EQ(tool({ "shared", "define", name_, "-s", std::to_string(range), "-o", "0", "-S",
			 "2M" }).status,
		  5);
	auto overlap = tool({ "shared", "define", name_ + "-b", "-s", std::to_string(range), "-o",
			      off, "-S", "2M" });
	EXPECT_EQ(overlap.status, 8);
	EXPECT_NE(overlap.err.find("overlaps"), std::string::npos) << overlap.err;
	auto ls = tool({ "shared", "list" });
	EXPECT_NE(ls.out.find(name_), std::string::npos) << ls.out;
	EXPECT_EQ(tool({ "shared", "undefine", name_ }).status, 0);
	EXPECT_EQ(tool({ "shared", "undefine", name_ }).status, 2);
	EXPECT_EQ(tool({ "shared", "undefine", "-f", name_ }).status, 0);
}

// wipe of a private region (no KV cache in it): a missing region is exit 2;
// without --yes and no terminal to ask on, exit 1 and nothing written;
// with it, the region is zeroed and the report says so (JSON, progress on
// stderr with --progress).  The bytes themselves are checked where the test
// can map the region (tests/kvcache/test_tool_kv.cpp, the multihost VM
// profile).
TEST_P(ToolBackend, WipeAsksThenZeroes)
{
	ASSERT_EQ(tool({ "create", name_, "4M" }).status, 0);
	auto none = tool({ "wipe", name_ + "-none", "--yes" });
	EXPECT_EQ(none.status, 2) << none.err;
	// --watch-ms 0: no second look at the empty region (the JSON run below
	// takes the default one).
	auto ask = tooltest::run_program(g_tool, { "wipe", name_, "--watch-ms", "0" },
					 { env_, false, true });
	EXPECT_EQ(ask.status, 1) << ask.err;
	EXPECT_NE(ask.err.find("add --yes"), std::string::npos) << ask.err;
	EXPECT_EQ(ask.out, "");
	auto w = tool({ "wipe", name_, "--yes", "--json", "--progress" });
	ASSERT_EQ(w.status, 0) << w.err;
	auto j = json::parse(w.out);
	EXPECT_EQ(j["region"], name_);
	EXPECT_EQ(j["wiped"], true);
	EXPECT_EQ(j["bytes"], 4u << 20);
	EXPECT_EQ(j["shared"], false);
	EXPECT_TRUE(j["cache"].is_null());
	EXPECT_TRUE(j["refusals"].empty());
	EXPECT_EQ(j["forced"], false);
	EXPECT_NE(w.err.find("wiping " + name_ + ": 4.0 MiB of 4.0 MiB (100 %)"), std::string::npos)
		<< w.err;
	auto h = tool({ "wipe", name_, "-y", "--watch-ms", "0" });
	EXPECT_EQ(h.status, 0) << h.err;
	EXPECT_NE(h.out.find("wiped " + name_ + ": 4.0 MiB zeroed in "), std::string::npos) << h.out;
	EXPECT_NE(h.out.find("it held no complete KV cache"), std::string::npos) << h.out;
}

TEST_P(ToolBackend, InfoJsonDescribesThePool)
{
	auto r = tool({ "info", "--json" });
	ASSERT_EQ(r.status, 0) << r.err;
	auto j = json::parse(r.out);
	EXPECT_EQ(j["backend"], GetParam());
	EXPECT_GT(j["total_bytes"].get<std::uint64_t>(), 0u);
	EXPECT_EQ(j["chunk_size"], 2u << 20);
	ASSERT_FALSE(j["sources"].empty());
	EXPECT_EQ(j["sources"][0]["kind"], "node");
	auto text = tool({ "info" });
	EXPECT_EQ(text.status, 0);
	EXPECT_NE(text.out.find("backend:     " + GetParam()), std::string::npos) << text.out;
}

TEST_P(ToolBackend, GpuAnswersCleanlyWithOrWithoutAGpu)
{
	auto r = tool({ "gpu", "--json" });
	EXPECT_TRUE(r.status == 0 || r.status == 7) << r.status << r.err;
	auto j = json::parse(r.out);
	EXPECT_TRUE(j["cuda_support"].is_boolean());
	if (r.status == 7) {
		EXPECT_TRUE(j.contains("error"));
	}
	ASSERT_EQ(tool({ "create", name_, "2M" }).status, 0);
	auto reg = tool({ "gpu", "--register", name_ });
	EXPECT_TRUE(reg.status == 0 || reg.status == 7) << reg.err;
}

TEST_P(ToolBackend, TopRunsWithoutATerminal)
{
	ASSERT_EQ(tool({ "create", name_, "2M" }).status, 0);
	auto once = tool({ "top", "--once" });
	ASSERT_EQ(once.status, 0) << once.err;
	EXPECT_EQ(count_lines_with(once.out, "beluga top"), 1);
	EXPECT_EQ(once.out.find("\033["), std::string::npos) << "no terminal codes in a pipe";
	EXPECT_NE(once.out.find(name_), std::string::npos);
	auto two = tool({ "top", "-n", "2", "-i", "0.05" });
	EXPECT_EQ(count_lines_with(two.out, "beluga top"), 2);
	auto js = tool({ "top", "-n", "2", "-i", "0.05", "--json" });
	ASSERT_EQ(js.status, 0);
	std::istringstream in(js.out);
	int frames = 0;
	for (std::string line; std::getline(in, line); frames++) {
		auto j = json::parse(line);
		EXPECT_TRUE(j.contains("pool"));
		EXPECT_TRUE(j["regions"].is_array());
		if (GetParam() == "kernel") {
			EXPECT_TRUE(j.contains("counters"));
		}
	}
	EXPECT_EQ(frames, 2);
}

TEST_P(ToolBackend, OtherUsersGetExitCodeThree)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to drop to uid 65534";
	if (run({ "--version" }, {}, true).status == tooltest::kExecFailed)
		GTEST_SKIP() << "uid 65534 cannot run " << g_tool
			     << " (a parent directory is not searchable by others)";
	ASSERT_EQ(tool({ "create", name_, "2M", "--mode", "0600" }).status, 0);
	// user: the sticky pool directory refuses (EPERM); kernel: nobody may
	// not even open /dev/beluga (0660 root) (EACCES).  Both are exit code 3.
	auto d = tool({ "destroy", name_ }, true);
	EXPECT_EQ(d.status, 3) << d.err;
	EXPECT_NE(d.err.find(GetParam() == "user" ? "not permitted" : "ermission denied"),
		  std::string::npos) << d.err;
	EXPECT_EQ(tool({ "stat", name_, "--layout" }, true).status, 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, ToolBackend, ::testing::Values("user", "kernel"),
			 [](const auto &info) { return info.param; });

} // namespace

int main(int argc, char **argv)
{
	std::vector<char *> rest{ argv[0] };
	std::string filter;

	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--tool") && i + 1 < argc)
			g_tool = argv[++i];
		else if (!std::strcmp(argv[i], "--backend") && i + 1 < argc)
			filter = std::string("--gtest_filter=Tool.*:*/") + argv[++i];
		else
			rest.push_back(argv[i]);
	}
	if (!filter.empty())
		rest.push_back(filter.data());
	int n = static_cast<int>(rest.size());
	::testing::InitGoogleTest(&n, rest.data());
	return RUN_ALL_TESTS();
}
