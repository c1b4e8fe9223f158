# SPDX-License-Identifier: Apache-2.0
"""HiCache storage backends for the SGLang-like instances of sglang_e2e.py.

Two are SGLang's own same-host backends, re-implemented here from SGLang's
source at commit 001067fffe33427bee0ed2f007fb7551a1d76b44 (not copied; the
data path and the index are reproduced, Documentation/performance.md says
what is and is not):

- ShmStorage: SGLang's `HiCacheShm` (storage/shm/hicache_shm.py).  At that
  commit it stores nothing: exists() is False, batch_get() returns None for
  every key, batch_set() returns True.  What `--hicache-storage-backend shm`
  changes is the host KV pool's allocation: memfd_create + ftruncate + a
  MAP_SHARED, pre-faulted mapping (storage/mmap/mmap_allocator.py alloc_shm,
  the ShmHostTensorAllocator), so that another process could map the pool.
  Two SGLang instances therefore share no KV through it.
- FileStorage: SGLang's `HiCacheFile` (mem_cache/hicache_storage.py), one
  file per page under a directory (tmpfs here, /dev/shm): the key is the
  page hash plus the suffix `_<model>_<tp_rank>_<tp_size>` (no rank part for
  MLA); exists() is os.path.exists; batch_exists() is the base class's loop
  over exists() (HiCacheFile does not override it); get() readinto()s the
  file into the flat staging page the controller passes, set() skips keys
  that exist, writes `<file>.tmp.<pid>.<tid>.<uuid>` with tofile() and
  os.replace()s it into place.  The controller's generic page path around
  it adds SGLang's copies: get_data_page() (a flattening copy) before a set,
  set_from_flat_data_page() after a get.

The third, Beluga's backend, is beluga_sglang.BelugaHiCacheStorage itself,
built as SGLang's factory builds a "dynamic" backend.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
import threading
import uuid

import torch


# ------------------------------------------------- host pool allocation

def alloc_memfd(dims, dtype):
    """A host tensor in a memfd, as SGLang's shm allocator makes it: memfd,
    ftruncate to whole pages, MAP_SHARED, every page faulted in for writing.
    Returns (tensor, fd, mapping); the caller closes fd and mapping."""
    n = 1
    for d in dims:
        n *= d
    nbytes = n * torch.empty([], dtype=dtype).element_size()
    size = -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE
    fd = os.memfd_create(f"beluga_bench_host_pool_{uuid.uuid4().hex}", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            mm.madvise(getattr(mmap, "MADV_POPULATE_WRITE", 23))
        except (OSError, ValueError):
            # Kernels before 5.14: touch every page instead (MAP_POPULATE's effect).
            for off in range(0, size, mmap.PAGESIZE):
                mm[off] = 0
    except BaseException:
        os.close(fd)
        raise
    return torch.frombuffer(mm, dtype=dtype, count=n).reshape(dims), fd, mm


# ------------------------------------------------------- storage config

def storage_config(spec):
    """The HiCacheStorageConfig SGLang's controller generates for one rank
    (_generate_storage_config): TP rank 0 of 1, no PP/CP, MHA, the host
    layout, the model name and the backend's extra config."""
    from sglang_instance import S
    return S.HiCacheStorageConfig(
        tp_rank=0, tp_size=1, pp_rank=0, pp_size=1, attn_cp_rank=0, attn_cp_size=1,
        is_mla_model=False, enable_storage_metrics=True,
        is_page_first_layout=spec.get("layout", "page_first") == "page_first",
        model_name=spec.get("model_name"), extra_config=dict(spec.get("extra_config") or {}))


# ------------------------------------------------------------ backends

class ShmStorage:
    """SGLang's HiCacheShm at the named commit: no storage at all."""

    name = "shm"

    def __init__(self, storage_config, mem_pool_host=None):
        pass

    def register_mem_pool_host(self, mem_pool_host):
        self.mem_pool_host = mem_pool_host

    def exists(self, key):
        return False

    def batch_exists(self, keys, extra_info=None):
        for i, k in enumerate(keys):
            if not self.exists(k):
                return i
        return len(keys)

    def get(self, key, target_location=None, target_sizes=None):
        return None

    def batch_get(self, keys, target_locations=None, target_sizes=None):
        return [None] * len(keys)

    def set(self, key, value=None, target_location=None, target_sizes=None):
        return True

    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None):
        return True

    def clear(self):
        return True

    def get_stats(self):
        return None

    def close(self):
        pass


