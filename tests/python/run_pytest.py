#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run pytest on the given files for CTest: exit 0 pass, 77 when nothing ran
but skips (a missing optional package: the skip reasons are printed), else
pytest's failure code.  Each skipped test is listed after the run as
"beluga-skip: <test>: <reason>" (tests/common/skip_report.h), so that
scripts/ctest-skips.sh can list skips inside passing CTest tests."""

import sys

import pytest


class Outcomes:
    def __init__(self):
        self.passed = self.skipped = 0
        self.reasons = set()
        self.cases = []  # (test id, reason)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.skipped:
            self.skip(report)

    def pytest_collectreport(self, report):
        if report.skipped:
            self.skip(report)

    def skip(self, report):
        self.skipped += 1
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        self.reasons.add(why)
        self.cases.append((report.nodeid, why.removeprefix("Skipped: ")))


def main():
    o = Outcomes()
    rc = pytest.main(["-q", "-rs", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[o])
    for test, why in o.cases:
        print(f"beluga-skip: {test}: {' '.join(why.split())}")
    if rc in (0, 5) and o.passed == 0 and o.skipped:
        print("SKIPPED: " + "; ".join(sorted(o.reasons)))
        return 77
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
