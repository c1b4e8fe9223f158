# SPDX-License-Identifier: Apache-2.0
"""The end-to-end benchmark in its smoke mode: tiny shapes, all three stores,
two engine processes, both runs; checks the mechanics, not the speed."""

import importlib.util
import os
import shutil
import sys

import pytest

pytest.importorskip("torch", reason="python3-torch runs the benchmark's model")
pytest.importorskip("numpy", reason="python3-numpy is needed by the benchmark")

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "python", "bench")
sys.path.insert(0, os.path.abspath(BENCH))


def test_smoke_run_reports_the_table(tmp_path, capsys):
    stores = ["none", "beluga"]
    # Redis joins when both the client (python3-redis) and the server are there.
    if importlib.util.find_spec("redis") and (shutil.which("redis-server") or
                                              os.path.exists("/usr/bin/redis-server")):
        stores.append("redis")
    import e2e
    summary, agree = e2e.main(["--smoke", "--stores", ",".join(stores),
                               "--json", str(tmp_path / "e2e.json"), "--timeout", "300"])
    out = capsys.readouterr().out
    assert "| Run | Metric |" in out and "Avg TTFT (ms)" in out and "prefill throughput" in out
    for kind in stores:
        first, second = summary[kind]["first"], summary[kind]["second"]
        assert first["requests"] == second["requests"] == 6
    # Without a shared cache nothing comes from outside; with one, the second run
    # computes only what no cache can hold (the last partial block of each prompt).
    assert summary["none"]["first"]["loaded_tokens"] == summary["none"]["second"]["loaded_tokens"] == 0
    for kind in stores[1:]:
        first, second = summary[kind]["first"], summary[kind]["second"]
        assert first["saved_blocks"] > 0
        assert second["computed_tokens"] < summary["none"]["second"]["computed_tokens"]
        assert second["loaded_tokens"] > 0 and second["saved_blocks"] == 0
        assert second["computed_tokens"] == sum(
            len(r.prompt) - ((len(r.prompt) - 1) // 16) * 16 for r in _requests(e2e))
    # fp32 on the CPU: KV from a cache gives exactly the first token recomputing gives.
    for key, (same, total) in agree.items():
        assert same == total, f"{key}: first tokens differ from the no-cache run"
    beluga_stats = summary["beluga"]["second"]["store_stats"]
    assert beluga_stats["checksum_failures"] == 0 and beluga_stats["get_misses"] == 0


def _requests(e2e):
    import workload
    from model import SMOKE_SHAPE
    return workload.build(workload.SMOKE_WORKLOAD, SMOKE_SHAPE.vocab)


def test_repetitions_give_medians_spreads_and_same_run_ratios():
    import e2e
    rep = lambda ttft, qps, computed: {"ttft_mean": ttft, "ttft_p99": ttft * 2, "qps": qps,  # noqa: E731
                                        "computed_tokens": computed, "requests": 6,
                                        "store_stats": {"puts": 1}}
    none = [rep(0.100, 10.0, 300), rep(0.300, 5.0, 300), rep(0.200, 8.0, 302)]
    bel = [rep(0.050, 20.0, 60), rep(0.090, 9.0, 64), rep(0.080, 16.0, 62)]
    s = e2e.aggregate(bel)
    assert s["ttft_mean"] == 0.080 and s["qps"] == 16.0 and s["computed_tokens"] == 62
    assert s["spread"]["ttft_mean"] == (0.050, 0.090) and s["repeats"] == 3
    assert s["requests"] == 6 and s["store_stats"] == {"puts": 1}
    reps = [{"none": {"second": n}, "beluga": {"second": b}} for n, b in zip(none, bel)]
    # Paired by repetition: 0.5, 0.3, 0.4 -> median 0.4 (not 0.080 / 0.200).
    med, lo, hi = e2e.vs_baseline(reps, "beluga", "second", "ttft_mean")
    assert (round(med, 6), round(lo, 6), round(hi, 6)) == (0.4, 0.3, 0.5)
    assert e2e.vs_baseline([{"beluga": {"second": bel[0]}}], "beluga", "second", "qps") is None



def test_load_store_row_is_the_median_and_spread_of_each_repetitions_sum():
    """The row's figures are per-repetition sums, so its median is one some
    repetition measured; a metric a workload does not have prints "-"."""
    import types

    import harness
    import workload
    from model import SMOKE_SHAPE

    def run(lookup_s, load_s, save_s):
        req = {"prompt_tokens": 64, "ttft": 0.05, "tpot": 0.01, "computed_tokens": 16,
               "loaded_tokens": 48, "local_hit_tokens": 0, "prefill_s": 0.01, "lookup_s": lookup_s,
               "load_s": load_s, "save_s": save_s, "saved_blocks": 0, "kind": "doc"}
        return harness.summarize({0: req}, 1.0)

    # Lookup + load per repetition: 101, 101, 100 ms, median 101 ms; the sum of
    # the two medians (50 + 50 ms) would be what no repetition measured.
    reps = [{"beluga": {"first": run(*t), "second": run(*t)}}
            for t in ((0.001, 0.100, 0.020), (0.100, 0.001, 0.040), (0.050, 0.050, 0.030))]
    summary = harness.summarize_all(reps, ["beluga"])
    args = types.SimpleNamespace(repeats=3, prefill_probe=64, engines=2, engine_blocks=7)
    table = harness.fmt_table(summary, 1000.0, SMOKE_SHAPE, workload.SMOKE_WORKLOAD, args, reps,
                              labels={"beluga": "Beluga"})
    rows = [line for line in table.splitlines() if "Load / store time" in line]
    assert rows == [f"| {run} | Load / store time, all requests (ms) | 101 (100-101) / 30.0 (20.0-40.0) |"
                    for run in ("First", "Second")]
    # A workload without chat turns (--chats 0) has no chat TTFT: a dash, not a crash.
    assert "| First | Avg TTFT, chat turns (ms) | - |" in table.splitlines()
