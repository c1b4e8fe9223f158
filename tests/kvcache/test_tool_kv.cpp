// SPDX-License-Identifier: Apache-2.0
// `beluga-tool kv` as a user runs it, on a cache this test fills: exit
// codes, JSON that parses and says what the test did (hits, occupancy,
// evictions, reclaimed leases, pins, fingerprint), Prometheus text checked
// against the exposition format, the HTTP endpoint on loopback answered and
// stopped by SIGTERM, the tool never writing to the cache (but for
// `wipe`, refused while the cache is in use).
//
// Options (before gtest's): --tool PATH (default: the one built alongside,
// else ../../tools/beluga-tool next to this program, as in the VM image),
// --backend user|kernel (default user; kernel needs /dev/beluga).
#include "kvc_util.hpp"

#include <beluga/beluga.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "run_tool.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#ifndef KVC_TOOL_PATH
#define KVC_TOOL_PATH "beluga-tool"
#endif

namespace {

using json = nlohmann::json;
using namespace kvt;

std::string g_tool = KVC_TOOL_PATH;
std::string g_backend = "user";

using tooltest::Result;

Result run(const std::vector<std::string> &args)
{
	return tooltest::run_program(g_tool, args);
}

// ---- Prometheus text format 0.0.4, checked line by line ----

::testing::AssertionResult valid_prometheus(const std::string &text)
{
	static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
	static const std::regex type(
		R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
	static const std::regex sample(
		R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf))");
	std::map<std::string, std::string> types;
	std::set<std::string> helps, series;
	std::istringstream in(text);
	int n = 0;
	for (std::string line; std::getline(in, line); n++) {
		std::smatch m;
		if (std::regex_match(line, m, help)) {
			if (!helps.insert(m[1]).second)
				return ::testing::AssertionFailure() << "second HELP: " << line;
		} else if (std::regex_match(line, m, type)) {
			if (types.count(m[1]))
				return ::testing::AssertionFailure() << "second TYPE: " << line;
			if (m[2] == "counter" && !std::string(m[1]).ends_with("_total"))
				return ::testing::AssertionFailure() << "counter without _total: " << line;
			types[m[1]] = m[2];
		} else if (std::regex_match(line, m, sample)) {
			if (!types.count(m[1]))
				return ::testing::AssertionFailure() << "sample before its TYPE: " << line;
			std::string id = line.substr(0, line.rfind(' '));
			if (!series.insert(id).second)
				return ::testing::AssertionFailure() << "series twice: " << line;
		} else {
			return ::testing::AssertionFailure() << "not exposition format: '" << line << "'";
		}
	}
	if (!text.empty() && text.back() != '\n')
		return ::testing::AssertionFailure() << "no final newline";
	if (series.empty())
		return ::testing::AssertionFailure() << "no samples in " << n << " lines";
	return ::testing::AssertionSuccess();
}

// The value of one sample, -1 if absent.
double sample_value(const std::string &text, const std::string &series)
{
	std::istringstream in(text);
	for (std::string line; std::getline(in, line);)
		if (line.rfind(series + " ", 0) == 0)
			return std::stod(line.substr(series.size() + 1));
	return -1;
}

// ---- a cache with known contents ----

class ToolKv : public ::testing::Test {
protected:
	static constexpr size_t kPayload = 64 * 1024;

