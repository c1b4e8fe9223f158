#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host test of tests/vm/judge.py on made-up boot logs: kernel warnings fail
a boot, except the stack dumps of injected allocation failures and the
warnings of KNOWN_KERNEL_BUGS, whose W taint is then accepted too; skipped
cases are listed by name and reason and counted, and a skip the profile
does not allow (--expect) fails the boot."""
import os
import subprocess
import sys
import tempfile
import unittest

JUDGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "judge.py")

HUGETLB_SPLIT = [
    "[  203.517192] WARNING: CPU: 1 PID: 244 at include/linux/fs.h:509 hugetlb_split+0x1d2/0x270",
    "[  203.546547] Call Trace:",
    "[  203.546600]  <TASK>",
    "[  203.546700]  </TASK>",
    "[  203.572532] ---[ end trace 0000000000000000 ]---",
]
OTHER_WARNING = [
    "[  210.000001] WARNING: CPU: 0 PID: 77 at kmod/beluga_pool.c:123 beluga_chunk_free+0x10/0x20",
    "[  210.000002] Call Trace:",
    "[  210.000003] ---[ end trace 0000000000000000 ]---",
]
INJECTED = [
    "[  300.000001] FAULT_INJECTION: forcing a failure.",
    "[  300.000002] drv_fault: page allocation failure: order:9, mode:0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), nodemask=(null)",
    "[  300.000003] Call Trace:",
    "[  300.000004]  </TASK>",
]
TAINT_O = 1 << 12
TAINT_W = 1 << 9


def run_judge(console_lines, result_lines, *extra):
    """Run judge.py on the given console and results-channel lines; returns
    its exit status, its report and the counts file's fields."""
    with tempfile.TemporaryDirectory() as d:
        console = os.path.join(d, "console.log")
        results = os.path.join(d, "results.log")
        counts = os.path.join(d, "counts")
        with open(console, "w") as f:
            f.write("\n".join([*console_lines, ""]))
        with open(results, "w") as f:
            f.write("\n".join([*result_lines, ""]))
        p = subprocess.run([sys.executable, JUDGE, "--name", "t", "--console", console,
                            "--results", results, "--rc", "0", "--counts", counts, *extra],
                           capture_output=True, text=True, check=False)
        with open(counts) as f:
            return p.returncode, p.stdout, f.read().split()


def judge(kernel_lines, tainted):
    """Run judge.py on one passing test plus @kernel_lines in the dmesg dump."""
    rc, out, _ = run_judge(["beluga-vm: init-start 2.5", "beluga-vm: dmesg-begin",
                            *kernel_lines, "beluga-vm: dmesg-end"],
                           ["PASS drv-x", f"beluga-vm: tainted {tainted}",
                            "1 passed, 0 failed, 0 skipped"])
    return rc, out


def judge_killed(results_lines, extra_args, rc=137):
    """Run judge.py on a guest of a multi-host run that ends without summary."""
    with tempfile.TemporaryDirectory() as d:
        console = os.path.join(d, "console.log")
        results = os.path.join(d, "results.log")
        with open(console, "w") as f:
            f.write("beluga-vm: init-start 2.5\nbeluga-vm: begin mh-kill\nhost 1: asking\n")
        with open(results, "w") as f:
            f.write("\n".join(results_lines) + "\n")
        p = subprocess.run([sys.executable, JUDGE, "--name", "t", "--console", console,
                            "--results", results, "--rc", str(rc), *extra_args],
                           capture_output=True, text=True, check=False)
        return p.returncode, p.stdout


KILLED_RESULTS = ["PASS harness/load-beluga", "beluga-vm: begin mh-bytes", "PASS mh-bytes",
                  "beluga-vm: begin mh-kill", "beluga-vm: kill-request 1 0123456789abcdef"]


