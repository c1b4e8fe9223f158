#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""List what skipped in a CTest run, from its JUnit file (ctest
--output-junit, with --test-output-size-passed large enough to keep the
whole output): every case that skipped inside a passing test, by name with
its reason (the "beluga-skip: <case>: <reason>" lines test programs print,
tests/common/skip_report.h), the tests that skipped as a whole with their
reason, then the count of the former.  Run by `make run-unit` after ctest; always exits 0
(ctest's own status is the verdict).

    scripts/ctest-skips.py JUNIT_XML
"""
import sys
import xml.etree.ElementTree as ET

MARK = "beluga-skip: "


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"ctest-skips: cannot read {sys.argv[1]}: {e}")
        return 0
    inside, whole = [], []  # (test, "case: reason")
    for tc in root.iter("testcase"):
        test = tc.get("name")
        out = (tc.findtext("system-out") or "").splitlines()
        cases = [line[len(MARK):] for line in out if line.startswith(MARK)]
        if tc.find("skipped") is not None:
            # Its reason: the first case it reported, or the end of its output.
            if cases:
                reason = cases[0] + (f" (and {len(cases) - 1} more cases)" if len(cases) > 1 else "")
            else:
                reason = next((line for line in reversed(out) if line.strip()), "(no output)")
            whole.append((test, reason))
        elif tc.get("status") == "run" and tc.find("failure") is None:
            inside += [(test, c) for c in cases]
    if inside:
        print("ctest: cases skipped inside passing tests:")
        for test, case in inside:
            print(f"  {test}: {case}")
    if whole:
        print("ctest: tests skipped as a whole:")
        for test, case in whole:
            print(f"  {test}: {case}")
    print(f"ctest: {len(inside)} cases skipped inside passing tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
