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

import hashlib
import time
import traceback

import torch

from engine import BlockManager
from model import PagedModel

STORAGE_BATCH_SIZE = 128


def page_hashes(tokens, page_size, prior=None):
    """SGLang's page keys for the full pages of `tokens` (get_hash_str)."""
    out = []
    for i in range(0, len(tokens) - page_size + 1, page_size):
        h = hashlib.sha256()
        if prior:
            h.update(bytes.fromhex(prior))
        for t in tokens[i:i + page_size]:
            h.update(t.to_bytes(4, "little", signed=False))
        prior = h.hexdigest()
        out.append(prior)
    return out


class HostPool:
    """A HiCache MHA host KV pool (one TP rank), SGLang's page_first or
    page_first_direct layout, with the methods the storage path calls."""

    def __init__(self, shape, pages, layout="page_first", allocator=None):
        if layout not in ("page_first", "page_first_direct"):
            raise ValueError(f"unsupported host layout {layout!r}")
        self.layout = layout
        self.page_size = ps = shape.block_size
        self.layer_num, self.head_num, self.head_dim = shape.layers, shape.kv_heads, shape.head_size
        self.dtype = getattr(torch, shape.dtype)
        self.page_num = pages
        self.size = pages * ps
        if layout == "page_first":
            dims = (2, self.size, self.layer_num, self.head_num, self.head_dim)
        else:
            dims = (2, pages, self.layer_num, ps, self.head_num, self.head_dim)
        self._keep = None
        if allocator == "shm":
            from sglang_stores import alloc_memfd
            self.kv_buffer, fd, mm = alloc_memfd(dims, self.dtype)
            self._keep = (fd, mm)
        else:
            self.kv_buffer = torch.zeros(dims, dtype=self.dtype)
        self.free_pages = list(range(pages))
        el = torch.empty([], dtype=self.dtype).element_size()
        self.size_per_token = 2 * self.layer_num * self.head_num * self.head_dim * el

    def get_size_per_token(self):
        return self.size_per_token

    def get_ksize_per_token(self):
        return self.size_per_token // 2

    def alloc(self, need_size):
        n = need_size // self.page_size
        if n > len(self.free_pages):
            return None
        pages = [self.free_pages.pop() for _ in range(n)]
        return (torch.tensor(pages, dtype=torch.int64)[:, None] * self.page_size +
                torch.arange(self.page_size)).flatten()

    def free(self, indices):
        self.free_pages.extend(int(i) // self.page_size for i in indices[::self.page_size])

    # -- the generic storage path's page copies
    def _page(self, index):
        if self.layout == "page_first":
            return self.kv_buffer[:, index:index + self.page_size]
        return self.kv_buffer[:, index // self.page_size]

    def get_data_page(self, index, flat=True):
        page = self._page(int(index))
        return page.flatten() if flat else page

    def get_dummy_flat_data_page(self):
        return torch.zeros(2 * self.page_size * self.layer_num * self.head_num * self.head_dim,
                           dtype=self.dtype)

    def set_from_flat_data_page(self, index, data_page):
        page = self._page(int(index))
        page.copy_(data_page.reshape(page.shape))

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
            import os
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
        for h in self.HISTOGRAMS:
            for v in getattr(m, h):
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
            # StorageBackendFactory._create_dynamic_backend, then the controller's
            # register_mem_pool_host.
            import importlib
            extra = cfg.extra_config
            cls = getattr(importlib.import_module(extra["module_path"]), extra["class_name"])
            self.storage = cls(cfg, {})
            self.zero_copy = bool(extra.get("interface_v1", 0))
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
        out = [first]
        pos = n
        for _ in range(output_tokens - 1):
            logits = self.model.forward([out[-1]], pos, block_table)
            out.append(int(torch.argmax(logits)))
            pos += 1
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
