# SPDX-License-Identifier: Apache-2.0
"""One SGLang-like serving instance: the benchmark's CPU model (model.py) with
a device KV cache and its local prefix cache (engine.BlockManager), a HiCache
host KV pool, and a HiCache storage backend driven the way SGLang's cache
controller drives it (managers/cache_controller.py at commit
001067fffe33427bee0ed2f007fb7551a1d76b44).

Per request:
  1. page hashes: SGLang's chained SHA-256 hex strings, one per full page
     (sha256(previous page's digest bytes + each token as 4 bytes little-endian));
  2. the local prefix-cache hits (the device cache, bounded, LRU);
  3. the storage hit query: batch_exists() over the next pages, in batches of
     128 (STORAGE_BATCH_SIZE), stopping at the first short batch; at most
     num_tokens - 1 tokens; a hit below the prefetch threshold is revoked;
  4. the prefetch: host pages allocated, the backend's page get (the generic
     path: batch_get() into flat staging pages then set_from_flat_data_page();
     or, with interface_v1, batch_get_v1() straight into the host pool), then
     the host-to-device copy of the pages that arrived;
  5. prefill of the rest, first token (TTFT ends here);
  6. the write-through and backup: the new full pages copied device to host,
     then the backend's page set (batch_set() of get_data_page() copies, or
     batch_set_v1()); SGLang runs this on its backup thread after the first
     token, so it is outside TTFT here too, but inside the request's time;
  7. decode; then, as the scheduler's check_hicache_events does with storage
     metrics on, the backend's get_stats() goes to the metrics collector.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import torch

from beluga_sglang.keys import page_hashes  # noqa: F401  (SGLang's get_hash_str chain)
from engine import BlockManager
from model import PagedModel

# SGLang's side of the storage interface (config, factory, host pool,
# StorageMetrics): the stand-ins the backend's tests use, written from SGLang's
# source at the commit Documentation/sglang.md names.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "python"))
import sglang_standins as S  # noqa: E402

STORAGE_BATCH_SIZE = S.STORAGE_BATCH_SIZE


class HostPool(S.MHATokenToKVPoolHost):
    """SGLang's MHA host KV pool (one TP rank, page_first or
    page_first_direct), plus the io backend's copies to and from the model's
    KV blocks, and with allocator="shm" its memory in a memfd as SGLang's
    ShmHostTensorAllocator places it."""

    def __init__(self, shape, pages, layout="page_first", allocator=None):
        self._allocator = allocator
        self._keep = None
        super().__init__(shape.layers, shape.kv_heads, shape.head_size, shape.block_size,
                         pages * shape.block_size, layout, getattr(torch, shape.dtype))

    def init_kv_buffer(self):
        if self._allocator != "shm":
            return super().init_kv_buffer()
        from sglang_stores import alloc_memfd
        L, H, D, T = self.layer_num, self.head_num, self.head_dim, self.page_size
        dims = ((2, self.size, L, H, D) if self.layout == "page_first"
                else (2, self.page_num, L, T, H, D))
        buf, fd, mm = alloc_memfd(dims, self.dtype)
        self._keep = (fd, mm)
        return buf

    # -- device <-> host (the io backend's copies), pages of the model's KV
    def _token_view(self, indices):
        if self.layout == "page_first":
            return indices
        return indices[::self.page_size] // self.page_size

    def load_to_device(self, model, indices, blocks):
        """Host pages at `indices` -> the model's KV blocks `blocks`."""
        if not blocks:
            return
        sel = self.kv_buffer[:, self._token_view(indices)]
        n, ps = len(blocks), self.page_size
        b = torch.tensor(blocks, dtype=torch.long)
        for layer, kv in enumerate(model.kv):
            if self.layout == "page_first":
                kv[:, b] = sel[:, :, layer].reshape(2, n, ps, self.head_num, self.head_dim)
            else:
                kv[:, b] = sel[:, :, layer]

    def backup_from_device(self, model, indices, blocks):
        """The model's KV blocks `blocks` -> host pages at `indices`."""
        if not blocks:
            return
        b = torch.tensor(blocks, dtype=torch.long)
        idx = self._token_view(indices)
        for layer, kv in enumerate(model.kv):
            src = kv[:, b]
            if self.layout == "page_first":
                self.kv_buffer[:, idx, layer] = src.reshape(2, -1, self.head_num, self.head_dim)
            else:
                self.kv_buffer[:, idx, layer] = src

    def close(self):
        if self._keep is not None:
            fd, mm = self._keep
            self.kv_buffer = None
            self._keep = None
            os.close(fd)
            try:
                mm.close()
            except BufferError:
                pass     # a tensor view still holds it; freed with the process


