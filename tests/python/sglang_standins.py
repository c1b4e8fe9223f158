# SPDX-License-Identifier: Apache-2.0
"""Stand-ins for the parts of SGLang a HiCache storage backend meets.

Written from SGLang's source at the commits sglang_manifest.py names (SGLang
cannot be installed here): HiCacheStorageConfig, HiCacheStorageExtraInfo
and the HiCacheStorage base class (mem_cache/hicache_storage.py, member for
member: test_sglang_manifest.py checks them against the quoted signatures),
StorageMetrics (observability/metrics_collector.py), the factory's dynamic construction
(mem_cache/storage/backend_factory.py), the MHA and MLA host KV pools with
the page_first and page_first_direct layouts (mem_cache/pool_host/), and
the cache controller's page transfers (managers/cache_controller.py).

install() puts them in sys.modules as sglang.* so that beluga_sglang.storage
subclasses this HiCacheStorage, as it subclasses SGLang's own when SGLang is
installed.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import List, Optional

import torch

STORAGE_BATCH_SIZE = 128   # hicache_storage.py: max pages per batched storage IO call


# ------------------------------------------------ mem_cache/hicache_storage.py

@dataclass
class HiCacheStorageConfig:
    tp_rank: int
    tp_size: int
    pp_rank: int
    pp_size: int
    attn_cp_rank: int
    attn_cp_size: int
    is_mla_model: bool
    enable_storage_metrics: bool
    is_page_first_layout: bool
    model_name: Optional[str]
    dp_rank: int = 0
    dp_size: int = 1
    tp_lcm_size: Optional[int] = None
    should_split_heads: bool = False
    extra_config: Optional[dict] = None


@dataclass
class HiCacheStorageExtraInfo:
    prefix_keys: Optional[List[str]] = None
    extra_info: Optional[dict] = None


class HiCacheStorage(ABC):
    """SGLang's HiCacheStorage: the same members, kinds, parameters and
    default behaviour (the v2 and v1 batch calls raise NotImplementedError)."""

    def register_mem_pool_host(self, mem_pool_host):
        self.mem_pool_host = mem_pool_host

    def register_mem_host_pool_v2(self, host_pool, host_pool_name):
        if not hasattr(self, "registered_pools"):
            self.registered_pools = {}
        self.registered_pools[host_pool_name] = host_pool

    def batch_exists_v2(self, keys, pool_transfers=None, extra_info=None):
        raise NotImplementedError()

    def batch_get_v2(self, transfers, extra_info=None):
        raise NotImplementedError()

    def batch_set_v2(self, transfers, extra_info=None):
        raise NotImplementedError()

    def batch_get_v1(self, keys, host_indices, extra_info=None):
        raise NotImplementedError()

    def batch_set_v1(self, keys, host_indices, extra_info=None):
        raise NotImplementedError()

    @abstractmethod
    def get(self, key, target_location=None, target_sizes=None):
        pass

    @abstractmethod
    def batch_get(self, keys, target_locations=None, target_sizes=None):
        pass

    @abstractmethod
    def set(self, key, value=None, target_location=None, target_sizes=None):
        pass

    @abstractmethod
    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None):
        pass

    @abstractmethod
    def exists(self, key):
        pass

    def batch_exists(self, keys, extra_info=None):
        for i in range(len(keys)):
            if not self.exists(keys[i]):
                return i
        return len(keys)

    def clear(self):
        pass

    def get_stats(self):
        return None


# ------------------------------------- observability/metrics_collector.py

@dataclass
class StorageMetrics:
    prefetch_pgs: List[int] = field(default_factory=list)
    backup_pgs: List[int] = field(default_factory=list)
    prefetch_bandwidth: List[float] = field(default_factory=list)
    backup_bandwidth: List[float] = field(default_factory=list)


def log_storage_metrics(storage_metrics):
    """StorageMetricsCollector.log_storage_metrics without Prometheus: what
    it observes (histogram name -> values)."""
    if storage_metrics is None:
        return {}
    assert isinstance(storage_metrics, StorageMetrics)
    return {"prefetch_pgs": list(storage_metrics.prefetch_pgs),
            "backup_pgs": list(storage_metrics.backup_pgs),
            "prefetch_bandwidth": list(storage_metrics.prefetch_bandwidth),
            "backup_bandwidth": list(storage_metrics.backup_bandwidth)}


# ------------------------------------------- storage/backend_factory.py

def create_dynamic_backend(storage_config, mem_pool_host, **kwargs):
    """StorageBackendFactory.create_backend("dynamic", ...) followed by the
    controller's register_mem_pool_host, as attach_storage_backend does."""
    backend_config = storage_config.extra_config
    for f in ("backend_name", "module_path", "class_name"):
        if f not in backend_config:
            raise ValueError(f"Missing required field '{f}' in backend config for "
                             "'dynamic' backend")
    module = importlib.import_module(backend_config["module_path"])
    backend_class = getattr(module, backend_config["class_name"])
    if not issubclass(backend_class, HiCacheStorage):
        raise TypeError(f"Backend class {backend_config['class_name']} must inherit "
                        "from HiCacheStorage")
    backend = backend_class(storage_config, kwargs)
    backend.register_mem_pool_host(mem_pool_host)
    return backend


