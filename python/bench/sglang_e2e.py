#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end time to first token for two SGLang-like instances that share
prefixes through a HiCache storage backend (make bench-e2e-sglang).

The same CPU model, workload, closed loop, repetitions and table as e2e.py;
the engines are SGLang-like instances (sglang_instance.py: device cache,
HiCache host pool, a storage backend driven as SGLang's cache controller
drives it), and the columns are the storage tier:

  recompute  no storage backend (each instance's own device prefix cache only),
  shm        SGLang's same-host shared-memory backend, HiCacheShm, as it is at
             the SGLang commit named in sglang_stores.py (it shares nothing),
  file       SGLang's HiCacheFile on tmpfs (/dev/shm), its same-host backend
             that does share pages between instances,
  beluga     beluga_sglang.BelugaHiCacheStorage, loaded as SGLang loads a
             "dynamic" backend, over a Beluga cache both instances share,

each twice: a first run that populates the storage (within it one instance
loads what the other stored), and a second, with fresh instances, that hits
it.  Every configuration is compared with the recompute run of the same
repetition.  The backends' get_stats() go where SGLang sends them (its
storage metrics collector); the run prints the series.

  /usr/bin/python3 python/bench/sglang_e2e.py            # full run (minutes)
  /usr/bin/python3 python/bench/sglang_e2e.py --smoke    # tiny shapes (seconds)

Needs PYTHONPATH=<build>/python (make bench-e2e-sglang sets it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from dataclasses import asdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

STORES = ("recompute", "shm", "file", "beluga")
LABEL = {"recompute": "Recompute (no storage)", "shm": "SGLang HiCacheShm",
         "file": "SGLang HiCacheFile (tmpfs)", "beluga": "Beluga HiCache backend"}


def model_name(shape):
    return f"bench/llama-{shape.params // 10**6}M"


def run_metrics(res):
    """The storage series of one run: each instance's cumulative counters
    (from its last request), summed over the instances."""
    last = {}
    for r in res.values():
        m = r["metrics"]
        if r["engine"] not in last or m["get_stats_calls"] > last[r["engine"]]["get_stats_calls"]:
            last[r["engine"]] = m
    out = {}
    for m in last.values():
        for k, v in m.items():
            out[k] = out.get(k, 0) + v
    return out


def fmt_metrics(summary, stores):
    """SGLang's storage series per configuration and run (repetition 1)."""
    cols = [k for k in stores if k != "recompute"]
    if not cols:
        return ""
    keys = list(summary[cols[0]]["first"]["storage_metrics"])
    lines = ["| Run | Series (both instances) | " + " | ".join(LABEL[k] for k in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for run in ("first", "second"):
        for key in keys:
            cells = []
            for k in cols:
                v = summary[k][run]["storage_metrics"].get(key, 0)
                cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
            lines.append(f"| {run.capitalize()} | `{key}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_common_args(ap, STORES)
    ap.add_argument("--layout", default="page_first", choices=("page_first", "page_first_direct"),
                    help="the host KV pool's layout (--hicache-mem-layout)")
    ap.add_argument("--prefetch-threshold", type=int, default=None,
                    help="tokens below which a storage hit is not prefetched (SGLang's "
                         "--hicache-storage-prefetch-threshold-like knob; default 256, 16 with --smoke)")
    args = ap.parse_args(argv)
    shape, wshape, requests, stores = harness.resolve(ap, args, STORES)
    if args.prefetch_threshold is None:
        args.prefetch_threshold = shape.block_size if args.smoke else 256
    kv_total = sum(len(r.prompt) for r in requests) * shape.kv_bytes_per_token
    if "recompute" not in stores:
        stores.insert(0, "recompute")      # every configuration against it

    print(f"sglang-e2e: {len(requests)} requests per run, configurations {stores}, "
          f"{args.engines} instances", flush=True)
    preload = ["torch", "numpy", "model", "engine", "sglang_instance", "sglang_stores", "workload"]
    if "beluga" in stores:
        preload += ["beluga", "beluga_sglang"]
    mp.set_forkserver_preload(preload)
    prefill_tps = harness.measure_prefill(shape, args.prefill_probe, args.seed, args.threads)
    base_spec = {"layout": args.layout, "prefetch_threshold": args.prefetch_threshold,
                 "model_name": model_name(shape), "host_pages": 2 * args.engine_blocks}

    def make_setup(kind):
        import sglang_stores
        if kind == "file":
            s = sglang_stores.FileSetup()
        elif kind == "beluga":
            s = sglang_stores.BelugaSetup(shape, 2 * kv_total + (8 << 20))
        else:
            s = sglang_stores.NoSetup()
        s.spec = dict(base_spec, **s.spec)
        return s

    def start(kind, spec):
        from sglang_instance import instance_main
        return harness.start_engines(args, instance_main, lambda i: (
            shape, args.engine_blocks, kind, spec, args.seed, args.threads))

    def on_run(kind, run, res, s):
        s["storage_metrics"] = run_metrics(res)
        last = [r["cache_stats"] for r in res.values() if r.get("cache_stats")]
        if last:        # the shared cache's counters after the run's last request
            s["store_stats"] = max(last, key=lambda c: sum(v for v in c.values()
                                                           if isinstance(v, (int, float))))

    runs, reps = harness.run_repetitions(args, stores, requests, make_setup, start, on_run)
    summary = harness.summarize_all(reps, stores)
    table = harness.fmt_table(summary, prefill_tps, shape, wshape, args, reps, labels=LABEL,
                              base="recompute", base_name="recompute",
                              engine_word="SGLang-like instances",
                              cache_word=f"device KV pages each (local prefix cache), "
                                         f"{args.layout} host pool")
    metrics = fmt_metrics(summary, stores)
    outputs = harness.check_outputs(runs, base="recompute")
    print()
    print(table)
    if metrics:
        print("\nStorage metrics as SGLang's collector records them (counters; histogram "
              "count/sum of the backend's get_stats()), repetition 1:\n")
        print(metrics)
    print("\nFirst output token equal to the recompute first run: " +
          ", ".join(f"{k} {a}/{b}" for k, (a, b) in outputs.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": shape.describe(), "workload": asdict(wshape),
                       "prefill_tokens_per_s": prefill_tps, "summary": summary,
                       "first_token_agreement": outputs, "table": table, "metrics": metrics,
                       "repetitions": reps,
                       "results": {f"{k}/{r}/{i}": v for (k, r, i), v in runs.items()}}, f, indent=1)
    return summary, outputs


if __name__ == "__main__":
    main()