class MetricsCollector:
    """The storage metrics SGLang's StorageMetricsCollector turns into
    Prometheus series: two counters (prefetched / backed-up tokens) and four
    histograms fed from the backend's get_stats() (a StorageMetrics with
    lists of per-batch pages and GB/s, drained on each call).  Kept here as
    count and sum per series."""

    HISTOGRAMS = ("prefetch_pgs", "backup_pgs", "prefetch_bandwidth", "backup_bandwidth")

    def __init__(self):
        self.series = {"sglang:prefetched_tokens_total": 0, "sglang:backuped_tokens_total": 0}
        for h in self.HISTOGRAMS:
            self.series[f"sglang:{h}_count"] = 0
            self.series[f"sglang:{h}_sum"] = 0.0
        self.get_stats_calls = 0
        self.get_stats_none = 0

    def log_storage_metrics(self, m):
        self.get_stats_calls += 1
        if m is None:
            self.get_stats_none += 1
            return
        for h, values in S.log_storage_metrics(m).items():
            for v in values:
                self.series[f"sglang:{h}_count"] += 1
                self.series[f"sglang:{h}_sum"] += v

    def snapshot(self):
        return dict(self.series, get_stats_calls=self.get_stats_calls,
                    get_stats_none=self.get_stats_none)


class Instance:
    def __init__(self, shape, num_blocks, kind, spec, seed):
        self.model = PagedModel(shape, num_blocks, seed)
        self.ps = shape.block_size
        self.blocks = BlockManager(num_blocks)
        self.kind = kind
        self.prefetch_threshold = max(spec.get("prefetch_threshold", 256), self.ps)
        self.host = HostPool(shape, spec.get("host_pages", 2 * num_blocks),
                             spec.get("layout", "page_first"),
                             allocator="shm" if kind == "shm" else None)
        self.metrics = MetricsCollector()
        self.storage = None
        self.zero_copy = False
        if kind == "recompute":
            return
        from sglang_stores import storage_config
        cfg = storage_config(spec)
        if kind == "shm":
            from sglang_stores import ShmStorage
            self.storage = ShmStorage(cfg, self.host)
        elif kind == "file":
            from sglang_stores import FileStorage
            self.storage = FileStorage(cfg, spec["file_path"])
        elif kind == "beluga":
            # StorageBackendFactory's "dynamic" construction, then the
            # controller's register_mem_pool_host; interface_v1 selects the
            # controller's zero-copy page functions.
            S.install()
            self.storage = S.create_dynamic_backend(cfg, self.host)
            self.zero_copy = bool(cfg.extra_config.get("interface_v1", 0))
            return
        else:
            raise ValueError(kind)
        self.storage.register_mem_pool_host(self.host)

    # -- the controller's storage operations
    def _hit_query(self, keys):
        hit = 0
        for i in range(0, len(keys), STORAGE_BATCH_SIZE):
            batch = keys[i:i + STORAGE_BATCH_SIZE]
            n = self.storage.batch_exists(batch, None)
            hit += n
            if n < len(batch):
                break
        return hit

    def _page_get(self, keys, host_indices):
        ps = self.ps
        if self.zero_copy:
            res = self.storage.batch_get_v1(keys, host_indices, None)
            return next((i for i, ok in enumerate(res) if not ok), len(keys))
        dummies = [self.host.get_dummy_flat_data_page() for _ in keys]
        data = self.storage.batch_get(keys, dummies)
        if data is None:
            return 0
        count = 0
        for i in range(len(keys)):
            if data[i] is None:
                break
            self.host.set_from_flat_data_page(host_indices[i * ps], data[i])
            count += 1
        return count

    def _page_set(self, keys, host_indices):
        if self.zero_copy:
            return all(self.storage.batch_set_v1(keys, host_indices, None))
        data = [self.host.get_data_page(host_indices[i * self.ps]) for i in range(len(keys))]
        return self.storage.batch_set(keys, data)

    def _transfer(self, fn, keys, host_indices):
        done = 0
        for i in range(0, len(keys), STORAGE_BATCH_SIZE):
            batch = keys[i:i + STORAGE_BATCH_SIZE]
            idx = host_indices[i * self.ps:(i + len(batch)) * self.ps]
            n = fn(batch, idx)
            n = len(batch) if n is True else (0 if n is False else n)
            done += n
            if n < len(batch):
                break
        return done

    def serve(self, req_id, prompt, output_tokens):
        t0 = time.perf_counter()
        ps, n = self.ps, len(prompt)
        keys = page_hashes(prompt, ps)
        usable = (n - 1) // ps
        local = self.blocks.hits(keys, usable)
        self.blocks.take(local)
        t_lookup = time.perf_counter()
        hit = 0
        if self.storage is not None and usable > len(local):
            hit = self._hit_query(keys[len(local):usable])
            if hit * ps < self.prefetch_threshold:
                hit = 0          # below the threshold: the prefetch is revoked
        total_blocks = -(-(n + output_tokens) // ps)
        block_table = local + self.blocks.alloc(total_blocks - len(local))
        t_load = time.perf_counter()
        loaded = 0
        if hit:
            host_idx = self.host.alloc(hit * ps)
            if host_idx is not None:
                loaded = self._transfer(self._page_get, keys[len(local):len(local) + hit], host_idx)
                self.host.load_to_device(self.model, host_idx[:loaded * ps],
                                         block_table[len(local):len(local) + loaded])
                self.host.free(host_idx)
                self.metrics.series["sglang:prefetched_tokens_total"] += loaded * ps
        computed_from = (len(local) + loaded) * ps
        t_prefill = time.perf_counter()
        logits = self.model.forward(prompt[computed_from:], computed_from, block_table)
        first = int(torch.argmax(logits))
        t_first = time.perf_counter()
        saved = 0
        full = n // ps
        new = list(range(len(local) + loaded, full))
        if self.storage is not None and new:
            host_idx = self.host.alloc(len(new) * ps)
            if host_idx is not None:
                self.host.backup_from_device(self.model, host_idx, [block_table[i] for i in new])
                saved = self._transfer(self._page_set, keys[new[0]:full], host_idx)
                self.host.free(host_idx)
                self.metrics.series["sglang:backuped_tokens_total"] += saved * ps
        t_saved = time.perf_counter()
        out = self.model.decode(first, n, block_table, output_tokens)
        t_end = time.perf_counter()
        self.blocks.release(block_table, keys[:full])
        cache_stats = None
        if self.storage is not None:
            self.metrics.log_storage_metrics(self.storage.get_stats())
            if hasattr(self.storage, "cache_stats"):
                cache_stats = self.storage.cache_stats()
        return {
            "req_id": req_id, "prompt_tokens": n, "local_hit_tokens": len(local) * ps,
            "loaded_tokens": loaded * ps, "computed_tokens": n - computed_from,
            "saved_blocks": saved, "storage_hit_pages": hit,
            "ttft": t_first - t0, "e2e": t_end - t0,
            "tpot": (t_end - t_saved) / max(1, output_tokens - 1),
            "lookup_s": t_load - t_lookup, "load_s": t_prefill - t_load,
            "prefill_s": t_first - t_prefill, "save_s": t_saved - t_first,
            "output": out, "metrics": self.metrics.snapshot(), "cache_stats": cache_stats,
        }

    def close(self):
        if self.storage is not None:
            close = getattr(self.storage, "close", None)
            if close is not None:
                close()
        self.host.close()


def instance_main(conn, shape, num_blocks, kind, spec, seed, threads):
    """Process entry point: build the instance, then serve requests from `conn`."""
    try:
        torch.set_num_threads(threads)
        inst = Instance(shape, num_blocks, kind, spec, seed)
        conn.send(("ready", None))
        while True:
            msg = conn.recv()
            if msg is None:
                break
            req_id, prompt, output_tokens = msg
            conn.send(("done", inst.serve(req_id, prompt, output_tokens)))
        inst.close()
    except Exception:
        conn.send(("error", traceback.format_exc()))
