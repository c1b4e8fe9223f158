// SPDX-License-Identifier: Apache-2.0
// A tiny stand-in for the part of GoogleTest that tests/xfer/gpu uses, for the
// one case where GoogleTest cannot be had: scripts/gpu-check.sh rebuilding the
// GPU tests on a GPU machine that has CMake and the CUDA toolkit but no
// packages and no network.  Everywhere else the real GoogleTest is used.
// Supports TEST, TEST_P/INSTANTIATE_TEST_SUITE_P over Range, ASSERT_/EXPECT_
// {EQ,NE,GT,TRUE,FALSE,STRNE} with streamed messages, GTEST_SKIP,
// SCOPED_TRACE, HasFatalFailure and --gtest_filter (globs, ':'-separated).
#pragma once

#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace testing {

class Message {
public:
	template <typename T> Message &operator<<(const T &v)
	{
		s_ << v;
		return *this;
	}
	std::string str() const { return s_.str(); }

private:
	std::ostringstream s_;
};

namespace internal {

struct State {
	bool failed = false, fatal = false, skipped = false;
	std::vector<std::string> traces;
};

inline State &state()
{
	static State s;
	return s;
}

template <typename T, typename = void> struct Printable : std::false_type {};
template <typename T>
struct Printable<T, std::void_t<decltype(std::declval<std::ostream &>() << std::declval<const T &>())>> : std::true_type {};

template <typename T> std::string show(const T &v)
{
	if constexpr (std::is_enum_v<T>) {
		return std::to_string(static_cast<long long>(v));
	} else if constexpr (Printable<T>::value) {
		std::ostringstream o;
		o << v;
		return o.str();
	} else {
		return "<" + std::to_string(sizeof(T)) + "-byte object>";
	}
}

struct Result {
	bool ok;
	std::string msg;
};

// Each operand is evaluated exactly once (they are function arguments).
template <typename Op, typename A, typename B>
Result cmp(Op op_fn, const char *op, const char *ea, const char *eb, const A &a, const B &b)
{
	if (op_fn(a, b))
		return {true, {}};
	return {false, std::string("expected ") + ea + " " + op + " " + eb + ", got " + show(a) + " vs " + show(b)};
}

struct AssertHelper {
	const char *file;
	int line;
	bool fatal;
	std::string what;
	void operator=(const Message &m) const
	{
		State &s = state();
		s.failed = true;
		s.fatal |= fatal;
		std::printf("%s:%d: Failure\n%s\n%s\n", file, line, what.c_str(), m.str().c_str());
		for (auto it = s.traces.rbegin(); it != s.traces.rend(); ++it)
			std::printf("  trace: %s\n", it->c_str());
	}
};

struct SkipHelper {
	void operator=(const Message &m) const
	{
		state().skipped = true;
		std::printf("Skipped\n%s\n", m.str().c_str());
	}
};

struct ScopedTrace {
	explicit ScopedTrace(const std::string &s) { state().traces.push_back(s); }
	~ScopedTrace() { state().traces.pop_back(); }
};

} // namespace internal

class Test {
public:
	virtual ~Test() = default;
	virtual void TestBody() = 0;
	static bool HasFatalFailure() { return internal::state().fatal; }
};

template <typename T> class TestWithParam : public Test {
public:
	const T &GetParam() const { return param_; }
	T param_{};
};

template <typename T> struct TestParamInfo {
	T param;
	size_t index;
};

struct RangeGen {
	std::vector<int> values;
};
inline RangeGen Range(int begin, int end)
{
	RangeGen r;
	for (int i = begin; i < end; i++)
		r.values.push_back(i);
	return r;
}

namespace internal {

struct TestInfo {
	std::string name;
	std::function<std::unique_ptr<Test>()> make;
};

struct Pattern {
	std::string suite, name;
	std::function<std::unique_ptr<Test>(int)> make;
};

struct Registry {
	std::vector<TestInfo> tests;
	std::vector<Pattern> patterns;
	std::vector<std::function<void()>> instantiations;
	std::vector<std::string> filters;
};

inline Registry &registry()
{
	static Registry r;
	return r;
}

inline bool add_test(const char *suite, const char *name, std::function<std::unique_ptr<Test>()> make)
{
	registry().tests.push_back({std::string(suite) + "." + name, std::move(make)});
	return true;
}

inline bool add_pattern(const char *suite, const char *name, std::function<std::unique_ptr<Test>(int)> make)
{
	registry().patterns.push_back({suite, name, std::move(make)});
	return true;
}

template <typename NameFn> bool add_instantiation(const char *prefix, const char *suite, RangeGen gen, NameFn fn)
{
	registry().instantiations.push_back([=] {
		for (const Pattern &p : registry().patterns) {
			if (p.suite != suite)
				continue;
			for (size_t i = 0; i < gen.values.size(); i++) {
				const int v = gen.values[i];
				const std::string n = std::string(prefix) + "/" + p.suite + "." + p.name + "/" +
						      fn(TestParamInfo<int>{v, i});
				auto make = p.make;
				registry().tests.push_back({n, [make, v] { return make(v); }});
			}
		}
	});
	return true;
}

inline bool glob(const char *p, const char *s)
{
	if (*p == '\0')
		return *s == '\0';
	if (*p == '*')
		return glob(p + 1, s) || (*s && glob(p, s + 1));
	return (*p == '?' ? *s != '\0' : *p == *s) && glob(p + 1, s + 1);
}

inline bool selected(const std::string &name)
{
	const auto &f = registry().filters;
	if (f.empty())
		return true;
	for (const std::string &pat : f)
		if (glob(pat.c_str(), name.c_str()))
			return true;
	return false;
}

} // namespace internal

