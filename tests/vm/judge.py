#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Judge one VM-suite boot from its logs (see tests/vm/README.md).

Reads the results channel (ttyS1, written only by /init) for the counts and
the console log (ttyS0) for test output, boot time and kernel messages.
The boot fails on: a timeout, no summary line, any failed test, no test run,
a kernel log line with BUG/WARNING/Oops/Call Trace/UBSAN/general protection
(or a few other signs of a sick kernel), a taint other than the expected
out-of-tree/unsigned-module ones, or a skip the profile does not allow
(--expect).  Prints a report, with every skipped case by name and reason and
the number of cases that skipped inside passing tests; exit status 0 = pass.

A guest of a multi-host run (tests/vm/multihost.py) that the runner killed
because a test asked for it (--killed-during TEST) is judged on what it
reported up to the kill: the missing summary, the unfinished TEST and QEMU's
exit status are then expected; the test that asked is judged on the other
guests.  A guest that died or stopped reporting on its own still fails.
"""
import argparse
import re
import sys

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")
CASES_SUMMARY = re.compile(r"^(\d+) cases skipped inside passing tests$")
SKIPPED_CASE = re.compile(r"^beluga-vm: skipped-case (\S+) (.*?)(?:: (.*))?$")
# CMocka and GoogleTest announce each case they start with this.
RUN_LINE = re.compile(r"^\[ RUN +\] (\S+)")
RESULT = re.compile(r"^(PASS|FAIL|SKIP) (\S+)(?: \(rc=(-?\d+)\))?$")
KTIME = re.compile(r"\[\s*\d+\.\d+\] ")
BAD = re.compile(r"\bBUG[: ]|WARNING:|Oops|Call Trace|UBSAN|general protection"
                 r"|Kernel panic|Bad page|blocked for more than|soft lockup")
# Allocation failures injected on purpose (tests/driver/t_fault.c on the
# debug kernel): "FAULT_INJECTION: forcing a failure." is followed by the
# allocator's own warn_alloc report ("..., mode:0x...(...), nodemask=...")
# whose stack dump is expected.  Only that dump's "Call Trace:" is accepted.
INJECTED = re.compile(r"FAULT_INJECTION: forcing a failure")
WARN_ALLOC = re.compile(r"mode:0x[0-9a-f]+\(.*\), nodemask=")
# Known bugs of the guest kernel itself, met by tests that do not involve
# beluga.ko: (regex of the WARNING line, why it is not ours).  Each such
# warning and its stack dump are reported but do not fail the boot, and the
# W taint is then accepted; any other warning still fails it.
KNOWN_KERNEL_BUGS = [
    (re.compile(r"WARNING: .* at include/linux/fs\.h:\d+ hugetlb_split\+"),
     "6.1.y stable backport of 'mm/hugetlb: unshare page tables during VMA split, not before':"
     " __vma_adjust() calls hugetlb_split() before it takes i_mmap_rwsem, so the lockdep"
     " assertion i_mmap_assert_write_locked() fires on any split of a hugetlbfs mapping"
     " (lockdep kernels only; libbeluga's user backend on hugetlbfs, no beluga.ko involved)"),
]
# Taint bits expected from loading beluga.ko: O (out-of-tree), E (unsigned).
TAINT_OK = (1 << 12) | (1 << 13)
TAINT_WARN = 1 << 9
TAINT_FLAGS = "PFSRMBUDAWCIOELKXTN"


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\r\n").replace("\r", "") for line in f]
    except FileNotFoundError:
        return []


class Results:
    """What /init wrote on the results channel."""

    def __init__(self, lines):
        self.tests = []  # (status, name, rc)
        self.times = {}
        self.skipped_cases = {}  # test name -> [(case, reason)]
        self.summary = None
        self.cases_summary = None
        self.tainted = None
        self.last_begun = None
        for line in lines:
            self._parse(line)

    def _parse(self, line):
        m = RESULT.match(line)
        if m:
            self.tests.append((m[1], m[2], m[3]))
            return
        m = SUMMARY.match(line)
        if m:
            self.summary = tuple(int(x) for x in m.groups())
            return
        m = CASES_SUMMARY.match(line)
        if m:
            self.cases_summary = int(m[1])
            return
        m = SKIPPED_CASE.match(line)
        if m:
            self.skipped_cases.setdefault(m[1], []).append((m[2], m[3] or "(no reason given)"))
            return
        words = line.split()
        if line.startswith("beluga-vm: time ") and len(words) == 4:
            self.times[words[2]] = words[3]
        elif line.startswith("beluga-vm: begin ") and len(words) == 3:
            self.last_begun = words[2]
        elif line.startswith("beluga-vm: tainted ") and len(words) == 3:
            self.tainted = int(words[2])

    def finished(self, name):
        return any(t[1] == name for t in self.tests)

    def status(self, name):
        return next((t[0] for t in self.tests if t[1] == name), None)

    def cases_skipped_inside_passing(self):
        return sum(len(self.skipped_cases.get(t[1], [])) for t in self.tests if t[0] == "PASS")


class Console:
    """The console log: test output sections, kernel lines, boot time."""

    def __init__(self, lines):
        self.init_start = None
        self.output = {}  # test name -> lines between its begin/end markers
        self.bad = []  # (kernel line, test running at the time)
        self.injected = self._injected_dumps(lines)
        self.known = {}  # kernel line -> why it is a known kernel bug
        self.known_dumps = self._known_bug_dumps(lines)
        self._scan(lines)

    @staticmethod
    def _injected_dumps(lines):
        """Kernel lines (timestamp on) of stack dumps that injected allocation
        failures caused.  Read from the dmesg dump, where every level is
        present in order (the live console lacks the FAULT_INJECTION notice)."""
        exempt, armed, in_dump, in_dmesg = set(), 0, False, False
        for line in lines:
            if line in ("beluga-vm: dmesg-begin", "beluga-vm: dmesg-end"):
                in_dmesg = line.endswith("begin")
                continue
            m = KTIME.search(line)
            if not in_dmesg or not m:
                continue
            text = line[m.start():]
            if INJECTED.search(text):
                armed, in_dump = 8, False
            elif armed and WARN_ALLOC.search(text):
                armed, in_dump = 0, True
            elif in_dump:
                if "Call Trace" in text:
                    exempt.add(text)
                in_dump = "</TASK>" not in text
            elif armed:
                armed -= 1
        return exempt

    def _known_bug_dumps(self, lines):
        """Kernel lines of known kernel bugs' warnings and their dumps."""
        exempt, in_dump = set(), False
        for line in lines:
            m = KTIME.search(line)
            if not m:
                continue
            text = line[m.start():]
            for regex, why in KNOWN_KERNEL_BUGS:
                if regex.search(text):
                    self.known[text] = why
                    in_dump = True
            if in_dump:
                exempt.add(text)
                in_dump = "---[ end trace" not in text
        return exempt

    def _scan(self, lines):
        section = None  # test whose output is being collected
        running = None  # test that was running, to attribute kernel lines
        in_dmesg = False
        seen = set()
        for line in lines:
            if line.startswith("beluga-vm: init-start "):
                self.init_start = line.split()[2]
            elif line.startswith("beluga-vm: begin "):
                section = running = line.split(" ", 2)[2]
                self.output[section] = []
            elif line.startswith("beluga-vm: end "):
                section = running = None
            elif line in ("beluga-vm: dmesg-begin", "beluga-vm: dmesg-end"):
                in_dmesg = line.endswith("begin")
                section = running = None
            elif section is not None:
                self.output[section].append(line)
            if in_dmesg and "beluga-test: " in line:
                running = line.split("beluga-test: ", 1)[1].strip()
            self._check_kernel_line(line, running, seen)

    def _check_kernel_line(self, line, current, seen):
        m = KTIME.search(line)
        if not m or "beluga-test: " in line:
            return
        text = line[m.start():]
        if text in self.injected or text in self.known_dumps:
            return
        if BAD.search(text) and text not in seen:
            seen.add(text)
            self.bad.append((text, current))