	void SetUp() override
	{
		if (g_backend == "kernel" && access("/dev/beluga", F_OK))
			GTEST_SKIP() << "no /dev/beluga: the kernel backend runs in the VM suite";
		static int seq;
		name_ = "kvtool-" + std::to_string(getpid()) + "-" + std::to_string(++seq);
		dir_ = "/dev/shm/" + name_;
		setenv("BELUGA_BACKEND", g_backend.c_str(), 1);
		setenv("BELUGA_USER_DIR", dir_.c_str(), 1);
		setenv("BELUGA_HUGETLBFS", "none", 1);
		ASSERT_EQ(beluga_pool_open(nullptr, &pool_), 0);
		beluga_kvc_config c = config(opaque_fp(kPayload, "tool-test-model"));
		c.capacity_blocks = 20;
		c.high_watermark_pct = 100;
		c.low_watermark_pct = 100;
		ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &c.fingerprint, &c, 8 << 20, 0600,
					  nullptr, &kv_), 0)
			<< beluga_kvc_last_error();
		fill();
	}
	void TearDown() override
	{
		if (kv_ && held_.data)
			beluga_kvc_unpin(kv_, &held_, 1);
		beluga_kvc_detach(kv_);
		if (pool_) {
			beluga_region_destroy(pool_, name_.c_str());
			beluga_pool_close(pool_);
		}
		std::filesystem::remove_all(dir_);
	}
	// 24 puts into 20 blocks (4 evictions), 10 hits and 2 misses, one pin
	// held, one dead process's session reclaimed.
	void fill()
	{
		for (uint64_t i = 0; i < 24; i++) {
			long n = 0;
			put_block(kv_, i, kPayload, &n);
			ASSERT_EQ(n, 1);
		}
		int hits = 0;
		for (uint64_t i = 12; i < 24; i++)
			hits += int(get_block(kv_, i, kPayload).batch);
		ASSERT_EQ(hits, 12); // the 4 evicted were among the first 12
		get_block(kv_, 1000, kPayload); // a miss
		int r;
		uint8_t key[1][32];
		make_key(23, pinned_key_);
		std::memcpy(key[0], pinned_key_, 32);
		ASSERT_EQ(beluga_kvc_pin(kv_, key, 1, 0, &held_, &r), 1);
		// A process that dies attached: its session is reclaimed next.
		pid_t pid = fork();
		if (pid == 0) {
			beluga_pool *p = nullptr;
			beluga_kvc *k = nullptr;
			beluga_kvc_fingerprint fp = opaque_fp(kPayload, "tool-test-model");
			if (beluga_pool_open(nullptr, &p) ||
			    beluga_kvc_open(p, name_.c_str(), &fp, nullptr, 0, 0, nullptr, &k))
				_exit(1);
			_exit(0); // without detaching
		}
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		ASSERT_EQ(beluga_kvc_reclaim(kv_), 1);
	}
	std::string region_bytes()
	{
		beluga_region *r = nullptr;
		beluga_mapping *m = nullptr;
		std::string s;
		if (!beluga_region_open(pool_, name_.c_str(), BELUGA_REGION_RDONLY, &r) &&
		    !beluga_region_map(r, 0, 0, BELUGA_PROT_READ, &m))
			s.assign(static_cast<const char *>(beluga_mapping_addr(m)), beluga_mapping_size(m));
		beluga_mapping_unmap(m);
		beluga_region_close(r);
		return s;
	}

	std::string name_, dir_;
	beluga_pool *pool_ = nullptr;
	beluga_kvc *kv_ = nullptr;
	beluga_kvc_ref held_{};
	uint8_t pinned_key_[32];
};

std::string hex(const uint8_t *k)
{
	char b[65];
	for (int i = 0; i < 32; i++)
		std::snprintf(b + 2 * i, 3, "%02x", k[i]);
	return b;
}

TEST_F(ToolKv, UsageErrorsExitOne)
{
	for (const auto &args : std::vector<std::vector<std::string>>{
		     {"kv"}, {"kv", "bogus"}, {"kv", "ls"}, {"kv", "stats", "--bogus"},
		     {"kv", "inspect", name_, "xyz"}, {"kv", "inspect", name_, std::string(64, 'g')},
		     {"kv", "metrics", name_, "--listen", "nonsense"},
		     {"kv", "metrics", name_, "--listen", "0.0.0.0:0"}}) {
		auto r = run(args);
		EXPECT_EQ(r.status, 1) << args.back() << ": " << r.err;
		EXPECT_FALSE(r.err.empty()) << args.back();
	}
	auto remote = run({"kv", "metrics", name_, "--listen", "0.0.0.0:0"});
	EXPECT_NE(remote.err.find("--allow-remote"), std::string::npos) << remote.err;
	auto help = run({"kv", "--help"});
	EXPECT_EQ(help.status, 0);
	for (const char *sub : {"stats", "ls", "inspect", "metrics"})
		EXPECT_NE(help.out.find(sub), std::string::npos) << sub;
}