# ------------------------------------------------------ mem_cache/pool_host/

class _Float8:
    """A float8 dtype for a torch that has none (torch < 2.1): only its name
    matters here, since SGLang stores FP8 KV caches as uint8."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return f"torch.{self.name}"


FLOAT8_E4M3 = getattr(torch, "float8_e4m3fn", None) or _Float8("float8_e4m3fn")
FLOAT8_E5M2 = getattr(torch, "float8_e5m2", None) or _Float8("float8_e5m2")


class DevicePool:
    """The device KV pool's dtype pair (memory_pool.py KVCache.__init__):
    an FP8 cache is stored as uint8, because index_put has no float8 kernel."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.store_dtype = (torch.uint8 if str(dtype).replace("torch.", "")
                            in ("float8_e4m3fn", "float8_e5m2") else dtype)


def _itemsize(dtype):
    # torch.dtype.itemsize (SGLang's spelling) is missing from older torch.
    return torch.empty((), dtype=dtype).element_size()


class HostKVCache:
    """The host pool's page bookkeeping (pool_host/base.py): alloc/free of
    page-aligned token indices, under a lock."""

    def _init_common(self, page_size, size, layout, dtype):
        self.page_size = page_size
        self.layout = layout
        # HostKVCache.__init__: the host pool stores what the device pool stores.
        self.device_pool = DevicePool(dtype)
        self.dtype = self.device_pool.store_dtype
        self.device = "cpu"
        self.page_num = size // page_size + 1
        self.size = self.page_num * page_size
        self.size_per_token = self.get_size_per_token()
        self.kv_buffer = self.init_kv_buffer()
        self.lock = threading.RLock()
        self.clear()

    def clear(self):
        with self.lock:
            self.free_slots = torch.arange(self.size, dtype=torch.int64)

    def available_size(self):
        return len(self.free_slots)

    def alloc(self, need_size):
        assert need_size % self.page_size == 0
        with self.lock:
            if need_size > self.available_size():
                return None
            out = self.free_slots[:need_size]
            self.free_slots = self.free_slots[need_size:]
            return out

    def free(self, indices):
        with self.lock:
            self.free_slots = torch.cat([self.free_slots, indices.cpu()])
            return len(indices)