inline void InitGoogleTest(int *argc, char **argv)
{
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		if (!std::strncmp(argv[i], "--gtest_filter=", 15)) {
			std::string f = argv[i] + 15;
			size_t pos;
			while ((pos = f.find(':')) != std::string::npos) {
				internal::registry().filters.push_back(f.substr(0, pos));
				f.erase(0, pos + 1);
			}
			internal::registry().filters.push_back(f);
		} else if (std::strncmp(argv[i], "--gtest_", 8)) {
			argv[out++] = argv[i]; // other --gtest_ flags are accepted and ignored
		}
	}
	*argc = out;
}

inline int RunAllTests()
{
	auto &r = internal::registry();
	for (auto &inst : r.instantiations)
		inst();
	int passed = 0, failed = 0, skipped = 0;
	std::vector<std::string> failures;
	for (const auto &t : r.tests) {
		if (!internal::selected(t.name))
			continue;
		internal::state() = internal::State{};
		std::printf("[ RUN      ] %s\n", t.name.c_str());
		try {
			t.make()->TestBody();
		} catch (const std::exception &e) {
			internal::AssertHelper{"(exception)", 0, true, std::string("uncaught exception: ") + e.what()} = Message();
		}
		const internal::State &s = internal::state();
		if (s.failed) {
			failed++;
			failures.push_back(t.name);
			std::printf("[  FAILED  ] %s\n", t.name.c_str());
		} else if (s.skipped) {
			skipped++;
			std::printf("[  SKIPPED ] %s\n", t.name.c_str());
		} else {
			passed++;
			std::printf("[       OK ] %s\n", t.name.c_str());
		}
	}
	std::printf("[==========] mini_gtest: %d passed, %d skipped, %d failed\n", passed, skipped, failed);
	for (const auto &f : failures)
		std::printf("[  FAILED  ] %s\n", f.c_str());
	return failed ? 1 : 0;
}

} // namespace testing

#define RUN_ALL_TESTS() ::testing::RunAllTests()

#define MG_CAT2_(a, b) a##b
#define MG_CAT_(a, b) MG_CAT2_(a, b)
#define MG_BLOCKER_ \
	switch (0)  \
	case 0:     \
	default:

#define TEST(suite, name)                                                                                      \
	class suite##_##name##_Test : public ::testing::Test {                                                 \
	public:                                                                                                \
		void TestBody() override;                                                                      \
	};                                                                                                     \
	static const bool MG_CAT_(mg_reg_, __LINE__) = ::testing::internal::add_test(                         \
		#suite, #name, [] { return std::unique_ptr<::testing::Test>(new suite##_##name##_Test); });     \
	void suite##_##name##_Test::TestBody()

#define TEST_P(suite, name)                                                                                    \
	class suite##_##name##_Test : public suite {                                                           \
	public:                                                                                                \
		void TestBody() override;                                                                      \
	};                                                                                                     \
	static const bool MG_CAT_(mg_reg_, __LINE__) = ::testing::internal::add_pattern(#suite, #name, [](int v) { \
		auto *t = new suite##_##name##_Test;                                                           \
		t->param_ = v;                                                                                 \
		return std::unique_ptr<::testing::Test>(t);                                                    \
	});                                                                                                    \
	void suite##_##name##_Test::TestBody()

#define INSTANTIATE_TEST_SUITE_P(prefix, suite, gen, namefn) \
	static const bool MG_CAT_(mg_inst_, __LINE__) = ::testing::internal::add_instantiation(#prefix, #suite, gen, namefn)

#define MG_CHECK_(ok_expr, fatal, what)                                                            \
	MG_BLOCKER_                                                                                \
	if (const ::testing::internal::Result mg_r = (ok_expr); mg_r.ok)                           \
		;                                                                                  \
	else                                                                                       \
		fatal ::testing::internal::AssertHelper{__FILE__, __LINE__, #fatal[0] != '\0', mg_r.msg.empty() ? what : mg_r.msg} = ::testing::Message()

#define MG_BOOL_(c, text) (::testing::internal::Result{static_cast<bool>(c), std::string("expected ") + text})
#define MG_CMP_(a, b, op) \
	::testing::internal::cmp([](const auto &x, const auto &y) { return x op y; }, #op, #a, #b, a, b)

#define ASSERT_TRUE(c) MG_CHECK_(MG_BOOL_(c, #c " to be true"), return, "")
#define ASSERT_FALSE(c) MG_CHECK_(MG_BOOL_(!(c), #c " to be false"), return, "")
#define EXPECT_TRUE(c) MG_CHECK_(MG_BOOL_(c, #c " to be true"), , "")
#define EXPECT_FALSE(c) MG_CHECK_(MG_BOOL_(!(c), #c " to be false"), , "")
#define ASSERT_EQ(a, b) MG_CHECK_(MG_CMP_(a, b, ==), return, "")
#define ASSERT_NE(a, b) MG_CHECK_(MG_CMP_(a, b, !=), return, "")
#define EXPECT_EQ(a, b) MG_CHECK_(MG_CMP_(a, b, ==), , "")
#define EXPECT_NE(a, b) MG_CHECK_(MG_CMP_(a, b, !=), , "")
#define EXPECT_GT(a, b) MG_CHECK_(MG_CMP_(a, b, >), , "")
#define EXPECT_STRNE(a, b) EXPECT_TRUE(std::strcmp((a), (b)) != 0)
#define GTEST_SKIP() return ::testing::internal::SkipHelper{} = ::testing::Message()
#define SCOPED_TRACE(m) ::testing::internal::ScopedTrace MG_CAT_(mg_trace_, __LINE__)((::testing::Message() << (m)).str())
