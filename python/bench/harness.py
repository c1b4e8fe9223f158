# SPDX-License-Identifier: Apache-2.0
"""What the end-to-end benchmarks share: the knobs, the engine processes, the
closed-loop client, the repetitions, the summaries and the table.

e2e.py (vLLM-like engines, none/Beluga/Redis) and sglang_e2e.py
(SGLang-like instances, recompute/HiCache backends) differ only in the engine
process they start and in the stores they compare; both run the same
workload (workload.py) on the same CPU model (model.py) through these
functions, so their figures are comparable in kind.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from dataclasses import replace

import workload
from model import SMOKE_SHAPE, ModelShape

# The model the full runs use (55 M parameters; Documentation/performance.md).
FULL_SHAPE = ModelShape(d_model=512, layers=8, heads=8, kv_heads=2, head_size=64, ffn=1408)


def add_common_args(ap, stores):
    """The knobs both benchmarks take (make's BENCH_E2E_ARGS passes them)."""
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, fp32 (seconds); used by make check")
    ap.add_argument("--stores", default=",".join(stores), help="subset of " + ",".join(stores))
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


def resolve(ap, args, stores):
    """Check the common knobs; return (shape, workload shape, requests, stores)."""
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.engines < 1:
        ap.error("--engines must be at least 1")
    chosen = [s for s in args.stores.split(",") if s]
    unknown = [s for s in chosen if s not in stores]
    if unknown or not chosen:
        ap.error(f"--stores: unknown {unknown or 'empty list'}; choose from {','.join(stores)}")
    shape = SMOKE_SHAPE if args.smoke else FULL_SHAPE
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
    return shape, wshape, requests, chosen


# ------------------------------------------------------------ processes

def start_engines(args, target, make_args):
    """args.engines processes running target(conn, *make_args(i)); each must
    answer ("ready", None) before the run starts."""
    # forkserver with the heavy modules preloaded (the caller sets the list):
    # engines start in well under a second, without this process's torch threads.
    ctx = mp.get_context("forkserver")
    engines = []
    try:
        for i in range(args.engines):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=target, daemon=True, args=(child, *make_args(i)))
            p.start()
            engines.append((p, parent))
        for p, conn in engines:
            if not conn.poll(args.timeout):
                raise RuntimeError("an engine did not start in time")
            tag, payload = conn.recv()
            if tag != "ready":
                raise RuntimeError(f"engine failed to start:\n{payload}")
    except BaseException:
        stop_engines(engines)
        raise
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


def run_repetitions(args, stores, requests, make_setup, start, on_run=None):
    """Every store, first and second run, args.repeats times, the stores
    interleaved within a repetition and their order rotated by one from each
    repetition to the next (so that none always runs in the same place of a
    repetition).  make_setup(kind) gives an object with reset(), stats(),
    close() and .spec, or None (no shared store);
    start(kind, spec) starts the engines.  Returns (runs, reps): runs[(kind,
    run, rep)] the per-request results, reps[rep][kind][run] the summaries."""
    runs, reps = {}, []
    for rep in range(args.repeats):
        reps.append({})
        shift = rep % len(stores)
        for kind in stores[shift:] + stores[:shift]:
            setup = make_setup(kind)
            try:
                reps[rep][kind] = {}
                for run in ("first", "second"):
                    if setup is not None and run == "first":
                        setup.reset()
                    engines = start(kind, setup.spec if setup is not None else {})
                    try:
                        res, wall = run_workload(engines, requests, args.timeout)
                    finally:
                        stop_engines(engines)
                    runs[(kind, run, rep)] = res
                    reps[rep][kind][run] = s = summarize(res, wall)
                    if setup is not None:
                        s["store_stats"] = setup.stats()
                    if on_run is not None:
                        on_run(kind, run, res, s)
                    print(f"  [{rep + 1}/{args.repeats}] {kind:9s} {run:6s}: TTFT mean "
                          f"{s['ttft_mean'] * 1e3:8.1f} ms  p99 {s['ttft_p99'] * 1e3:8.1f} ms  "
                          f"QPS {s['qps']:.2f}  external hits {100 * s['ext_hit_rate']:.1f} %",
                          flush=True)
            finally:
                if setup is not None:
                    setup.close()
    return runs, reps


