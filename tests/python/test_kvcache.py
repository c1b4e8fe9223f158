# SPDX-License-Identifier: Apache-2.0
"""The KV-block store through the binding: every call and its errors."""

import errno
import hashlib
import os

import pytest

import beluga

np = pytest.importorskip("numpy", reason="python3-numpy is needed for the store tests")

MiB = 1 << 20


def fp(**kw):
    args = dict(model_id="test/model@1", hash_seed="0", num_layers=2, block_size=4,
                num_kv_heads=2, head_size=8, dtype="bf16")
    args.update(kw)
    return beluga.Fingerprint(**args)


@pytest.fixture
def cache(pool):
    c = beluga.KVCache.open(pool, "kv", fp(), region_bytes=8 * MiB)
    yield c
    if c.attached:
        c.detach()


def blocks(n, size, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size), dtype=np.uint8)


def keys(n, tag=b"k"):
    return [hashlib.sha256(tag + bytes([i])).digest() for i in range(n)]


def test_fingerprint_fields_and_validation():
    f = fp()
    assert (f.num_layers, f.block_size, f.dtype, f.layout, f.tp_size) == (2, 4, "bf16", "kv_block", 1)
    assert f == fp() and not (f == fp(num_layers=3))
    assert fp(dtype="torch.bfloat16") == f
    with pytest.raises(ValueError):
        fp(dtype="int4")
    with pytest.raises(ValueError):
        fp(model_id="x" * 200)
    with pytest.raises(ValueError):
        fp(layout="weird")


def test_put_get_lookup_roundtrip(cache):
    size = cache.payload_bytes
    assert size == 2 * 2 * 4 * 2 * 8 * 2
    k, data = keys(4), blocks(4, size)
    assert cache.put(k[:3], data[:3]) == [0, 0, 0]
    assert cache.put(k[:3], list(data[:3])) == [beluga.EXISTS] * 3
    assert cache.lookup_prefix(k) == 3
    assert cache.lookup_prefix(k[1:]) == 2
    assert cache.lookup_prefix([]) == 0
    assert cache.lookup_prefix(b"".join(k)) == 3     # packed keys work too
    out = np.zeros((4, size), np.uint8)
    assert cache.get(k, out) == [size, size, size, -errno.ENOENT]
    assert (out[:3] == data[:3]).all()
    got = cache.get(k)
    assert got[:3] == [bytes(d) for d in data[:3]] and got[3] is None
    small = [bytearray(size - 1)]
    assert cache.get(k[:1], small) == [-errno.ENOBUFS]
    s = cache.stats()
    assert (s["puts"], s["put_exists"], s["lookups"]) == (3, 3, 4)   # the empty lookup is free


def test_put_item_errors(cache):
    size = cache.payload_bytes
    assert cache.put(keys(1), [bytearray(size + 1)]) == [-errno.EINVAL]
    assert cache.put(keys(1, b"z"), [b""]) == [-errno.EINVAL]
    with pytest.raises(ValueError, match="32 bytes"):
        cache.put([b"short"], [bytes(size)])
    with pytest.raises(ValueError, match="2 buffers for 1 keys"):
        cache.put(keys(1), [bytes(size), bytes(size)])
    with pytest.raises(ValueError, match="equal blocks"):
        cache.put(keys(2), bytes(size * 2 + 1))


def test_full_partition_answers_enospc_without_eviction(pool):
    c = beluga.KVCache.open(pool, "tiny", fp(), region_bytes=2 * MiB, eviction="none",
                            capacity_blocks=4)
    assert c.eviction()["policy"] == "none" and c.info()["eviction"] == "none"
    res = c.put(keys(6), np.zeros((6, c.payload_bytes), np.uint8))
    assert res == [0] * 4 + [-errno.ENOSPC] * 2
    assert c.stats()["put_nospace"] == 2
    c.detach()