class FileStorage:
    """SGLang's HiCacheFile at the named commit (metadata cache off, its
    default; no LRU evictor: the directory is sized for the workload)."""

    name = "file"

    def __init__(self, storage_config, file_path):
        self.file_path = file_path
        model = "-".join(storage_config.model_name.split("/")) if storage_config.model_name else ""
        self.config_suffix = f"_{model}"
        if not storage_config.is_mla_model:
            self.config_suffix += f"_{storage_config.tp_rank}_{storage_config.tp_size}"
        if storage_config.pp_size > 1:
            self.config_suffix += f"_{storage_config.pp_size}_{storage_config.pp_rank}"
        os.makedirs(self.file_path, exist_ok=True)

    def register_mem_pool_host(self, mem_pool_host):
        self.mem_pool_host = mem_pool_host

    def _path(self, key):
        return os.path.join(self.file_path, f"{key}{self.config_suffix}.bin")

    def exists(self, key):
        return os.path.exists(self._path(key))

    def batch_exists(self, keys, extra_info=None):
        # HiCacheStorage.batch_exists: HiCacheFile keeps the base class's loop.
        for i, k in enumerate(keys):
            if not self.exists(k):
                return i
        return len(keys)

    def get(self, key, target_location, target_sizes=None):
        try:
            expected = target_location.numel() * target_location.element_size()
            with open(self._path(key), "rb", buffering=0) as f:
                buf = memoryview(target_location.view(torch.uint8).contiguous().numpy())
                if f.readinto(buf) != expected:
                    raise OSError(f"short read for {key}")
            return target_location
        except FileNotFoundError:
            return None

    def batch_get(self, keys, target_locations, target_sizes=None):
        return [self.get(k, t) for k, t in zip(keys, target_locations)]

    def set(self, key, value=None, target_location=None, target_sizes=None):
        path = self._path(key)
        if self.exists(key):
            return True
        tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex}"
        try:
            value.contiguous().view(dtype=torch.uint8).numpy().tofile(tmp)
            os.replace(tmp, path)
            return True
        except OSError:
            try:
                os.remove(tmp)
            except OSError:
                pass
            return False

    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None):
        for k, v in zip(keys, values):
            if not self.set(k, v):
                return False
        return True

    def clear(self):
        for name in os.listdir(self.file_path):
            os.remove(os.path.join(self.file_path, name))
        return True

    def get_stats(self):
        return None

    def close(self):
        pass


# --------------------------------------------------------- set-up (parent)

class FileSetup:
    """A private directory on tmpfs for FileStorage, emptied for a first run."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="beluga-e2e-hicache-file-", dir="/dev/shm")
        self.spec = {"file_path": self.dir}

    def reset(self):
        for name in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, name))

    def stats(self):
        names = os.listdir(self.dir)
        return {"files": len(names),
                "bytes": sum(os.path.getsize(os.path.join(self.dir, n)) for n in names)}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class NoSetup:
    """Nothing shared between the instances (recompute, shm)."""

    def __init__(self):
        self.spec = {}

    def reset(self):
        pass

    def stats(self):
        return None

    def close(self):
        pass


class BelugaSetup:
    """A fresh user-backend pool directory for Beluga's HiCache backend: the
    extra config SGLang would get in --hicache-storage-backend-extra-config
    (the factory's three keys, interface_v1 for the zero-copy page path, the
    pool and region).  The instances create or attach the region; a first
    run starts from a destroyed (empty) one."""

    REGION = "sglang-e2e-kv"

    def __init__(self, shape, region_bytes):
        import beluga
        self.dir = tempfile.mkdtemp(prefix="beluga-e2e-sglang-", dir="/dev/shm")
        self.pool = beluga.Pool("user", user_dir=self.dir, hugetlbfs_dir="none")
        self.spec = {"extra_config": {
            "backend_name": "beluga", "module_path": "beluga_sglang.storage",
            "class_name": "BelugaHiCacheStorage", "interface_v1": 1,
            "backend": "user", "user_dir": self.dir, "hugetlbfs_dir": "none",
            "region": self.REGION, "region_bytes": region_bytes}}

    def _destroy(self):
        import beluga
        try:
            self.pool.destroy_region(self.REGION)
        except beluga.BelugaError:
            pass

    def reset(self):
        self._destroy()

    def stats(self):
        return None     # the instances report the shared cache's counters

    def close(self):
        self._destroy()
        self.pool.close()
        shutil.rmtree(self.dir, ignore_errors=True)
