# SPDX-License-Identifier: Apache-2.0
"""BelugaConnector driven with vLLM's own call sequence and arguments.

Followed from vllm-project/vllm (late-2025 main; no release number is known
for these commits): kv_connector/v1/base.py @ 13f4ad0f55b0, the scheduler's
calls in v1/core/sched/scheduler.py @ 00024d314514, the worker's in
v1/worker/kv_connector_model_runner_mixin.py (get_finished() form; newest
@ 00f4240ee645) and attention/kv_transfer_utils.py @ 2b9269b23f28.  Details
in vllm_standins.py (the stand-in types) and mini_vllm.py (the sequence).
"""

import errno
import multiprocessing as mp
import pickle

import pytest

torch = pytest.importorskip("torch", reason="python3-torch is needed for the connector tests")
pytest.importorskip("cbor2", reason="python3-cbor2 computes vLLM's reference block hashes")

import beluga  # noqa: E402
import vllm_standins as V  # noqa: E402


@pytest.fixture
def vllm(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    uninstall = V.install()
    yield V
    uninstall()


def make_config(pool_dir, **extra):
    cfg = V.VllmConfig()
    cfg.cache_config.block_size = extra.pop("block_size", 4)
    cfg.model_config.num_layers = extra.pop("num_layers", 3)
    cfg.model_config.num_kv_heads = extra.pop("num_kv_heads", 2)
    cfg.model_config.head_size = extra.pop("head_size", 8)
    cfg.model_config.dtype = extra.pop("dtype", "bfloat16")
    cfg.kv_transfer_config.kv_connector_extra_config = dict(
        region="kv-test", region_bytes="8M", backend="user", user_dir=pool_dir,
        hugetlbfs_dir="none", **extra)
    return cfg


def engine(pool_dir, **kw):
    from mini_vllm import MiniVLLM
    engine_kw = {k: kw.pop(k) for k in list(kw) if k in (
        "layout", "kernel_block_size", "local_prefix_cache", "hnd", "call_save_layers", "num_blocks",
        "cross_layer", "cudagraph_mode", "check_attention", "register_backend", "device")}
    return MiniVLLM(make_config(pool_dir, **kw), **engine_kw)


PROMPT = [5, 9, 2, 7, 11, 3, 8, 1, 6, 4, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]  # 5.5 blocks


def serve(e, req_id, tokens, max_tokens=1, check=True):
    """Run one request to completion; check its paged KV after the prefill step."""
    req = V.Request(req_id, tokens, e.bs, max_tokens=max_tokens)
    e.add(req)
    so = e.schedule()
    _, errors = e.execute(so)
    loaded = so.kv_connector_metadata.plan.loads
    if check:   # loaded blocks + this step's tokens, before the request can finish
        n = req.num_computed_tokens + so.num_scheduled_tokens[req_id]
        assert e.check_request(req, n), "paged KV differs from what the model computes"
    e.update(so)
    e.run_to_completion()
    return req, so, loaded, errors


def test_import_guard_names_vllm():
    import importlib
    import sys
    sys.modules.pop("beluga_vllm.connector", None)
    import beluga_vllm  # no vLLM needed
    with pytest.raises(ImportError, match="needs vLLM"):
        importlib.import_module("beluga_vllm.connector")
    with pytest.raises(ImportError, match="needs vLLM"):
        beluga_vllm.BelugaConnector  # noqa: B018


def test_vllm_block_hashes_are_beluga_keys(vllm):
    req = V.Request("r", PROMPT, 4)
    root = beluga.root_key("0")
    assert root == V.none_hash()
    assert beluga.hash_tokens(root, PROMPT, 4) == req.block_hashes


@pytest.mark.parametrize("data_path", ["beluga", "torch"])
@pytest.mark.parametrize("layout,hnd", [("flash_attn", False), ("flashinfer", False),
                                        ("flash_attn", True)])
def test_second_instance_loads_what_the_first_computed(vllm, pool_dir, data_path, layout, hnd):
    if hnd and data_path == "beluga":
        data_path = "beluga"   # HND: head rows, still one PagedKV
    a = engine(pool_dir, data_path=data_path, layout=layout, hnd=hnd)
    b = engine(pool_dir, data_path=data_path, layout=layout, hnd=hnd)
    try:
        req_a, so_a, loaded_a, _ = serve(a, "a1", PROMPT, max_tokens=3)
        assert loaded_a == []
        # Full prompt blocks (5) plus the block the generated tokens filled.
        cache = a.worker.cache
        assert cache.lookup_prefix(req_a.block_hashes) == len(req_a.block_hashes) == 6
        assert a.worker.stats.saved_blocks == 6
        # Every block went straight into a reserved slot (zero-copy save).
        assert a.worker.stats.saved_zero_copy == 6

        question = PROMPT + [40, 41, 42, 43, 44, 45]
        req_b, so_b, loaded_b, errors = serve(b, "b1", question)
        assert errors == set()
        # Five full prompt blocks are shared; B computes only the rest.
        assert sum(len(s.keys) for s in loaded_b) == 5
        assert so_b.num_scheduled_tokens["b1"] == len(question) - 20
        assert b.worker.stats.loaded_blocks == 5
    finally:
        a.close()
        b.close()


def test_whole_prompt_cached_recomputes_only_the_last_token(vllm, pool_dir):
    a = engine(pool_dir)
    b = engine(pool_dir)
    try:
        prompt = PROMPT[:16]                       # exactly 4 blocks
        serve(a, "a", prompt)
        req, so, loaded, errors = serve(b, "b", prompt)
        assert so.num_scheduled_tokens["b"] == 1  # vLLM needs one token's logits
        assert sum(len(s.keys) for s in loaded) == 4
        assert errors == set()
    finally:
        a.close()
        b.close()


def test_local_prefix_hits_are_not_loaded_again(vllm, pool_dir):
    a = engine(pool_dir, local_prefix_cache=True)
    b = engine(pool_dir, local_prefix_cache=True)
    try:
        serve(a, "a", PROMPT)                       # stores 5 blocks
        serve(b, "b0", PROMPT[:9])                  # B computes 2 blocks itself (loads them)
        req, so, loaded, _ = serve(b, "b1", PROMPT + [50])
        # B's own prefix cache has 2 blocks; only blocks 2..4 come from Beluga.
        assert [len(s.keys) for s in loaded] == [3]
        assert loaded[0].keys == req.block_hashes[2:5]
    finally:
        a.close()
        b.close()


def test_layerwise_loading_lands_each_layer_before_its_attention(vllm, pool_dir):
    a = engine(pool_dir)
    b = engine(pool_dir, layerwise=True)
    try:
        serve(a, "a", PROMPT)
        seen = []

        def probe(layer, name):
            # After wait_for_layer_load(layer): this layer loaded, later ones not yet.
            t = b._kernel_view(name)
            blk = b.blocks["b"][0]
            seen.append((layer, bool(t[:, blk].abs().sum() > 0)))
            if layer + 1 < b.layers:
                nxt = b._kernel_view(b.layer_names[layer + 1])
                seen.append((layer + 1, bool(nxt[:, blk].abs().sum() > 0)))
        b.layer_probe = probe
        serve(b, "b", PROMPT + [60])
        assert seen[:2] == [(0, True), (1, False)]
        assert all(loaded for layer, loaded in seen[::2])
    finally:
        a.close()
        b.close()


def test_blocks_removed_after_lookup_become_load_errors(vllm, pool_dir):
    a = engine(pool_dir)
    b = engine(pool_dir)
    try:
        req_a, *_ = serve(a, "a", PROMPT)
        # Between the scheduler's lookup and the worker's load, block 2 goes.
        b.hook_before_load = lambda so: a.worker.cache.remove([req_a.block_hashes[2]])
        req = V.Request("b", PROMPT + [70], 4)
        b.add(req)
        so = b.schedule()
        _, errors = b.execute(so)
        failed = set(b.blocks["b"][2:5])
        assert errors == failed                      # vLLM recomputes from block 2
        assert b.worker.stats.load_misses == 3
        assert b.worker.get_block_ids_with_load_errors() == set()   # reported once
    finally:
        a.close()
        b.close()


def test_saves_without_save_kv_layer_calls_are_complete(vllm, pool_dir):
    a = engine(pool_dir, call_save_layers=False)
    b = engine(pool_dir)
    try:
        serve(a, "a", PROMPT)
        assert a.worker.stats.saved_blocks == 5
        serve(b, "b", PROMPT + [1])                 # check_request validates the bytes
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("data_path", ["beluga", "torch"])
def test_cross_layer_kv_cache(vllm, pool_dir, data_path):
    # register_cross_layers_kv_cache: the NHD cross-layer block is the pool
    # block byte for byte (one contiguous run per block on the CPU path).
    a = engine(pool_dir, cross_layer=True, data_path=data_path, cross_layer_blocks=True)
    b = engine(pool_dir, cross_layer=True, data_path=data_path)
    try:
        assert a.worker.prefer_cross_layer_blocks and not b.worker.prefer_cross_layer_blocks
        if data_path == "beluga":
            assert a.worker._io.paged.run_bytes()[1] == 1
        serve(a, "a", PROMPT)
        _, so, loaded, errors = serve(b, "b", PROMPT + [4])
        assert sum(len(s.keys) for s in loaded) == 5 and errors == set()
    finally:
        a.close()
        b.close()


def test_kernel_blocks_smaller_than_the_hash_block(vllm, pool_dir):
    a = engine(pool_dir, block_size=8, kernel_block_size=4)
    b = engine(pool_dir, block_size=8, kernel_block_size=4, data_path="torch")
    try:
        serve(a, "a", PROMPT)
        _, so, loaded, _ = serve(b, "b", PROMPT + [3])
        assert sum(len(s.keys) for s in loaded) == 2
    finally:
        a.close()
        b.close()


def test_preempted_request_loads_again_when_resumed(vllm, pool_dir):
    a = engine(pool_dir)
    b = engine(pool_dir)
    try:
        serve(a, "a", PROMPT)
        req = V.Request("b", PROMPT + [80], 4, max_tokens=4)
        b.add(req)
        so = b.schedule()
        b.execute(so)
        b.update(so)
        b.preempt(req)
        so = b.schedule()                            # resumed: a cached request
        assert "b" in so.scheduled_cached_reqs.resumed_req_ids
        loads = so.kv_connector_metadata.plan.loads
        assert [s.block_ids for s in loads] == [b.blocks["b"][:5]]
        b.execute(so)
        b.update(so)
        assert b.check_request(req)
        b.run_to_completion()
    finally:
        a.close()
        b.close()


def test_only_publishable_block_hashes_are_stored(vllm, pool_dir):
    # vLLM's newest base.py: content-addressed connectors apply
    # request.num_publishable_block_hashes before storing blocks by hash.
    a = engine(pool_dir)
    try:
        req = V.Request("a", PROMPT, 4)
        req.num_publishable_block_hashes = 3
        a.add(req)
        so = a.schedule()
        assert [len(s.keys) for s in so.kv_connector_metadata.plan.saves] == [3]
    finally:
        a.close()


def test_metadata_pickles_for_worker_processes(vllm, pool_dir):
    a = engine(pool_dir)
    try:
        req = V.Request("a", PROMPT, 4)
        a.add(req)
        so = a.schedule()
        meta = pickle.loads(pickle.dumps(so.kv_connector_metadata))
        assert [s.keys for s in meta.plan.saves] == [req.block_hashes[:5]]
        assert isinstance(meta, V.KVConnectorMetadata)
    finally:
        a.close()


def test_fingerprint_mismatch_is_refused_naming_the_field(vllm, pool_dir):
    a = engine(pool_dir)
    try:
        with pytest.raises(beluga.BelugaError) as e:
            engine(pool_dir, num_kv_heads=4)
        assert e.value.errno == beluga.KVC_EFINGERPRINT
        assert "num_kv_heads" in str(e.value)
    finally:
        a.close()


def test_unshareable_hash_settings_are_refused(vllm, pool_dir, monkeypatch):
    cfg = make_config(pool_dir)
    cfg.cache_config.prefix_caching_hash_algo = "xxhash"
    with pytest.raises(ValueError, match="32-byte block hashes"):
        V.create_connector(cfg, V.KVConnectorRole.SCHEDULER, None)
    monkeypatch.delenv("PYTHONHASHSEED")
    with pytest.raises(ValueError, match="PYTHONHASHSEED"):
        V.create_connector(make_config(pool_dir), V.KVConnectorRole.SCHEDULER, None)
    bad = make_config(pool_dir, regoin="typo")
    with pytest.raises(ValueError, match="regoin"):
        V.create_connector(bad, V.KVConnectorRole.SCHEDULER, None)


def _instance_b(pool_dir, prompt, conn):
    # A second vLLM instance in its own process (spawned: a fresh interpreter).
    import os
    os.environ["PYTHONHASHSEED"] = "0"
    import vllm_standins as V2
    V2.install()
    from mini_vllm import MiniVLLM
    cfg = make_config(pool_dir)
    b = MiniVLLM(cfg)
    req = V2.Request("b", prompt, 4, max_tokens=2)
    b.add(req)
    so = b.schedule()
    _, errors = b.execute(so)
    ok = b.check_request(req, req.num_computed_tokens + so.num_scheduled_tokens["b"])
    b.update(so)
    conn.send((sum(len(s.keys) for s in so.kv_connector_metadata.plan.loads),
               so.num_scheduled_tokens["b"], ok, sorted(errors)))
    b.run_to_completion()
    b.close()


def test_two_processes_share_one_cache(vllm, pool_dir):
    a = engine(pool_dir)
    try:
        serve(a, "a", PROMPT)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_instance_b, args=(pool_dir, PROMPT + [90, 91], child))
        p.start()
        assert parent.poll(120), "instance B did not answer"
        loaded, scheduled, ok, errors = parent.recv()
        p.join(60)
        assert p.exitcode == 0
        assert (loaded, scheduled, ok, errors) == (5, 4, True, [])
        assert a.worker.cache.stats()["get_hits"] + a.worker.cache.stats()["pins"] >= 5
    finally:
        a.close()


