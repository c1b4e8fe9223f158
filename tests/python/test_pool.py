# SPDX-License-Identifier: Apache-2.0
"""Pools, regions and mappings through the binding (user backend)."""

import errno
import mmap
import os
import socket

import pytest

import beluga

MiB = 1 << 20


def test_pool_info_and_backend(pool):
    assert pool.backend == "user"
    info = pool.info()
    assert info["backend"] == "user" and info["chunk_size"] == 2 * MiB
    assert info["nr_regions"] == 0
    assert len(pool.sources()) == info["nr_sources"] >= 1
    assert beluga.version() and beluga.abi_version() > 0


def test_shared_regions_are_refused_by_the_user_backend(pool):
    with pytest.raises(beluga.BelugaError) as e:
        pool.define_shared("kv-pool", 0, 0, 2 * MiB)
    assert e.value.errno == errno.EOPNOTSUPP
    r = pool.create_region("r-private", 2 * MiB)
    assert pool.stat_region("r-private")["shared"] is False
    r.close()
    pool.destroy_region("r-private")


def test_bad_backend_and_missing_device():
    with pytest.raises(ValueError):
        beluga.Pool("floppy")
    with pytest.raises(beluga.BelugaError) as e:
        beluga.Pool("kernel", device_path="/nonexistent/beluga")
    assert e.value.errno == beluga.ENODRIVER
    assert isinstance(e.value, OSError)


def test_region_lifecycle_and_errors(pool):
    r = pool.create_region("r1", 4 * MiB, mode=0o640)
    assert (r.name, r.size) == ("r1", 4 * MiB)
    assert r.info()["mode"] == 0o640
    assert [x["name"] for x in pool.list_regions()] == ["r1"]
    with pytest.raises(beluga.BelugaError) as e:
        pool.create_region("r1", 4 * MiB)
    assert e.value.errno == errno.EEXIST and "r1" in e.value.strerror
    with pytest.raises(beluga.BelugaError) as e:
        pool.create_region("bad name", 4 * MiB)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(beluga.BelugaError) as e:
        pool.create_region("r2", 3 * MiB)           # not a multiple of 2 MiB
    assert e.value.errno == errno.EINVAL
    with pytest.raises(beluga.BelugaError) as e:
        pool.open_region("missing")
    assert e.value.errno == errno.ENOENT
    pool.chmod_region("r1", 0o600)
    assert pool.stat_region("r1")["mode"] == 0o600
    pool.destroy_region("r1")
    with pytest.raises(beluga.BelugaError) as e:
        pool.destroy_region("r1")
    assert e.value.errno == errno.ENOENT
    assert r.info()["destroyed"]                     # still open after destroy
    r.close()
    with pytest.raises(ValueError, match="closed"):
        r.size  # noqa: B018


def test_mapping_is_a_shared_writable_buffer(pool):
    np = pytest.importorskip("numpy")
    r = pool.create_region("m", 2 * MiB)
    m1, m2 = r.map(), r.map()
    a = np.frombuffer(m1, dtype=np.uint32)
    a[:4] = [1, 2, 3, 4]
    assert bytes(memoryview(m2)[:8]) == b"\x01\0\0\0\x02\0\0\0"   # same memory
    assert m1.address % (2 * MiB) == 0 and len(m1) == 2 * MiB
    with pytest.raises(BufferError):
        m1.close()                                   # a view exists
    del a
    m1.close()
    with pytest.raises(ValueError, match="closed"):
        memoryview(m1)
    ro = r.map(writable=False)
    assert memoryview(ro).readonly
    with pytest.raises(beluga.BelugaError) as e:
        r.map(offset=4 * MiB)
    assert e.value.errno in (errno.ENXIO, errno.EINVAL)
    m2.close()
    ro.close()


def test_mapping_dlpack_to_torch(pool):
    torch = pytest.importorskip("torch")
    from torch.utils.dlpack import from_dlpack
    r = pool.create_region("d", 2 * MiB)
    m = r.map()
    t = from_dlpack(m)
    assert t.dtype == torch.uint8 and t.numel() == 2 * MiB
    t[:3] = torch.tensor([7, 8, 9], dtype=torch.uint8)
    assert bytes(memoryview(m)[:3]) == b"\x07\x08\x09"
    f = torch.frombuffer(m, dtype=torch.bfloat16)     # buffer protocol, zero-copy
    assert f.data_ptr() == m.address
    with pytest.raises(BufferError):
        m.close()
    del t, f
    m.close()


def test_readonly_open_refuses_write_map(pool):
    pool.create_region("ro", 2 * MiB).close()
    r = pool.open_region("ro", readonly=True)
    with pytest.raises(beluga.BelugaError) as e:
        r.map(writable=True)
    assert e.value.errno == errno.EACCES


def test_save_and_load(pool, tmp_path):
    r = pool.create_region("s", 2 * MiB)
    m = r.map()
    memoryview(m)[:5] = b"hello"
    m.save(str(tmp_path / "img"))
    memoryview(m)[:5] = b"xxxxx"
    m.load(str(tmp_path / "img"))
    assert bytes(memoryview(m)[:5]) == b"hello"
    with pytest.raises(beluga.BelugaError) as e:
        m.load(str(tmp_path / "missing"))
    assert e.value.errno == errno.ENOENT


def test_send_region_over_a_socket(pool):
    r = pool.create_region("x", 2 * MiB)
    memoryview(r.map())[:2] = b"ok"
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        r.send(a)
        got = pool.receive(b)
        assert bytes(memoryview(got.map())[:2]) == b"ok"
        # Region fds also wrap back (the fd is duplicated).
        assert pool.from_fd(got.fd).size == 2 * MiB


def test_mapping_shared_across_fork(pool):
    r = pool.create_region("f", 2 * MiB)
    m = r.map()
    pid = os.fork()
    if pid == 0:
        try:
            child = pool.open_region("f").map()
            memoryview(child)[100:103] = b"abc"
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert bytes(memoryview(m)[100:103]) == b"abc"


def test_strerror_speaks_for_library_codes():
    assert "driver" in beluga.strerror(beluga.ENODRIVER).lower()
    assert "fingerprint" in beluga.strerror(-beluga.KVC_EFINGERPRINT)
    assert beluga.strerror(errno.ENOENT)


def test_mmap_module_contract_is_matched(pool):
    # Same rule as mmap.mmap: no close while exported.
    mm = mmap.mmap(-1, 4096)
    v = memoryview(mm)
    with pytest.raises(BufferError):
        mm.close()
    v.release()
    mm.close()


def test_empty_option_strings_are_refused(pool_dir):
    with pytest.raises(beluga.BelugaError) as e:
        beluga.Pool("user", pool_name="", user_dir=pool_dir)
    assert e.value.errno == errno.EINVAL and "None" in e.value.strerror