def taint_letters(value):
    return "".join(c for i, c in enumerate(TAINT_FLAGS) if value & (1 << i))


def show_output(lines, indent="    | ", drop_kernel=False):
    for line in lines:
        if drop_kernel and KTIME.match(line):
            continue
        print(indent + line)


def check_expected(res, con, expect):
    """Problems with the profile's expectations.  Entries of @expect:
    <test>       the test must run and none of its cases may skip;
    <test>:<case> that case must run (a "[ RUN ] <case>" line in the test's
                 output) and must not skip;
    *            every test of the boot but the harness's is a <test> entry,
    !<test>      except this one (its own <test>:<case> entries still hold);
    !<test>:<case> that case may skip although <test> is expected (the
                 boot lacks what it needs; the rest of <test> must run)."""
    entries = [e for e in expect if e != "*" and not e.startswith("!")]
    may_skip = {tuple(e[1:].split(":", 1)) for e in expect if e.startswith("!") and ":" in e}
    if "*" in expect:
        excluded = {e[1:] for e in expect if e.startswith("!") and ":" not in e}
        entries += [t[1] for t in res.tests
                    if not t[1].startswith("harness/") and t[1] not in excluded and t[1] not in entries]
    problems = []
    for entry in entries:
        test, _, case = entry.partition(":")
        status = res.status(test)
        if status is None:
            problems.append(f"expected test {test} did not run")
            continue
        if status == "SKIP":
            problems.append(f"{test} skipped, but this profile expects it to run")
            continue
        for skipped, why in res.skipped_cases.get(test, []):
            if (not case and (test, skipped) not in may_skip) or skipped == case:
                problems.append(f"{test}: case {skipped} skipped ({why}), but this profile expects it to run")
        if case and not any((m := RUN_LINE.match(line)) and m[1] == case
                            for line in con.output.get(test, [])):
            problems.append(f"{test}: expected case {case} not found in its output (renamed?)")
    return list(dict.fromkeys(problems))  # a skipped test, once for all its entries


