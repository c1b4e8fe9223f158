# SPDX-License-Identifier: Apache-2.0
"""What current vLLM asks of a connector beyond the call sequence.

CUDA graph modes (a full graph skips the per-layer hooks), requests that must
not read the prefix cache, the KV layout taken from the attention backend,
and the connector statistics vLLM logs.  Driven by mini_vllm.MiniVLLM (see
its docstring for what each mode reproduces of vLLM).
"""

import pytest

torch = pytest.importorskip("torch", reason="python3-torch is needed for the connector tests")
pytest.importorskip("cbor2", reason="python3-cbor2 computes vLLM's reference block hashes")

import vllm_standins as V  # noqa: E402
from test_connector import PROMPT, engine, serve, vllm  # noqa: E402,F401  (vllm: fixture)

PROMPT24 = PROMPT + [23, 24]   # six whole 4-token blocks: a whole-prompt hit computes one token


def connector_cls():
    import beluga_vllm.connector as c
    return c.BelugaConnector


# ------------------------------------------------------------ CUDA graphs

def test_layerwise_loads_ask_vllm_for_piecewise_graphs(vllm):
    cls = connector_cls()
    assert cls.requires_piecewise_for_cudagraph({}) is True          # layerwise is the default
    assert cls.requires_piecewise_for_cudagraph({"layerwise": True}) is True
    assert cls.requires_piecewise_for_cudagraph({"layerwise": False}) is False
    with pytest.raises(ValueError, match="layerwse"):
        cls.requires_piecewise_for_cudagraph({"layerwse": False})


def whole_prompt_hit(pool_dir, **kw):
    """A computes PROMPT24; B, started with `kw`, gets the same prompt."""
    a = engine(pool_dir)
    try:
        serve(a, "a", PROMPT24)
    finally:
        a.close()
    b = engine(pool_dir, cudagraph_mode=V.CUDAGraphMode.FULL_AND_PIECEWISE, check_attention=True,
               **kw)
    try:
        req = V.Request("b", PROMPT24, b.bs, max_tokens=2)
        b.add(req)
        so = b.schedule()
        replayed = b.full_graph_replay(so)
        b.execute(so)
        assert so.num_scheduled_tokens == {"b": 1}   # 23 tokens loaded, the last computed
        assert sum(len(s.keys) for s in so.kv_connector_metadata.plan.loads) == 6
        ok = b.check_request(req, 24)
        b.update(so)
        b.run_to_completion()
        return b.cfg.compilation_config.cudagraph_mode, replayed, b.attention_errors, ok
    finally:
        b.close()


def test_whole_prompt_hit_layerwise_runs_piecewise_and_reads_loaded_kv(vllm, pool_dir):
    mode, replayed, errors, ok = whole_prompt_hit(pool_dir, layerwise=True)
    assert mode is V.CUDAGraphMode.PIECEWISE and not replayed
    assert errors == [] and ok


def test_whole_prompt_hit_not_layerwise_is_safe_under_a_full_graph(vllm, pool_dir):
    mode, replayed, errors, ok = whole_prompt_hit(pool_dir, layerwise=False)
    assert mode is V.CUDAGraphMode.FULL_AND_PIECEWISE and replayed   # hooks skipped
    assert errors == [] and ok


def test_full_graph_with_layerwise_loads_reads_stale_kv(vllm, pool_dir, monkeypatch):
    # What happens without the piecewise request: the check above can fail.
    monkeypatch.setattr(connector_cls(), "requires_piecewise_for_cudagraph",
                        classmethod(lambda cls, extra: False))
    mode, replayed, errors, ok = whole_prompt_hit(pool_dir, layerwise=True)
    assert mode is V.CUDAGraphMode.FULL_AND_PIECEWISE and replayed
    assert errors, "attention read KV that was loaded only after the forward"
    assert ok   # ...which is why a check after the step alone cannot see it


# ------------------------------------------------ skip_reading_prefix_cache

def test_request_that_skips_the_prefix_cache_gets_no_hit(vllm, pool_dir):
    a = engine(pool_dir)
    b = engine(pool_dir)
    try:
        serve(a, "a", PROMPT)
        req = V.Request("b", PROMPT, b.bs, max_tokens=1)
        req.skip_reading_prefix_cache = True   # prompt logprobs, pooling
        assert b.sched.get_num_new_matched_tokens(req, 0) == (0, False)
        b.add(req)
        so = b.schedule()
        assert so.kv_connector_metadata.plan.loads == []
        assert so.num_scheduled_tokens == {"b": len(PROMPT)}
        b.execute(so)
        assert b.check_request(req, len(PROMPT))
        b.update(so)
        b.run_to_completion()
        assert b.worker.stats.loaded_blocks == 0
        assert b.worker.stats.save_skipped == 5   # its blocks are cached already: not stored again
        # The same prompt without the flag hits.
        req2 = V.Request("c", PROMPT, b.bs, max_tokens=1)
        assert b.sched.get_num_new_matched_tokens(req2, 0) == (20, False)
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- layouts

