# SPDX-License-Identifier: Apache-2.0
"""Connector settings: kv_connector_extra_config plus vLLM's own config.

Everything vLLM-specific is read with getattr() so the same code reads the
real VllmConfig and the tests' stand-ins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import beluga

# vLLM --prefix-caching-hash-algo values whose block hashes are 32 bytes.
KEY_HASHES = ("sha256", "sha256_cbor")
_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(v):
    """1073741824, "1G", "512M" -> bytes."""
    if isinstance(v, int):
        return v
    s = str(v).strip().upper().rstrip("IB").rstrip("B")
    if s and s[-1] in _SUFFIX:
        return int(float(s[:-1]) * _SUFFIX[s[-1]])
    return int(s)


@dataclass
class BelugaSettings:
    """kv_connector_extra_config keys (all optional)."""
    region: str = "vllm-kv"          # pool region holding the cache (per TP rank: "-tp<rank>")
    region_bytes: int = 1 << 30      # created with this size when missing
    mode: int = 0o660
    backend: str = "auto"            # libbeluga backend: auto, kernel, user
    pool_name: str | None = None     # user backend pool name ($BELUGA_POOL)
    user_dir: str | None = None      # user backend directory ($BELUGA_USER_DIR)
    hugetlbfs_dir: str | None = None
    host_id: int = 0                 # this machine's host index (several hosts on CXL)
    max_hosts: int = 1               # host partitions the cache is formatted with
    may_format: bool | None = None   # format a region holding no cache; None: only with one host
    lease_ms: int = 0                # several hosts: liveness lease (0: the library's 30 s)
    ready_wait_ms: int = 0           # wait for the formatter (0: the library's 5 s)
    model_id: str | None = None      # default: model@revision
    data_path: str = "auto"          # beluga (CPU), cuda (GPU kernels), torch (any device), auto
    layerwise: bool = True           # scatter each layer in wait_for_layer_load
    save_decode_blocks: bool = True  # also store blocks filled by generated tokens
    kv_layout: str | None = None     # "KBTHD" (FlashAttention) / "BKTHD" (FlashInfer); default: guessed
    copier_threads: int = 0
    verify_loads: bool = True        # loads check each block's checksum (a failed one is a miss)
    cross_layer_blocks: bool = False # ask vLLM for its cross-layer KV layout (one run per block)

    @classmethod
    def from_extra(cls, extra):
        extra = dict(extra or {})
        known = {k: extra.pop(k) for k in list(extra) if k in cls.__dataclass_fields__}
        unknown = [k for k in extra if not k.startswith("_")]
        if unknown:
            raise ValueError(f"unknown kv_connector_extra_config keys for BelugaConnector: {unknown}")
        s = cls(**known)
        s.region_bytes = parse_bytes(s.region_bytes)
        s.mode = int(str(s.mode), 8) if isinstance(s.mode, str) else int(s.mode)
        if s.kv_layout is not None and (len(s.kv_layout) != 5 or sorted(s.kv_layout) != sorted("BKTHD")):
            raise ValueError(f"kv_layout {s.kv_layout!r} is not a KV layout Beluga knows: name the five "
                             "dimensions of vLLM's per-layer KV tensor with B, K, T, H, D, e.g. "
                             "'KBTHD' (FlashAttention), 'BKTHD' (FlashInfer), 'KBHTD' (CPU attention)")
        if s.data_path not in ("auto", "beluga", "cuda", "torch"):
            raise ValueError(f"BelugaConnector: data_path must be auto, beluga, cuda or torch, "
                             f"not {s.data_path!r}")
        if s.may_format is not None and not isinstance(s.may_format, bool):
            raise ValueError(f"BelugaConnector: may_format is true, false or null, "
                             f"not {s.may_format!r}")
        if not 0 <= s.host_id < s.max_hosts:
            raise ValueError(f"BelugaConnector: host_id must be 0..max_hosts-1 (every host "
                             f"its own), not host_id={s.host_id} with max_hosts={s.max_hosts}")
        return s

    @property
    def several_hosts(self):
        return self.max_hosts > 1

    @property
    def formats(self):
        """Whether this instance may format the region (may_format, resolved)."""
        return (not self.several_hosts) if self.may_format is None else self.may_format


def _kv_dtype(vllm_config):
    cache_dtype = str(getattr(vllm_config.cache_config, "cache_dtype", "auto"))
    if cache_dtype in ("auto", ""):
        return str(vllm_config.model_config.dtype).replace("torch.", "")
    return {"fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2"}.get(
        cache_dtype, cache_dtype)


def hash_settings(vllm_config, environ=os.environ):
    """(hash_fn, seed) of vLLM's block hashes, refusing what cannot be shared.

    vLLM seeds its chain with NONE_HASH = hash(PYTHONHASHSEED), or random
    bytes when the variable is unset: then no two processes ever agree on a
    key and a shared cache could only miss.
    """
    algo = str(getattr(vllm_config.cache_config, "prefix_caching_hash_algo", "sha256"))
    if algo not in KEY_HASHES:
        raise ValueError(f"BelugaConnector needs 32-byte block hashes: --prefix-caching-hash-algo "
                         f"sha256_cbor (or sha256), not {algo!r}")
    seed = environ.get("PYTHONHASHSEED")
    if seed is None:
        raise ValueError("BelugaConnector: set PYTHONHASHSEED (the same value in every vLLM "
                         "instance sharing the cache): without it vLLM seeds its block hashes "
                         "with random bytes and no instance can ever hit another's blocks")
    return algo, seed


def num_kv_layers(vllm_config, kv_cache_config):
    groups = getattr(kv_cache_config, "kv_cache_groups", None)
    if groups:
        if len(groups) != 1:
            raise ValueError("BelugaConnector supports one KV cache group (no hybrid allocator)")
        return len(groups[0].layer_names)
    return vllm_config.model_config.get_num_layers(vllm_config.parallel_config)


def fingerprint(vllm_config, settings, num_layers, tp_rank, environ=os.environ):
    """The Beluga fingerprint of this vLLM instance's KV blocks."""
    mc, pc = vllm_config.model_config, vllm_config.parallel_config
    algo, seed = hash_settings(vllm_config, environ)
    model_id = settings.model_id
    if not model_id:
        rev = getattr(mc, "revision", None)
        model_id = f"{mc.model}@{rev}" if rev else str(mc.model)
    return beluga.Fingerprint(
        model_id=model_id, hash_fn=algo, hash_seed=seed, num_layers=num_layers,
        block_size=vllm_config.cache_config.block_size,
        num_kv_heads=mc.get_num_kv_heads(pc), head_size=mc.get_head_size(),
        dtype=_kv_dtype(vllm_config), tp_rank=tp_rank,
        tp_size=pc.tensor_parallel_size)