def test_settings_for_several_hosts(vllm):
    from beluga_vllm.config import BelugaSettings
    one = BelugaSettings.from_extra({})
    assert (one.host_id, one.max_hosts, one.may_format, one.formats) == (0, 1, None, True)
    two = BelugaSettings.from_extra({"host_id": 1, "max_hosts": 2})
    assert not two.formats                         # several hosts: only the one configured formats
    assert BelugaSettings.from_extra({"max_hosts": 2, "may_format": True}).formats
    assert not BelugaSettings.from_extra({"may_format": False}).formats
    with pytest.raises(ValueError, match="may_format"):
        BelugaSettings.from_extra({"may_format": "yes"})
    with pytest.raises(ValueError, match="host_id"):
        BelugaSettings.from_extra({"host_id": 2, "max_hosts": 2})


def test_two_hosts_one_formats_the_other_restores(vllm, pool_dir):
    hosts = dict(max_hosts=2, lease_ms=200)
    # Several hosts never create the region (the administrator defines it on
    # every host): none here yet.
    with pytest.raises(beluga.BelugaError) as e:
        engine(pool_dir, host_id=0, may_format=True, **hosts)
    assert e.value.errno == errno.ENOENT
    with beluga.Pool("user", user_dir=pool_dir, hugetlbfs_dir="none") as p:
        p.create_region("kv-test", 8 << 20).close()
    # Host 1 is not the formatter: with no cache there yet it gives up.
    with pytest.raises(beluga.BelugaError) as e:
        engine(pool_dir, host_id=1, ready_wait_ms=50, **hosts)
    assert e.value.errno == beluga.KVC_ENOTREADY
    a = engine(pool_dir, host_id=0, may_format=True, **hosts)
    b = None
    try:
        serve(a, "a", PROMPT)
        b = engine(pool_dir, host_id=1, **hosts)
        _, _, loaded, errors = serve(b, "b", PROMPT + [90, 91])
        assert (sum(len(s.keys) for s in loaded), sorted(errors)) == (5, [])
        cache = b.worker.cache
        assert cache.info()["host_id"] == 1
        assert cache.stats(host=0)["puts"] == 5 and cache.stats(host=1)["puts"] == 1   # its 6th block
        assert cache.hosts()[1]["state"] == "self"
    finally:
        if b is not None:
            b.close()
        a.close()