def test_eviction_makes_room_and_spares_pins(pool):
    c = beluga.KVCache.open(pool, "ev", fp(), region_bytes=2 * MiB, capacity_blocks=8,
                            high_watermark_pct=100, low_watermark_pct=50)
    e = c.eviction()
    assert (e["policy"], e["capacity_blocks"], e["used_blocks"]) == ("clock", 8, 0)
    first = keys(8, b"a")
    assert c.put(first, blocks(8, c.payload_bytes)) == [0] * 8
    pin = c.pin(first[:1])[0]
    assert c.put(keys(4, b"b"), blocks(4, c.payload_bytes)) == [0] * 4
    st = c.stats()
    assert st["evictions"] >= 4 and st["evict_rounds"] >= 1
    assert c.lookup_prefix(first[:1]) == 1          # the pinned block stayed
    assert c.eviction()["used_blocks"] <= 8
    pin.unpin()
    assert c.evict(2) == 2
    c.set_eviction(policy="lru", capacity_blocks=6)
    assert c.eviction()["policy"] == "lru" and c.eviction()["used_blocks"] <= 6
    with pytest.raises(beluga.BelugaError) as e:
        c.set_eviction(high_watermark_pct=10, low_watermark_pct=90)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        c.set_eviction(policy="fifo")
    c.detach()


def test_inspect_and_list_blocks(cache):
    k, data = keys(3), blocks(3, cache.payload_bytes)
    cache.put(k, data)
    info = cache.inspect(k[1], verify=True)
    assert info["key"] == k[1] and info["len"] == cache.payload_bytes
    assert info["checksum"] == beluga.checksum(data[1]) and info["checksum_state"] == "ok"
    assert cache.inspect(keys(1, b"x")[0]) is None
    listed = cache.list_blocks()
    assert sorted(b["key"] for b in listed) == sorted(k)


def test_observer_reads_without_a_session(pool, cache):
    cache.put(keys(2), blocks(2, cache.payload_bytes))
    obs = beluga.KVCache.open(pool, "kv", fp(), create=False, observe=True)
    assert obs.info()["observer"] and obs.lookup_prefix(keys(2)) == 2
    assert cache.stats()["sessions_opened"] == 1
    with pytest.raises(beluga.BelugaError) as e:
        obs.evict(1)
    assert e.value.errno == errno.EPERM
    obs.detach()


def test_pins_are_zero_copy_and_block_detach(cache):
    size = cache.payload_bytes
    k, data = keys(2), blocks(2, size)
    cache.put(k, data)
    pins = cache.pin(k + keys(1, b"missing"), verify=True)
    assert pins[2] is None
    a = np.frombuffer(pins[0], np.uint8)
    assert (a == data[0]).all() and not a.flags.writeable
    assert pins[0].key == k[0] and len(pins[0]) == size
    with pytest.raises(BufferError):
        pins[0].unpin()                          # a view exists
    with pytest.raises(BufferError, match="still pinned"):
        cache.detach()
    # Removal while pinned: the pinned copy stays readable and unchanged.
    assert cache.remove(k[:1]) == [0]
    assert cache.lookup_prefix(k) == 0
    assert (np.frombuffer(pins[0], np.uint8) == data[0]).all()
    del a
    pins[0].unpin()
    assert not pins[0].pinned
    with pytest.raises(ValueError, match="no longer pinned"):
        memoryview(pins[0])
    del pins                                      # the other pin unpins when collected
    assert cache.live_pins == 0
    s = cache.stats()
    assert s["pins"] == s["unpins"] == 2
    assert cache.check()["held_pins"] == 0
    cache.detach()


def test_remove_results(cache):
    k = keys(2)
    cache.put(k[:1], [bytes(cache.payload_bytes)])
    assert cache.remove(k) == [0, -errno.ENOENT]


def test_info_check_and_reclaim(cache):
    info = cache.info()
    assert info["format_version"] == beluga.FORMAT_VERSION
    assert info["coherence"] == "coherent" and info["max_hosts"] == 1
    # The stored fingerprint has payload_bytes filled in from the shape.
    assert info["fingerprint"] == fp(payload_bytes=512)
    cache.put(keys(3), blocks(3, cache.payload_bytes))
    rep = cache.check(verify_data=True)
    assert rep["published_slots"] == 3 and rep["errors"] == 0
    assert cache.reclaim() == 0


def test_fingerprint_mismatch_names_the_field(pool, cache):
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.open(pool, "kv", fp(head_size=16), create=False)
    assert e.value.errno == beluga.KVC_EFINGERPRINT
    assert "head_size" in e.value.strerror
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.open(pool, "absent", fp(), create=False)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(ValueError, match="region_bytes"):
        beluga.KVCache.open(pool, "new", fp())