class Judge(unittest.TestCase):
    def test_clean_boot_passes(self):
        rc, out = judge([], TAINT_O)
        self.assertEqual(rc, 0, out)

    def test_unknown_warning_fails(self):
        rc, out = judge(OTHER_WARNING, TAINT_O | TAINT_W)
        self.assertEqual(rc, 1, out)
        self.assertIn("bad kernel log line(s)", out)
        self.assertIn("kernel tainted", out)

    def test_warn_taint_alone_fails(self):
        rc, out = judge([], TAINT_O | TAINT_W)
        self.assertEqual(rc, 1, out)
        self.assertIn("kernel tainted 4608 (WO)", out)

    def test_known_kernel_bug_is_reported_not_failed(self):
        rc, out = judge(HUGETLB_SPLIT, TAINT_O | TAINT_W)
        self.assertEqual(rc, 0, out)
        self.assertIn("known bugs of the guest kernel (not failures)", out)
        self.assertIn("hugetlb_split", out)

    def test_known_kernel_bug_does_not_hide_another_warning(self):
        rc, out = judge(HUGETLB_SPLIT + OTHER_WARNING, TAINT_O | TAINT_W)
        self.assertEqual(rc, 1, out)
        self.assertIn("beluga_chunk_free", out)

    def test_injected_allocation_failure_dump_is_accepted(self):
        rc, out = judge(INJECTED, TAINT_O)
        self.assertEqual(rc, 0, out)

    def test_guest_killed_on_request_is_judged_on_what_it_reported(self):
        rc, out = judge_killed(KILLED_RESULTS, ["--killed-during", "mh-kill"])
        self.assertEqual(rc, 0, out)
        self.assertIn("KILLED mh-kill", out)
        self.assertIn("2 passed, 0 failed, 0 skipped", out)

    def test_guest_that_died_unasked_fails(self):
        rc, out = judge_killed(KILLED_RESULTS, [], rc=0)
        self.assertEqual(rc, 1, out)
        self.assertIn("the boot ended while mh-kill was running", out)
        self.assertIn("no summary line", out)

    def test_guest_killed_during_another_test_fails(self):
        rc, out = judge_killed(KILLED_RESULTS, ["--killed-during", "mh-bytes"])
        self.assertEqual(rc, 1, out)
        self.assertIn("killed during mh-bytes, but the guest was running mh-kill", out)

    def test_killed_guest_with_a_failed_test_fails(self):
        rc, out = judge_killed(KILLED_RESULTS[:2] + ["FAIL mh-bytes (rc=1)"] + KILLED_RESULTS[3:],
                               ["--killed-during", "mh-kill"])
        self.assertEqual(rc, 1, out)
        self.assertIn("1 failed", out)


# A boot where drv-range passed with one case skipped, drv-gpu skipped as a
# whole (reporting its case) and drv-fault skipped without reporting a case.
SKIP_CONSOLE = [
    "beluga-vm: init-start 2.5",
    "beluga-vm: begin drv-range",
    "[ RUN      ] test_busy_owner",
    "beluga-skip: test_busy_owner: needs the cxl boot",
    "[  SKIPPED ] test_busy_owner",
    "[ RUN      ] test_ranges",
    "[       OK ] test_ranges",
    "beluga-vm: end drv-range rc=0 1.0",
    "beluga-vm: begin drv-gpu",
    "[ RUN      ] test_register",
    "beluga-vm: end drv-gpu rc=77 1.0",
    "beluga-vm: begin drv-fault",
    "drv_fault: no failslab here",
    "beluga-vm: end drv-fault rc=77 1.0",
    "beluga-vm: dmesg-begin", "beluga-vm: dmesg-end",
]
SKIP_RESULTS = [
    "PASS drv-range",
    "beluga-vm: skipped-case drv-range test_busy_owner: needs the cxl boot",
    "SKIP drv-gpu",
    "beluga-vm: skipped-case drv-gpu test_register: needs the ranges-gpu boot",
    "SKIP drv-fault",
    f"beluga-vm: tainted {TAINT_O}",
    "1 cases skipped inside passing tests",
    "1 passed, 0 failed, 2 skipped",
]