# ------------------------------------------------------- the GPU data path

def test_cuda_data_path_needs_cuda_tensors_and_a_known_name(vllm, pool_dir):
    with pytest.raises(ValueError, match="'cuda' data path needs CUDA tensors"):
        engine(pool_dir, data_path="cuda")
    from beluga_vllm.config import BelugaSettings
    with pytest.raises(ValueError, match="data_path must be auto, beluga, cuda or torch"):
        BelugaSettings.from_extra({"data_path": "gpu"})


def require_cuda_connector():
    if not beluga.HAVE_CUDA_XFER:
        pytest.skip(f"GPU data path not built: {beluga.gpu_available()[1]}")
    ok, why = beluga.gpu_available()
    if not ok:
        pytest.skip(f"no usable GPU: {why}")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device (a CPU build of torch)")


def pool_blocks(e, keys):
    """The stored pool blocks of `keys`, as bytes, read through verified pins
    (a block whose committed checksum does not match its payload is None)."""
    pins = e.worker.cache.pin(keys, verify=True)
    try:
        return [None if p is None else bytes(p) for p in pins]
    finally:
        for p in pins:
            if p is not None:
                p.unpin()


@pytest.mark.parametrize("layout,hnd,cross", [("flash_attn", False, False), ("flash_attn", True, False),
                                              ("flashinfer", False, False), ("flashinfer", True, False),
                                              ("flash_attn", False, True)])