class MHATokenToKVPoolHost(HostKVCache):
    """pool_host/mha.py: kv_buffer [2, size, layers, heads, head_dim]
    (page_first) or [2, page_num, layers, page_size, heads, head_dim]
    (page_first_direct)."""

    def __init__(self, layer_num, head_num, head_dim, page_size, size, layout,
                 dtype=torch.bfloat16):
        self.layer_num, self.head_num, self.head_dim = layer_num, head_num, head_dim
        self._init_common(page_size, size, layout, dtype)

    def get_size_per_token(self):
        return self.head_dim * self.head_num * self.layer_num * _itemsize(self.dtype) * 2

    def get_ksize_per_token(self):
        return self.get_size_per_token() // 2

    def init_kv_buffer(self):
        if self.layout == "page_first":
            dims = (2, self.size, self.layer_num, self.head_num, self.head_dim)
        elif self.layout == "page_first_direct":
            dims = (2, self.page_num, self.layer_num, self.page_size, self.head_num, self.head_dim)
        else:
            raise ValueError(f"Unsupported layout: {self.layout}")
        return torch.zeros(dims, dtype=self.dtype)

    @property
    def k_buffer(self):
        return self.kv_buffer[0]

    @property
    def v_buffer(self):
        return self.kv_buffer[1]

    def get_data_page(self, index, flat=True):
        if self.layout == "page_first":
            data_page = self.kv_buffer[:, index:index + self.page_size, :, :, :]
        else:
            real_index = index // self.page_size
            data_page = self.kv_buffer[:, real_index:real_index + 1, :, :, :, :]
        return data_page.flatten() if flat else data_page

    def get_dummy_flat_data_page(self):
        return torch.zeros((2, self.layer_num, self.page_size, self.head_num, self.head_dim),
                           dtype=self.dtype).flatten()

    def set_from_flat_data_page(self, index, data_page):
        if self.layout == "page_first":
            self.kv_buffer[:, index:index + self.page_size] = data_page.reshape(
                2, self.page_size, self.layer_num, self.head_num, self.head_dim)
        else:
            real_index = index // self.page_size
            self.kv_buffer[:, real_index:real_index + 1] = data_page.reshape(
                2, 1, self.layer_num, self.page_size, self.head_num, self.head_dim)

    def get_page_buffer_meta(self, indices):
        """Per page the K and V pointers and their byte sizes (zero-copy backends)."""
        assert len(indices) % self.page_size == 0
        isz = _itemsize(self.dtype)
        base = self.kv_buffer.data_ptr()
        v_offset = self.layer_num * self.size * self.head_num * self.head_dim * isz
        ptrs = []
        for i in indices.tolist()[::self.page_size]:
            k = base + i * self.layer_num * self.head_num * self.head_dim * isz
            ptrs += [k, k + v_offset]
        size = self.layer_num * isz * self.page_size * self.head_num * self.head_dim
        return ptrs, [size] * len(ptrs)


class MLATokenToKVPoolHost(HostKVCache):
    """pool_host/mla.py: kv_buffer [size, layers, 1, kv_cache_dim]
    (page_first) or [page_num, layers, page_size, 1, kv_cache_dim]
    (page_first_direct); kv_cache_dim = kv_lora_rank + qk_rope_head_dim."""

    def __init__(self, layer_num, kv_lora_rank, qk_rope_head_dim, page_size, size, layout,
                 dtype=torch.bfloat16):
        self.layer_num = layer_num
        self.kv_lora_rank, self.qk_rope_head_dim = kv_lora_rank, qk_rope_head_dim
        self.kv_cache_dim = kv_lora_rank + qk_rope_head_dim
        self._init_common(page_size, size, layout, dtype)

    def get_size_per_token(self):
        return self.kv_cache_dim * _itemsize(self.dtype) * self.layer_num

    def get_ksize_per_token(self):
        return self.get_size_per_token()

    def init_kv_buffer(self):
        if self.layout == "page_first":
            dims = (self.size, self.layer_num, 1, self.kv_cache_dim)
        elif self.layout == "page_first_direct":
            dims = (self.page_num, self.layer_num, self.page_size, 1, self.kv_cache_dim)
        else:
            raise ValueError(f"Unsupported layout: {self.layout}")
        return torch.zeros(dims, dtype=self.dtype)

    def get_data_page(self, index, flat=True):
        if self.layout == "page_first":
            data_page = self.kv_buffer[index:index + self.page_size]
        else:
            real_index = index // self.page_size
            data_page = self.kv_buffer[real_index:real_index + 1]
        return data_page.flatten() if flat else data_page

    def get_dummy_flat_data_page(self):
        return torch.zeros((self.layer_num, self.page_size, 1, self.kv_cache_dim),
                           dtype=self.dtype).flatten()

    def set_from_flat_data_page(self, index, data_page):
        if self.layout == "page_first":
            self.kv_buffer[index:index + self.page_size] = data_page.reshape(
                self.page_size, self.layer_num, 1, self.kv_cache_dim)
        else:
            real_index = index // self.page_size
            self.kv_buffer[real_index:real_index + 1] = data_page.reshape(
                1, self.layer_num, self.page_size, 1, self.kv_cache_dim)

    def get_page_buffer_meta(self, indices):
        assert len(indices) % self.page_size == 0
        isz = _itemsize(self.dtype)
        base = self.kv_buffer.data_ptr()
        ptrs = [base + i * self.layer_num * self.kv_cache_dim * isz
                for i in indices.tolist()[::self.page_size]]
        size = self.layer_num * isz * self.page_size * self.kv_cache_dim
        return ptrs, [size] * len(ptrs)


