#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end time-to-first-token benchmark (the paper's Table 5).

Two engine processes (a small Llama-style model with a paged KV cache in
vLLM's layout, real forward passes on the CPU) serve a shared-prefix
workload (long documents asked several questions; multi-turn chats) with

  none    no external KV cache (each engine's own bounded prefix cache only),
  beluga  one Beluga KV cache both engines share (user-space backend here),
  redis   a real redis-server on 127.0.0.1, the network store,

each twice: a first run that populates the external cache, and a second,
with fresh engines, that hits it.  The whole set is repeated (--repeats,
interleaving the stores so that a slow spell of the machine hits all of
them, their order rotated each repetition); every figure is the median over repetitions with its spread
(min-max), and each store is compared with the no-cache baseline of the same
repetition and run.  Prints TTFT (mean, p99), TPOT, QPS and the hit rates,
with the model's measured prefill throughput.

  /usr/bin/python3 python/bench/e2e.py            # full run (minutes)
  /usr/bin/python3 python/bench/e2e.py --smoke    # tiny shapes (seconds)

Needs PYTHONPATH=<build>/python (make bench-e2e sets it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from dataclasses import asdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import beluga  # noqa: E402
import harness  # noqa: E402
# The summaries' helpers, under the names the smoke test and older callers use.
from harness import aggregate, vs_baseline  # noqa: E402,F401

STORES = ("none", "beluga", "redis")
LABEL = {"none": "No external cache", "beluga": "Beluga (shared memory)",
         "redis": "Redis (127.0.0.1)"}
HASH_SEED = "0"


def fingerprint_of(shape):
    return dict(model_id=f"bench/llama-{shape.params // 10**6}M@seed", hash_fn="sha256_cbor",
                hash_seed=HASH_SEED, num_layers=shape.layers, block_size=shape.block_size,
                num_kv_heads=shape.kv_heads, head_size=shape.head_size,
                dtype={"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}[shape.dtype])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_common_args(ap, STORES)
    args = ap.parse_args(argv)
    shape, wshape, requests, stores = harness.resolve(ap, args, STORES)
    kv_total = sum(len(r.prompt) for r in requests) * shape.kv_bytes_per_token

    print(f"e2e: {len(requests)} requests per run, stores {stores}, {args.engines} engines", flush=True)
    mp.set_forkserver_preload(["torch", "numpy", "beluga", "beluga_vllm.blockio", "model",
                               "engine", "stores", "workload"])
    prefill_tps = harness.measure_prefill(shape, args.prefill_probe, args.seed, args.threads)
    fp = beluga.Fingerprint(**fingerprint_of(shape))

    def make_setup(kind):
        if kind == "beluga":
            from stores import BelugaSetup
            return BelugaSetup(fp, 2 * kv_total + (8 << 20))
        if kind == "redis":
            from stores import RedisServer
            return RedisServer(maxmemory_bytes=4 * kv_total + (64 << 20))
        return None

    def start(kind, spec):
        from engine import engine_main
        return harness.start_engines(args, engine_main, lambda i: (
            shape, args.engine_blocks, kind, spec, fingerprint_of(shape), args.seed, HASH_SEED,
            args.threads))

    runs, reps = harness.run_repetitions(args, stores, requests, make_setup, start)
    summary = harness.summarize_all(reps, stores)
    table = harness.fmt_table(summary, prefill_tps, shape, wshape, args, reps, labels=LABEL)
    outputs = harness.check_outputs(runs) if ("none", "first", 0) in runs else {}
    print()
    print(table)
    if outputs:
        print("\nFirst output token equal to the no-cache first run: " +
              ", ".join(f"{k} {a}/{b}" for k, (a, b) in outputs.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": shape.describe(), "workload": asdict(wshape),
                       "prefill_tokens_per_s": prefill_tps, "summary": summary,
                       "first_token_agreement": outputs, "table": table,
                       "repetitions": reps,
                       "results": {f"{k}/{r}/{i}": v for (k, r, i), v in runs.items()}}, f, indent=1)
    return summary, outputs


if __name__ == "__main__":
    main()
