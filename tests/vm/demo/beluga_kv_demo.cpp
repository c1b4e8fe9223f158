// SPDX-License-Identifier: Apache-2.0
// beluga-kv-demo: two inference instances share one prefix cache (`make demo`).
//
// Instance A serves long prompts (a shared system prompt and a document) and
// publishes their KV blocks to Beluga.  Instance B, another process, serves
// prompts that start with the same documents: it finds their KV in the
// cache, restores it instead of recomputing it, and computes only its new
// question.  To compare, A also stores its KV in Redis (what LMCache users
// run over the network), and B restores the same blocks from there too.
//
// There is no GPU and no model here: a block's "KV" is bytes derived from
// its key (which, like real KV, depends on every token before it), so B can
// check byte for byte that what it restored is what prefill would compute.
// Prefill time is not measured but computed at a stated rate (--prefill-tps).
//
// With --multihost (the demo-multihost VM profile) the two instances run on
// two hosts, two QEMU guests sharing CXL memory: host 0 zeroes a shared
// region (beluga-tool wipe), formats a cache in it and runs A, host 1
// attaches with its own host index and runs B, which restores A's prefixes
// from the shared memory (run_multihost).
//
//   beluga-kv-demo [--backend kernel|user] [--docs N] [--prefill-tps N]
//                  [--tool PATH] [--redis-server PATH|none]
//   beluga-kv-demo --multihost [--docs N] [--tool PATH]
// Exit status 0 when everything worked and every restored block was right.
#include <CLI/CLI.hpp>

#include <beluga/beluga.hpp>
#include <beluga/kvcache.hpp>

#include "redis_server.hpp"
#include "rendezvous.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

using beluga::kvc::Key;
using Clock = std::chrono::steady_clock;

// Llama-3.2-1B's KV geometry: 16 layers x (K, V) x 8 KV heads x 64, bf16 =
// 32 KiB per token; one 16-token block is 512 KiB.
constexpr beluga_kv_shape kShape = {16, 16, 8, 64, BELUGA_KV_BF16, 0};
constexpr const char *kModel = "meta-llama/Llama-3.2-1B";
constexpr const char *kCache = "demo-kv";
constexpr uint32_t kSystemTokens = 256, kDocTokens = 1792, kQuestionTokens = 64;

struct Options {
	std::string backend = "kernel", tool, redis_server = "/usr/bin/redis-server";
	std::string instance; // "A" or "B" in the child processes
	int docs = 3, redis_port = -1;
	double prefill_tps = 20000;
	bool multihost = false;
};

// ---- the workload: token ids of system prompt, documents and questions ----

std::vector<uint32_t> tokens(uint64_t seed, uint32_t n)
{
	std::vector<uint32_t> t(n);
	for (auto &x : t) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		x = uint32_t(seed >> 40) % 128000; // Llama 3's vocabulary
	}
	return t;
}

std::vector<uint32_t> prompt(int doc, int question)
{
	std::vector<uint32_t> p = tokens(1, kSystemTokens), d = tokens(100 + doc, kDocTokens);
	p.insert(p.end(), d.begin(), d.end());
	if (question >= 0) {
		auto q = tokens(1000 + 10 * doc + question, kQuestionTokens);
		p.insert(p.end(), q.begin(), q.end());
	}
	return p;
}

// ---- the "model": a block's KV is a function of its key ----

size_t block_bytes() { return beluga_kv_block_bytes(&kShape); }

void compute_kv(const Key &k, uint8_t *out)
{
	uint64_t s;
	std::memcpy(&s, k.data(), 8);
	for (size_t i = 0; i < block_bytes(); i += 8) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		std::memcpy(out + i, &s, 8);
	}
}

bool kv_is_right(const Key &k, const uint8_t *kv)
{
	std::vector<uint8_t> want(block_bytes());
	compute_kv(k, want.data());
	return !std::memcmp(want.data(), kv, want.size());
}