def judge(args):
    res = Results(read_lines(args.results))
    con = Console(read_lines(args.console))
    name = args.name
    problems = []

    boot = f"/init after {con.init_start} s (guest clock)" if con.init_start else "/init never started"
    print(f"vm[{name}]: {boot}, whole boot {args.wall} s wall; log {args.console}")
    for status, test, rc in res.tests:
        line = f"{status} {test}" + (f" (rc={rc})" if rc is not None else "")
        print(f"{line:<48} {res.times.get(test, '?')} s")
        for case, why in res.skipped_cases.get(test, []):
            print(f"    skipped: {case}: {why}")
        if status == "SKIP" and not res.skipped_cases.get(test) and not args.show_output:
            # A program that skipped as a whole says why in its output.
            show_output(con.output.get(test, [])[-5:], indent="    skipped: ", drop_kernel=True)
        if args.show_output and status != "FAIL" and not test.startswith("harness/"):
            show_output(con.output.get(test, []), indent="    ", drop_kernel=True)
        if status == "FAIL":
            print(f"    --- output of {test} ---")
            show_output(con.output.get(test, []))

    killed = args.killed_during
    if killed:
        print(f"KILLED {killed} (its QEMU was killed at the test's request; judged on the other hosts)")
        show_output(con.output.get(killed, []), indent="    ", drop_kernel=True)
        if res.last_begun != killed or res.finished(killed):
            problems.append(f"killed during {killed}, but the guest was running {res.last_begun}")
    elif args.rc in (124, 137):
        problems.append(f"timed out after {args.timeout} s")
    if res.last_begun and not res.finished(res.last_begun) and res.last_begun != killed:
        problems.append(f"the boot ended while {res.last_begun} was running")
        print(f"    --- output of {res.last_begun} (unfinished) ---")
        show_output(con.output.get(res.last_begun, []))
    if res.summary is None and not killed:
        problems.append("no summary line (guest hung, panicked or died)")
    counts = [sum(1 for t in res.tests if t[0] == s) for s in ("PASS", "FAIL", "SKIP")]
    if res.summary is not None and tuple(counts) != res.summary:
        problems.append(f"summary {res.summary} disagrees with the result lines {tuple(counts)}")
    if counts[1]:
        problems.append(f"{counts[1]} failed")
    inside = res.cases_skipped_inside_passing()
    if res.cases_summary is not None and res.cases_summary != inside:
        problems.append(f"'{res.cases_summary} cases skipped inside passing tests' disagrees"
                        f" with the skipped-case lines ({inside})")
    problems += check_expected(res, con, args.expect.split())
    if res.summary is not None and not any(not t[1].startswith("harness/") for t in res.tests):
        problems.append("no test ran (empty test lists?)")
    taint_ok = TAINT_OK | (TAINT_WARN if con.known else 0)
    if con.known:
        print(f"vm[{name}]: known bugs of the guest kernel (not failures):")
        for why in sorted(set(con.known.values())):
            lines = [t for t, w in con.known.items() if w == why]
            print(f"    {len(lines)} x {lines[0]}\n      {why}")
    if res.tainted is not None and res.tainted & ~taint_ok:
        problems.append(f"kernel tainted {res.tainted} ({taint_letters(res.tainted)})")
    if con.bad:
        problems.append(f"{len(con.bad)} bad kernel log line(s)")
        print(f"vm[{name}]: kernel log problems:")
        for text, test in con.bad:
            print(f"    {text}" + (f"   <- during {test}" if test else ""))

    print(f"vm[{name}]: {inside} cases skipped inside passing tests")
    print(f"vm[{name}]: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped"
          + (f"; FAILED: {'; '.join(problems)}" if problems else ""))
    if args.counts:
        with open(args.counts, "w") as f:
            f.write(f"{counts[0]} {counts[1]} {counts[2]} {0 if problems else 1} {con.init_start or '?'}"
                    f" {inside}\n")
    return 1 if problems else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--console", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--rc", type=int, required=True, help="exit status of boot.sh")
    p.add_argument("--timeout", default="?")
    p.add_argument("--wall", default="?")
    p.add_argument("--show-output", action="store_true")
    p.add_argument("--counts", help="write 'passed failed skipped ok init-time cases-skipped' here")
    p.add_argument("--killed-during", metavar="TEST",
                   help="the multi-host runner killed this guest at TEST's request")
    p.add_argument("--expect", default="",
                   help="space-separated: tests (test) or cases (test:case) that must not skip;"
                        " '*' for every test, '!test' to leave one out of '*'")
    sys.exit(judge(p.parse_args()))


if __name__ == "__main__":
    main()