def test_cuda_connector_matches_the_cpu_path_byte_for_byte(vllm, layout, hnd, cross):
    """Saves from CUDA KV tensors (GpuCopier into reserved slots) store the same
    bytes as the CPU path's; loads into CUDA tensors (GpuCopier from pinned
    blocks) of blocks either path stored give the KV the model computes."""
    require_cuda_connector()
    import shutil
    import tempfile
    dirs = [tempfile.mkdtemp(prefix="beluga-pytest-", dir="/dev/shm") for _ in range(2)]
    kw = dict(layout=layout, hnd=hnd, cross_layer=cross)
    engines = []
    try:
        cpu_a = engine(dirs[0], **kw)
        gpu_a = engine(dirs[1], device="cuda", **kw)
        engines += [cpu_a, gpu_a]
        assert cpu_a.worker._io.data_path == "beluga" and gpu_a.worker._io.data_path == "cuda"
        serve(cpu_a, "a", PROMPT)
        serve(gpu_a, "a", PROMPT)
        keys = V.Request("k", PROMPT, 4).block_hashes[:5]
        want = pool_blocks(cpu_a, keys)
        assert None not in want
        assert pool_blocks(gpu_a, keys) == want, "GPU saves differ from the CPU path's"
        assert gpu_a.worker.stats.saved_zero_copy == 5
        # Cross-loads: the GPU loads what the CPU stored and the other way round.
        gpu_b = engine(dirs[0], device="cuda", **kw)
        cpu_b = engine(dirs[1], **kw)
        engines += [gpu_b, cpu_b]
        for e in (gpu_b, cpu_b):
            _, so, loaded, errors = serve(e, "b", PROMPT + [4])   # check_request: the bytes
            assert sum(len(s.keys) for s in loaded) == 5 and errors == set()
        assert torch.equal(gpu_b.paged_tokens("b", 20), cpu_b.paged_tokens("b", 20))
    finally:
        for e in engines:
            e.close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