# ------------------------------------------------------------ summaries

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
        # What the table's "Load / store" row shows: lookup and load together,
        # so that its median and spread are those of the sum, per repetition.
        "fetch_s": sum(x["lookup_s"] + x["load_s"] for x in r),
        "saved_blocks": sum(x["saved_blocks"] for x in r),
        "doc_ttft_mean": statistics.mean(x["ttft"] for x in r if x["kind"] == "doc") if any(
            x["kind"] == "doc" for x in r) else None,
        "chat_ttft_mean": statistics.mean(x["ttft"] for x in r if x["kind"] == "chat") if any(
            x["kind"] == "chat" for x in r) else None,
    }


# Timings that vary between repetitions: reported as median (min-max).
TIMED = ("ttft_mean", "ttft_p99", "tpot_mean", "qps", "wall_s", "doc_ttft_mean",
         "chat_ttft_mean", "prefill_s", "load_s", "save_s", "lookup_s", "fetch_s")


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


def summarize_all(reps, stores):
    return {kind: {run: aggregate([r[kind][run] for r in reps]) for run in ("first", "second")}
            for kind in stores}


def vs_baseline(reps, kind, run, key, base="none"):
    """Median over repetitions of kind's `key` / the baseline's, paired by
    repetition (same machine state): (median, min, max), or None."""
    pairs = [(r[kind][run][key], r[base][run][key]) for r in reps
             if base in r and r[kind][run].get(key) and r[base][run].get(key)]
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


def fmt_table(summary, prefill_tps, shape, wshape, args, reps=None, *, labels, base="none",
              base_name="no cache", engine_word="engine processes",
              cache_word="KV blocks each (local prefix cache)"):
    """The Markdown table: one column per store in `labels` order (those
    measured), medians with (min-max), ratios against `base` paired by
    repetition."""
    ms = lambda s: f"{s * 1e3:.0f}" if s >= 0.1 else f"{s * 1e3:.1f}"   # noqa: E731

    def timed(key, f):
        # median, and (min-max) over the repetitions when there are several
        def cell(s):
            if s.get(key) is None:      # e.g. no chat turns in this workload (--chats 0)
                return "-"
            lo, hi = s["spread"].get(key, (None, None))
            if s.get("repeats", 1) < 2 or lo is None:
                return f(s[key])
            return f"{f(s[key])} ({f(lo)}-{f(hi)})"
        return cell

    cols = [k for k in labels if k in summary]
    lines = ["| Run | Metric | " + " | ".join(labels[k] for k in cols) + " |",
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
             lambda s: f"{timed('fetch_s', ms)(s)} / {timed('save_s', ms)(s)}")]
    for run in ("first", "second"):
        for name, f in rows:
            lines.append(f"| {run.capitalize()} | {name} | " +
                         " | ".join(f(summary[k][run]) for k in cols) + " |")
        if reps and base in cols:
            for name, key in ((f"Avg TTFT / {base_name}, same repetition", "ttft_mean"),
                              (f"QPS / {base_name}, same repetition", "qps")):
                cells = []
                for k in cols:
                    r = vs_baseline(reps, k, run, key, base)
                    cells.append("-" if r is None or k == base else
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
          f"request; {args.engines} {engine_word}, {args.engine_blocks} {cache_word}, closed loop.")
    rp = (f"Repetitions: {args.repeats}, stores interleaved (order rotated each repetition); "
          f"each figure is the median over "
          f"repetitions" + (", (min-max) its spread" if args.repeats > 1 else "") +
          f"; ratios pair each repetition with the {base_name} run of the same repetition.")
    return "\n".join([hdr, wl, rp, ""] + lines)


def check_outputs(runs, base="none"):
    """First tokens must not depend on where the prefix KV came from (nor on
    the repetition): every run against the baseline's first run."""
    base_run = runs[(base, "first", 0)]
    report = {}
    for key, res in runs.items():
        same = sum(1 for rid, r in res.items() if r["output"][0] == base_run[rid]["output"][0])
        name = f"{key[0]}/{key[1]}"
        a, b = report.get(name, (0, 0))
        report[name] = (a + same, b + len(res))
    return report