def test_format_attach_on_a_mapping_and_simulated_hosts(pool):
    r = pool.create_region("sim", 8 * MiB)
    m = r.map()
    beluga.KVCache.format(m, fp(), max_hosts=2)
    h0 = beluga.KVCache.attach(m, fp(), host_id=0, coherence="simulate")
    with pytest.raises(BufferError):
        m.close()                                 # the attached cache holds the mapping
    # One simulating handle per host and process: the second host attaches in a child.
    k, data = keys(2), blocks(2, h0.payload_bytes)
    assert h0.put(k, data) == [0, 0]
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            h1 = beluga.KVCache.attach(pool.open_region("sim").map(), fp(), host_id=1,
                                       coherence="simulate")
            out = np.zeros((2, h1.payload_bytes), np.uint8)
            ok = h1.get(k, out) == [h1.payload_bytes] * 2 and (out == data).all()
            ok = ok and h1.remove(k[:1]) == [-errno.EXDEV]
            h1.detach()
        finally:
            os.write(wr, b"1" if ok else b"0")
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(rd, 1) == b"1"
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.attach(m, fp(), host_id=5)
    assert e.value.errno == errno.EINVAL
    h0.detach()


def test_attach_errors(pool):
    r = pool.create_region("raw", 2 * MiB)
    m = r.map()
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.attach(m, fp())
    assert e.value.errno == beluga.KVC_ENOTREADY
    memoryview(m)[:8] = b"GARBAGE!"
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVCache.attach(m, fp())
    assert e.value.errno == beluga.KVC_EFORMAT
    with pytest.raises(ValueError, match="coherence"):
        beluga.KVCache.attach(m, fp(), coherence="maybe")
    with pytest.raises(BufferError):
        beluga.KVCache.attach(bytes(4096), fp())   # read-only buffer


def test_keys_match_vllm_sha256_cbor():
    cbor2 = pytest.importorskip("cbor2")

    def sha256_cbor(o):
        return hashlib.sha256(cbor2.dumps(o, canonical=True)).digest()

    root = beluga.root_key("0")
    assert root.hex().startswith("4e1195df")
    assert root == sha256_cbor("0")
    toks = list(range(1, 17))
    assert beluga.hash_block(root, toks) == sha256_cbor((root, tuple(toks), None))
    extra = ("my-lora", ("mm-hash-abc", -3), b"\x01\x02\x03", 5, None)
    assert beluga.hash_block(root, toks, extra) == sha256_cbor((root, tuple(toks), extra))
    chain = beluga.hash_tokens(root, list(range(100, 114)), 4)
    assert [c.hex()[:8] for c in chain] == ["71f40f56", "4d6f9055", "f3a4ba28"]
    with pytest.raises(TypeError):
        beluga.hash_block(root, toks, (True,))
    with pytest.raises(ValueError):
        beluga.hash_block(b"short", toks)
    with pytest.raises(ValueError):
        beluga.hash_tokens(root, [-1], 4)


def test_checksum_vectors():
    data = bytes(i & 0xFF for i in range(1000))
    assert beluga.checksum(b"") == 0xE20CD9A04C3E3C37
    assert beluga.checksum(data) == 0x0E580D5039EA8EF6


# ------------------------------------------------- zero-copy stores (reserve)

def test_reserve_write_in_place_commit(cache):
    size = cache.payload_bytes
    k, data = keys(4, b"zc"), blocks(4, size, seed=7)
    cache.put(k[3:], data[3:])
    r = cache.reserve(k, size)
    assert len(r) == 4 and r.results == [0, 0, 0, beluga.EXISTS]
    assert [r.reserved(i) for i in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError, match="holds no slot"):
        r.view(3)
    for i in range(3):
        r.view(i)[:] = data[i].tobytes()
        assert r.offset(i) % 64 == 0
    assert cache.lookup_prefix(k[:1]) == 0        # readers never see a reserved block
    assert r.commit() == [0, 0, 0, -errno.ENOENT]
    assert cache.get(k) == [data[i].tobytes() for i in range(4)]
    assert not r.reserved(0)


