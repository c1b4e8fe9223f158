// SPDX-License-Identifier: Apache-2.0
// A process SIGKILLed at a chosen point (it kills itself from a test hook)
// leaves nothing stuck: the next process of its host reclaims its session,
// reservations and pins, and every other block stays intact.
#include "kvc_crash.hpp"

#include <cerrno>
#include <vector>

namespace {

using namespace kvt;

constexpr size_t kRegion = 8 << 20;
constexpr size_t kPayload = 32 * 1024;

int g_die_at = 0;
void die_hook(int ev, int)
{
	if (ev == g_die_at)
		raise(SIGKILL);
}

class Crash : public CrashTest {
protected:
	Crash() : CrashTest(kRegion, kPayload) {}
	// In a child on host 1: store blocks 0..4, then do @what with the hook
	// armed to SIGKILL the child at @event.
	void child(int event, bool pin, bool remove = false)
	{
		pid_t pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			beluga_kvc *kv = attach(1);
			for (int i = 0; i < 5; i++)
				if (put_block(kv, i, kPayload))
					_exit(2);
			g_die_at = event;
			bkv::test::set_hook(die_hook);
			if (remove) {
				uint8_t key[1][32];
				make_key(2, key[0]);
				int res;
				beluga_kvc_remove(kv, key, 1, &res);
			} else if (pin) {
				uint8_t key[1][32];
				make_key(2, key[0]);
				beluga_kvc_ref ref;
				int res;
				beluga_kvc_pin(kv, key, 1, 0, &ref, &res);
			} else {
				put_block(kv, 5, kPayload);
			}
			_exit(3); // the hook should have killed us
		}
		ASSERT_TRUE(killed(pid));
	}
	// Reclaimed (expect_reclaimed), and blocks 0..4 intact.
	void expect_recovered(beluga_kvc *kv, uint64_t resv, uint64_t pins)
	{
		expect_reclaimed(kv, resv, pins);
		for (int i = 0; i < 5; i++)
			EXPECT_TRUE(reads_back(kv, i, kPayload)) << i;
		EXPECT_EQ(bkv::test::sim_violations(kv), 0u);
	}
};

TEST_P(Crash, WriterKilledMidWrite)
{
	child(bkv::test::write_begin, false);
	beluga_kvc *kv = attach(1); // the host's next process reclaims at attach
	expect_recovered(kv, 1, 0);
	EXPECT_FALSE(reads_back(kv, 5, kPayload));
	EXPECT_EQ(put_block(kv, 5, kPayload), 0); // the key and the slot are usable again
	EXPECT_TRUE(reads_back(kv, 5, kPayload));
	beluga_kvc_detach(kv);
}

TEST_P(Crash, WriterKilledAfterPublishing)
{
	child(bkv::test::published, false);
	beluga_kvc *kv = attach(1);
	expect_recovered(kv, 0, 0); // indexed: the block is kept
	EXPECT_TRUE(reads_back(kv, 5, kPayload));
	beluga_kvc_detach(kv);
}

// Killed between placing the index entry and writing its check word: the
// successor keeps the block and writes the check word (slot_reclaim), so
// that prefix lookups find it; or, in the simulated mode, where the killed
// host's unflushed lines are lost with it, finds no entry and frees the slot.
TEST_P(Crash, WriterKilledBeforeTheCheckWord)
{
	child(bkv::test::indexed, false);
	beluga_kvc *kv = attach(1);
	bool kept = GetParam() != BELUGA_KVC_SIMULATE;
	expect_recovered(kv, kept ? 0 : 1, 0);
	uint8_t key[1][32];
	make_key(5, key[0]);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv, key, 1), kept ? 1 : 0);
	EXPECT_EQ(reads_back(kv, 5, kPayload), kept);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(kv, 1, &rep), 0);
	EXPECT_EQ(rep.errors, 0u);
	EXPECT_EQ(put_block(kv, 5, kPayload), kept ? BELUGA_KVC_EXISTS : 0);
	EXPECT_TRUE(reads_back(kv, 5, kPayload));
	beluga_kvc_detach(kv);
}

TEST_P(Crash, ReaderKilledHoldingPin)
{
	child(bkv::test::pinned, true);
	beluga_kvc *kv = attach(1);
	expect_recovered(kv, 0, 1);
	// The pin is gone: the block can be removed and its slot reused.
	uint8_t key[1][32];
	make_key(2, key[0]);
	int res;
	EXPECT_EQ(beluga_kvc_remove(kv, key, 1, &res), 1);
	beluga_kvc_detach(kv);
}

// Killed between dropping a block's index entry and retiring its slot: the
// slot is in the remover's log and owned by it (written back before the
// entry went), so its successor retires it; nothing is left unreachable.
TEST_P(Crash, RemoverKilledBeforeRetiring)
{
	child(bkv::test::removing, false, true);
	beluga_kvc *kv = attach(1);
	expect_reclaimed(kv, 1, 0); // the slot went back: one reservation-log entry
	for (int i : {0, 1, 3, 4})
		EXPECT_TRUE(reads_back(kv, i, kPayload)) << i;
	EXPECT_FALSE(reads_back(kv, 2, kPayload));
	EXPECT_EQ(bkv::test::sim_violations(kv), 0u);
	EXPECT_EQ(put_block(kv, 2, kPayload), 0); // the key is usable again
	EXPECT_TRUE(reads_back(kv, 2, kPayload));
	beluga_kvc_detach(kv);
}

TEST_P(Crash, ReclaimedByAnotherLiveProcess)
{
	if (GetParam() == BELUGA_KVC_SIMULATE)
		GTEST_SKIP() << "one process per simulated host";
	beluga_kvc *kv = attach(1); // attached before the death
	child(bkv::test::write_begin, false);
	EXPECT_EQ(beluga_kvc_reclaim(kv), 1);
	EXPECT_EQ(beluga_kvc_reclaim(kv), 0);
	expect_recovered(kv, 1, 0);
	beluga_kvc_detach(kv);
}

INSTANTIATE_TEST_SUITE_P(Modes, Crash, crash_modes(), crash_mode_name);

} // namespace