def test_cpu_backend_layout_comes_from_the_backend(vllm, pool_dir):
    # CPU attention: [2, B, heads, block_size, head_size].  block_size ==
    # num_kv_heads makes the shape fit FlashAttention's [2, B, T, H, D] too.
    a = engine(pool_dir, layout="cpu", block_size=4, num_kv_heads=4)
    b = engine(pool_dir, layout="flash_attn", block_size=4, num_kv_heads=4)
    try:
        assert a.worker._io.dims == "KBHTD" and b.worker._io.dims == "KBTHD"
        serve(a, "a", PROMPT)
        _, _, loaded, errors = serve(b, "b", PROMPT + [40])   # checks B's paged KV byte for byte
        assert sum(len(s.keys) for s in loaded) == 5 and errors == set()
    finally:
        a.close()
        b.close()


def test_ambiguous_shape_without_a_backend_is_refused(vllm, pool_dir):
    with pytest.raises(ValueError, match="cannot tell the layout.*KBTHD and KBHTD"):
        engine(pool_dir, layout="cpu", block_size=4, num_kv_heads=4, register_backend=False)


def test_unambiguous_shape_without_a_backend_is_read(vllm, pool_dir):
    e = engine(pool_dir, layout="cpu", block_size=4, num_kv_heads=2, register_backend=False)
    try:
        assert e.worker._io.dims == "KBHTD"
    finally:
        e.close()


def test_kv_layout_setting_overrides_and_is_checked(vllm, pool_dir):
    with pytest.raises(ValueError, match="dimension H is 4, expected 2"):
        engine(pool_dir, layout="flash_attn", kv_layout="KBHTD")
    with pytest.raises(ValueError, match="kv_layout 'KBTXD' is not a KV layout Beluga knows"):
        engine(pool_dir, kv_layout="KBTXD")
    e = engine(pool_dir, layout="cpu", register_backend=False, kv_layout="KBHTD")
    try:
        assert e.worker._io.dims == "KBHTD"
    finally:
        e.close()


def test_mla_backend_is_refused_with_a_message():
    from beluga_vllm.blockio import dims_from_backend, guess_dims
    with pytest.raises(ValueError, match="FLASHMLA.*not a KV layout Beluga knows.*MLA"):
        dims_from_backend(V.MLABackend, 16)
    assert dims_from_backend(V.CPUAttentionBackend, 16) == "KBHTD"
    assert dims_from_backend(V.FlashInferBackend, 16) == "BKTHD"
    assert dims_from_backend(V.FlashAttentionBackend, 16) == "KBTHD"
    with pytest.raises(ValueError, match="MLA is not supported"):
        guess_dims((10, 16, 576))


# ----------------------------------------------------------------- metrics

def test_connector_stats_reach_vllm(vllm, pool_dir):
    a = engine(pool_dir)
    b = engine(pool_dir)
    try:
        cls = connector_cls()
        assert a.worker.get_kv_connector_stats() is None          # nothing moved yet
        serve(a, "a", PROMPT)
        sa = a.worker.get_kv_connector_stats()
        assert sa.data["saved_blocks"] == 5 and sa.data["loaded_blocks"] == 0
        assert sa.data["saved_bytes"] == 5 * a.worker._io.shape.block_bytes
        assert sa.data["save_ops"] >= 1
        assert a.worker.get_kv_connector_stats() is None          # per interval
        serve(b, "b", PROMPT + [40])
        sb = b.worker.get_kv_connector_stats()
        assert sb.data["loaded_blocks"] == 5 and sb.data["load_ops"] == 1
        # vLLM rebuilds the stats from their data and sums workers' intervals.
        total = cls.build_kv_connector_stats(dict(sa.data)).aggregate(
            cls.build_kv_connector_stats(dict(sb.data)))
        r = total.reduce()
        assert r["beluga_loaded_blocks"] == 5 and r["beluga_saved_blocks"] == 5 + sb.data["saved_blocks"]
        assert r["beluga_loaded_MB"] > 0 and r["beluga_avg_load_ms"] >= 0
        assert not total.is_empty()
        empty = cls.build_kv_connector_stats()
        assert empty.is_empty() and empty.reduce()["beluga_loaded_blocks"] == 0
    finally:
        a.close()
        b.close()