class _EmulatedGpu:
    """GpuCopier's interface done by the CPU copier on raw host addresses:
    lets the connector's GPU code path (registered-memory addresses of pins
    and reserved slots, a side stream for loads, per-layer events, GPU-side
    checksums passed to the commit) run here.  Streams are ints (CURRENT:
    torch's current stream, SIDE: the one new_stream() makes); every copy,
    stream wait and ordering is logged in `log` in call order.  An event
    completes when synchronized."""

    device = 0
    CURRENT, SIDE = 1, 2

    def __init__(self):
        self.cpu = beluga.CpuCopier(threads=1)
        self.calls, self.pending, self.log = [], 0, []
        self.streams_made = 0
        self.fail_scatter_layer = None   # a scatter covering this layer raises
        self.wrong_sum = None            # gather_sum: this position's sum is off by one bit

    def _copy(self, op, paged, ids, addrs, layers, stream):
        import ctypes
        if (op == "scatter" and self.fail_scatter_layer is not None and layers is not None
                and layers[0] <= self.fail_scatter_layer < layers[1]):
            raise beluga.BelugaError(errno.EIO, "emulated copy failure")
        n = paged.shape.block_bytes
        bufs = [(ctypes.c_ubyte * n).from_address(a) for a in addrs]
        getattr(self.cpu, op)(paged, ids, bufs, layers=layers)
        self.calls.append((op, list(ids), list(addrs), layers))
        self.pending += 1
        gpu = self

        class Event:
            done = False

            def synchronize(self):
                if not self.done:
                    self.done = True
                    gpu.pending -= 1

            def query(self):
                return self.done

            def wait(self, stream):
                gpu.log.append(("wait", self, stream))
        ev = Event()
        ev.op, ev.layers, ev.stream = op, layers, stream
        self.log.append(("copy", ev, stream))
        return ev

    def gather(self, paged, ids, addrs, layers=None, stream=0):
        return self._copy("gather", paged, ids, addrs, layers, stream)

    def gather_sum(self, paged, ids, addrs, stream=0, method=0):
        ev = self._copy("gather", paged, ids, addrs, None, stream)
        ev.layers = "sum"
        n = paged.shape.block_bytes
        import ctypes
        ev.sums = [beluga.checksum((ctypes.c_ubyte * n).from_address(a)) for a in addrs]
        if self.wrong_sum is not None:
            ev.sums[self.wrong_sum] ^= 1
        return ev

    def scatter(self, paged, ids, addrs, layers=None, stream=0):
        return self._copy("scatter", paged, ids, addrs, layers, stream)

    # beluga.gpu's stream helpers
    def new_stream(self, device=None):
        import types
        self.streams_made += 1
        return types.SimpleNamespace(cuda_stream=self.SIDE)

    def wait_stream(self, stream, on=None, device=None):
        self.log.append(("order", stream.cuda_stream, self.CURRENT if on is None else on.cuda_stream))

    def stream_handle(self, stream=None, device=None):
        if stream is None:
            return self.CURRENT
        return stream if isinstance(stream, int) else stream.cuda_stream