class Skips(unittest.TestCase):
    def test_skipped_cases_are_listed_and_counted(self):
        rc, out, counts = run_judge(SKIP_CONSOLE, SKIP_RESULTS)
        self.assertEqual(rc, 0, out)
        self.assertIn("    skipped: test_busy_owner: needs the cxl boot", out)
        self.assertIn("    skipped: test_register: needs the ranges-gpu boot", out)
        # a program that skipped without reporting a case: its output says why
        self.assertIn("    skipped: drv_fault: no failslab here", out)
        # only the case inside the passing program is counted
        self.assertIn("vm[t]: 1 cases skipped inside passing tests\nvm[t]: 1 passed, 0 failed, 2 skipped", out)
        self.assertEqual(counts[5], "1")

    def test_count_line_must_agree(self):
        results = [("5 cases skipped inside passing tests" if "cases skipped" in r else r)
                   for r in SKIP_RESULTS]
        rc, out, _ = run_judge(SKIP_CONSOLE, results)
        self.assertEqual(rc, 1, out)
        self.assertIn("disagrees with the skipped-case lines (1)", out)

    def test_expected_test_skipping_fails(self):
        rc, out, counts = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect",
                                    "drv-gpu drv-gpu:test_register drv-gpu:test_other")
        self.assertEqual(rc, 1, out)
        self.assertEqual(out.count("drv-gpu skipped, but this profile expects it to run"), 1, out)
        self.assertEqual(counts[3], "0")

    def test_expected_test_with_a_skipped_case_fails(self):
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "drv-range")
        self.assertEqual(rc, 1, out)
        self.assertIn("drv-range: case test_busy_owner skipped (needs the cxl boot)", out)

    def test_expected_case(self):
        # the case that ran passes; the one that skipped fails
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "drv-range:test_ranges")
        self.assertEqual(rc, 0, out)
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "drv-range:test_busy_owner")
        self.assertEqual(rc, 1, out)
        self.assertIn("case test_busy_owner skipped", out)

    def test_every_test_but_some(self):
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "* !drv-gpu !drv-fault")
        self.assertEqual(rc, 1, out)
        self.assertIn("drv-range: case test_busy_owner skipped", out)
        self.assertNotIn("drv-gpu skipped, but", out)
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect",
                               "* !drv-gpu !drv-fault !drv-range drv-range:test_ranges")
        self.assertEqual(rc, 0, out)
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "* !drv-range !drv-fault")
        self.assertEqual(rc, 1, out)
        self.assertIn("drv-gpu skipped, but this profile expects it to run", out)

    def test_a_case_that_may_skip(self):
        # !test:case lets that case skip while the rest of the test is expected
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect",
                               "* !drv-gpu !drv-fault !drv-range:test_busy_owner")
        self.assertEqual(rc, 0, out)
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect",
                               "* !drv-gpu !drv-fault !drv-range:test_other")
        self.assertEqual(rc, 1, out)
        self.assertIn("drv-range: case test_busy_owner skipped", out)
        # it does not excuse a test that skipped as a whole
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect",
                               "* !drv-fault !drv-range:test_busy_owner !drv-gpu:test_register")
        self.assertEqual(rc, 1, out)
        self.assertIn("drv-gpu skipped, but this profile expects it to run", out)

    def test_expected_but_missing_fails(self):
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "drv-pmd")
        self.assertEqual(rc, 1, out)
        self.assertIn("expected test drv-pmd did not run", out)
        rc, out, _ = run_judge(SKIP_CONSOLE, SKIP_RESULTS, "--expect", "drv-range:test_renamed")
        self.assertEqual(rc, 1, out)
        self.assertIn("expected case test_renamed not found in its output", out)


if __name__ == "__main__":
    unittest.main()
