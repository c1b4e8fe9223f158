# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: a private user-backend pool per test (tmpfs, no driver)."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import beluga  # noqa: E402


@pytest.fixture
def pool_dir():
    # tmpfs like the real user backend; private so parallel tests never meet.
    d = tempfile.mkdtemp(prefix="beluga-pytest-", dir="/dev/shm")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pool(pool_dir):
    with beluga.Pool("user", user_dir=pool_dir, hugetlbfs_dir="none") as p:
        yield p