TEST_F(ToolKv, MissingCacheExitsTwo)
{
	auto none = run({"kv", "stats", name_ + "-none"});
	EXPECT_EQ(none.status, 2) << none.err;
	beluga_region *r = nullptr;
	std::string plain = name_ + "-plain";
	ASSERT_EQ(beluga_region_create(pool_, plain.c_str(), 2 << 20, 0600, 0, BELUGA_ALL_SOURCES, &r), 0);
	beluga_region_close(r);
	auto notcache = run({"kv", "ls", plain});
	EXPECT_EQ(notcache.status, 2) << notcache.err;
	EXPECT_NE(notcache.err.find("formatted"), std::string::npos) << notcache.err;
	beluga_region_destroy(pool_, plain.c_str());
	uint8_t k[32];
	make_key(5000, k);
	auto gone = run({"kv", "inspect", name_, hex(k)});
	EXPECT_EQ(gone.status, 2);
	EXPECT_NE(gone.err.find("not cached"), std::string::npos) << gone.err;
}

TEST_F(ToolKv, StatsJsonSaysWhatHappened)
{
	auto r = run({"kv", "stats", name_, "--json"});
	ASSERT_EQ(r.status, 0) << r.err;
	json j = json::parse(r.out);
	EXPECT_EQ(j["cache"], name_);
	EXPECT_EQ(j["fingerprint"]["model_id"], "tool-test-model");
	EXPECT_EQ(j["fingerprint"]["payload_bytes"], kPayload);
	EXPECT_EQ(j["counters"]["puts"], 24);
	EXPECT_EQ(j["counters"]["evictions"], 4);
	EXPECT_EQ(j["counters"]["get_hits"], 13); // 12 gets and the pin
	EXPECT_EQ(j["counters"]["get_misses"], 1);
	EXPECT_NEAR(j["hit_rate"].get<double>(), 13.0 / 14, 1e-9);
	EXPECT_EQ(j["counters"]["sessions_reclaimed"], 1);
	EXPECT_EQ(j["hosts"][0]["used_blocks"], 20);
	EXPECT_EQ(j["hosts"][0]["capacity_blocks"], 20);
	EXPECT_EQ(j["hosts"][0]["policy"], "CLOCK");
	EXPECT_EQ(j["blocks_cached"], 20);
	EXPECT_EQ(j["held_pins"], 1);
	EXPECT_EQ(j["live_sessions"], 1);
	EXPECT_EQ(j["errors"], 0);
	// Every cache, as text.
	auto all = run({"kv", "stats"});
	ASSERT_EQ(all.status, 0) << all.err;
	for (const char *field : {"hit rate:", "occupancy:", "evictions:", "reclaimed:", "fingerprint:"})
		EXPECT_NE(all.out.find(field), std::string::npos) << field;
	EXPECT_NE(all.out.find(name_), std::string::npos);
	EXPECT_NE(all.out.find("20 of 20 blocks"), std::string::npos) << all.out;
}

