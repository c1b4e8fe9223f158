# SPDX-License-Identifier: Apache-2.0
"""BelugaHiCacheStorage: SGLang's HiCache storage tier in a Beluga KV cache.

SGLang builds a dynamic backend as ``backend_class(storage_config, kwargs)``
(StorageBackendFactory._create_dynamic_backend) and then hands it the host
KV pool with ``register_mem_pool_host(mem_pool_host)``; the cache is opened
there, once the page geometry is known.

The cache controller drives the zero-copy interface (``batch_get_v1`` /
``batch_set_v1`` with host indices) when the extra config holds
``"interface_v1": 1``; without it, the generic ``batch_get`` / ``batch_set``
with flat data pages (one more copy each way, made by SGLang).  Both work.

Data path: a set reserves a slot per page (KVCache.reserve: one lookup per
key, cached pages skipped), copies the page from the host pool tensor
straight into the slot, and commits (checksum, publish); a get pins each
page with checksum verification and copies it straight into the host pool.
One copy each way, no staging buffer.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

import beluga
# The vLLM connector's settings parser and cache opener (no vLLM import):
# one way to open a cache for both engines.
from beluga_vllm.config import BelugaSettings, open_cache, parse_bytes, region_name

from beluga_sglang import keys as K
from beluga_sglang.pages import HostPages, fingerprint

logger = logging.getLogger(__name__)

try:  # SGLang's base class when SGLang is importable (the factory checks it).
    from sglang.srt.mem_cache.hicache_storage import HiCacheStorage as _Base
except ImportError:  # pragma: no cover - depends on the environment
    class _Base:
        """Stand-in for SGLang's HiCacheStorage when SGLang is not installed."""

        def register_mem_pool_host(self, mem_pool_host):
            self.mem_pool_host = mem_pool_host

# The class SGLang's StorageMetricsCollector.log_storage_metrics asserts
# (isinstance): sglang.srt.observability.metrics_collector in current SGLang
# (where SGLang's own storage backends import it), sglang.srt.metrics.collector
# before the metrics modules moved.  A look-alike class would fail that
# assertion in the scheduler as soon as --enable-metrics polls get_stats().
try:
    from sglang.srt.observability.metrics_collector import StorageMetrics
except ImportError:
    try:
        from sglang.srt.metrics.collector import StorageMetrics
    except ImportError:
        StorageMetrics = None
if StorageMetrics is None:
    @dataclass
    class StorageMetrics:
        """What SGLang's StorageMetricsCollector.log_storage_metrics reads."""
        prefetch_pgs: List[int] = field(default_factory=list)
        backup_pgs: List[int] = field(default_factory=list)
        prefetch_bandwidth: List[float] = field(default_factory=list)
        backup_bandwidth: List[float] = field(default_factory=list)


# Keys of the extra config SGLang itself reads: the factory's, the
# controller's (interface_v1 selects batch_get_v1/batch_set_v1) and those the
# HiRadixCache and the controller pop before the backend sees the dict (kept
# here in case a version passes them on).
SGLANG_KEYS = ("backend_name", "module_path", "class_name", "interface_v1", "tp_lcm_size",
               "prefetch_threshold", "prefetch_timeout_base", "prefetch_timeout_per_ki_token",
               "prefetch_timeout_max", "hicache_storage_pass_prefix_keys")

