// SPDX-License-Identifier: Apache-2.0
//
// A GoogleTest listener that reports every skipped case by name with its
// reason through beluga_skip_report() (skip_report.h).  It registers itself
// before main() runs, so a program gets it by linking this object file:
// tests/CMakeLists.txt links it into every executable that uses GoogleTest.
#include <gtest/gtest.h>

#include <string>

#include "skip_report.h"

namespace {

// The message of the first skip in @r, or "" if it holds none.
std::string skip_message(const ::testing::TestResult &r)
{
	for (int i = 0; i < r.total_part_count(); i++) {
		const ::testing::TestPartResult &p = r.GetTestPartResult(i);

		if (p.skipped())
			return p.message() && *p.message() ? p.message() : "GTEST_SKIP() without a message";
	}
	return "";
}

class SkipReporter : public ::testing::EmptyTestEventListener {
	void OnTestEnd(const ::testing::TestInfo &info) override
	{
		if (!info.result()->Skipped())
			return;
		std::string why = skip_message(*info.result());
		// A skip in SetUpTestSuite() or an Environment's SetUp() is
		// recorded on the suite or the whole program.
		const ::testing::UnitTest *u = ::testing::UnitTest::GetInstance();
		if (why.empty() && u->current_test_suite())
			why = skip_message(u->current_test_suite()->ad_hoc_test_result());
		if (why.empty())
			why = skip_message(u->ad_hoc_test_result());
		if (why.empty())
			why = "skipped (no skip message found)";
		const std::string name = std::string(info.test_suite_name()) + "." + info.name();
		beluga_skip_report(name.c_str(), why.c_str());
	}
};

// Before main(): gtest_main's and the programs' own main() call
// InitGoogleTest(), which keeps listeners appended earlier.
const bool registered = [] {
	::testing::UnitTest::GetInstance()->listeners().Append(new SkipReporter);
	return true;
}();

} // namespace
