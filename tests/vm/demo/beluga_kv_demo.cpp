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
//   beluga-kv-demo [--backend kernel|user] [--docs N] [--prefill-tps N]
//                  [--tool PATH] [--redis-server PATH|none]
// Exit status 0 when everything worked and every restored block was right.
#include <CLI/CLI.hpp>

#include <beluga/beluga.hpp>
#include <beluga/kvcache.hpp>

#include "redis_server.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
	Instance(const Options &o)
		: o_(o), pool_(beluga::Pool::open()), cache_(open_cache(pool_)),
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
		"memory the same cache is shared by every host behind the switch.\n",
		kSystemTokens + kDocTokens);
	std::printf("\ndemo %s\n", rc ? "FAILED" : "finished");
	return rc;
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
	app.add_option("--tool", o.tool, "beluga-tool to run kv stats with")->capture_default_str();
	app.add_option("--redis-server", o.redis_server, "redis-server to start, or none")
		->capture_default_str();
	app.add_option("--redis-port", o.redis_port, "internal: loopback port of the Redis server "
						     "the parent started (-1: none)")
		->check(CLI::Range(-1, 65535))
		->capture_default_str();
	app.add_option("--instance", o.instance, "internal: run one instance (A or B)");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		return app.exit(e) == 0 ? 0 : 2;
	}
	try {
		return o.instance.empty() ? orchestrate(o) : run_instance(o);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "beluga-kv-demo: %s\n", e.what());
		return 1;
	}
}