@pytest.fixture
def emulated_gpu():
    """The connector's 'cuda' path with _EmulatedGpu behind beluga.gpu and a
    registration that checks every address lies in the cache's mapping.
    Yields (gpu, registrations, monkeypatch): undo() ends the emulation."""
    from beluga_vllm import blockio as bio
    from beluga_vllm import config as bconfig
    gpu = _EmulatedGpu()
    regs = []

    class Registration:
        chunks = 1

        def __init__(self, mapping):
            self.mapping, self.closed = mapping, False

        def device_address(self, host, length=1):
            base = self.mapping.address
            assert base <= host and host + length <= base + self.mapping.size, "outside the mapping"
            return host

        def close(self):
            self.closed = True

    class Memory(bconfig.GpuMemory):
        def __init__(self, pool, name, device):
            self.region = pool.open_region(name)
            self.mapping = self.region.map()
            self.registration = Registration(self.mapping)
            self.device = device
            regs.append(self.registration)

    monkeypatch = pytest.MonkeyPatch()     # its own: undone before a CPU reference runs
    monkeypatch.setattr(beluga.gpu, "available", lambda: (True, ""))
    monkeypatch.setattr(beluga.gpu, "copier", lambda device=0, **kw: gpu)
    monkeypatch.setattr(beluga.gpu, "stream_handle", gpu.stream_handle)
    monkeypatch.setattr(beluga.gpu, "new_stream", gpu.new_stream)
    monkeypatch.setattr(beluga.gpu, "wait_stream", gpu.wait_stream)
    monkeypatch.setattr(bio, "kv_device", lambda layers: ("cuda", 0))
    monkeypatch.setattr(bconfig, "GpuMemory", Memory)
    try:
        yield gpu, regs, monkeypatch
    finally:
        monkeypatch.undo()


