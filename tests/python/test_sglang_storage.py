# SPDX-License-Identifier: Apache-2.0
"""BelugaHiCacheStorage driven as SGLang drives a HiCache storage backend.

The backend is built by the factory's dynamic path (sglang_standins:
``backend_class(storage_config, kwargs)`` then ``register_mem_pool_host``)
and used through the cache controller's calls (MiniController): prefix
queries with batch_exists, prefetch with batch_get_v1 (or the generic
batch_get + set_from_flat_data_page), backup with batch_set_v1 (or the
generic batch_set of get_data_page).  The host KV pools are the MHA and
MLA pools with the page_first and page_first_direct layouts; each page holds
values that depend on its key only, so a loaded page is checked exactly.
"""

import dataclasses
import multiprocessing as mp
import os
import signal
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="python3-torch is needed for SGLang's host KV pool")

import beluga  # noqa: E402
import sglang_standins as S  # noqa: E402

from beluga_sglang import keys as K  # noqa: E402

PAGE = 4
LAYERS, HEADS, HEAD_DIM = 3, 2, 8
PROMPT = list(range(100, 100 + 6 * PAGE + 2))     # 6 full pages and 2 tokens


@pytest.fixture
def sgl():
    uninstall = S.install()
    yield S
    uninstall()


def host_pool(layout="page_first", mla=False, pages=16, dtype=torch.bfloat16):
    if mla:
        return S.MLATokenToKVPoolHost(LAYERS, 12, 4, PAGE, pages * PAGE, layout, dtype)
    return S.MHATokenToKVPoolHost(LAYERS, HEADS, HEAD_DIM, PAGE, pages * PAGE, layout, dtype)


def extra_for(pool_dir, v1=True, **kw):
    extra = dict(backend="user", user_dir=pool_dir, hugetlbfs_dir="none", region_bytes="16M")
    extra.update(kw)
    if v1:
        extra["interface_v1"] = 1
    return extra


def instance(pool_dir, layout="page_first", mla=False, v1=True, tp_rank=0, tp_size=1,
             model_name="Qwen/Qwen3-0.6B", dtype=torch.bfloat16, **kw):
    """One SGLang rank: host pool, backend built by the factory, controller."""
    host = host_pool(layout, mla, dtype=dtype)
    cfg = S.storage_config(extra_for(pool_dir, v1, **kw), tp_rank, tp_size, mla, layout,
                           model_name=model_name)
    backend = S.create_dynamic_backend(cfg, host)
    return host, backend, S.MiniController(backend, host, cfg)


def store(host, ctl, hashes, salt=0):
    idx = host.alloc(len(hashes) * PAGE)
    S.fill_pages(host, idx, hashes, salt)
    done = ctl.backup(hashes, idx)
    host.free(idx)
    return done


def fetch(host, ctl, hashes, salt=0):
    """The controller's prefetch: hits, then pages loaded and checked."""
    hits = ctl.query_hits(hashes)
    if not hits:
        return 0, 0, True
    idx = host.alloc(len(hits) * PAGE)
    got = ctl.prefetch(hits, idx)
    ok = all(S.page_matches(host, idx[j * PAGE], hits[j], salt) for j in range(got))
    host.free(idx)
    return len(hits), got, ok


def test_keys_are_sglang_page_hashes():
    import hashlib
    h1 = hashlib.sha256(b"".join(t.to_bytes(4, "little") for t in PROMPT[:PAGE])).hexdigest()
    h2 = hashlib.sha256(bytes.fromhex(h1) + b"".join(
        t.to_bytes(4, "little") for t in PROMPT[PAGE:2 * PAGE])).hexdigest()
    assert K.page_hashes(PROMPT, PAGE)[:2] == [h1, h2]
    assert len(K.page_hashes(PROMPT, PAGE)) == 6          # the partial page has no key
    assert K.to_key(h1) == bytes.fromhex(h1)
    assert K.to_key("not-hex") == hashlib.sha256(b"not-hex").digest()


