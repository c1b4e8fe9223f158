# SPDX-License-Identifier: Apache-2.0
"""The SGLang end-to-end benchmark in its smoke mode: tiny shapes, every
configuration (recompute, SGLang's HiCacheShm and HiCacheFile, Beluga's
HiCache backend), two instances, both runs; checks the mechanics and the
storage series, not the speed."""

import os
import sys

import pytest

pytest.importorskip("torch", reason="python3-torch runs the benchmark's model")
pytest.importorskip("numpy", reason="python3-numpy is needed by the benchmark")

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "python", "bench")
sys.path.insert(0, os.path.abspath(BENCH))


def _requests():
    import workload
    from model import SMOKE_SHAPE
    return workload.build(workload.SMOKE_WORKLOAD, SMOKE_SHAPE.vocab)


@pytest.mark.parametrize("layout", ["page_first", "page_first_direct"])
def test_smoke_run_shares_pages_and_reports_the_series(tmp_path, capsys, layout):
    pytest.importorskip("beluga_sglang", reason="the beluga_sglang package (Beluga's HiCache "
                        "backend) is not staged in the build's python directory")
    import sglang_e2e
    summary, agree = sglang_e2e.main(["--smoke", "--layout", layout, "--timeout", "300",
                                      "--json", str(tmp_path / "sglang-e2e.json")])
    out = capsys.readouterr().out
    assert "| Run | Metric |" in out and "Avg TTFT / recompute, same repetition" in out
    assert "`sglang:prefetch_pgs_count`" in out
    assert set(summary) == {"recompute", "shm", "file", "beluga"}
    for kind, runs in summary.items():
        assert runs["first"]["requests"] == runs["second"]["requests"] == 6, kind
    # Neither recompute nor SGLang's HiCacheShm (a store that holds nothing at
    # the SGLang commit the benchmark follows) brings a page from outside.
    for kind in ("recompute", "shm"):
        for run in ("first", "second"):
            assert summary[kind][run]["loaded_tokens"] == 0, (kind, run)
    # Through a store that shares, the second run computes only what no cache
    # can hold: each prompt's last, partial or final, page.
    tail = sum(len(r.prompt) - ((len(r.prompt) - 1) // 16) * 16 for r in _requests())
    for kind in ("file", "beluga"):
        first, second = summary[kind]["first"], summary[kind]["second"]
        assert first["storage_metrics"]["sglang:backuped_tokens_total"] > 0, kind
        assert second["loaded_tokens"] > 0 and second["computed_tokens"] == tail, kind
        assert second["storage_metrics"]["sglang:prefetched_tokens_total"] == \
            second["loaded_tokens"], kind
    # get_stats(): SGLang's own backends return None (nothing is recorded);
    # Beluga's returns StorageMetrics whose pages match what was loaded.
    for kind in ("shm", "file"):
        m = summary[kind]["second"]["storage_metrics"]
        assert m["get_stats_calls"] == m["get_stats_none"] == 6, kind
    bel = summary["beluga"]["second"]["storage_metrics"]
    assert bel["get_stats_none"] == 0 and bel["get_stats_calls"] == 6
    assert bel["sglang:prefetch_pgs_sum"] * 16 == summary["beluga"]["second"]["loaded_tokens"]
    assert bel["sglang:prefetch_bandwidth_count"] == bel["sglang:prefetch_pgs_count"] > 0
    stats = summary["beluga"]["second"]["store_stats"]
    assert stats["checksum_failures"] == 0
    # fp32 on the CPU: pages from any store give exactly the recomputed first token.
    for key, (same, total) in agree.items():
        assert same == total, f"{key}: first tokens differ from the recompute run"


def test_page_keys_are_sglangs_chained_sha256():
    import hashlib
    from sglang_instance import page_hashes
    toks = list(range(1, 41))
    keys = page_hashes(toks, 16)
    assert len(keys) == 2                   # the 8-token tail is not a page
    first = hashlib.sha256(b"".join(t.to_bytes(4, "little") for t in toks[:16])).hexdigest()
    second = hashlib.sha256(bytes.fromhex(first) +
                            b"".join(t.to_bytes(4, "little") for t in toks[16:32])).hexdigest()
    assert keys == [first, second]


def test_file_baseline_keeps_hicachefile_naming_and_skips_existing(tmp_path):
    import torch
    from sglang_stores import FileStorage, storage_config
    cfg = storage_config({"model_name": "org/model"})
    st = FileStorage(cfg, str(tmp_path))
    page = torch.arange(8, dtype=torch.float32)
    assert st.batch_exists(["a", "b"]) == 0
    assert st.batch_set(["a"], [page])
    assert sorted(os.listdir(tmp_path)) == ["a_org-model_0_1.bin"]
    mtime = os.stat(tmp_path / "a_org-model_0_1.bin").st_mtime_ns
    assert st.set("a", page * 2)             # exists: not rewritten
    assert os.stat(tmp_path / "a_org-model_0_1.bin").st_mtime_ns == mtime
    got = st.batch_get(["a", "b"], [torch.zeros(8), torch.zeros(8)])
    assert torch.equal(got[0], page) and got[1] is None
    assert st.batch_exists(["a", "b"]) == 1
