// SPDX-License-Identifier: Apache-2.0
// Shared by the tests that SIGKILL a process of a host and check what the
// host's next process finds (test_crash.cpp, test_reserve.cpp,
// test_evict.cpp): a two-host cache formatted in a fresh shared-memory
// region for each test and attached in the test's coherence mode (its
// parameter), the wait for the killed child, and the checks that nothing it
// held is left held.
#pragma once

#include "kvc_fixture.hpp"

#include "kvcache_test.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <string>

namespace kvt {

class CrashTest : public ::testing::TestWithParam<uint32_t> {
protected:
	CrashTest(size_t region, size_t payload) : r_(region), payload_(payload) {}
	void SetUp() override
	{
		bkv::test::set_omit(nullptr);
		cfg_ = config(opaque_fp(payload_), 2);
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0) << beluga_kvc_last_error();
	}
	// A handle of host @host in the test's mode; NULL (and a failure) if
	// the attach fails.
	beluga_kvc *attach(uint32_t host) { return attach_checked(r_, cfg_, opts(host, GetParam())); }
	// Waits for the child @pid, which must have died of SIGKILL.
	static ::testing::AssertionResult killed(pid_t pid)
	{
		int status = 0;
		if (waitpid(pid, &status, 0) != pid)
			return ::testing::AssertionFailure() << "waitpid(" << pid << ") failed";
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			return ::testing::AssertionFailure()
			       << "the child was not SIGKILLed: wait status " << status;
		return ::testing::AssertionSuccess();
	}
	// After the kill, through @kv of host 1: one dead session was
	// reclaimed, with @reservations reservations and @pins pins, and the
	// check finds no error and nothing reserved, pinned or dead.
	static void expect_reclaimed(beluga_kvc *kv, uint64_t reservations, uint64_t pins)
	{
		beluga_kvc_stats s;
		ASSERT_EQ(beluga_kvc_get_stats(kv, 1, &s), 0) << beluga_kvc_last_error();
		EXPECT_EQ(s.sessions_reclaimed, 1u);
		EXPECT_EQ(s.reservations_reclaimed, reservations);
		EXPECT_EQ(s.pins_reclaimed, pins);
		beluga_kvc_check_report rep;
		ASSERT_EQ(beluga_kvc_check(kv, 1, &rep), 0) << beluga_kvc_last_error();
		EXPECT_EQ(rep.errors, 0u);
		EXPECT_EQ(rep.reserved_slots, 0u);
		EXPECT_EQ(rep.dead_sessions, 0u);
		EXPECT_EQ(rep.held_pins, 0u);
	}
	ShmRegion r_;
	size_t payload_;
	beluga_kvc_config cfg_;
};

// The modes the crash tests run in: coherent, and the non-coherent
// simulation.
inline auto crash_modes()
{
	return ::testing::Values(uint32_t(BELUGA_KVC_COHERENT), uint32_t(BELUGA_KVC_SIMULATE));
}
inline std::string crash_mode_name(const ::testing::TestParamInfo<uint32_t> &i)
{
	return i.param == BELUGA_KVC_COHERENT ? "Coherent" : "Simulated";
}

} // namespace kvt