def test_gpu_code_path_emulated_on_the_cpu(vllm, pool_dir, emulated_gpu):
    """The connector's 'cuda' path with the copier emulated on the CPU: the
    pool addresses it hands the copier are those of the pinned blocks and the
    reserved slots inside the registered mapping (zero copy), every copy's
    event is waited for before its pins are released or its slots committed,
    the slots are committed with the sums the GPU computed, and the bytes
    match the CPU path's."""
    gpu, regs, monkeypatch = emulated_gpu
    import shutil
    import tempfile
    ref_dir = tempfile.mkdtemp(prefix="beluga-pytest-", dir="/dev/shm")
    a = engine(pool_dir)
    b = engine(pool_dir)
    try:
        assert a.worker._io.data_path == "cuda"
        serve(a, "a", PROMPT)
        saves = [c for c in gpu.calls if c[0] == "gather"]
        assert saves and gpu.pending == 0, "a save committed before its gathers completed"
        assert a.worker.stats.saved_zero_copy == 5
        mapping = a.worker._gpu_mem.mapping
        for _, _, addrs, _ in saves:   # straight into slots of the registered mapping
            assert all(mapping.address <= x < mapping.address + mapping.size for x in addrs)
        # One gather_sum of whole blocks on the current stream; its sums were
        # committed per item in order: every block passes a verified read.
        summed = [e for k, e, st in gpu.log if k == "copy" and e.layers == "sum"]
        assert len(summed) == 1 and summed[0].stream == gpu.CURRENT
        keys = V.Request("k", PROMPT, 4).block_hashes[:5]
        pins = a.worker.cache.pin(keys, verify=True)
        assert None not in pins
        for p in pins:
            p.unpin()
        _, so, loaded, errors = serve(b, "b", PROMPT + [4])      # check_request: the bytes
        assert sum(len(s.keys) for s in loaded) == 5 and errors == set()
        assert any(c[0] == "scatter" for c in gpu.calls) and gpu.pending == 0
        monkeypatch.undo()
        ref = engine(ref_dir)                                   # the CPU path, same prompt
        try:
            serve(ref, "a", PROMPT)
            assert pool_blocks(a, keys) == pool_blocks(ref, keys)
        finally:
            ref.close()
    finally:
        a.close()
        b.close()
        monkeypatch.undo()
        shutil.rmtree(ref_dir, ignore_errors=True)
    assert regs and all(r.closed for r in regs), "shutdown unregisters"


def test_gpu_save_commits_the_gpu_sums_and_a_wrong_one_is_caught(vllm, pool_dir, emulated_gpu):
    """GPU path saves commit the checksums gather_sum computed, not a CPU
    checksum: a wrong sum for one block (emulated) stores the block, but a
    verified read misses it (and only it), so a load recomputes it."""
    gpu, _, _ = emulated_gpu
    gpu.wrong_sum = 2
    a = engine(pool_dir)
    try:
        serve(a, "a", PROMPT)
        assert a.worker.stats.saved_zero_copy == 5
        keys = V.Request("k", PROMPT, 4).block_hashes[:5]
        assert a.worker.cache.lookup_prefix(keys) == 5         # stored, not verified
        pins = a.worker.cache.pin(keys, verify=True)
        assert [p is not None for p in pins] == [True, True, False, True, True]
        for p in pins:
            if p is not None:
                p.unpin()
    finally:
        a.close()