def test_reserve_commit_with_the_writers_sums(cache):
    """commit(sums=): one sum per item in the items' order (what the GPU path
    passes from gather_sum); a wrong count is refused and commits nothing;
    items holding no slot are ignored; a sum that does not match its payload
    is stored but missed by verified reads, and only that block."""
    size = cache.payload_bytes
    k, data = keys(4, b"cs"), blocks(4, size, seed=11)
    cache.put(k[3:], data[3:])
    r = cache.reserve(k, size)
    for i in range(3):
        r.view(i)[:] = data[i].tobytes()
    sums = [beluga.checksum(data[i].tobytes()) for i in range(3)] + [12345]
    with pytest.raises(ValueError, match="4 items"):
        r.commit(sums=sums[:3])
    assert r.reserved(0) and cache.lookup_prefix(k[:1]) == 0
    sums[1], sums[2] = sums[2], sums[1]          # out of the items' order
    assert r.commit(sums=sums) == [0, 0, 0, -errno.ENOENT]
    assert cache.lookup_prefix(k) == 4
    pins = cache.pin(k, verify=True)
    assert [p is not None for p in pins] == [True, False, False, True]
    for p in pins:
        if p is not None:
            p.unpin()
    assert cache.get(k[:1]) == [data[0].tobytes()]


def test_reserve_abort_publishes_nothing_and_with_block_aborts(cache):
    size = cache.payload_bytes
    k = keys(2, b"ab")
    r = cache.reserve(k, size)
    r.view(0)[:] = b"\x01" * size
    r.abort(0)
    assert not r.reserved(0) and r.reserved(1)
    r.abort()
    assert cache.lookup_prefix(k) == 0
    with cache.reserve(k, size) as r2:
        r2.view(0)[:] = b"\x02" * size
    assert not r2.reserved(0) and cache.lookup_prefix(k) == 0
    assert cache.put(k, blocks(2, size)) == [0, 0]   # the slots came back


def test_reserve_views_end_at_commit_and_detach_waits_for_open_reservations(cache):
    size = cache.payload_bytes
    r = cache.reserve(keys(1, b"ex"), size)
    v = r.view(0)
    v[:] = b"\x05" * size
    with pytest.raises(BufferError, match="reservation"):
        cache.detach()
    assert r.reserved(0)
    assert r.commit() == [0]
    with pytest.raises(ValueError):                # views are released at commit
        v[0] = 1
    assert cache.get(keys(1, b"ex")) == [b"\x05" * size]
    del r
    cache.detach()


def test_reserve_errors(cache):
    size = cache.payload_bytes
    r = cache.reserve(keys(1, b"er"), size + 1)
    assert r.results == [-errno.EINVAL] and not r.reserved(0)
    limit = cache.info()["max_batch"] - 1
    held = cache.reserve(keys(limit + 1, b"lim"), size)
    assert held.results[:limit] == [0] * limit and held.results[limit] == -errno.ENOBUFS
    held.abort()


def test_save_batch_gathers_into_reserved_slots_and_stages_the_rest(pool):
    torch = pytest.importorskip("torch", reason="python3-torch is needed for the block I/O tests")
    from beluga_vllm.blockio import KVBlockIO
    f = fp(num_layers=2, block_size=4, num_kv_heads=2, head_size=8, dtype="fp32")
    c = beluga.KVCache.open(pool, "kv-zc", f, region_bytes=8 * MiB, max_batch=4)
    try:
        layers = [torch.randn(2, 16, 4, 2, 8) for _ in range(2)]
        io = KVBlockIO(c, layers, "KBTHD", "beluga")
        assert io.max_reservations == 3 and io.verify_loads
        ids, k = [5, 1, 9, 2, 7], keys(5, b"sb")
        c.put(k[1:2], np.zeros((1, c.payload_bytes), np.uint8))  # cached: skipped
        batch = io.begin_save(ids, k)
        assert batch.zero_copy == 2          # 3 reserved, one of them cached already
        batch.gather(0, 1)
        assert batch.commit() == [0, 0, 0, 0]
        assert (io.stats.saved_blocks, io.stats.saved_zero_copy, io.stats.save_skipped) == (4, 2, 1)
        for b, key in zip(ids, k):
            if key == k[1]:
                continue
            want = torch.stack([layers[layer][:, b] for layer in range(2)]).contiguous()
            got = np.frombuffer(c.get([key])[0], np.float32)
            assert (got == want.view(-1).numpy()).all()
    finally:
        c.detach()
