/* SPDX-License-Identifier: Apache-2.0 */
/*
 * skip_report.h - report a skipped test case by name with its reason.
 *
 * Every test framework of the project reports a skipped case the same way,
 * so that a program that passes while some of its cases skipped cannot hide
 * them:
 *  - one line "beluga-skip: <case>: <reason>" on stdout (the host's
 *    scripts/ctest-skips.sh lists these from CTest's log);
 *  - when the environment names a file in BELUGA_SKIP_LOG, the line
 *    "<case>: <reason>" appended to it (the VM suite's /init sets it for each
 *    test program and forwards the lines to the host over the results
 *    channel, tests/vm/init.sh).
 * Users: the driver tests' bt_note_skip() (tests/driver/bt_common.c), every
 * GoogleTest program (gtest_skips.cpp, linked in by tests/CMakeLists.txt),
 * CMocka host tests.
 */
#ifndef BELUGA_SKIP_REPORT_H
#define BELUGA_SKIP_REPORT_H

#ifdef __cplusplus
extern "C" {
#endif

/* @test_case: the case's name; @reason: why it skipped (one line). */
void beluga_skip_report(const char *test_case, const char *reason);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_SKIP_REPORT_H */