def test_usable_without_sglang():
    # A fresh interpreter with no sglang module: the plain base and metrics.
    code = ("import sys, dataclasses\n"
            "assert 'sglang' not in sys.modules\n"
            "from beluga_sglang import BelugaHiCacheStorage as B\n"
            "from beluga_sglang.storage import StorageMetrics\n"
            "assert 'sglang' not in sys.modules\n"
            "assert B.__mro__[1].__module__ == 'beluga_sglang.storage'\n"
            "print(sorted(f.name for f in dataclasses.fields(StorageMetrics)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(sorted(f.name for f in dataclasses.fields(S.StorageMetrics)))


def test_factory_builds_it_and_refuses_bad_config(sgl, pool_dir):
    host, backend, _ = instance(pool_dir)
    assert isinstance(backend, S.HiCacheStorage)
    assert backend.mem_pool_host is host
    assert backend.fingerprint.hash_fn == "sglang_sha256"
    assert backend.fingerprint.layout == "kv_block" and backend.fingerprint.block_size == PAGE
    backend.close()
    cfg = S.storage_config(extra_for(pool_dir, regoin="typo"))
    with pytest.raises(ValueError, match="regoin"):
        S.create_dynamic_backend(cfg, host)
    cfg = S.storage_config(extra_for(pool_dir), model_name=None)
    with pytest.raises(ValueError, match="model id"):
        S.create_dynamic_backend(cfg, host)
    cfg = S.storage_config(extra_for(pool_dir), attn_cp_size=2)
    with pytest.raises(ValueError, match="context parallelism"):
        S.create_dynamic_backend(cfg, host)
    from beluga_sglang.storage import BelugaHiCacheStorage
    unregistered = BelugaHiCacheStorage(S.storage_config(extra_for(pool_dir)), {})
    with pytest.raises(RuntimeError, match="register_mem_pool_host"):
        unregistered.batch_exists(K.page_hashes(PROMPT, PAGE))
    # A layout the backend does not move: refused, naming the ones it does.
    lf = S.MHATokenToKVPoolHost.__new__(S.MHATokenToKVPoolHost)
    lf.layout = "layer_first"
    with pytest.raises(ValueError, match="page_first_direct"):
        S.create_dynamic_backend(S.storage_config(extra_for(pool_dir)), lf)
    # SGLang's allocator-only (dummy) MLA host pool has no tensor; decode
    # context parallelism splits pages across ranks: both refused at start.
    dummy = host_pool(mla=True)
    dummy.kv_buffer = None
    with pytest.raises(ValueError, match="no KV tensor"):
        S.create_dynamic_backend(S.storage_config(extra_for(pool_dir), is_mla=True), dummy)
    # A hybrid model's host pool group moves through batch_*_v2: refused.
    group = S.HostPoolGroup(host_pool(), host_pool(mla=True))
    with pytest.raises(ValueError, match="HostPoolGroup"):
        S.create_dynamic_backend(S.storage_config(extra_for(pool_dir)), group)
    dcp = host_pool(mla=True)
    dcp.dcp_size = 2
    with pytest.raises(ValueError, match="dcp-size"):
        S.create_dynamic_backend(S.storage_config(extra_for(pool_dir), is_mla=True), dcp)


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "generic"])
@pytest.mark.parametrize("layout", ["page_first", "page_first_direct"])
def test_hit_miss_partial_prefix(sgl, pool_dir, layout, v1):
    hashes = K.page_hashes(PROMPT, PAGE)
    host_a, a, ctl_a = instance(pool_dir, layout, v1=v1)
    host_b, b, ctl_b = instance(pool_dir, layout, v1=v1)
    try:
        assert fetch(host_b, ctl_b, hashes) == (0, 0, True)          # miss
        assert store(host_a, ctl_a, hashes[:4]) == 4
        assert fetch(host_b, ctl_b, hashes) == (4, 4, True)          # partial prefix
        assert store(host_a, ctl_a, hashes) == 6                     # the rest; 4 cached already
        assert fetch(host_b, ctl_b, hashes) == (6, 6, True)          # hit
        other = K.page_hashes(PROMPT[:2 * PAGE] + [7] + PROMPT[2 * PAGE + 1:], PAGE)
        assert b.batch_exists(other) == 2                            # diverges at page 2
        assert b.exists(hashes[5]) and not b.exists(other[2])
        # A page gone from the middle ends the usable prefix there.
        assert b.cache.remove([K.to_key(hashes[3])]) == [0]
        assert b.batch_exists(hashes) == 3
        assert fetch(host_b, ctl_b, hashes) == (3, 3, True)
        if v1:   # batch_get_v1 answers per page; the controller counts the leading run
            idx = host_b.alloc(6 * PAGE)
            assert b.batch_get_v1(hashes, idx) == [True] * 3 + [False] + [True] * 2
            host_b.free(idx)
        assert a.stats["set_stored"] == 6 and a.stats["set_exists"] == 4
        assert a.cache_stats()["puts"] == 6        # each page stored once, zero-copy
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("mla", [False, True], ids=["mha", "mla"])
def test_page_first_and_direct_instances_share_blocks(sgl, pool_dir, mla):
    hashes = K.page_hashes(PROMPT, PAGE)
    host_a, a, ctl_a = instance(pool_dir, "page_first", mla=mla)
    host_b, b, ctl_b = instance(pool_dir, "page_first_direct", mla=mla, v1=False)
    try:
        assert store(host_a, ctl_a, hashes) == 6
        assert fetch(host_b, ctl_b, hashes) == (6, 6, True)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("layout", ["page_first", "page_first_direct"])
