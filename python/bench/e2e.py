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
them); every figure is the median over repetitions with its spread
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
import statistics
import sys
import time
from dataclasses import asdict, replace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import beluga  # noqa: E402
import workload  # noqa: E402
from model import SMOKE_SHAPE, ModelShape  # noqa: E402

STORES = ("none", "beluga", "redis")
LABEL = {"none": "No external cache", "beluga": "Beluga (shared memory)",
         "redis": "Redis (127.0.0.1)"}
HASH_SEED = "0"


def fingerprint_of(shape):
    return dict(model_id=f"bench/llama-{shape.params // 10**6}M@seed", hash_fn="sha256_cbor",
                hash_seed=HASH_SEED, num_layers=shape.layers, block_size=shape.block_size,
                num_kv_heads=shape.kv_heads, head_size=shape.head_size,
                dtype={"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}[shape.dtype])


def start_engines(args, shape, kind, spec):
    from engine import engine_main
    # forkserver with the heavy modules preloaded: engines start in well under
    # a second, without inheriting this process's torch threads.
    ctx = mp.get_context("forkserver")
    engines = []
    for i in range(args.engines):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=engine_main, daemon=True,
                        args=(child, shape, args.engine_blocks, kind, spec,
                              fingerprint_of(shape), args.seed, HASH_SEED, args.threads))
        p.start()
        engines.append((p, parent))
    for p, conn in engines:
        if not conn.poll(args.timeout):
            raise RuntimeError("an engine did not start in time")
        tag, payload = conn.recv()
        if tag != "ready":
            raise RuntimeError(f"engine failed to start:\n{payload}")
    return engines


def stop_engines(engines):
    for p, conn in engines:
        try:
            conn.send(None)
        except (BrokenPipeError, OSError):
            pass
    for p, conn in engines:
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join(5)


def run_workload(engines, requests, timeout):
    """Closed loop: an idle engine takes the next request whose predecessor
    (previous chat turn) has completed.  Returns (results, wall seconds)."""
    pending = list(requests)
    done, results = set(), {}
    idle = list(range(len(engines)))
    busy = {}
    t0 = time.perf_counter()
    deadline = time.time() + timeout
    while pending or busy:
        while idle:
            ready = next((r for r in pending if r.after is None or r.after in done), None)
            if ready is None:
                break
            pending.remove(ready)
            e = idle.pop(0)
            engines[e][1].send((ready.req_id, ready.prompt, ready.output_tokens))
            busy[e] = ready
        conns = [engines[e][1] for e in busy]
        for c in mp.connection.wait(conns, timeout=max(0.1, deadline - time.time())):
            e = next(i for i in busy if engines[i][1] is c)
            tag, res = c.recv()
            if tag != "done":
                raise RuntimeError(f"engine {e} failed:\n{res}")
            req = busy.pop(e)
            res["engine"] = e
            res["kind"] = req.kind
            results[req.req_id] = res
            done.add(req.req_id)
            idle.append(e)
        if time.time() > deadline:
            raise RuntimeError("benchmark run timed out")
    return results, time.perf_counter() - t0


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def summarize(results, wall):
    r = list(results.values())
    prompt = sum(x["prompt_tokens"] for x in r)
    return {
        "requests": len(r),
        "ttft_mean": statistics.mean(x["ttft"] for x in r),
        "ttft_p99": p99([x["ttft"] for x in r]),
        "tpot_mean": statistics.mean(x["tpot"] for x in r),
        "qps": len(r) / wall,
        "wall_s": wall,
        "prompt_tokens": prompt,
        "computed_tokens": sum(x["computed_tokens"] for x in r),
        "loaded_tokens": sum(x["loaded_tokens"] for x in r),
        "local_hit_tokens": sum(x["local_hit_tokens"] for x in r),
        "ext_hit_rate": sum(x["loaded_tokens"] for x in r) / prompt,
        "prefill_s": sum(x["prefill_s"] for x in r),
        "load_s": sum(x["load_s"] for x in r),
        "save_s": sum(x["save_s"] for x in r),
        "lookup_s": sum(x["lookup_s"] for x in r),
        "saved_blocks": sum(x["saved_blocks"] for x in r),
        "doc_ttft_mean": statistics.mean(x["ttft"] for x in r if x["kind"] == "doc") if any(
            x["kind"] == "doc" for x in r) else None,
        "chat_ttft_mean": statistics.mean(x["ttft"] for x in r if x["kind"] == "chat") if any(
            x["kind"] == "chat" for x in r) else None,
    }


# Timings that vary between repetitions: reported as median (min-max).
TIMED = ("ttft_mean", "ttft_p99", "tpot_mean", "qps", "wall_s", "doc_ttft_mean",
         "chat_ttft_mean", "prefill_s", "load_s", "save_s", "lookup_s")


def aggregate(reps):
    """One summary from the repetitions' summaries: the median of each number,
    with `spread[key] = (min, max)` for the timings and `repeats`."""
    out = {}
    for k, v in reps[0].items():
        vals = [r[k] for r in reps]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and all(
                x is not None for x in vals):
            out[k] = statistics.median(vals)
            if isinstance(v, int) and all(x == v for x in vals):
                out[k] = v
        else:
            out[k] = v
    out["spread"] = {k: (min(r[k] for r in reps), max(r[k] for r in reps))
                     for k in TIMED if all(r.get(k) is not None for r in reps)}
    out["repeats"] = len(reps)
    return out


def vs_baseline(reps, kind, run, key):
    """Median over repetitions of kind's `key` / the no-cache run's, paired
    by repetition (same machine state)."""
    pairs = [(r[kind][run][key], r["none"][run][key]) for r in reps
             if "none" in r and r[kind][run].get(key) and r["none"][run].get(key)]
    if not pairs:
        return None
    ratios = [a / b for a, b in pairs]
    return statistics.median(ratios), min(ratios), max(ratios)


def measure_prefill(shape, tokens, seed, threads):
    """The model's prefill throughput, alone in this process (tokens/s)."""
    import torch
    from model import PagedModel
    torch.set_num_threads(threads)
    bs = shape.block_size
    m = PagedModel(shape, -(-tokens // bs) + 1, seed)
    table = list(range(-(-tokens // bs) + 1))
    m.forward(list(range(1, 1 + min(64, tokens))), 0, table)     # warm-up
    t = time.perf_counter()
    m.forward(list(range(1, tokens + 1)), 0, table)
    return tokens / (time.perf_counter() - t)


def fmt_table(summary, prefill_tps, shape, wshape, args, reps=None):
    ms = lambda s: f"{s * 1e3:.0f}" if s >= 0.1 else f"{s * 1e3:.1f}"   # noqa: E731

    def timed(key, f):
        # median, and (min-max) over the repetitions when there are several
        def cell(s):
            lo, hi = s["spread"].get(key, (None, None))
            if s.get("repeats", 1) < 2 or lo is None:
                return f(s[key])
            return f"{f(s[key])} ({f(lo)}-{f(hi)})"
        return cell

    cols = [k for k in STORES if k in summary]
    lines = ["| Run | Metric | " + " | ".join(LABEL[k] for k in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    rows = [("Avg TTFT (ms)", timed("ttft_mean", ms)),
            ("P99 TTFT (ms)", timed("ttft_p99", ms)),
            ("Avg TTFT, documents (ms)", timed("doc_ttft_mean", ms)),
            ("Avg TTFT, chat turns (ms)", timed("chat_ttft_mean", ms)),
            ("Avg TPOT (ms)", timed("tpot_mean", ms)),
            ("QPS", timed("qps", lambda q: f"{q:.2f}")),
            ("Prompt tokens from the external cache", lambda s: f"{100 * s['ext_hit_rate']:.1f} %"),
            ("Prompt tokens computed", lambda s: f"{s['computed_tokens']:.0f}"),
            ("Load / store time, all requests (ms)",
             lambda s: f"{ms(s['lookup_s'] + s['load_s'])} / {ms(s['save_s'])}")]
    for run in ("first", "second"):
        for name, f in rows:
            lines.append(f"| {run.capitalize()} | {name} | " +
                         " | ".join(f(summary[k][run]) for k in cols) + " |")
        if reps and "none" in cols:
            for name, key in (("Avg TTFT / no cache, same repetition", "ttft_mean"),
                              ("QPS / no cache, same repetition", "qps")):
                cells = []
                for k in cols:
                    r = vs_baseline(reps, k, run, key)
                    cells.append("-" if r is None or k == "none" else
                                 f"{r[0]:.2f}x" + (f" ({r[1]:.2f}-{r[2]:.2f})" if len(reps) > 1 else ""))
                lines.append(f"| {run.capitalize()} | {name} | " + " | ".join(cells) + " |")
    hdr = (f"Model: {shape.params / 1e6:.0f}M-parameter Llama-style decoder ({shape.layers} layers, "
           f"d_model {shape.d_model}, {shape.heads} query / {shape.kv_heads} KV heads x "
           f"{shape.head_size}, FFN {shape.ffn}, vocab {shape.vocab}), {shape.dtype}, random weights; "
           f"KV {shape.kv_bytes_per_token} B/token, {shape.block_size}-token blocks "
           f"({shape.kv_bytes_per_token * shape.block_size // 1024} KiB).  Measured prefill "
           f"throughput: {prefill_tps:.0f} tokens/s ({args.prefill_probe} tokens, one process).")
    wl = (f"Workload: {wshape.docs} documents x {wshape.doc_tokens} tokens, {wshape.questions} "
          f"questions each ({wshape.question_tokens} tokens); {wshape.chats} chats x {wshape.turns} "
          f"turns ({wshape.system_tokens}-token system prompt, {wshape.user_tokens}-token user "
          f"turns, {wshape.reply_tokens}-token replies); {wshape.output_tokens} output tokens per "
          f"request; {args.engines} engine processes, {args.engine_blocks} KV blocks each "
          f"(local prefix cache), closed loop.")
    rp = (f"Repetitions: {args.repeats}, stores interleaved; each figure is the median over "
          f"repetitions" + (", (min-max) its spread" if args.repeats > 1 else "") +
          "; ratios pair each repetition with the no-cache run of the same repetition.")
    return "\n".join([hdr, wl, rp, ""] + lines)


def check_outputs(summary, runs):
    """First tokens must not depend on where the prefix KV came from (nor on
    the repetition): every run against the first no-cache run."""
    base = runs[("none", "first", 0)]
    report = {}
    for key, res in runs.items():
        same = sum(1 for rid, r in res.items() if r["output"][0] == base[rid]["output"][0])
        name = f"{key[0]}/{key[1]}"
        a, b = report.get(name, (0, 0))
        report[name] = (a + same, b + len(res))
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, fp32 (seconds); used by make check")
    ap.add_argument("--stores", default=",".join(STORES), help="subset of none,beluga,redis")
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--engine-blocks", type=int, default=None,
                    help="KV blocks per engine (its local prefix cache); default fits ~1.5 documents")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per engine")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--docs", type=int)
    ap.add_argument("--doc-tokens", type=int)
    ap.add_argument("--questions", type=int)
    ap.add_argument("--chats", type=int)
    ap.add_argument("--turns", type=int)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--repeats", type=int, default=None,
                    help="repetitions of every configuration (default 3; 1 with --smoke)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    shape = SMOKE_SHAPE if args.smoke else ModelShape(d_model=512, layers=8, heads=8, kv_heads=2,
                                                      head_size=64, ffn=1408)
    wshape = workload.SMOKE_WORKLOAD if args.smoke else workload.WorkloadShape()
    over = {k: getattr(args, k) for k in ("docs", "doc_tokens", "questions", "chats", "turns")
            if getattr(args, k) is not None}
    wshape = replace(wshape, **over)
    requests = workload.build(wshape, shape.vocab)
    longest = max(len(r.prompt) + r.output_tokens for r in requests)
    if args.engine_blocks is None:
        args.engine_blocks = max(-(-longest // shape.block_size) + 2,
                                 int(1.5 * wshape.doc_tokens) // shape.block_size)
    args.prefill_probe = min(1024, wshape.doc_tokens)
    stores = [s for s in args.stores.split(",") if s]
    kv_total = sum(len(r.prompt) for r in requests) * shape.kv_bytes_per_token

    print(f"e2e: {len(requests)} requests per run, stores {stores}, {args.engines} engines", flush=True)
    mp.set_forkserver_preload(["torch", "numpy", "beluga", "beluga_vllm.blockio", "model",
                               "engine", "stores", "workload"])
    prefill_tps = measure_prefill(shape, args.prefill_probe, args.seed, args.threads)
    runs = {}
    reps = []     # per repetition: {kind: {run: summary}}
    fp = beluga.Fingerprint(**fingerprint_of(shape))
    for rep in range(args.repeats):
        reps.append({})
        for kind in stores:
            setup = None
            try:
                if kind == "beluga":
                    from stores import BelugaSetup
                    setup = BelugaSetup(fp, 2 * kv_total + (8 << 20))
                elif kind == "redis":
                    from stores import RedisServer
                    setup = RedisServer(maxmemory_bytes=4 * kv_total + (64 << 20))
                reps[rep][kind] = {}
                for run in ("first", "second"):
                    if setup is not None and run == "first":
                        setup.reset()
                    spec = setup.spec if setup is not None else {}
                    engines = start_engines(args, shape, kind, spec)
                    try:
                        res, wall = run_workload(engines, requests, args.timeout)
                    finally:
                        stop_engines(engines)
                    runs[(kind, run, rep)] = res
                    reps[rep][kind][run] = s = summarize(res, wall)
                    if setup is not None:
                        s["store_stats"] = setup.stats()
                    print(f"  [{rep + 1}/{args.repeats}] {kind:6s} {run:6s}: TTFT mean "
                          f"{s['ttft_mean'] * 1e3:8.1f} ms  p99 {s['ttft_p99'] * 1e3:8.1f} ms  "
                          f"QPS {s['qps']:.2f}  external hits {100 * s['ext_hit_rate']:.1f} %",
                          flush=True)
            finally:
                if setup is not None:
                    setup.close()
    summary = {kind: {run: aggregate([r[kind][run] for r in reps]) for run in ("first", "second")}
               for kind in stores}
    table = fmt_table(summary, prefill_tps, shape, wshape, args, reps)
    outputs = check_outputs(summary, runs) if ("none", "first", 0) in runs else {}
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
