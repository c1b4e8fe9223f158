# SPDX-License-Identifier: Apache-2.0
"""BelugaConnector: vLLM's KVConnectorBase_V1 over a shared Beluga KV cache.

Enable it in vLLM (see Documentation/vllm.md)::

    PYTHONHASHSEED=0 vllm serve MODEL --prefix-caching-hash-algo sha256_cbor \\
      --kv-transfer-config '{"kv_connector": "BelugaConnector",
                             "kv_connector_module_path": "beluga_vllm.connector",
                             "kv_role": "kv_both",
                             "kv_connector_extra_config": {"region": "kv-llama",
                                                           "region_bytes": "64G"}}'

Keys are vLLM's block hashes unchanged (Request.block_hashes), so a block one
instance computed is found by every instance whose fingerprint matches.

Data path: host KV tensors go through libbeluga's CPU copier; CUDA KV tensors
through its CUDA kernels (beluga.GpuCopier), the worker attaching the cache
over its own mapping of the region, registered with the GPU once, so that
loads read pinned blocks and saves write reserved slots in place (no staging
buffer, no .to(device)).  Where the GPU path cannot run (a module built
without CUDA), CUDA tensors fall back to torch copies, logged once.
Loads: on the GPU path start_load_kv() enqueues them on a side stream, one
copy and CUDA event per layer, and wait_for_layer_load() makes torch's current
stream wait for that layer's event; on the host paths each layer is copied in
wait_for_layer_load().  Saves are gathered layer by layer during the forward
and stored in wait_for_save().

CUDA graphs: with ``layerwise`` on (the default) the forward waits for each
layer's KV in wait_for_layer_load(), which a full CUDA graph would skip on
replay, so requires_piecewise_for_cudagraph() asks vLLM for piecewise graphs;
with ``layerwise`` off the whole load is ordered before the forward in
start_load_kv() (host paths: copied; GPU path: the current stream waits for
the load's event) and any graph mode is safe.

This module imports vLLM; ``import beluga_vllm`` does not.  Written against
vLLM's v1 connector API as read from vllm-project/vllm (base.py at
003df2961dd8830c317a61f9745ccd557da9fa06, whose signatures
tests/python/vllm_manifest.py lists line by line; scheduler.py at
00024d314514900f361ad072af6931e403b7f589); tests/python/test_connector.py
drives it with that call sequence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

try:
    from vllm.distributed.kv_transfer.kv_connector.v1.base import (
        KVConnectorBase_V1,
        KVConnectorMetadata,
        KVConnectorRole,
    )
except ImportError as e:  # pragma: no cover - exercised by test_import_guard
    raise ImportError(
        "beluga_vllm.connector needs vLLM (vllm.distributed.kv_transfer.kv_connector.v1); "
        "install vLLM to use BelugaConnector.  The rest of beluga/beluga_vllm works without it."
    ) from e

try:  # vLLM's connector statistics (newer vLLM); without them, no stats.
    from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorStats
except ImportError:  # pragma: no cover - older vLLM
    KVConnectorStats = None

import beluga.gpu
from beluga_vllm import config as bconfig
from beluga_vllm import blockio as bio
from beluga_vllm.blockio import KVBlockIO, guess_dims, layer_order
from beluga_vllm.scheduler import SchedulerState, StepPlan

log = logging.getLogger("beluga_vllm")

# Counters a worker reports per interval (get_kv_connector_stats), summed over
# workers and intervals by BelugaKVConnectorStats.aggregate().
STAT_KEYS = ("loaded_blocks", "loaded_bytes", "load_misses", "load_ops", "load_seconds",
             "saved_blocks", "saved_bytes", "save_exists", "save_skipped", "save_failed",
             "save_ops", "save_seconds")


if KVConnectorStats is not None:
    @dataclass
    class BelugaKVConnectorStats(KVConnectorStats):
        """Beluga's transfer counters in vLLM's connector statistics.

        ``data`` holds the STAT_KEYS counters of one interval; reduce() is what
        vLLM logs ("KV Transfer metrics: ...").
        """

        def reset(self):
            self.data = {k: 0 for k in STAT_KEYS}

        def aggregate(self, other):
            for k in STAT_KEYS:
                self.data[k] = self.data.get(k, 0) + (other.data or {}).get(k, 0)
            return self

        def is_empty(self):
            return not (self.data.get("load_ops") or self.data.get("save_ops"))

        def reduce(self):
            d = {k: self.data.get(k, 0) for k in STAT_KEYS}

            def avg_ms(seconds, ops):
                return round(1000.0 * seconds / ops, 3) if ops else 0.0
            return {
                "beluga_loaded_blocks": d["loaded_blocks"],
                "beluga_load_misses": d["load_misses"],
                "beluga_loaded_MB": round(d["loaded_bytes"] / 1e6, 3),
                "beluga_avg_load_ms": avg_ms(d["load_seconds"], d["load_ops"]),
                "beluga_saved_blocks": d["saved_blocks"],
                "beluga_save_already_cached": d["save_exists"] + d["save_skipped"],
                "beluga_save_failed": d["save_failed"],
                "beluga_saved_MB": round(d["saved_bytes"] / 1e6, 3),
                "beluga_avg_save_ms": avg_ms(d["save_seconds"], d["save_ops"]),
            }
else:  # pragma: no cover
    BelugaKVConnectorStats = None


@dataclass
class BelugaConnectorMetadata(KVConnectorMetadata):
    """Scheduler -> workers, once per step (pickled by vLLM's executors)."""
    plan: StepPlan = field(default_factory=StepPlan)


def _tp_rank(vllm_config):
    try:
        from vllm.distributed.parallel_state import get_tensor_model_parallel_rank
        return get_tensor_model_parallel_rank()
    except Exception:  # not initialised (tests, single process)
        pc = vllm_config.parallel_config
        return getattr(pc, "rank", 0) % max(1, pc.tensor_parallel_size)


def _attn_backend(vllm_config, layer_names):
    """The attention backend class of `layer_names` (one for all), or None
    when this vLLM does not say (then the layout is inferred from shapes)."""
    try:
        from vllm.config import get_layers_from_vllm_config
        from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase
    except ImportError:
        return None
    layers = get_layers_from_vllm_config(vllm_config, AttentionLayerBase, list(layer_names))
    backends = {layer.get_attn_backend() for layer in layers.values()}
    if not backends:
        return None
    if len(backends) != 1:
        names = sorted(getattr(b, "get_name", lambda b=b: repr(b))() for b in backends)
        raise ValueError(f"BelugaConnector needs one attention backend for all KV layers, "
                         f"found {names}")
    return backends.pop()


class BelugaConnector(KVConnectorBase_V1):
    @classmethod
    def requires_piecewise_for_cudagraph(cls, extra_config):
        # Layer-wise loads run in wait_for_layer_load(), which a full CUDA
        # graph skips on replay: vLLM must then capture piecewise graphs.
        return bool(bconfig.BelugaSettings.from_extra(extra_config).layerwise)

    @classmethod
    def build_kv_connector_stats(cls, data=None):
        if BelugaKVConnectorStats is None:
            return None
        stats = BelugaKVConnectorStats()
        stats.reset()
        if data:
            stats.data.update({k: data.get(k, 0) for k in STAT_KEYS})
        return stats

    def __init__(self, vllm_config, role, kv_cache_config=None):
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        self._settings = bconfig.BelugaSettings.from_extra(
            getattr(self._kv_transfer_config, "kv_connector_extra_config", None))
        self._block_size = vllm_config.cache_config.block_size
        self._kv_cache_config = kv_cache_config
        self._pool = self._cache = None
        self._gpu_mem = None          # config.GpuMemory: the registered mapping (GPU path)
        # Scheduler side
        self._sched = None
        # Worker side
        self._io = None
        self._layer_index = {}
        self._load = None             # LoadBatch of this step
        self._loaded_layers = 0
        self._unreleased = []         # GPU path: LoadBatches whose pins wait for their copies
        self._save = None             # SaveBatch of this step
        self._load_errors = set()
        self._reported = {k: 0 for k in STAT_KEYS}   # counters at the last stats report
        if role == KVConnectorRole.SCHEDULER:
            n = bconfig.num_kv_layers(vllm_config, kv_cache_config)
            self._open(n, tp_rank=0)
            self._sched = SchedulerState(self._cache.lookup_prefix, self._block_size,
                                         self._settings.save_decode_blocks)

    def _open(self, num_layers, tp_rank, gpu_device=None):
        fp = bconfig.fingerprint(self._vllm_config, self._settings, num_layers, tp_rank)
        if gpu_device is None:
            self._pool, self._cache = bconfig.open_cache(self._settings, fp)
        else:
            self._pool, self._cache, self._gpu_mem = bconfig.open_cache_for_gpu(
                self._settings, fp, gpu_device)
        log.info("BelugaConnector: cache %s attached as host %d of %d%s (%s)",
                 bconfig.region_name(self._settings, tp_rank, fp.tp_size),
                 self._settings.host_id, self._settings.max_hosts,
                 ", may format" if self._settings.formats else "", fp.to_dict())

    @property
    def prefer_cross_layer_blocks(self):
        # vLLM then allocates one tensor for all layers where the attention
        # backend allows it; in its NHD form a block is one contiguous run,
        # byte for byte Beluga's pool block.
        return bool(self._settings.cross_layer_blocks)

    # ================================================= scheduler side

    def get_num_new_matched_tokens(self, request, num_computed_tokens):
        if getattr(request, "skip_reading_prefix_cache", False):
            # Prompt logprobs, pooling, ...: vLLM must compute every token.
            # The request's blocks are still saved (after_alloc with 0).
            return 0, False
        ext = self._sched.matched_tokens(request.request_id, request.block_hashes,
                                         request.num_tokens, num_computed_tokens)
        return ext, False

    def update_state_after_alloc(self, request, blocks, num_external_tokens):
        block_ids = blocks.get_block_ids()[0]
        self._sched.after_alloc(request.request_id, request.block_hashes,
                                request.num_prompt_tokens, block_ids, num_external_tokens,
                                request=request)

    def build_connector_meta(self, scheduler_output):
        so = scheduler_output
        scheduled = []
        for r in so.scheduled_new_reqs:
            scheduled.append((r.req_id, r.block_ids[0], True, r.num_computed_tokens,
                              so.num_scheduled_tokens[r.req_id]))
        cached = so.scheduled_cached_reqs
        resumed = getattr(cached, "resumed_req_ids", None)
        for i, req_id in enumerate(cached.req_ids):
            was_resumed = (req_id in resumed) if resumed is not None else bool(
                cached.resumed_from_preemption[i])
            new = cached.new_block_ids[i]
            scheduled.append((req_id, None if new is None else new[0], was_resumed,
                              cached.num_computed_tokens[i], so.num_scheduled_tokens[req_id]))
        return BelugaConnectorMetadata(plan=self._sched.plan(scheduled))

    def request_finished(self, request, block_ids):
        # Every full block was stored during the step that filled it.
        self._sched.finished(request.request_id)
        return False, None

    # ==================================================== worker side

    def register_kv_caches(self, kv_caches):
        names = layer_order(kv_caches)
        layers = [kv_caches[n] for n in names]
        backend = None if self._settings.kv_layout else _attn_backend(self._vllm_config, names)
        self._register([[n] for n in names], layers, self._dims(layers[0].shape, backend))

    def register_cross_layers_kv_cache(self, kv_cache, attn_backend):
        # One tensor, logical [num_layers, <backend's per-layer shape>]; layer i
        # belongs to kv_cache_config.kv_cache_tensors[i].shared_by (vLLM's
        # allocate_uniform_kv_caches), whose names the attention hooks pass.
        layers = [kv_cache[i] for i in range(kv_cache.shape[0])]
        tensors = getattr(self._kv_cache_config, "kv_cache_tensors", None) or []
        names = [list(getattr(t, "shared_by", [])) for t in tensors]
        if len(names) != len(layers):
            names = [[str(i)] for i in range(len(layers))]
        self._register(names, layers, self._dims(layers[0].shape, attn_backend))

    def _dims(self, shape, backend):
        """The layout letters of the per-layer KV tensors (see guess_dims)."""
        mc, pc = self._vllm_config.model_config, self._vllm_config.parallel_config
        return guess_dims(shape, self._settings.kv_layout, num_kv_heads=mc.get_num_kv_heads(pc),
                          head_size=mc.get_head_size(), block_size=self._block_size,
                          backend=None if self._settings.kv_layout else backend)

    def _gpu_device(self, layers):
        """The CUDA device whose KV the GPU data path moves, or None (host
        tensors, data_path beluga/torch, or the GPU path cannot run here)."""
        where, device = bio.kv_device(layers)
        if where != "cuda" or device is None:
            return None
        path = self._settings.data_path
        if path not in ("auto", "cuda"):
            return None
        ok, why = beluga.gpu.available()
        if not ok:
            if path == "cuda":
                raise ValueError(f"BelugaConnector: data_path cuda, but the GPU data path cannot run: {why}")
            log.warning("BelugaConnector: CUDA KV tensors, but the GPU data path cannot run (%s): "
                        "falling back to torch copies", why)
            return None
        return device

    def _register(self, names, layers, dims):
        device = self._gpu_device(layers)
        self._open(len(layers), _tp_rank(self._vllm_config), device)
        reg = self._gpu_mem.registration if self._gpu_mem is not None else None
        self._io = KVBlockIO(self._cache, layers, dims, self._settings.data_path,
                             self._settings.copier_threads, self._settings.verify_loads,
                             registration=reg)
        # Layer name(s) -> position in the pool block.
        self._layer_index = {n: i for i, group in enumerate(names) for n in group}

    def _plan(self):
        meta = self._get_connector_metadata()
        assert isinstance(meta, BelugaConnectorMetadata)
        return meta.plan

    # Loads.  GPU path ('cuda'): start_load_kv() enqueues every copy at once
    # on the worker's side stream (one copy and event per layer with
    # `layerwise`, else one copy and torch's current stream waits for its
    # event before start_load_kv() returns); wait_for_layer_load() makes the
    # current stream wait for that layer's event (no host sync).  The pins
    # are released in get_finished() (or the next start_load_kv(), or
    # shutdown()) once the host has seen the last copy's event complete; a
    # copy that failed makes every block of the batch a load error, reported
    # by get_block_ids_with_load_errors() of the same step.  Host paths:
    # layer ranges are copied in wait_for_layer_load() (or all in
    # start_load_kv()) and the pins released when the last layer landed.

    def start_load_kv(self, forward_context, **kwargs: Any):
        self._release_loads()
        plan = self._plan()
        if not plan.loads or self._io is None:
            return
        t0 = time.perf_counter()
        self._load = self._io.begin_load([(s.block_ids, s.keys) for s in plan.loads])
        self._loaded_layers = 0
        if self._io.data_path == "cuda":
            self._load.issue(self._settings.layerwise)
            if not self._settings.layerwise:
                self._load.wait_all()
                self._loaded_layers = self._io.shape.num_layers
        self._io.stats.load_seconds += time.perf_counter() - t0
        self._io.stats.load_ops += 1
        # Blocks that vanished since the lookup (and the rest of that
        # request's prefix), or whose copy could not be enqueued: vLLM
        # recomputes them.
        self._load_errors.update(self._load.failed_block_ids)
        if not self._settings.layerwise:
            self._finish_load()

    def _finish_load(self):
        load, self._load = self._load, None
        if load is None:
            return
        if self._io.data_path == "cuda":
            # Layers no hook waited for: the current stream waits for the last.
            if self._loaded_layers < self._io.shape.num_layers:
                load.wait_all()
            self._unreleased.append(load)
            return
        t0 = time.perf_counter()
        try:
            load.scatter(self._loaded_layers, self._io.shape.num_layers)
        finally:
            load.release()
            self._io.stats.load_seconds += time.perf_counter() - t0

    def _release_loads(self):
        """GPU path: unpin the finished steps' loads once their copies have
        completed (the host waits for the last event); failures become load
        errors."""
        batches, self._unreleased = self._unreleased, []
        for load in batches:
            load.release()
            self._load_errors.update(load.failed_block_ids)

    def wait_for_layer_load(self, layer_name):
        if self._load is None:
            return
        layer = self._layer_index[layer_name]
        if self._io.data_path == "cuda":
            self._load.wait_layer(layer)
            self._loaded_layers = max(self._loaded_layers, layer + 1)
        elif layer >= self._loaded_layers:
            t0 = time.perf_counter()
            self._load.scatter(self._loaded_layers, layer + 1)
            self._io.stats.load_seconds += time.perf_counter() - t0
            self._loaded_layers = layer + 1
        if self._loaded_layers == self._io.shape.num_layers:
            self._finish_load()

    def save_kv_layer(self, layer_name, kv_layer, attn_metadata, **kwargs: Any):
        if self._io is None:
            return
        plan = self._plan()
        if not plan.saves:
            return
        t0 = time.perf_counter()
        if self._save is None:
            ids = [b for s in plan.saves for b in s.block_ids]
            keys = [k for s in plan.saves for k in s.keys]
            self._save = self._io.begin_save(ids, keys)
        layer = self._layer_index[layer_name]
        self._save.gather(layer, layer + 1)
        self._io.stats.save_seconds += time.perf_counter() - t0

    def wait_for_save(self):
        # Loads not consumed layer by layer finish here too (no attention ran).
        self._finish_load()
        if self._io is None or not self.has_connector_metadata():
            return
        plan = self._plan()
        if self._save is None and plan.saves:
            ids = [b for s in plan.saves for b in s.block_ids]
            keys = [k for s in plan.saves for k in s.keys]
            self._save = self._io.begin_save(ids, keys)
        if self._save is not None:
            t0 = time.perf_counter()
            try:
                self._save.commit()
            except BaseException:
                self._save.abort()   # unpublished; no GPU gather still writes the slots
                raise
            finally:
                self._save = None
                self._io.stats.save_seconds += time.perf_counter() - t0
                self._io.stats.save_ops += 1

    def get_finished(self, finished_req_ids):
        self._release_loads()
        return None, None

    def get_kv_connector_stats(self):
        """This worker's transfers since the previous call (vLLM's connector
        statistics: logged as "KV Transfer metrics", aggregated over workers)."""
        if self._io is None or BelugaKVConnectorStats is None:
            return None
        now = {k: getattr(self._io.stats, k) for k in STAT_KEYS}
        delta = {k: now[k] - self._reported[k] for k in STAT_KEYS}
        self._reported = now
        stats = self.build_kv_connector_stats(delta)
        return None if stats.is_empty() else stats

    def get_block_ids_with_load_errors(self):
        failed, self._load_errors = self._load_errors, set()
        return failed

    def shutdown(self):
        if self._load is not None:
            self._unreleased.append(self._load)
            self._load = None
        self._release_loads()
        if self._save is not None:
            self._save.abort()     # waits for GPU gathers into the slots
            self._save = None
        self._io = None
        if self._cache is not None:
            self._cache.detach()
            self._cache = None
        if self._gpu_mem is not None:   # unregister after the cache let go of the mapping
            self._gpu_mem.close()
            self._gpu_mem = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ========================================================== misc

    @property
    def stats(self):
        """This process's transfer counts (beluga_vllm.blockio.Stats), or None."""
        return self._io.stats if self._io is not None else None

    @property
    def cache(self):
        return self._cache