TEST_F(ToolKv, ListAndInspectBlocks)
{
	auto r = run({"kv", "ls", name_, "--json", "--verify"});
	ASSERT_EQ(r.status, 0) << r.err;
	json j = json::parse(r.out);
	ASSERT_EQ(j.size(), 20u);
	int pinned = 0;
	for (const auto &b : j) {
		EXPECT_EQ(b["bytes"], kPayload);
		EXPECT_EQ(b["checksum_state"], "ok");
		EXPECT_EQ(b["key"].get<std::string>().size(), 64u);
		EXPECT_GE(b["age_s"].get<double>(), 0.0);
		pinned += b["pins"].get<int>();
	}
	EXPECT_EQ(pinned, 1);
	auto text = run({"kv", "ls", name_, "-n", "3"});
	ASSERT_EQ(text.status, 0);
	EXPECT_NE(text.out.find("3 blocks"), std::string::npos) << text.out;
	auto one = run({"kv", "inspect", name_, hex(pinned_key_), "--json"});
	ASSERT_EQ(one.status, 0) << one.err;
	json b = json::parse(one.out);
	EXPECT_EQ(b["key"], hex(pinned_key_));
	EXPECT_EQ(b["pins"], 1);
	EXPECT_EQ(b["checksum_state"], "ok");
	EXPECT_TRUE(b["last_read_s"].is_number());
}

TEST_F(ToolKv, MetricsAreValidPrometheusText)
{
	auto r = run({"kv", "metrics", name_});
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_TRUE(valid_prometheus(r.out)) << r.out;
	std::string h = "{cache=\"" + name_ + "\",host=\"0\"}";
	EXPECT_EQ(sample_value(r.out, "beluga_kv_puts_total" + h), 24);
	EXPECT_EQ(sample_value(r.out, "beluga_kv_evictions_total" + h), 4);
	EXPECT_EQ(sample_value(r.out, "beluga_kv_sessions_reclaimed_total" + h), 1);
	EXPECT_EQ(sample_value(r.out, "beluga_kv_used_blocks" + h), 20);
	EXPECT_NEAR(sample_value(r.out, "beluga_kv_hit_ratio{cache=\"" + name_ + "\"}"), 13.0 / 14,
		    1e-9);
	EXPECT_NE(r.out.find("model=\"tool-test-model\""), std::string::npos);
}

TEST_F(ToolKv, TheToolWritesNothing)
{
	std::string before = region_bytes();
	ASSERT_FALSE(before.empty());
	for (const auto &args : std::vector<std::vector<std::string>>{
		     {"kv", "stats", name_}, {"kv", "ls", name_, "--verify"},
		     {"kv", "inspect", name_, hex(pinned_key_)}, {"kv", "metrics"}})
		ASSERT_EQ(run(args).status, 0) << args[1];
	EXPECT_TRUE(before == region_bytes()) << "beluga-tool kv changed the cache";
}

// ---- the HTTP endpoint ----

struct Server {
	pid_t pid = -1;
	int port = -1;
	int out = -1;
};

Server start_server(const std::vector<std::string> &args)
{
	int p[2];
	Server s;
	if (pipe2(p, O_CLOEXEC))
		return s;
	s.pid = fork();
	if (s.pid == 0) {
		dup2(p[1], 1);
		auto argv = tooltest::argv_of(g_tool, args);
		execv(g_tool.c_str(), argv.data());
		_exit(98);
	}
	close(p[1]);
	s.out = p[0];
	std::string line;
	char c;
	pollfd pf{s.out, POLLIN, 0};
	while (line.find('\n') == std::string::npos && poll(&pf, 1, 20000) > 0 && read(s.out, &c, 1) == 1)
		line += c;
	std::smatch m;
	static const std::regex url(R"(http://127\.0\.0\.1:([0-9]+)/metrics)");
	if (std::regex_search(line, m, url))
		s.port = std::stoi(m[1]);
	return s;
}

std::string http(int port, const std::string &request)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(uint16_t(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	std::string resp;
	if (!connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) &&
	    write(fd, request.data(), request.size()) == ssize_t(request.size())) {
		char buf[4096];
		pollfd pf{fd, POLLIN, 0};
		for (ssize_t n; poll(&pf, 1, 20000) > 0 && (n = read(fd, buf, sizeof(buf))) > 0;)
			resp.append(buf, size_t(n));
	}
	close(fd);
	return resp;
}