double ms_since(Clock::time_point t0)
{
	return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string redis_key(const Key &k)
{
	static const char hex[] = "0123456789abcdef";
	std::string s = "kv:";
	for (uint8_t b : k)
		s += {hex[b >> 4], hex[b & 15]};
	return s;
}

// ---- one inference instance: its side of a KV connector ----

class Instance {
public:
	Instance(const Options &o) : Instance(o, beluga::Pool::open(), nullptr) {}
	// An instance on cache @cache of @pool (the multi-host part opens it as
	// its host), or, with @cache null, on the demo's cache, attached here.
	Instance(const Options &o, beluga::Pool pool, std::unique_ptr<beluga::kvc::Cache> cache)
		: o_(o), pool_(std::move(pool)),
		  cache_(cache ? std::move(*cache) : open_cache(pool_)),
		  root_(beluga::kvc::root_key("0"))
	{
		// The engine's KV memory is allocated once, up front (on a GPU, it
		// is its KV cache); so is the buffer Redis replies are copied to.
		size_t most = (kSystemTokens + kDocTokens + kQuestionTokens) / kShape.block_size;
		kv_.assign(most * block_bytes(), 0);
		from_redis_.assign(most * block_bytes(), 0);
		if (o.redis_port > 0) {
			timeval tv = {5, 0};
			redis_ = redisConnectWithTimeout("127.0.0.1", o.redis_port, tv);
			if (!redis_ || redis_->err)
				throw std::runtime_error("cannot connect to redis-server");
		}
	}
	~Instance() { redisFree(redis_); }

	// The cache, its pages touched once now rather than on first use: an
	// engine attaches when it starts.
	static beluga::kvc::Cache open_cache(const beluga::Pool &pool)
	{
		beluga_kvc_attach_opts ao;
		beluga_kvc_attach_opts_init(&ao);
		ao.flags = BELUGA_KVC_ATTACH_PREFAULT;
		return beluga::kvc::Cache::open(pool.get(), kCache, fingerprint(), nullptr, 0, 0, &ao);
	}

	static beluga_kvc_fingerprint fingerprint()
	{
		beluga_kvc_fingerprint fp{};
		std::strcpy(fp.model_id, kModel);
		std::strcpy(fp.hash_fn, "sha256_cbor");
		std::strcpy(fp.hash_seed, "0");
		fp.shape = kShape;
		fp.tp_size = 1;
		fp.layout = BELUGA_KVC_LAYOUT_KV_BLOCK;
		return fp;
	}

	struct Served {
		size_t blocks = 0, hits = 0;
		double beluga_ms = 0, redis_ms = -1;
		bool right = true;
		std::vector<size_t> from_host; // restored blocks by the partition that held them
	};

	// Serve one prompt: restore its cached prefix, "prefill" the rest,
	// publish what was computed (to Redis as well with @to_redis).
	Served serve(const std::vector<uint32_t> &p, bool to_redis)
	{
		Served s;
		std::vector<Key> keys = beluga::kvc::hash_tokens(root_, p, kShape.block_size);
		s.blocks = keys.size();
		std::vector<uint8_t> &kv = kv_;
		auto t0 = Clock::now();
		s.hits = cache_.lookup_prefix(keys);
		std::vector<beluga_kvc_get> gets(s.hits);
		for (size_t i = 0; i < s.hits; i++)
			gets[i] = {{}, kv.data() + i * block_bytes(), block_bytes()};
		for (size_t i = 0; i < s.hits; i++)
			std::copy(keys[i].begin(), keys[i].end(), gets[i].key);
		auto got = cache_.get(gets);
		s.beluga_ms = ms_since(t0);
		for (size_t i = 0; i < s.hits; i++)
			s.right &= got[i] == int(block_bytes()) && kv_is_right(keys[i], &kv[i * block_bytes()]);
		if (redis_ && s.hits)
			s.redis_ms = restore_from_redis(keys, s.hits, s.right);
		if (uint32_t hosts = cache_.info().max_hosts; hosts > 1) {
			s.from_host.assign(hosts, 0);
			beluga_kvc_block_info b;
			for (size_t i = 0; i < s.hits; i++)
				if (cache_.inspect(keys[i], b) && b.host < hosts)
					s.from_host[b.host]++;
		}
		// Prefill what was not cached, then publish it.
		std::vector<beluga_kvc_put> puts;
		for (size_t i = s.hits; i < keys.size(); i++) {
			uint8_t *b = kv.data() + i * block_bytes();
			compute_kv(keys[i], b);
			beluga_kvc_put put{};
			std::copy(keys[i].begin(), keys[i].end(), put.key);
			put.data = b;
			put.len = block_bytes();
			puts.push_back(put);
			std::string rk = redis_key(keys[i]);
			if (redis_ && to_redis)
				s.right &= beluga_redis::set(redis_, rk.data(), rk.size(), b, block_bytes());
		}
		for (int r : cache_.put(puts))
			s.right &= r == 0 || r == BELUGA_KVC_EXISTS;
		return s;
	}

private:
	double restore_from_redis(const std::vector<Key> &keys, size_t n, bool &right)
	{
		std::vector<uint8_t> &kv = from_redis_;
		auto t0 = Clock::now();
		for (size_t i = 0; i < n; i++) {
			std::string k = redis_key(keys[i]);
			right &= beluga_redis::get(redis_, k.data(), k.size(), &kv[i * block_bytes()],
						   block_bytes()) == long(block_bytes());
		}
		double ms = ms_since(t0);
		for (size_t i = 0; i < n; i++)
			right &= kv_is_right(keys[i], &kv[i * block_bytes()]);
		return ms;
	}

	const Options &o_;
	beluga::Pool pool_;
	beluga::kvc::Cache cache_;
	Key root_;
	std::vector<uint8_t> kv_, from_redis_;
	redisContext *redis_ = nullptr;
};

int run_instance(const Options &o)
{
	Instance inst(o);
	bool ok = true;
	if (o.instance == "A") {
		std::printf("\n[instance A, pid %d] serves %d long prompts (%u tokens: a %u-token system "
			    "prompt shared by all + a document) and publishes their KV\n",
			    getpid(), o.docs, kSystemTokens + kDocTokens, kSystemTokens);
		for (int d = 0; d < o.docs; d++) {
			auto s = inst.serve(prompt(d, -1), true);
			ok &= s.right;
			std::printf("  document %d: %zu of %zu blocks cached -> prefill %zu tokens, publish "
				    "%zu blocks (%.0f MiB)\n", d + 1, s.hits, s.blocks,
				    (s.blocks - s.hits) * kShape.block_size, s.blocks - s.hits,
				    double((s.blocks - s.hits) * block_bytes()) / (1 << 20));
		}
		return ok ? 0 : 1;
	}
	std::printf("\n[instance B, pid %d] serves %d prompts: each document with two different "
		    "questions (%u tokens)\n", getpid(), 2 * o.docs, kQuestionTokens);
	size_t hits = 0, blocks = 0;
	std::vector<double> beluga_ms, redis_ms;
	for (int d = 0; d < o.docs; d++)
		for (int q = 0; q < 2; q++) {
			auto s = inst.serve(prompt(d, q), false);
			ok &= s.right;
			hits += s.hits;
			blocks += s.blocks;
			beluga_ms.push_back(s.beluga_ms);
			if (s.redis_ms >= 0)
				redis_ms.push_back(s.redis_ms);
			std::printf("  document %d, question %d: %zu of %zu blocks cached: restored in "
				    "%.1f ms, prefill %zu tokens, publish %zu blocks\n", d + 1, q + 1,
				    s.hits, s.blocks, s.beluga_ms, (s.blocks - s.hits) * kShape.block_size,
				    s.blocks - s.hits);
		}
	auto median = [](std::vector<double> v) {
		std::sort(v.begin(), v.end());
		return v.empty() ? 0.0 : v[v.size() / 2];
	};
	const uint32_t prefix = kSystemTokens + kDocTokens;
	const double mib = double(prefix / kShape.block_size * block_bytes()) / (1 << 20);
	double b = median(beluga_ms), recompute = 1000.0 * prefix / o.prefill_tps;
	std::printf("\n  restored KV checked byte for byte against what prefill computes: %s\n",
		    ok ? "all equal" : "MISMATCH");
	std::printf("\nResults (instance B; restoring one long prompt's prefix: %u tokens, %.0f MiB "
		    "of KV; median of %zu prompts)\n", prefix, mib, beluga_ms.size());
	std::printf("  hit rate:                                    %.1f %% of blocks (%zu of %zu)\n",
		    100.0 * double(hits) / double(blocks), hits, blocks);
	std::printf("  restore from Beluga (lookup + copy out):     %8.1f ms  (%.1f GB/s)\n", b,
		    mib * 1.048576 / b);
	if (!redis_ms.empty()) {
		double r = median(redis_ms);
		std::printf("  restore from Redis on loopback (GET each):   %8.1f ms  (%.1fx Beluga's time)\n",
			    r, r / b);
	} else {
		std::printf("  restore from Redis: skipped (no redis-server)\n");
	}
	std::printf("  recompute (prefill) at %.0f tokens/s:       %8.1f ms  (%.1fx Beluga's time; "
		    "a stated rate, not measured)\n", o.prefill_tps, recompute, recompute / b);
	return ok ? 0 : 1;
}

// ---- the orchestrator: cache, Redis, the two instances, beluga-tool ----

int run_child(const std::vector<std::string> &args)
{
	std::fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		std::vector<char *> argv;
		for (const auto &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		execv(argv[0], argv.data());
		std::perror(argv[0]);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string self_dir()
{
	return std::filesystem::read_symlink("/proc/self/exe").parent_path();
}

int orchestrate(Options &o)
{
	std::printf("Beluga KV-cache demo: two inference instances share one prefix cache\n"
		    "====================================================================\n"
		    "Model: %s's KV geometry (16 layers, 8 KV heads x 64, bf16): 32 KiB of KV per\n"
		    "token, one 16-token block = 512 KiB.  Pool: %s.\n", kModel,
		    o.backend == "kernel" ? "the beluga driver (/dev/beluga), CXL stand-in memory"
					  : "libbeluga's user-space backend (shared memory)");
	if (getenv("BELUGA_VM"))
		std::printf("Inside a TCG-emulated VM: every time below is many times slower than on\n"
			    "hardware; compare Beluga with Redis (same emulated CPU), and run\n"
			    "`make demo DEMO_BACKEND=user` for the host's own figures.\n");
	setenv("BELUGA_BACKEND", o.backend.c_str(), 1);
	std::string user_dir = "/dev/shm/beluga-demo-" + std::to_string(getpid());
	if (o.backend == "user") {
		setenv("BELUGA_USER_DIR", user_dir.c_str(), 1);
		setenv("BELUGA_HUGETLBFS", "none", 1);
	}
	beluga::Pool pool = beluga::Pool::open();
	// Whatever happens from here on, the region and the pool directory go.
	struct Cleanup {
		const beluga::Pool &pool;
		std::string dir;
		~Cleanup()
		{
			beluga_region_destroy(pool.get(), kCache);
			if (!dir.empty())
				std::filesystem::remove_all(dir);
		}
	} cleanup{pool, o.backend == "user" ? user_dir : ""};
	{
		// Room for every block of the demo, plus a margin.
		uint64_t blocks = uint64_t(o.docs) * ((kSystemTokens + kDocTokens + 2 * kQuestionTokens) / 16);
		uint64_t bytes = (blocks * block_bytes() * 5 / 4 + (16u << 20)) / (2u << 20) * (2u << 20);
		beluga_kvc_config cfg;
		beluga_kvc_config_init(&cfg);
		auto fp = Instance::fingerprint();
		auto cache = beluga::kvc::Cache::open(pool.get(), kCache, fp, &cfg, bytes, 0600);
		auto info = cache.info();
		std::printf("\n[setup] cache \"%s\": a %llu MiB region of the pool, room for %llu blocks; "
			    "eviction: CLOCK from %u %% full\n", kCache,
			    (unsigned long long)(info.region_bytes >> 20),
			    (unsigned long long)info.slots_per_host, info.high_watermark_pct);
	}
	std::unique_ptr<beluga_redis::Server> redis;
	if (o.redis_server != "none") {
		try {
			redis = std::make_unique<beluga_redis::Server>(o.redis_server);
			o.redis_port = redis->port();
			std::printf("[setup] redis-server on 127.0.0.1:%d (persistence off): the network "
				    "store to compare with\n", o.redis_port);
		} catch (const std::exception &e) {
			std::printf("[setup] no Redis comparison: %s\n", e.what());
		}
	}
	std::string self = std::filesystem::read_symlink("/proc/self/exe");
	std::vector<std::string> common = {"--docs", std::to_string(o.docs), "--prefill-tps",
					   std::to_string(o.prefill_tps), "--redis-port",
					   std::to_string(o.redis_port)};
	int rc = 0;
	for (const char *who : {"A", "B"}) {
		std::vector<std::string> args = {self, "--instance", who};
		args.insert(args.end(), common.begin(), common.end());
		if (!rc)
			rc = run_child(args);
	}
	if (!rc && access(o.tool.c_str(), X_OK) == 0) {
		std::printf("\n$ beluga-tool kv stats %s\n", kCache);
		rc = run_child({o.tool, "kv", "stats", kCache});
	} else if (!rc) {
		std::printf("\n(beluga-tool not found at %s: no `beluga-tool kv stats`)\n", o.tool.c_str());
	}
	redis.reset();
	std::printf(
		"\nWhat this shows: instance B never computed the %u-token prefixes it shared with A.\n"
		"It found them in the cache with one lookup, and copied their KV out of memory that\n"
		"both processes map, checking each block's checksum and sequence number on the way.\n"
		"No server sits on that path: Redis has to send every block through a socket, and\n"
		"recomputing it means running the model over every prefix token again.  With CXL\n"
		"memory the same cache is shared by every host behind the switch: make demo's\n"
		"multi-host part shows that with two VMs whose CXL devices share one memory file.\n",
		kSystemTokens + kDocTokens);
	std::printf("\ndemo %s\n", rc ? "FAILED" : "finished");
	return rc;
}


// ---- the multi-host part: two hosts, one cache in shared CXL memory ----
//
// Run by every guest of the demo-multihost profile (two QEMU guests whose CXL
// devices share one memory file; each guest's beluga.ko pools it as a range
// source).  The guests meet through the multi-host harness' rendezvous
// (tests/multihost/rendezvous.hpp) and take their role from it: host 0
// formats the cache and runs instance A, host 1 runs instance B.  Each
// guest's output is printed as one block, host 0's first.

constexpr const char *kSharedCache = "demo-kv-shared";
constexpr const char *kEmulated = "TCG-emulated: functional, not performance";

// "[host N] " before a line, so every line says where it happened.
void say(unsigned host, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void say(unsigned host, const char *fmt, ...)
{
	std::printf("[host %u] ", host);
	va_list ap;
	va_start(ap, fmt);
	std::vprintf(fmt, ap);
	va_end(ap);
	std::printf("\n");
}

double pct(size_t a, size_t b) { return b ? 100.0 * double(a) / double(b) : 0.0; }

// Prints "$ beluga-tool ARGS..." and runs it; returns its exit status.
int run_tool(const Options &o, const std::vector<std::string> &args)
{
	std::string line = "$ beluga-tool";
	for (const auto &a : args)
		line += " " + a;
	std::printf("%s\n", line.c_str());
	std::vector<std::string> argv = {o.tool};
	argv.insert(argv.end(), args.begin(), args.end());
	return run_child(argv);
}

// What one instance did (host 0's is passed to host 1 for the summary).
struct Tally {
	size_t hits = 0, blocks = 0;
	bool right = true;
};

// The range source beluga.ko pools the shared CXL memory as.
uint32_t range_source(const beluga::Pool &pool)
{
	auto srcs = pool.sources();
	for (uint32_t i = 0; i < srcs.size(); i++)
		if (srcs[i].kind == BELUGA_SOURCE_KIND_RANGE)
			return i;
	throw std::runtime_error("no range source: the profile must give the shared CXL device "
				 "to beluga.ko (tests/vm/cxl-setup.sh)");
}

int run_multihost(const Options &o)
{
	beluga::mh::Rendezvous rv = beluga::mh::Rendezvous::from_env();
	const unsigned me = rv.host();
	if (rv.hosts() != 2)
		throw std::runtime_error("the multi-host demo runs on exactly two hosts, not " +
					 std::to_string(rv.hosts()));
	const bool a_host = me == 0;
	char name[65] = {};
	gethostname(name, sizeof(name) - 1);
	const size_t bb = block_bytes();
	const uint32_t prefix_blocks = (kSystemTokens + kDocTokens) / kShape.block_size;
	const uint32_t doc_blocks = kDocTokens / kShape.block_size;
	const uint32_t question_blocks = kQuestionTokens / kShape.block_size;

	if (a_host) {
		std::printf(
			"Beluga KV-cache demo, multi-host part: one KV cache shared by two hosts\n"
			"=======================================================================\n"
			"Two QEMU guests, hosts 0 and 1, each with its own kernel and its own CXL type-3\n"
			"device, both devices backed by one memory file, as hosts behind a multi-headed\n"
			"CXL device are.  Each guest's beluga.ko pools that memory as a range source.\n"
			"Host 0 formats the cache and runs inference instance A; host 1 runs instance B.\n"
			"Every line says on which host it happened; host 1's lines follow host 0's.\n"
			"Times are %s.\n\n", kEmulated);
	}
	say(me, "this is \"%s\": host index %u, %s", name, me,
	    a_host ? "the formatter, instance A" : "instance B");
	beluga::PoolOptions po;
	po.backend = beluga::Backend::Kernel;
	beluga::Pool pool = beluga::Pool::open(po);
	const uint32_t src = range_source(pool);

	// Room in each host's partition (half the region) for instance A's
	// blocks (the system prompt once, each document) below the 95 % high
	// watermark, so that nothing is evicted.
	const uint64_t a_blocks = prefix_blocks + uint64_t(o.docs - 1) * doc_blocks;
	const uint64_t region = (2 * a_blocks * bb * 23 / 20 + (16u << 20)) / (2u << 20) * (2u << 20);
	if (region > pool.sources()[src].total_bytes)
		throw std::runtime_error("--docs " + std::to_string(o.docs) + " needs a " +
					 std::to_string(region >> 20) + " MiB region: more than the shared "
					 "CXL memory");

	// 1. The shared region: the same extent defined on every host.
	say(me, "step 1: define the shared region over the CXL memory (the same command on "
		"every host; source %u is the range beluga.ko pools)", src);
	std::string size = std::to_string(region >> 20) + "M";
	if (int rc = run_tool(o, {"shared", "define", kSharedCache, "--source", std::to_string(src),
				  "--offset", "0", "--size", size, "--mode", "0600"}))
		throw std::runtime_error("beluga-tool shared define failed (exit status " +
					 std::to_string(rc) + ")");
	// Whatever happens from here on, this host's definition goes (the bytes stay).
	struct Undefine {
		const beluga::Pool &pool;
		~Undefine() { beluga_region_destroy(pool.get(), kSharedCache); }
	} undefine{pool};
	rv.barrier("demo-defined");

	// The driver never zeroes a shared extent, and this memory may hold
	// what earlier users left (make check runs this after other tests on
	// the same memory): the formatter wipes it before the first format,
	// while no host is attached.  The tool refuses if a cache there shows
	// a live host.
	if (a_host) {
		say(me, "step 1b: zero the extent before formatting it (a shared extent keeps "
			"whatever was written there before; the tool refuses while a host uses it)");
		if (int rc = run_tool(o, {"wipe", kSharedCache, "--yes", "--no-progress"}))
			throw std::runtime_error("beluga-tool wipe failed (exit status " +
						 std::to_string(rc) + ")");
	} else {
		say(me, "step 1b: waiting while host 0 zeroes the extent");
	}
	rv.barrier("demo-wiped");

	// 2. Format (host 0 only) and attach, each host with its own index.
	beluga_kvc_attach_opts ao;
	beluga_kvc_attach_opts_init(&ao);
	ao.host_id = me;
	ao.ready_wait_ms = 120000; // host 1: how long it waits for host 0's format
	beluga_kvc_config cfg;
	beluga_kvc_config_init(&cfg);
	cfg.max_hosts = 2;
	if (a_host) {
		say(me, "step 2: format the cache in it (max_hosts 2; only this host is configured to "
			"format) and attach as host index 0");
		ao.flags = BELUGA_KVC_ATTACH_FORMAT;
	} else {
		say(me, "step 2: attach as host index 1; no format here: wait (at most %u s) until "
			"host 0's format is complete", ao.ready_wait_ms / 1000);
	}
	auto t0 = Clock::now();
	auto cache = std::make_unique<beluga::kvc::Cache>(beluga::kvc::Cache::open(
		pool.get(), kSharedCache, Instance::fingerprint(), a_host ? &cfg : nullptr, region,
		0600, &ao));
	const double attach_ms = ms_since(t0);
	beluga_kvc_info info = cache->info();
	say(me, "  attached as host %u of %u after %.1f s (%s): %llu MiB region, room for %llu "
		"blocks per host, non-coherent protocol (write back after writing, invalidate "
		"before reading another host's lines)", info.host_id, info.max_hosts, attach_ms / 1e3,
	    kEmulated, (unsigned long long)(info.region_bytes >> 20),
	    (unsigned long long)info.slots_per_host);
	if (!a_host)
		say(me, "  (a first attach claims the host index: it watches the index for two "
			"heartbeat periods, writes its claim and reads it back after two more)");
	Instance inst(o, beluga::Pool::open(po), std::move(cache));
	rv.barrier("demo-attached");

	// 3. Instance A (host 0) serves long prompts and publishes their KV.
	Tally a, b, reread;
	if (a_host) {
		say(me, "step 3: instance A serves %d long prompts (%u tokens: a %u-token system prompt "
			"shared by all + a document) and publishes their KV into host 0's partition",
		    o.docs, kSystemTokens + kDocTokens, kSystemTokens);
		for (int d = 0; d < o.docs; d++) {
			auto s = inst.serve(prompt(d, -1), false);
			a.hits += s.hits, a.blocks += s.blocks, a.right &= s.right;
			say(me, "  document %d: %zu of %zu blocks cached -> prefill %zu tokens, publish "
				"%zu blocks (%.0f MiB)", d + 1, s.hits, s.blocks,
			    (s.blocks - s.hits) * kShape.block_size, s.blocks - s.hits,
			    double((s.blocks - s.hits) * bb) / (1 << 20));
		}
	} else {
		say(me, "step 3: waiting while instance A on host 0 publishes its documents' KV");
	}
	rv.barrier("demo-a-published");

	// 4. Instance B (host 1) serves prompts sharing those prefixes.
	std::vector<double> restore_ms;
	if (!a_host) {
		say(me, "step 4: instance B serves %d prompts: each of host 0's documents with two "
			"different questions (%u tokens)", 2 * o.docs, kQuestionTokens);
		for (int d = 0; d < o.docs; d++)
			for (int q = 0; q < 2; q++) {
				auto s = inst.serve(prompt(d, q), false);
				b.hits += s.hits, b.blocks += s.blocks, b.right &= s.right;
				restore_ms.push_back(s.beluga_ms);
				say(me, "  document %d, question %d: %zu of %zu blocks cached (%zu in host 0's "
					"partition, %zu in host 1's): restored in %.0f ms; prefill %zu "
					"tokens, publish %zu blocks into host 1's partition", d + 1, q + 1,
				    s.hits, s.blocks, s.from_host[0], s.from_host[1], s.beluga_ms,
				    (s.blocks - s.hits) * kShape.block_size, s.blocks - s.hits);
			}
		say(me, "  every restored block checked byte for byte against what prefill "
			"computes: %s", b.right ? "all equal" : "MISMATCH");
	} else {
		say(me, "step 4: waiting while instance B on host 1 serves its prompts");
	}
	rv.barrier("demo-b-served");

	// 5. And back: A meets one of B's prompts, whose question B published.
	if (a_host) {
		say(me, "step 5: instance A now serves the prompt B served first (document 1, "
			"question 1)");
		auto s = inst.serve(prompt(0, 0), false);
		reread = {s.hits, s.blocks, s.right};
		say(me, "  %zu of %zu blocks cached (%zu in host 0's partition, %zu in host 1's: the "
			"question's %u blocks that B published): nothing to prefill; bytes %s",
		    s.hits, s.blocks, s.from_host[0], s.from_host[1], question_blocks,
		    s.right ? "all equal" : "MISMATCH");
		rv.publish(std::to_string(a.hits) + " " + std::to_string(a.blocks) + " " +
			   std::to_string(a.right) + " " + std::to_string(reread.hits) + " " +
			   std::to_string(reread.blocks) + " " + std::to_string(reread.right));
	} else {
		say(me, "step 5: waiting while instance A on host 0 serves one of B's prompts");
	}
	rv.barrier("demo-a-reread");

	// 6. What the cache says about both hosts, and the verdict.
	bool ok = a_host ? a.right && reread.right && reread.hits == reread.blocks : true;
	if (!a_host) {
		unsigned long long n[4] = {};
		int r[2] = {};
		if (std::sscanf(rv.peer_value(0).c_str(), "%llu %llu %d %llu %llu %d", &n[0], &n[1],
				&r[0], &n[2], &n[3], &r[1]) != 6)
			throw std::runtime_error("host 0 published no tally: \"" + rv.peer_value(0) +
						 "\"");
		a = {size_t(n[0]), size_t(n[1]), r[0] == 1};
		reread = {size_t(n[2]), size_t(n[3]), r[1] == 1};
		say(me, "step 6: the cache as beluga-tool sees it from host 1 (an observer: it writes "
			"nothing), both instances still attached");
		int rc = run_tool(o, {"kv", "stats", kSharedCache});
		// B must find every prefix A published: each prompt's system
		// prompt and document, never the question.
		const size_t b_want = size_t(2 * o.docs) * prefix_blocks;
		const size_t a_want = size_t(o.docs - 1) * (kSystemTokens / kShape.block_size);
		std::sort(restore_ms.begin(), restore_ms.end());
		std::printf("\nPer-host hit rates (blocks restored from the shared cache / blocks of "
			    "the prompts served):\n");
		std::printf("  host 0, instance A: %5.1f %% (%zu of %zu): its %d new documents; only "
			    "the shared system prompt was cached\n", pct(a.hits, a.blocks), a.hits,
			    a.blocks, o.docs);
		std::printf("                      %5.1f %% (%zu of %zu): then B's first prompt, "
			    "question included\n", pct(reread.hits, reread.blocks), reread.hits,
			    reread.blocks);
		std::printf("  host 1, instance B: %5.1f %% (%zu of %zu): %d questions on host 0's "
			    "documents\n", pct(b.hits, b.blocks), b.hits, b.blocks, 2 * o.docs);
		std::printf("  restoring one %u-token prefix (%.0f MiB of KV) on host 1: median "
			    "%.0f ms (%s)\n", kSystemTokens + kDocTokens,
			    double(prefix_blocks * bb) / (1 << 20),
			    restore_ms.empty() ? 0.0 : restore_ms[restore_ms.size() / 2], kEmulated);
		struct Check {
			bool ok;
			std::string what;
		};
		std::vector<Check> checks = {
			{b.hits == b_want, "host 1 restored every block of host 0's prefixes (" +
						   std::to_string(b.hits) + " of " +
						   std::to_string(b_want) + ")"},
			{a.hits == a_want, "host 0 found only the shared system prompt while serving "
					   "new documents (" + std::to_string(a.hits) + " of " +
					   std::to_string(a_want) + ")"},
			{reread.blocks && reread.hits == reread.blocks,
			 "host 0 restored all of B's prompt, question blocks from host 1 included"},
			{a.right && b.right && reread.right,
			 "every restored block equal, byte for byte, to what prefill computes"},
			{rc == 0, "beluga-tool kv stats read the cache from host 1"},
		};
		std::printf("\nVerdict:\n");
		for (const auto &c : checks) {
			std::printf("  [%s] %s\n", c.ok ? " ok " : "FAIL", c.what.c_str());
			ok &= c.ok;
		}
		std::printf("Multi-host demo %s: instance B on host 1 %s.\n", ok ? "PASSED" : "FAILED",
			    ok ? "never computed the prefixes instance A had computed on host 0: it "
				 "restored their KV from the CXL memory both hosts share"
			       : "did not get what instance A published (see above)");
	} else {
		say(me, "step 6: waiting while host 1 shows the cache's statistics and the verdict");
		say(me, "host 0's part %s", ok ? "worked" : "FAILED");
	}
	rv.barrier("demo-stats-shown");
	return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	Options o;
	o.tool = self_dir() + "/../../../tools/beluga-tool"; // same layout in the build and the VM
	CLI::App app{"make demo's two inference instances sharing a prefix cache through Beluga, "
		     "against Redis and recompute"};
	app.add_option("--backend", o.backend, "libbeluga backend")
		->check(CLI::IsMember({"kernel", "user"}))
		->capture_default_str();
	app.add_option("--docs", o.docs, "long documents instance A serves")
		->check(CLI::PositiveNumber)
		->capture_default_str();
	app.add_option("--prefill-tps", o.prefill_tps, "stated prefill rate for the recompute line")
		->check(CLI::PositiveNumber)
		->capture_default_str();
	app.add_option("--tool", o.tool, "beluga-tool to run (kv stats; shared define, wipe)")->capture_default_str();
	app.add_option("--redis-server", o.redis_server, "redis-server to start, or none")
		->capture_default_str();
	app.add_option("--redis-port", o.redis_port, "internal: loopback port of the Redis server "
						     "the parent started (-1: none)")
		->check(CLI::Range(-1, 65535))
		->capture_default_str();
	app.add_option("--instance", o.instance, "internal: run one instance (A or B)");
	app.add_flag("--multihost", o.multihost,
		     "the multi-host part: run on every guest of the demo-multihost VM profile, "
		     "host 0 formats and runs instance A, host 1 instance B (kernel backend)");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		return app.exit(e) == 0 ? 0 : 2;
	}
	try {
		if (o.multihost)
			return run_multihost(o);
		return o.instance.empty() ? orchestrate(o) : run_instance(o);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "beluga-kv-demo: %s\n", e.what());
		return 1;
	}
}