def region_name(settings, tp_rank, tp_size):
    return settings.region if tp_size == 1 else f"{settings.region}-tp{tp_rank}"


def open_cache(settings, fp):
    """(pool, cache): the cache in the settings' region.

    One host: the region is created when missing (and formatted by its
    creator).  Several hosts: the region must exist on every host (a shared
    region, defined by the administrator) and is never created here; the one
    host configured with may_format formats it, the others wait for it.
    """
    pool = beluga.Pool(settings.backend, pool_name=settings.pool_name,
                       user_dir=settings.user_dir, hugetlbfs_dir=settings.hugetlbfs_dir)
    name = region_name(settings, fp.tp_rank, fp.tp_size)
    # Region sizes are whole 2 MiB chunks.
    size = -(-settings.region_bytes // beluga.REGION_ALIGN) * beluga.REGION_ALIGN
    create = not settings.several_hosts
    cache = beluga.KVCache.open(pool, name, fp, create=create, region_bytes=size if create else 0,
                                mode=settings.mode, max_hosts=settings.max_hosts,
                                host_id=settings.host_id, may_format=settings.formats,
                                lease_ms=settings.lease_ms, ready_wait_ms=settings.ready_wait_ms)
    return pool, cache


class GpuMemory:
    """This process's own mapping of the cache's region, registered with a
    CUDA device once (Mapping.register_gpu: cudaHostRegister in chunks,
    through the driver with the kernel backend), so that the GPU copier reads
    pinned blocks and writes reserved slots in place.  close() unregisters
    (synchronising the device), unmaps and closes the region; the cache
    attached over the mapping must be detached first."""

    def __init__(self, pool, name, device):
        self.region = pool.open_region(name)
        try:
            self.mapping = self.region.map()
            self.registration = self.mapping.register_gpu(device)
        except BaseException:
            self.region.close()
            raise
        self.device = device

    def close(self):
        if self.registration is not None:
            self.registration.close()
            self.mapping.close()
            self.region.close()
            self.registration = None


def open_cache_for_gpu(settings, fp, device):
    """(pool, cache, GpuMemory): the cache as open_cache() gives it (created,
    formatted or waited for as there), then attached again over this
    process's own mapping of the region, which is registered with CUDA device
    `device`: every pin and reservation address is then inside the
    registered memory."""
    pool, cache = open_cache(settings, fp)
    name = region_name(settings, fp.tp_rank, fp.tp_size)
    cache.detach()
    try:
        mem = GpuMemory(pool, name, device)
    except BaseException:
        pool.close()
        raise
    try:
        cache = beluga.KVCache.attach(mem.mapping, fp, host_id=settings.host_id,
                                      lease_ms=settings.lease_ms,
                                      ready_wait_ms=settings.ready_wait_ms)
    except BaseException:
        mem.close()
        pool.close()
        raise
    return pool, cache, mem