def test_mha_blocks_are_beluga_kv_blocks(sgl, pool_dir, layout):
    # The fingerprint says layout="kv_block": each stored page must be, byte
    # for byte, what libbeluga's own gather (beluga/kv_layout.h) makes of it.
    import numpy as np
    hashes = K.page_hashes(PROMPT, PAGE)
    host, a, ctl = instance(pool_dir, layout)
    try:
        idx = host.alloc(6 * PAGE)
        S.fill_pages(host, idx, hashes)
        assert a.batch_set_v1(hashes, idx) == [True] * 6
        kv, L, H, D = host.kv_buffer, LAYERS, HEADS, HEAD_DIM
        if layout == "page_first":   # [2, size, L, H, D]
            pages, strides = host.size // PAGE, (PAGE * L * H * D, kv.stride(0), L * H * D, D)
        else:                        # [2, page_num, L, page_size, H, D]
            pages, strides = host.page_num, (L * PAGE * H * D, kv.stride(0), H * D, D)
        shape = beluga.shape_of(a.fingerprint)
        paged = beluga.PagedKV(shape, pages, strides, [kv[0, 0, l].data_ptr() for l in range(L)],
                               owners=[kv])
        want = np.empty((6, shape.block_bytes), np.uint8)
        page_ids = [int(idx[j * PAGE]) // PAGE for j in range(6)]
        beluga.CpuCopier(threads=1).gather(paged, page_ids, [want[j] for j in range(6)])
        got = a.cache.get(K.to_keys(hashes))
        assert all(g == want[j].tobytes() for j, g in enumerate(got))
        host.free(idx)
    finally:
        a.close()


def test_tp_ranks_have_their_own_caches(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    ranks = [instance(pool_dir, tp_rank=r, tp_size=2) for r in range(2)]
    readers = [instance(pool_dir, "page_first_direct", tp_rank=r, tp_size=2) for r in range(2)]
    try:
        for r, (host, backend, ctl) in enumerate(ranks):
            assert backend.region_name() == f"sglang-kv-tp{r}"
            assert (backend.fingerprint.tp_rank, backend.fingerprint.tp_size) == (r, 2)
            assert store(host, ctl, hashes, salt=r) == 6      # each rank: its heads' values
        for r, (host, backend, ctl) in enumerate(readers):
            assert fetch(host, ctl, hashes, salt=r) == (6, 6, True)
            assert fetch(host, ctl, hashes, salt=1 - r)[2] is False
    finally:
        for _, backend, _ in ranks + readers:
            backend.close()


def test_mla_one_cache_for_every_rank_written_by_rank_0(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    r0 = instance(pool_dir, mla=True, tp_rank=0, tp_size=2)
    r1 = instance(pool_dir, "page_first_direct", mla=True, tp_rank=1, tp_size=2)
    try:
        for _, backend, _ in (r0, r1):
            fp = backend.fingerprint
            assert backend.region_name() == "sglang-kv"
            assert (fp.tp_rank, fp.tp_size, fp.layout, fp.num_kv_heads, fp.head_size) == \
                (0, 1, "opaque", 1, 16)
        host1, b1, _ = r1
        # Rank 1 never writes (SGLang skips its backups; the backend too).
        idx = host1.alloc(6 * PAGE)
        S.fill_pages(host1, idx, hashes, salt=99)
        assert b1.batch_set_v1(hashes, idx) == [True] * 6
        host1.free(idx)
        assert b1.batch_exists(hashes) == 0
        assert store(r0[0], r0[2], hashes) == 6
        assert fetch(*r1[0::2], hashes) == (6, 6, True)           # rank 1 reads rank 0's pages
        assert fetch(*r0[0::2], hashes) == (6, 6, True)
    finally:
        r0[1].close()
        r1[1].close()


@pytest.mark.parametrize("mla", [False, True], ids=["mha", "mla"])
def test_fp8_kv_cache_stored_as_uint8(sgl, pool_dir, mla):
    # SGLang keeps an FP8 KV cache in uint8 tensors (store_dtype); the
    # fingerprint names the FP8 format, taken from the device pool's dtype.
    hashes = K.page_hashes(PROMPT, PAGE)
    host_a, a, ctl_a = instance(pool_dir, mla=mla, dtype=S.FLOAT8_E4M3, region="fp8")
    host_b, b, ctl_b = instance(pool_dir, "page_first_direct", mla=mla, v1=False,
                                dtype=S.FLOAT8_E4M3, region="fp8")
    try:
        assert host_a.kv_buffer.dtype == torch.uint8
        assert a.fingerprint.dtype == "fp8_e4m3"
        assert store(host_a, ctl_a, hashes) == 6
        assert fetch(host_b, ctl_b, hashes) == (6, 6, True)
        # An e5m2 instance reads the same bytes as different numbers: refused.
        with pytest.raises(beluga.BelugaError) as e:
            instance(pool_dir, mla=mla, dtype=S.FLOAT8_E5M2, region="fp8")
        assert e.value.errno == beluga.KVC_EFINGERPRINT
        assert 'dtype is "fp8_e4m3" in the cache but "fp8_e5m2"' in str(e.value)
    finally:
        a.close()
        b.close()
    from beluga_sglang.pages import kv_dtype
    with pytest.raises(ValueError, match="element type is unknown"):
        kv_dtype(object(), torch.uint8)


def test_sglang_and_vllm_on_one_cache_are_refused(sgl, pool_dir):
    from beluga_vllm.config import BelugaSettings, open_cache
    host, backend, _ = instance(pool_dir, region="shared")
    fp = backend.fingerprint
    vllm_fp = beluga.Fingerprint(model_id=fp.model_id, hash_fn="sha256_cbor", hash_seed="0",
                                 num_layers=fp.num_layers, block_size=fp.block_size,
                                 num_kv_heads=fp.num_kv_heads, head_size=fp.head_size,
                                 dtype=fp.dtype)
    settings = BelugaSettings(region="shared", backend="user", user_dir=pool_dir,
                              hugetlbfs_dir="none", region_bytes=16 << 20)
    try:
        with pytest.raises(beluga.BelugaError) as e:
            open_cache(settings, vllm_fp)
        assert e.value.errno == beluga.KVC_EFINGERPRINT
        assert 'hash_fn is "sglang_sha256" in the cache but "sha256_cbor"' in str(e.value)
    finally:
        backend.close()
    # And the other way round: a vLLM cache refuses an SGLang instance.
    settings.region = "vllm-first"
    pool, cache = open_cache(settings, vllm_fp)
    try:
        with pytest.raises(beluga.BelugaError) as e:
            instance(pool_dir, region="vllm-first")
        assert 'hash_fn is "sha256_cbor" in the cache but "sglang_sha256"' in str(e.value)
    finally:
        cache.detach()
        pool.close()


def test_controller_threads_share_one_backend(sgl, pool_dir):
    # SGLang's prefetch, prefetch-IO and backup threads call one backend at once.
    import threading
    old = K.page_hashes(PROMPT, PAGE)
    new = [K.page_hashes([t + 1000 * i for t in PROMPT], PAGE) for i in range(1, 5)]
    host, a, ctl = instance(pool_dir)
    try:
        assert store(host, ctl, old) == 6
        start = threading.Barrier(2)
        out = {}

        def backup():
            start.wait()
            out["stored"] = [store(host, ctl, h) for h in new]

        def prefetch():
            start.wait()
            out["loaded"] = [fetch(host, ctl, old) for _ in new]

        threads = [threading.Thread(target=f) for f in (backup, prefetch)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out == {"stored": [6] * 4, "loaded": [(6, 6, True)] * 4}
        assert all(fetch(host, ctl, h) == (6, 6, True) for h in new)
    finally:
        a.close()


def test_stats_are_sglang_storage_metrics(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    host_a, a, ctl_a = instance(pool_dir)
    host_b, b, ctl_b = instance(pool_dir)
    try:
        store(host_a, ctl_a, hashes)
        fetch(host_b, ctl_b, hashes[:4])
        m = a.get_stats()
        assert isinstance(m, S.StorageMetrics)
        logged = S.log_storage_metrics(m)
        assert logged["backup_pgs"] == [6] and logged["prefetch_pgs"] == []
        assert len(logged["backup_bandwidth"]) == 1 and logged["backup_bandwidth"][0] >= 0
        assert S.log_storage_metrics(b.get_stats())["prefetch_pgs"] == [4]
        assert S.log_storage_metrics(a.get_stats())["backup_pgs"] == []   # drained
        assert a.stats["set_stored"] == 6 and b.stats["get_hits"] == 4
    finally:
        a.close()
        b.close()


def test_single_page_calls(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    host, a, ctl = instance(pool_dir, v1=False)
    try:
        idx = host.alloc(2 * PAGE)
        S.fill_pages(host, idx, hashes[:2])
        assert a.set(hashes[0], host.get_data_page(int(idx[0])))
        assert a.set(hashes[1], target_location=host.get_data_page(int(idx[PAGE])))
        assert a.exists(hashes[0]) and a.exists(hashes[1]) and not a.exists(hashes[2])
        page = a.get(hashes[1])                      # a new flat page
        host.set_from_flat_data_page(int(idx[0]), page)
        assert S.page_matches(host, idx[0], hashes[1])
        dst = host.get_dummy_flat_data_page()
        assert a.get(hashes[0], dst) is dst          # filled in place
        assert a.get(hashes[2]) is None
        with pytest.raises(ValueError, match="one flat data page"):
            a.batch_set(hashes[:2], None)
        host.free(idx)
    finally:
        a.close()


def test_clear_empties_the_cache(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    host, a, ctl = instance(pool_dir)
    try:
        store(host, ctl, hashes)
        assert a.batch_exists(hashes) == 6
        a.clear()
        assert a.batch_exists(hashes) == 0
    finally:
        a.close()


def test_a_corrupted_page_is_a_miss(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    host, a, ctl = instance(pool_dir)
    try:
        idx = host.alloc(6 * PAGE)
        S.fill_pages(host, idx, hashes)
        # Page 2 stored by hand, to learn where its bytes are in the region.
        with a.cache.reserve([K.to_key(hashes[2])], a.pages.page_bytes) as res:
            a.pages.block(res.view(0)).copy_(a.pages.host_page(idx[2 * PAGE]))
            off = res.offset(0)
            assert res.commit() == [0]
        del res
        assert a.batch_set_v1(hashes, idx) == [True] * 6
        with a.pool.open_region("sglang-kv") as region, region.map() as m:
            mv = memoryview(m)
            mv[off + 5] ^= 0xFF
            del mv
        assert a.batch_get_v1(hashes, idx) == [True, True, False, True, True, True]
        # The bad copy is dropped: the next query stops there, and SGLang
        # recomputes the page.
        assert a.batch_exists(hashes) == 2
        assert a.cache_stats()["checksum_failures"] == 1
        host.free(idx)
    finally:
        a.close()


# ------------------------------------------------ two processes, one cache

def _instance_b(pool_dir, hashes, more, conn):
    # A second SGLang instance in its own process (spawned: a fresh interpreter).
    import sglang_standins as S2
    S2.install()
    import test_sglang_storage as T
    host, backend, ctl = T.instance(pool_dir, "page_first_direct")
    hits, got, ok = T.fetch(host, ctl, hashes)
    stored = T.store(host, ctl, more)
    backend.close()
    conn.send((hits, got, ok, stored))


def test_two_processes_share_one_cache(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)
    longer = K.page_hashes(PROMPT + list(range(500, 500 + 3 * PAGE)), PAGE)
    host, a, ctl = instance(pool_dir)
    try:
        assert store(host, ctl, hashes) == 6
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_instance_b, args=(pool_dir, hashes, longer, child))
        p.start()
        assert parent.poll(120), "instance B did not answer"
        assert parent.recv() == (6, 6, True, 9)      # B loaded A's pages, stored 3 more
        p.join(60)
        assert p.exitcode == 0
        assert fetch(host, ctl, longer) == (9, 9, True)   # A loads B's
    finally:
        a.close()


def _stuck_writer(pool_dir, hashes, conn):
    # An SGLang instance killed while it copies a page into a reserved slot.
    import sglang_standins as S2
    S2.install()
    import test_sglang_storage as T
    from beluga_sglang.storage import BelugaHiCacheStorage

    class Stuck(BelugaHiCacheStorage):
        def _copy_into_slot(self, slot, page):
            flat = slot.reshape(-1)
            half = flat.numel() // 2
            flat[:half].copy_(page.reshape(-1)[:half])
            conn.send("half written")
            conn.recv()                               # never answered: SIGKILL comes

    host = T.host_pool()
    backend = Stuck(S2.storage_config(T.extra_for(pool_dir)), {})
    backend.register_mem_pool_host(host)
    idx = host.alloc(len(hashes) * T.PAGE)
    S2.fill_pages(host, idx, hashes)
    backend.batch_set_v1(hashes, idx)


def test_process_killed_mid_set(sgl, pool_dir):
    hashes = K.page_hashes(PROMPT, PAGE)[:2]
    host, a, ctl = instance(pool_dir)                 # attached before the writer dies
    try:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_stuck_writer, args=(pool_dir, hashes, child))
        p.start()
        assert parent.poll(120), "the writer did not reach its copy"
        assert parent.recv() == "half written"
        assert a.cache.check()["reserved_slots"] >= 1
        assert a.batch_exists(hashes) == 0            # the half-written page is never seen
        idx = host.alloc(2 * PAGE)
        assert a.batch_get_v1(hashes, idx) == [False, False]
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        assert a.cache.reclaim() >= 1                 # the dead session and its reservations
        assert a.cache.stats()["reservations_reclaimed"] >= 1
        assert a.cache.check()["reserved_slots"] == 0
        assert a.batch_exists(hashes) == 0
        host.free(idx)
        assert store(host, ctl, hashes) == 2          # the pages can be stored again
        assert fetch(*instance(pool_dir)[0::2], hashes) == (2, 2, True)
    finally:
        if p.is_alive():
            p.kill()
        a.close()


def test_a_full_cache_fails_sets_without_raising(sgl, pool_dir):
    host, a, ctl = instance(pool_dir, region_bytes="4M")
    try:
        a.cache.set_eviction(policy="none")            # nothing makes room
        hashes = K.page_hashes(list(range(PAGE * 4000)), PAGE)
        results = []
        for at in range(0, len(hashes), 12):
            idx = host.alloc(12 * PAGE)
            results += a.batch_set_v1(hashes[at:at + 12], idx)
            host.free(idx)
            if not all(results):
                break
        assert not all(results) and any(results)
        assert a.stats["set_failed"] == results.count(False)
        assert a.cache_stats()["put_nospace"] >= 1
        assert a.batch_exists(hashes) == results.index(False)
    finally:
        a.close()
