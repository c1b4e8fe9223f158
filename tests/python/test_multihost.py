# SPDX-License-Identifier: Apache-2.0
"""What an engine on one of several hosts uses, through the binding.

Hosts are simulated: every handle here runs on this machine, with its own
host index, on a region the test creates as the administrator would define
a shared region (the user backend has no shared regions; the multi-host VM
profiles run the real ones).  Short leases keep the claim windows and the
takeover's watch short.
"""

import errno

import pytest

import beluga

MiB = 1 << 20
LEASE = dict(lease_ms=200)       # heartbeat period 25 ms, claim window 50 ms


def fp(**kw):
    args = dict(model_id="test/model@1", hash_seed="0", num_layers=2, block_size=4,
                num_kv_heads=2, head_size=8, dtype="bf16")
    args.update(kw)
    return beluga.Fingerprint(**args)


def key(i):
    return bytes([i]) * 32


def test_open_shared_refuses_a_private_region(pool):
    pool.create_region("kv-shared", 2 * MiB).close()
    with pytest.raises(beluga.BelugaError) as e:
        pool.open_shared("kv-shared")
    assert e.value.errno == errno.EMEDIUMTYPE
    assert "'kv-shared'" in e.value.strerror and "beluga-tool shared define" in e.value.strerror
    with pytest.raises(beluga.BelugaError) as e:
        pool.open_shared("absent")
    assert e.value.errno == errno.ENOENT


def test_only_the_formatting_host_formats_a_region_nobody_creates(pool):
    # A region the cache never creates: ENOENT, and no region appears.
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.open(pool, "kv", fp(), create=False, may_format=True, max_hosts=2)
    assert e.value.errno == errno.ENOENT
    assert pool.list_regions() == []
    pool.create_region("kv", 8 * MiB).close()
    # Host 1 is not the formatter: it waits (here 50 ms) and finds no cache.
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.open(pool, "kv", fp(), create=False, host_id=1, ready_wait_ms=50, **LEASE)
    assert e.value.errno == beluga.KVC_ENOTREADY
    h0 = beluga.KVCache.open(pool, "kv", fp(), create=False, may_format=True, max_hosts=2,
                             host_id=0, **LEASE)
    h1 = beluga.KVCache.open(pool, "kv", fp(), create=False, host_id=1, **LEASE)
    try:
        assert (h0.info()["max_hosts"], h0.info()["host_id"], h1.info()["host_id"]) == (2, 0, 1)
        assert h0.info()["coherence"] == "noncoherent"     # auto, with several hosts
        # Host 0 stores, host 1 reads it byte for byte.
        data = bytes(range(256)) * (h0.payload_bytes // 256)
        assert h0.put([key(1)], [data]) == [0]
        assert h1.get([key(1)]) == [data]
        assert h1.remove([key(1)]) == [-errno.EXDEV]      # host 0's block
        # Per-host statistics and the host table.
        assert h1.stats(host=0)["puts"] == 1 and h1.stats(host=1)["puts"] == 0
        assert h1.stats()["get_hits"] == 1
        hosts = h1.hosts()
        assert [h["host"] for h in hosts] == [0, 1]
        assert hosts[1]["state"] == "self" and hosts[1]["sessions"] == 1
        assert hosts[0]["state"] in ("alive", "silent") and hosts[0]["used_blocks"] == 1
        assert h1.host(0)["machine_id"] == hosts[1]["machine_id"] != 0   # one machine here
        with pytest.raises(beluga.BelugaError) as e:
            h1.host(2)
        assert e.value.errno == errno.EINVAL
        # The formatter starting again finds the cache: nothing is formatted over it.
        again = beluga.KVCache.open(pool, "kv", fp(), create=False, may_format=True,
                                    max_hosts=2, host_id=0, **LEASE)
        assert again.lookup_prefix([key(1)]) == 1
        again.detach()
    finally:
        h1.detach()
        h0.detach()


def test_take_over_is_refused_while_the_host_holds_sessions(pool):
    pool.create_region("kv", 8 * MiB).close()
    h0 = beluga.KVCache.open(pool, "kv", fp(), create=False, may_format=True, max_hosts=2,
                             host_id=0, **LEASE)
    h1 = beluga.KVCache.open(pool, "kv", fp(), create=False, host_id=1, **LEASE)
    try:
        h0.put([key(7)], [bytes(h0.payload_bytes)])
        with pytest.raises(beluga.BelugaError) as e:
            h1.take_over(0)                                # h0 is attached, here
        assert e.value.errno == errno.EBUSY
        with pytest.raises(beluga.BelugaError) as e:
            h1.take_over(1)                                # its own index
        assert e.value.errno == errno.EINVAL
        h0.detach()
        # Nobody holds index 0's sessions any more: once its heartbeat stood
        # still for its lease, it is taken over; its block stays cached.
        assert h1.take_over(0, release=True) >= 0
        assert h1.host(0)["state"] == "free"
        assert h1.lookup_prefix([key(7)]) == 1
    finally:
        if h0.attached:
            h0.detach()
        h1.detach()


def test_format_once_on_a_buffer(pool):
    m = pool.create_region("buf", 8 * MiB).map()
    assert beluga.KVCache.format_once(m, fp(), max_hosts=2) is True
    assert beluga.KVCache.format_once(m, fp(), max_hosts=2) is False    # there already
    c = beluga.KVCache.attach(m, fp(), host_id=1, **LEASE)
    assert c.info()["max_hosts"] == 2 and c.hosts()[1]["state"] == "self"
    c.detach()
    m.close()
