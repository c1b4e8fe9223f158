# SPDX-License-Identifier: Apache-2.0
"""One inference engine process: a PagedModel, a vLLM-like block manager with
a local prefix cache (the "HBM" cache, bounded), and an external KV store.

Per request, like vLLM with a KV connector: hash the prompt's full blocks
(vLLM's sha256_cbor chain), take the local prefix-cache hits, ask the store
how many further leading blocks it holds (at most num_tokens - 1 tokens:
the last token's logits must be computed), load those, prefill the rest,
store the newly computed full blocks (inside the step, before the first
token is returned, as the connector's wait_for_save does), then decode.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict

import torch

import beluga
from model import PagedModel


class BlockManager:
    """Free blocks plus an LRU prefix cache of finished requests' full blocks."""

    def __init__(self, num_blocks):
        self.free = list(range(num_blocks))
        self.cached = OrderedDict()       # key -> block id (refcount 0, reusable)
        self.by_block = {}

    def hits(self, keys, max_blocks):
        ids = []
        for k in keys[:max_blocks]:
            b = self.cached.get(k)
            if b is None:
                break
            ids.append(b)
        return ids

    def take(self, ids):
        """Claim cached blocks for a running request."""
        for b in ids:
            k = self.by_block.pop(b)
            del self.cached[k]

    def alloc(self, n):
        out = []
        while len(out) < n:
            if self.free:
                out.append(self.free.pop())
            elif self.cached:
                k, b = self.cached.popitem(last=False)    # evict the least recently used
                del self.by_block[b]
                out.append(b)
            else:
                raise RuntimeError("out of KV blocks")
        return out

    def release(self, block_ids, keys):
        """A finished request: its full blocks become cached, the rest free."""
        for i, b in enumerate(block_ids):
            k = keys[i] if i < len(keys) else None
            if k is not None and k not in self.cached:
                self.cached[k] = b
                self.by_block[b] = k
            else:
                self.free.append(b)


def make_store(kind, spec, fp, layers):
    import stores
    if kind == "none":
        return stores.NoStore()
    if kind == "beluga":
        return stores.BelugaStore(spec, fp, layers)
    if kind == "redis":
        return stores.RedisStore(spec, fp, layers)
    raise ValueError(kind)


class Engine:
    def __init__(self, shape, num_blocks, store_kind, store_spec, fp, seed, hash_seed):
        self.model = PagedModel(shape, num_blocks, seed)
        self.bs = shape.block_size
        self.blocks = BlockManager(num_blocks)
        self.store = make_store(store_kind, store_spec, fp, self.model.kv)
        self.root = beluga.root_key(hash_seed)

    def serve(self, req_id, prompt, output_tokens):
        t0 = time.perf_counter()
        bs, n = self.bs, len(prompt)
        keys = beluga.hash_tokens(self.root, prompt, bs)
        usable = (n - 1) // bs                        # blocks that may come from a cache
        local = self.blocks.hits(keys, usable)
        self.blocks.take(local)
        t_lookup = time.perf_counter()
        ext = self.store.lookup(keys[len(local):usable]) if usable > len(local) else 0
        total_blocks = -(-(n + output_tokens) // bs)
        block_table = local + self.blocks.alloc(total_blocks - len(local))
        t_load = time.perf_counter()
        loaded = self.store.load(block_table[len(local):len(local) + ext],
                                 keys[len(local):len(local) + ext]) if ext else 0
        computed_from = (len(local) + loaded) * bs
        t_prefill = time.perf_counter()
        logits = self.model.forward(prompt[computed_from:], computed_from, block_table)
        first = int(torch.argmax(logits))
        t_save = time.perf_counter()
        full = n // bs
        saved = self.store.save(block_table[len(local) + loaded:full],
                                keys[len(local) + loaded:full])
        t_first = time.perf_counter()
        out = self.model.decode(first, n, block_table, output_tokens)
        t_end = time.perf_counter()
        self.blocks.release(block_table, keys[:full])
        return {
            "req_id": req_id, "prompt_tokens": n, "local_hit_tokens": len(local) * bs,
            "loaded_tokens": loaded * bs, "computed_tokens": n - computed_from,
            "saved_blocks": saved,
            "ttft": t_first - t0, "e2e": t_end - t0,
            "tpot": (t_end - t_first) / max(1, output_tokens - 1),
            "lookup_s": t_load - t_lookup, "load_s": t_prefill - t_load,
            "prefill_s": t_save - t_prefill, "save_s": t_first - t_save,
            "output": out,
        }


def engine_main(conn, shape, num_blocks, store_kind, store_spec, fp_dict, seed, hash_seed,
                threads):
    """Process entry point: build the engine, then serve requests from `conn`."""
    try:
        torch.set_num_threads(threads)
        fp = beluga.Fingerprint(**fp_dict)
        eng = Engine(shape, num_blocks, store_kind, store_spec, fp, seed, hash_seed)
        conn.send(("ready", None))
        while True:
            msg = conn.recv()
            if msg is None:
                break
            req_id, prompt, output_tokens = msg
            conn.send(("done", eng.serve(req_id, prompt, output_tokens)))
        eng.store.close()
    except Exception:
        conn.send(("error", traceback.format_exc()))