@pytest.mark.parametrize("layerwise", [True, False])
def test_gpu_loads_on_a_side_stream_emulated_ordering(vllm, pool_dir, emulated_gpu, layerwise):
    """The GPU path's load ordering contract, emulated: start_load_kv issues
    every layer's copy on one side stream (made once per worker, ordered
    after the current stream's work); with `layerwise` the current stream
    waits for exactly layer l's event in wait_for_layer_load(l), after it
    was issued, else for the last event before start_load_kv returns; no
    host sync until the pins are released, and that only once every event
    completed."""
    from beluga_vllm import blockio as bio
    gpu, _, monkeypatch = emulated_gpu
    a = engine(pool_dir)
    b = engine(pool_dir, layerwise=layerwise)
    unpins = []

    def checked_unpin(self):
        if self.pins:
            unpins.append(all(ev.done for ev in self.events_seen))
        orig_unpin(self)
    orig_unpin = bio.LoadBatch._unpin
    orig_issue = bio.LoadBatch.issue

    def recording_issue(self, lw):
        orig_issue(self, lw)
        self.events_seen = list(self.events)
    monkeypatch.setattr(bio.LoadBatch, "_unpin", checked_unpin)
    monkeypatch.setattr(bio.LoadBatch, "issue", recording_issue)
    try:
        serve(a, "a", PROMPT)
        seen = []

        def probe(layer, name):   # after wait_for_layer_load(layer)
            waits = [(e, st) for k, e, st in gpu.log if k == "wait"]
            seen.append((layer, waits[-1] if waits else None, len(waits)))
        b.layer_probe = probe
        gpu.log.clear()
        for rid, extra in (("b", [4]), ("c", [7])):   # two loads: one side stream
            mark = len(gpu.log)
            _, so, loaded, errors = serve(b, rid, PROMPT + extra)
            assert sum(len(s.keys) for s in loaded) == 5 and errors == set()
            log = gpu.log[mark:]
            copies = [(e, st) for k, e, st in log if k == "copy" and e.op == "scatter"]
            assert copies and all(st == gpu.SIDE for _, st in copies), "loads run on the side stream"
            order = next(i for i, x in enumerate(log) if x[0] == "order")
            assert log[order][1:] == (gpu.SIDE, gpu.CURRENT)
            assert order < min(i for i, x in enumerate(log) if x[0] == "copy"), \
                "the side stream waits for the current stream before the first copy"
            nl = b.layers
            if layerwise:
                assert [e.layers for e, _ in copies] == [(i, i + 1) for i in range(nl)]
            else:
                assert [e.layers for e, _ in copies] == [(0, nl)]
            for i, x in enumerate(log):   # a wait comes after the copy it waits for
                if x[0] == "wait":
                    assert any(y[0] == "copy" and y[1] is x[1] for y in log[:i])
                    assert x[2] == gpu.CURRENT
        step = seen[-nl:]
        if layerwise:
            # wait_for_layer_load(l): the current stream waited on exactly layer l's event.
            for layer, (ev, stream), _ in step:
                assert ev.layers == (layer, layer + 1) and stream == gpu.CURRENT
        else:
            # Everything waited for in start_load_kv: the last event, no wait per layer.
            assert {n for _, _, n in step} == {step[0][2]}
            assert step[0][1][0].layers == (0, nl)
        assert gpu.streams_made == 1
        assert unpins == [True, True], "pins released only after every copy completed"
        assert gpu.pending == 0
    finally:
        a.close()
        b.close()


def test_gpu_load_failure_in_a_layer_fails_the_request(vllm, pool_dir, emulated_gpu):
    """A layer's copy that cannot be enqueued fails the whole load: its
    blocks are reported by get_block_ids_with_load_errors() of the same step
    (vLLM recomputes them), nothing raises, and the pins are released after
    the copies already issued completed."""
    gpu, _, _ = emulated_gpu
    a = engine(pool_dir)
    b = engine(pool_dir, layerwise=True)
    try:
        serve(a, "a", PROMPT)
        gpu.fail_scatter_layer = 1
        req = V.Request("b", PROMPT + [4], b.bs)
        b.add(req)
        so = b.schedule()
        _, errors = b.execute(so)
        loaded = [x for s in so.kv_connector_metadata.plan.loads for x in s.block_ids]
        assert len(loaded) == 5 and errors == set(loaded)
        assert gpu.pending == 0, "pins released before the issued copies completed"
        assert b.worker.stats.loaded_blocks == 0
        st = b.worker.cache.stats()
        assert st["pins"] == st["unpins"], "pins left held"
    finally:
        a.close()
        b.close()