class HostPoolGroup:
    """pool_host's HostPoolGroup, as far as a backend can see it: an anchor
    pool and side pools (hybrid models), with the anchor's layout and page
    size and no kv_buffer of its own."""

    def __init__(self, anchor, *side):
        self.entries = [types.SimpleNamespace(name="kv", host_pool=anchor,
                                              is_primary_index_anchor=True)]
        self.entries += [types.SimpleNamespace(name=f"side{i}", host_pool=p,
                                               is_primary_index_anchor=False)
                         for i, p in enumerate(side)]
        self.anchor_entry = self.entries[0]
        self.layout = anchor.layout
        self.page_size = anchor.page_size
        self.device = anchor.device
        self.size = anchor.size


# ------------------------------------------- managers/cache_controller.py

class MiniController:
    """The storage half of HiCacheController: what it calls on the backend,
    in its order, for one rank.  interface_v1 in the extra config selects
    batch_get_v1/batch_set_v1 (_page_get_zero_copy/_page_set_zero_copy),
    otherwise the generic batch_get/batch_set with flat data pages."""

    def __init__(self, backend, host, storage_config):
        self.backend, self.host, self.page_size = backend, host, host.page_size
        extra = storage_config.extra_config or {}
        self.zero_copy = bool(extra.get("interface_v1", 0))
        # for MLA models, only one rank needs to back up the KV cache
        self.backup_skip = storage_config.is_mla_model and storage_config.tp_rank != 0

    def query_hits(self, hashes):
        """_storage_hit_query: batch_exists per batch, stop at the first short one."""
        hit = []
        for start in range(0, len(hashes), STORAGE_BATCH_SIZE):
            batch = hashes[start:start + STORAGE_BATCH_SIZE]
            n = self.backend.batch_exists(batch, HiCacheStorageExtraInfo(prefix_keys=None))
            hit += batch[:n]
            if n < len(batch):
                break
        return hit

    def prefetch(self, hashes, host_indices):
        """_page_transfer: pages loaded into host_indices, counting leading hits."""
        done = 0
        for i in range(0, len(hashes), STORAGE_BATCH_SIZE):
            batch = hashes[i:i + STORAGE_BATCH_SIZE]
            idx = host_indices[i * self.page_size:(i + len(batch)) * self.page_size]
            extra = HiCacheStorageExtraInfo(prefix_keys=None)
            if self.zero_copy:
                res = self.backend.batch_get_v1(batch, idx, extra)
                n = next((j for j, ok in enumerate(res) if not ok), len(batch))
            else:
                dst = [self.host.get_dummy_flat_data_page() for _ in batch]
                data = self.backend.batch_get(batch, dst)
                n = 0
                for j in range(len(batch)):
                    if data[j] is None:
                        break
                    self.host.set_from_flat_data_page(idx[j * self.page_size], data[j])
                    n += 1
            done += n
            if n != len(batch):
                break
        return done

    def backup(self, hashes, host_indices):
        """_page_backup: pages written from host_indices; completed pages."""
        if self.backup_skip:
            return 0
        done = 0
        for i in range(0, len(hashes), STORAGE_BATCH_SIZE):
            batch = hashes[i:i + STORAGE_BATCH_SIZE]
            idx = host_indices[i * self.page_size:(i + len(batch)) * self.page_size]
            extra = HiCacheStorageExtraInfo(prefix_keys=None)
            if self.zero_copy:
                ok = all(self.backend.batch_set_v1(batch, idx, extra))
            else:
                data = [self.host.get_data_page(idx[j * self.page_size]) for j in range(len(batch))]
                ok = self.backend.batch_set(batch, data)
            if not ok:
                break
            done += len(batch)
        return done


