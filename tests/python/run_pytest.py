#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run pytest on the given files for CTest: exit 0 pass, 77 when nothing ran
but skips (a missing optional package: the skip reasons are printed), else
pytest's failure code."""

import sys

import pytest


class Outcomes:
    def __init__(self):
        self.passed = self.skipped = 0
        self.reasons = set()

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.skipped:
            self.skipped += 1
            if isinstance(report.longrepr, tuple):
                self.reasons.add(report.longrepr[2])

    def pytest_collectreport(self, report):
        if report.skipped and isinstance(report.longrepr, tuple):
            self.skipped += 1
            self.reasons.add(report.longrepr[2])


def main():
    o = Outcomes()
    rc = pytest.main(["-q", "-rs", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[o])
    if rc in (0, 5) and o.passed == 0 and o.skipped:
        print("SKIPPED: " + "; ".join(sorted(o.reasons)))
        return 77
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