@dataclass
class Settings:
    """The extra config's Beluga keys (all optional); $BELUGA_SGLANG_<KEY>
    gives a default for each (e.g. BELUGA_SGLANG_REGION)."""
    region: str = "sglang-kv"        # pool region (MHA with TP: one per rank, "-tp<rank>")
    region_bytes: int = 1 << 30      # size when the region is created
    mode: int = 0o660
    backend: str = "auto"            # libbeluga backend: auto, kernel, user
    pool_name: Optional[str] = None  # user backend pool name ($BELUGA_POOL)
    user_dir: Optional[str] = None   # user backend directory ($BELUGA_USER_DIR)
    hugetlbfs_dir: Optional[str] = None
    host_id: int = 0                 # several hosts on CXL: this machine's index
    max_hosts: int = 1
    may_format: Optional[bool] = None
    lease_ms: int = 0
    ready_wait_ms: int = 0
    model_id: Optional[str] = None   # default: SGLang's model_name
    verify_loads: bool = True        # gets check each page's checksum (a bad page is a miss)

    @classmethod
    def from_extra(cls, extra, environ=os.environ):
        extra = dict(extra or {})
        names = [f.name for f in fields(cls)]
        known = {}
        for n in names:
            env = environ.get(f"BELUGA_SGLANG_{n.upper()}")
            if env is not None:
                known[n] = env
        known.update({k: extra.pop(k) for k in list(extra) if k in names})
        unknown = [k for k in extra if k not in SGLANG_KEYS]
        if unknown:
            raise ValueError(f"unknown hicache-storage-backend-extra-config keys for "
                             f"BelugaHiCacheStorage: {unknown} "
                             f"(known: {names + list(SGLANG_KEYS)})")
        s = cls(**known)
        s.region_bytes = parse_bytes(s.region_bytes)
        s.mode = int(str(s.mode), 8) if isinstance(s.mode, str) else int(s.mode)
        for n in ("host_id", "max_hosts", "lease_ms", "ready_wait_ms"):
            setattr(s, n, int(getattr(s, n)))
        for n in ("verify_loads", "may_format"):
            v = getattr(s, n)
            if isinstance(v, str):
                words = {"true": True, "1": True, "false": False, "0": False, "null": None}
                setattr(s, n, words.get(v.lower(), v))
        if s.may_format is not None and not isinstance(s.may_format, bool):
            raise ValueError(f"BelugaHiCacheStorage: may_format is true, false or null, "
                             f"not {s.may_format!r}")
        if not 0 <= s.host_id < s.max_hosts:
            raise ValueError(f"BelugaHiCacheStorage: host_id must be 0..max_hosts-1, not "
                             f"host_id={s.host_id} with max_hosts={s.max_hosts}")
        return s