MODULES = {
    "sglang": {},
    "sglang.srt": {},
    "sglang.srt.mem_cache": {},
    "sglang.srt.mem_cache.hicache_storage": {
        "HiCacheStorage": HiCacheStorage, "HiCacheStorageConfig": HiCacheStorageConfig,
        "HiCacheStorageExtraInfo": HiCacheStorageExtraInfo,
        "STORAGE_BATCH_SIZE": STORAGE_BATCH_SIZE},
    # Where SGLang keeps StorageMetrics now; the old sglang.srt.metrics.collector
    # is deliberately absent, so a backend importing only that path falls
    # back to a look-alike class and fails log_storage_metrics' isinstance check.
    "sglang.srt.observability": {},
    "sglang.srt.observability.metrics_collector": {"StorageMetrics": StorageMetrics},
}


def install():
    """Put the stand-ins in sys.modules as sglang.*; returns an uninstall function."""
    saved = {name: sys.modules.get(name) for name in MODULES}
    for name, attrs in MODULES.items():
        mod = types.ModuleType(name)
        mod.__path__ = []
        for k, v in attrs.items():
            setattr(mod, k, v)
        sys.modules[name] = mod
    sys.modules.pop("beluga_sglang.storage", None)

    def uninstall():
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
        sys.modules.pop("beluga_sglang.storage", None)
    return uninstall


def storage_config(extra, tp_rank=0, tp_size=1, is_mla=False, layout="page_first",
                   model_name="Qwen/Qwen3-0.6B", **kw):
    """The HiCacheStorageConfig attach_storage_backend builds for one rank."""
    extra = dict(extra)
    extra.setdefault("backend_name", "beluga")
    extra.setdefault("module_path", "beluga_sglang.storage")
    extra.setdefault("class_name", "BelugaHiCacheStorage")
    return HiCacheStorageConfig(
        tp_rank=tp_rank, tp_size=tp_size,
        pp_rank=kw.pop("pp_rank", 0), pp_size=kw.pop("pp_size", 1),
        attn_cp_rank=0, attn_cp_size=kw.pop("attn_cp_size", 1), is_mla_model=is_mla,
        enable_storage_metrics=True, is_page_first_layout=layout == "page_first",
        model_name=model_name, extra_config=extra, **kw)


def page_view(host, host_index):
    """One page of the host pool as [K/V, layer, token, head, dim] (MHA) or
    [layer, token, 1, dim] (MLA), whatever the layout: what the model reads."""
    i, T = int(host_index), host.page_size
    if isinstance(host, MLATokenToKVPoolHost):
        if host.layout == "page_first":
            return host.kv_buffer[i:i + T].permute(1, 0, 2, 3)
        return host.kv_buffer[i // T]
    if host.layout == "page_first":
        return host.kv_buffer[:, i:i + T].permute(0, 2, 1, 3, 4)
    return host.kv_buffer[:, i // T]


def _pattern(host, key, salt):
    view = page_view(host, 0)
    g = torch.Generator().manual_seed(int(key[:15], 16) ^ salt)
    return torch.randn(view.shape, generator=g).to(host.dtype)


def fill_pages(host, host_indices, hashes, salt=0):
    """Write into each page values that depend on its key (and `salt`) only:
    what a causal model computes for that prefix."""
    for j, h in enumerate(hashes):
        page_view(host, host_indices[j * host.page_size]).copy_(_pattern(host, h, salt))


def page_matches(host, host_index, key, salt=0):
    return torch.equal(page_view(host, host_index), _pattern(host, key, salt))