int wait_exit(pid_t pid)
{
	int st = -1;
	for (int i = 0; i < 2000; i++) { // 20 s: a loaded machine, a VM
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

TEST_F(ToolKv, HttpEndpointAnswersAndStopsOnSigterm)
{
	Server s = start_server({"kv", "metrics", name_, "--listen", "127.0.0.1:0"});
	ASSERT_GT(s.port, 0) << "no listening line";
	std::string resp = http(s.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	ASSERT_EQ(resp.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << resp.substr(0, 200);
	EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
	std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
	EXPECT_TRUE(valid_prometheus(body)) << body;
	EXPECT_EQ(sample_value(body, "beluga_kv_puts_total{cache=\"" + name_ + "\",host=\"0\"}"), 24);
	EXPECT_EQ(http(s.port, "GET /other HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
	EXPECT_EQ(http(s.port, "POST /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
	EXPECT_EQ(http(s.port, "nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
	EXPECT_EQ(http(s.port, std::string(8192, 'x')).rfind("HTTP/1.1 431", 0), 0u); // 8 KiB, no end
	kill(s.pid, SIGTERM);
	EXPECT_EQ(wait_exit(s.pid), 0);
	std::string rest;
	char buf[256];
	for (ssize_t n; (n = read(s.out, buf, sizeof(buf))) > 0;)
		rest.append(buf, size_t(n));
	close(s.out);
	EXPECT_NE(rest.find("stopping"), std::string::npos) << rest;
}

TEST_F(ToolKv, HttpEndpointStopsAfterMaxRequests)
{
	Server s = start_server({"kv", "metrics", "--listen", "127.0.0.1:0", "--max-requests", "1"});
	ASSERT_GT(s.port, 0);
	std::string resp = http(s.port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	EXPECT_EQ(resp.rfind("HTTP/1.1 200 OK", 0), 0u);
	EXPECT_EQ(resp.substr(resp.find("\r\n\r\n") + 4), ""); // HEAD: no body
	EXPECT_EQ(wait_exit(s.pid), 0);
	close(s.out);
}

// wipe: refused while a process is attached (this one), nothing written;
// once it detached, every byte zero, and the region takes a new cache.
TEST_F(ToolKv, WipeRefusedWhileAttachedThenZeroes)
{
	std::string before = region_bytes();
	ASSERT_EQ(before.size(), size_t(8) << 20);
	auto r = run({"wipe", name_, "--yes"});
	EXPECT_EQ(r.status, 8) << r.err;
	EXPECT_NE(r.err.find("1 process(es) attached"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("nothing written"), std::string::npos) << r.err;
	r = run({"wipe", name_, "--yes", "--json"});
	EXPECT_EQ(r.status, 8) << r.err;
	json j = json::parse(r.out);
	EXPECT_EQ(j["wiped"], false);
	EXPECT_FALSE(j["refusals"].empty());
	EXPECT_EQ(j["cache"]["model_id"], "tool-test-model");
	EXPECT_EQ(j["cache"]["live_sessions"], 1);
	EXPECT_TRUE(region_bytes() == before) << "a refused wipe wrote to the region";

	ASSERT_EQ(beluga_kvc_unpin(kv_, &held_, 1), 0);
	held_ = {};
	beluga_kvc_detach(kv_);
	kv_ = nullptr;
	r = run({"wipe", name_, "--yes", "--json"});
	ASSERT_EQ(r.status, 0) << r.err;
	j = json::parse(r.out);
	EXPECT_EQ(j["wiped"], true);
	EXPECT_EQ(j["bytes"], 8u << 20);
	EXPECT_EQ(j["forced"], false);
	EXPECT_EQ(j["cache"]["live_sessions"], 0); // the cache it found, now gone
	std::string after = region_bytes();
	EXPECT_EQ(after.size(), size_t(8) << 20);
	EXPECT_EQ(after.find_first_not_of('\0'), std::string::npos) << "a byte was left";
	r = run({"wipe", name_, "--yes"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("it held no complete KV cache"), std::string::npos) << r.out;

	// A cache of another model is formatted in it, as in fresh memory.
	beluga_kvc_config c = config(opaque_fp(kPayload, "another-model"));
	beluga_kvc_attach_opts o;
	beluga_kvc_attach_opts_init(&o);
	o.flags = BELUGA_KVC_ATTACH_FORMAT;
	ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &c.fingerprint, &c, 8 << 20, 0600, &o, &kv_), 0)
		<< beluga_kvc_last_error();
	r = run({"kv", "stats", name_, "--json"});
	ASSERT_EQ(r.status, 0) << r.err;
	j = json::parse(r.out);
	EXPECT_EQ(j["fingerprint"]["model_id"], "another-model");
	EXPECT_EQ(j["blocks_cached"], 0);
}

} // namespace

// ---- several hosts: stats per host, and taking a dead host over ----

// A cache of two hosts in a user-backend pool of its own; this process
// formats it as host 0 (kv0_, lease 300 ms: the claim windows and the
// takeover's watch follow it); tests add host 1 as a child process.
class ToolKvHosts : public ::testing::Test {
protected:
	static constexpr size_t kPayload = 64 * 1024;

	void SetUp() override
	{
		if (g_backend == "kernel")
			GTEST_SKIP() << "user backend only (the VM suite covers the driver)";
		name_ = "kvhosts-" + std::to_string(getpid());
		dir_ = "/dev/shm/" + name_;
		setenv("BELUGA_BACKEND", "user", 1);
		setenv("BELUGA_USER_DIR", dir_.c_str(), 1);
		setenv("BELUGA_HUGETLBFS", "none", 1);
		ASSERT_EQ(beluga_pool_open(nullptr, &pool_), 0);
		c_ = config(opaque_fp(kPayload, "tool-hosts-model"), 2);
		beluga_kvc_attach_opts_init(&o_);
		o_.lease_ms = 300;
		ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &c_.fingerprint, &c_, 8 << 20, 0600, &o_,
					  &kv0_), 0)
			<< beluga_kvc_last_error();
	}
	void TearDown() override
	{
		if (pid_ > 0) { // a failed test left host 1 running
			kill(pid_, SIGKILL);
			waitpid(pid_, nullptr, 0);
		}
		beluga_kvc_detach(kv0_);
		if (pool_) {
			beluga_region_destroy(pool_, name_.c_str());
			beluga_pool_close(pool_);
		}
		std::filesystem::remove_all(dir_);
	}

	// Host 1: a child process that attaches with host index 1, runs @body
	// (false: it fails), tells the test it is ready (ready_host1()) and
	// waits until release_host1(); it exits attached, so its heartbeat stops.
	void start_host1(const std::function<bool(beluga_kvc *)> &body)
	{
		ASSERT_EQ(pipe(ready_), 0);
		ASSERT_EQ(pipe(go_), 0);
		pid_ = fork();
		ASSERT_GE(pid_, 0);
		if (pid_ == 0) {
			beluga_pool *p = nullptr;
			beluga_kvc *k = nullptr;
			auto o1 = o_;
			o1.host_id = 1;
			if (beluga_pool_open(nullptr, &p) ||
			    beluga_kvc_open(p, name_.c_str(), &c_.fingerprint, nullptr, 0, 0, &o1, &k))
				_exit(1);
			if (!body(k) || write(ready_[1], "r", 1) != 1)
				_exit(2);
			char x;
			_exit(read(go_[0], &x, 1) == 1 ? 0 : 3);
		}
		char x;
		ASSERT_EQ(read(ready_[0], &x, 1), 1);
	}
	// Lets host 1 exit; whether it did all it was asked.
	::testing::AssertionResult release_host1()
	{
		int st = 0;
		if (write(go_[1], "g", 1) != 1 || waitpid(pid_, &st, 0) != pid_)
			return ::testing::AssertionFailure() << "host 1 did not exit";
		pid_ = -1;
		for (int fd : { ready_[0], ready_[1], go_[0], go_[1] })
			close(fd);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return ::testing::AssertionFailure() << "host 1 ended with status " << st;
		return ::testing::AssertionSuccess();
	}

	std::string name_, dir_;
	beluga_pool *pool_ = nullptr;
	beluga_kvc_config c_{};
	beluga_kvc_attach_opts o_{};
	beluga_kvc *kv0_ = nullptr;
	int ready_[2] = { -1, -1 }, go_[2] = { -1, -1 };
	pid_t pid_ = -1;
};

// Host 0 is this process, host 1 a child on the same machine (its own
// boot id is this machine's too: the tool sees the child's process alive).
TEST_F(ToolKvHosts, StatsShowEveryHostAndTakeoverNeedsADeadHost)
{
	const std::string &name = name_;
	beluga_kvc *kv0 = kv0_;
	start_host1([](beluga_kvc *k) {
		long n = 0;
		put_block(k, 7, kPayload, &n);
		return n == 1;
	});
	// Host 0 reads host 1's block (a hit) and a key nobody stored (a miss):
	// its own hit rate is 1 of 2, host 1's 0 of 0.
	{
		std::vector<uint8_t> buf(kPayload);
		beluga_kvc_get g[2] = {};
		make_key(7, g[0].key);
		make_key(8, g[1].key);
		for (auto &gi : g)
			gi.dst = buf.data(), gi.cap = buf.size();
		int res[2];
		beluga_kvc_get_batch(kv0, g, 2, res);
		ASSERT_EQ(res[0], int(kPayload));
		ASSERT_EQ(res[1], -ENOENT);
	}
	// Host 1 is alive (its process runs here): refused, exit status 8 (busy).
	Result r = run({ "kv", "takeover", name, "--host", "1", "--by", "0" });
	EXPECT_EQ(r.status, 8) << r.out << r.err;
	EXPECT_NE(r.err.find("alive"), std::string::npos) << r.err;
	r = run({ "kv", "takeover", name, "--host", "1", "--by", "1" });
	EXPECT_EQ(r.status, 1) << r.err;
	// Every host in stats: attached, occupancy, heartbeat, state.
	r = run({ "kv", "stats", name, "--json", "--watch-ms", "0" });
	ASSERT_EQ(r.status, 0) << r.err;
	json j = json::parse(r.out);
	ASSERT_EQ(j["hosts"].size(), 2u);
	for (int h = 0; h < 2; h++) {
		const json &hj = j["hosts"][size_t(h)];
		EXPECT_EQ(hj["attached"], true) << h;
		EXPECT_EQ(hj["processes"], 1) << h;
		EXPECT_GE(hj["heartbeat"].get<uint64_t>(), 1u) << h;
		EXPECT_EQ(hj["lease_ms"], 300) << h;
		EXPECT_EQ(hj["state"], "silent") << h; // one look cannot tell more
		EXPECT_EQ(hj["served_by"], h);
		EXPECT_FALSE(hj["name"].get<std::string>().empty());
	}
	EXPECT_EQ(j["hosts"][1]["used_blocks"], 1);
	EXPECT_EQ(j["heartbeat_watch_ms"], 0);
	EXPECT_EQ(j["hosts"][0]["gets"], 2);
	EXPECT_EQ(j["hosts"][0]["get_hits"], 1);
	EXPECT_DOUBLE_EQ(j["hosts"][0]["hit_rate"].get<double>(), 0.5);
	EXPECT_EQ(j["hosts"][1]["gets"], 0);
	EXPECT_DOUBLE_EQ(j["hosts"][1]["hit_rate"].get<double>(), 0.0);
	r = run({ "kv", "metrics", name });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_TRUE(valid_prometheus(r.out));
	EXPECT_EQ(sample_value(r.out, "beluga_kv_host_up{cache=\"" + name + "\",host=\"1\"}"), 1);
	EXPECT_EQ(sample_value(r.out, "beluga_kv_host_processes{cache=\"" + name + "\",host=\"1\"}"), 1);
	r = run({ "kv", "stats", name, "--watch-ms", "0" });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("hosts:        2 indexes; heartbeats watched for 0.0 s"), std::string::npos)
		<< r.out;
	for (const char *host : { "host 0:       \"", "host 1:       \"" }) {
		size_t at = r.out.find(host);
		ASSERT_NE(at, std::string::npos) << host << "\n" << r.out;
		std::string line = r.out.substr(at, r.out.find('\n', at) - at);
		EXPECT_NE(line.find(" silent, heartbeat "), std::string::npos) << line;
		EXPECT_NE(line.find("1 process attached"), std::string::npos) << line;
		EXPECT_NE(line.find(host[5] == '0' ? "hit rate 50.0 % (1 of 2)" : "hit rate 0.0 % (0 of 0)"),
			  std::string::npos) << line;
	}
	// Host 1 dies; once its heartbeat stood still for its lease, host 0
	// takes it over.  Its block stays readable.
	ASSERT_TRUE(release_host1());
	r = run({ "kv", "takeover", name, "--host", "1", "--by", "0", "--json" });
	ASSERT_EQ(r.status, 0) << r.out << r.err;
	j = json::parse(r.out);
	EXPECT_EQ(j["sessions_reclaimed"], 1);
	EXPECT_EQ(j["by"], 0);
	EXPECT_EQ(j["released"], false);
	GetResult g = get_block(kv0, 7, kPayload);
	EXPECT_EQ(g.batch, 1);
	EXPECT_EQ(g.res, int(kPayload));
	EXPECT_TRUE(g.intact);
	r = run({ "kv", "stats", name, "--json", "--watch-ms", "0" });
	ASSERT_EQ(r.status, 0) << r.err;
	j = json::parse(r.out);
	EXPECT_EQ(j["hosts"][1]["served_by"], 0);
	EXPECT_EQ(j["hosts"][1]["processes"], 0);
}

// wipe of a cache of two hosts: refused while host 1 (a child process) is
// attached, naming it; --force wipes anyway and says what it ignored.
TEST_F(ToolKvHosts, WipeRefusedWhileAHostIsAttached)
{
	const std::string &name = name_;
	beluga_kvc_detach(kv0_); // host 0 formatted and left: no process of it attached
	kv0_ = nullptr;
	start_host1([](beluga_kvc *) { return true; });
	// Alive (its heartbeat moves) or, on a stalled machine, attached:
	// either way refused, naming host 1 and only host 1.
	Result r = run({"wipe", name, "--yes"});
	EXPECT_EQ(r.status, 8) << r.err;
	EXPECT_NE(r.err.find("host 1 (\""), std::string::npos) << r.err;
	EXPECT_EQ(r.err.find("host 0 (\""), std::string::npos) << r.err;
	r = run({"wipe", name, "--yes", "--force", "--json"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.err.find("ignoring " + name + ": host 1"), std::string::npos) << r.err;
	json j = json::parse(r.out);
	EXPECT_EQ(j["wiped"], true);
	EXPECT_EQ(j["forced"], true);
	EXPECT_EQ(j["cache"]["max_hosts"], 2);
	EXPECT_EQ(j["cache"]["hosts"].size(), 2u);
	EXPECT_TRUE(release_host1());
}

int main(int argc, char **argv)
{
	std::vector<char *> rest{argv[0]};
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--tool") && i + 1 < argc)
			g_tool = argv[++i];
		else if (!std::strcmp(argv[i], "--backend") && i + 1 < argc)
			g_backend = argv[++i];
		else
			rest.push_back(argv[i]);
	}
	if (access(g_tool.c_str(), X_OK)) // in the VM image: next to this program
		g_tool = std::filesystem::read_symlink("/proc/self/exe").parent_path().string() +
			 "/../../tools/beluga-tool";
	// InitGoogleTest moves argv[argc] too when it removes its flags: the
	// array must end with a NULL like a real argv (ASan caught the overread).
	int n = int(rest.size());
	rest.push_back(nullptr);
	::testing::InitGoogleTest(&n, rest.data());
	return RUN_ALL_TESTS();
}