class BelugaHiCacheStorage(_Base):
    """SGLang HiCacheStorage over a shared Beluga KV cache (see the module doc)."""

    def __init__(self, storage_config, kwargs=None):
        self.storage_config = storage_config
        extra = dict(getattr(storage_config, "extra_config", None) or {})
        self.settings = Settings.from_extra(extra)
        self.interface_v1 = bool(extra.get("interface_v1", 0))
        if not self.interface_v1:
            logger.warning("BelugaHiCacheStorage: the extra config lacks \"interface_v1\": 1, so "
                           "SGLang's controller uses the generic page path (batch_get/batch_set "
                           "through flat copies of each page) instead of the zero-copy "
                           "batch_get_v1/batch_set_v1")
        c = storage_config
        if getattr(c, "attn_cp_size", 1) > 1:
            raise ValueError("BelugaHiCacheStorage: attention context parallelism "
                             "(attn_cp_size > 1) is not supported")
        if getattr(c, "should_split_heads", False):
            raise ValueError("BelugaHiCacheStorage: heterogeneous TP (tp_lcm_size, page_head "
                             "layout) is not supported")
        # MLA (SGLang's is_mla_model: rank-replicated KV): every rank holds
        # the same pages, so all ranks share one cache; only rank 0 writes
        # (the controller skips backups on the others too) and every rank reads.
        self.rank_shared = bool(c.is_mla_model)
        self.writer = not self.rank_shared or c.tp_rank == 0
        model = self.settings.model_id or getattr(c, "model_name", None)
        if not model:
            raise ValueError("BelugaHiCacheStorage needs a model id for the cache's "
                             "fingerprint: start SGLang with a model name or set "
                             "\"model_id\" in the extra config")
        if getattr(c, "pp_size", 1) > 1:
            model = f"{model}#pp{c.pp_rank}/{c.pp_size}"
        self.model_id = model
        self.pages = None
        self.pool = self.cache = None
        self.max_reservations = 0
        self._lock = threading.Lock()
        self._metrics = StorageMetrics()
        self.stats = {"get_pages": 0, "get_hits": 0, "set_pages": 0, "set_stored": 0,
                      "set_exists": 0, "set_failed": 0}

    # ------------------------------------------------------------ setup

    def register_mem_pool_host(self, mem_pool_host):
        super().register_mem_pool_host(mem_pool_host)
        self.pages = HostPages(mem_pool_host)
        rank, size = self._fingerprint_rank()
        self.fingerprint = fingerprint(self.pages, self.model_id, rank, size)
        # The vLLM connector's opener: one region per rank (or one for MLA),
        # created and formatted by the first process, or a shared region on
        # several hosts.
        self.pool, self.cache = open_cache(self._open_settings(), self.fingerprint)
        self.max_reservations = max(1, int(self.cache.info()["max_batch"]) - 1)

    def _fingerprint_rank(self):
        c = self.storage_config
        return (0, 1) if self.rank_shared else (c.tp_rank, c.tp_size)

    def _open_settings(self):
        """The pool and region settings in the form open_cache() takes."""
        c, s = self.storage_config, self.settings
        region = s.region + (f"-pp{c.pp_rank}" if getattr(c, "pp_size", 1) > 1 else "")
        return BelugaSettings(region=region, region_bytes=s.region_bytes, mode=s.mode,
                              backend=s.backend, pool_name=s.pool_name, user_dir=s.user_dir,
                              hugetlbfs_dir=s.hugetlbfs_dir, host_id=s.host_id,
                              max_hosts=s.max_hosts, may_format=s.may_format,
                              lease_ms=s.lease_ms, ready_wait_ms=s.ready_wait_ms)

    def region_name(self):
        """The pool region of this rank's cache."""
        return region_name(self._open_settings(), *self._fingerprint_rank())

    def _need_cache(self):
        if self.cache is None:
            raise RuntimeError("BelugaHiCacheStorage: register_mem_pool_host() was not called")
        return self.cache

    def close(self):
        """Detach (SGLang's controller calls close() when it detaches storage)."""
        if self.cache is not None:
            self.cache.detach()
            self.cache = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    # --------------------------------------------------- the data path

    def _copy_into_slot(self, slot, page):
        """Write one page into a reserved slot (both in the block's order)."""
        slot.copy_(page)

    def _count(self, **deltas):
        with self._lock:
            for k, v in deltas.items():
                self.stats[k] += v

    def _store(self, keys, pages):
        """Store pages (block-order views) under SGLang keys: per page True
        when it is in the cache afterwards (stored now or already)."""
        cache = self._need_cache()
        out = []
        bb = self.pages.page_bytes
        for at in range(0, len(keys), self.max_reservations):
            ks = K.to_keys(keys[at:at + self.max_reservations])
            # Aborted on any exception: the slots go back unpublished.
            with cache.reserve(ks, bb) as res:
                first = res.results
                for i, r in enumerate(first):
                    if r == 0:
                        self._copy_into_slot(self.pages.block(res.view(i)), pages[at + i])
                done = res.commit()
            del res
            for r, c in zip(first, done):
                stored = r == 0 and c == 0
                exists = not stored and beluga.EXISTS in (r, c)
                self._count(set_stored=int(stored), set_exists=int(exists),
                            set_failed=int(not (stored or exists)))
                out.append(stored or exists)
        self._count(set_pages=len(keys))
        return out

    def _copy_from_pin(self, pin, page):
        import torch.utils.dlpack
        page.copy_(self.pages.block(torch.utils.dlpack.from_dlpack(pin)))

    def _load(self, keys, pages):
        """Copy cached pages into `pages` (block-order views): per page True
        when it was found and its checksum held (a page whose checksum fails
        is dropped from the cache by the pin, and reads as a miss)."""
        cache = self._need_cache()
        pins = cache.pin(K.to_keys(keys), verify=self.settings.verify_loads) if keys else []
        out = []
        try:
            for pin, page in zip(pins, pages):
                if pin is not None:
                    self._copy_from_pin(pin, page)
                out.append(pin is not None)
        finally:
            for p in pins:
                if p is not None:
                    p.unpin()
        self._count(get_pages=len(keys), get_hits=sum(out))
        return out

    def _record(self, kind, pages, seconds):
        if pages <= 0:
            return
        gb = pages * self.pages.page_bytes / 1e9
        with self._lock:
            getattr(self._metrics, f"{kind}_pgs").append(pages)
            getattr(self._metrics, f"{kind}_bandwidth").append(gb / seconds if seconds > 0 else 0.0)

    # ---------------------------------------- v1: host indices, zero-copy

    def batch_get_v1(self, keys: List[str], host_indices, extra_info=None) -> List[bool]:
        t0 = time.perf_counter()
        starts = self.pages.page_starts(host_indices, len(keys))
        out = self._load(list(keys), [self.pages.host_page(i) for i in starts])
        self._record("prefetch", sum(out), time.perf_counter() - t0)
        return out

    def batch_set_v1(self, keys: List[str], host_indices, extra_info=None) -> List[bool]:
        if not self.writer:
            return [True] * len(keys)   # MLA: rank 0 stores the shared pages
        t0 = time.perf_counter()
        starts = self.pages.page_starts(host_indices, len(keys))
        out = self._store(list(keys), [self.pages.host_page(i) for i in starts])
        self._record("backup", sum(out), time.perf_counter() - t0)
        return out

    # ------------------------- the generic interface: flat data pages

    def get(self, key: str, target_location: Optional[Any] = None,
            target_sizes: Optional[Any] = None):
        r = self.batch_get([key], [target_location] if target_location is not None else None)
        return r[0]

    def batch_get(self, keys: List[str], target_locations: Optional[Any] = None,
                  target_sizes: Optional[Any] = None):
        """Per key the flat data page (target_locations[i] when given, filled
        in place), or None when missing."""
        import torch
        keys = list(keys)
        if target_locations is None:
            target_locations = [torch.empty(self.pages.page_bytes // self.pages.item,
                                            dtype=self.pages.dtype) for _ in keys]
        t0 = time.perf_counter()
        ok = self._load(keys, [self.pages.flat_page(t) for t in target_locations])
        self._record("prefetch", sum(ok), time.perf_counter() - t0)
        return [t if hit else None for t, hit in zip(target_locations, ok)]

    def set(self, key: str, value: Optional[Any] = None, target_location: Optional[Any] = None,
            target_sizes: Optional[Any] = None) -> bool:
        return self.batch_set([key], None if value is None else [value],
                              None if target_location is None else [target_location])

    def batch_set(self, keys: List[str], values: Optional[Any] = None,
                  target_locations: Optional[Any] = None,
                  target_sizes: Optional[Any] = None) -> bool:
        """Store flat data pages (get_data_page's tensors): `values`, or
        `target_locations` when only those are tensors."""
        if values is None:
            values = target_locations
        if values is None or len(values) != len(keys):
            raise ValueError("BelugaHiCacheStorage.batch_set needs one flat data page (a "
                             "tensor) per key, in values or target_locations")
        if not self.writer:
            return True
        t0 = time.perf_counter()
        ok = self._store(list(keys), [self.pages.flat_page(v) for v in values])
        self._record("backup", sum(ok), time.perf_counter() - t0)
        return all(ok)

    # ------------------------------------------------ lookups, admin

    def exists(self, key: str) -> bool:
        return self._need_cache().lookup_prefix(K.to_keys([key])) == 1

    def batch_exists(self, keys: List[str], extra_info=None) -> int:
        """How many leading keys are cached (SGLang's prefix semantics)."""
        return self._need_cache().lookup_prefix(K.to_keys(keys)) if keys else 0

    def clear(self) -> None:
        """Remove every block this host may remove from the cache: the cache
        is shared, so this clears it for every instance attached to it."""
        cache = self._need_cache()
        keys = [b["key"] for b in cache.list_blocks()]
        if keys:
            res = cache.remove(keys)
            left = sum(1 for r in res if r not in (0, -errno.ENOENT))
            if left:
                logger.warning("BelugaHiCacheStorage.clear: %d blocks stay (pinned, or "
                               "another host's)", left)

    def get_stats(self):
        """SGLang's StorageMetrics since the previous call (pages and GB/s of
        each prefetch and backup batch), as SGLang's own backends report."""
        with self._lock:
            m, self._metrics = self._metrics, StorageMetrics()
        return m

    def cache_stats(self):
        """The shared cache's counters (every process), beside get_stats()."""
        return self._need_cache().stats()
