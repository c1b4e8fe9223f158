# SPDX-License-Identifier: Apache-2.0
"""External KV stores the benchmark engines use: none, Beluga, Redis.

Both real stores move whole engine blocks (all layers, the pool block layout
of beluga/kv_layout.h) keyed by vLLM-compatible block hashes, and gather/
scatter with the same CPU copier, so the comparison is the store itself:

- Beluga: beluga_vllm.blockio.KVBlockIO, the code the vLLM connector runs
  (lookup_prefix in shared memory, loads scattered straight out of pinned
  blocks, puts with non-temporal copies);
- Redis: a real redis-server on 127.0.0.1 (as LMCache users run it), EXISTS
  to find the cached prefix, MGET to load, pipelined SET to store.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import numpy as np

import beluga
from beluga_vllm.blockio import FLASH_ATTN_DIMS, KVBlockIO


class NoStore:
    name = "none"

    def lookup(self, keys):
        return 0

    def load(self, block_ids, keys):
        return 0

    def save(self, block_ids, keys):
        return 0

    def close(self):
        pass


class BelugaStore:
    name = "beluga"

    def __init__(self, spec, fingerprint, layers):
        self.pool = beluga.Pool(spec["backend"], user_dir=spec.get("user_dir"),
                                hugetlbfs_dir=spec.get("hugetlbfs_dir"))
        self.cache = beluga.KVCache.open(self.pool, spec["region"], fingerprint, create=False)
        self.io = KVBlockIO(self.cache, layers, FLASH_ATTN_DIMS, "beluga")

    def lookup(self, keys):
        return self.io.lookup(keys)

    def load(self, block_ids, keys):
        return self.io.load(block_ids, keys)

    def save(self, block_ids, keys):
        """Blocks newly stored (the already-cached prefix is skipped)."""
        return sum(1 for r in self.io.save(block_ids, keys) if r == 0)

    def close(self):
        self.cache.detach()
        self.pool.close()


class RedisStore:
    name = "redis"

    def __init__(self, spec, fingerprint, layers):
        import redis
        self.r = redis.Redis(host="127.0.0.1", port=spec["port"], socket_timeout=60)
        self.prefix = spec.get("prefix", "beluga-bench:").encode()
        self.shape = beluga.shape_of(fingerprint)
        self.paged = beluga.paged_from_tensors(self.shape, layers, FLASH_ATTN_DIMS)
        self.copier = beluga.CpuCopier()

    def _k(self, keys):
        return [self.prefix + k for k in keys]

    def lookup(self, keys):
        if not keys:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for k in self._k(keys):
            pipe.exists(k)
        hits = pipe.execute()
        return next((i for i, h in enumerate(hits) if not h), len(hits))

    def load(self, block_ids, keys):
        if not keys:
            return 0
        vals = self.r.mget(self._k(keys))
        n = next((i for i, v in enumerate(vals) if v is None), len(vals))
        if n:
            self.copier.scatter(self.paged, block_ids[:n], vals[:n])
        return n

    def save(self, block_ids, keys):
        skip = self.lookup(keys)
        block_ids, keys = block_ids[skip:], keys[skip:]
        if not keys:
            return 0
        staging = np.empty((len(keys), self.shape.block_bytes), np.uint8)
        self.copier.gather(self.paged, block_ids, staging)
        pipe = self.r.pipeline(transaction=False)
        for k, row in zip(self._k(keys), staging):
            pipe.set(k, memoryview(row))
        return sum(1 for ok in pipe.execute() if ok)

    def close(self):
        self.r.close()


# ------------------------------------------------------------- set-up

class BelugaSetup:
    """A fresh user-backend pool directory and cache region for one benchmark."""

    def __init__(self, fingerprint, region_bytes, backend="user"):
        self.dir = tempfile.mkdtemp(prefix="beluga-e2e-", dir="/dev/shm")
        self.spec = {"backend": backend, "region": "e2e-kv", "hugetlbfs_dir": "none"}
        if backend == "user":
            self.spec["user_dir"] = self.dir
        self.fp = fingerprint
        self.region_bytes = -(-region_bytes // beluga.REGION_ALIGN) * beluga.REGION_ALIGN
        self.pool = beluga.Pool(backend, user_dir=self.spec.get("user_dir"), hugetlbfs_dir="none")
        self.cache = None

    def reset(self):
        """Empty cache (a new region), for a first run."""
        if self.cache is not None:
            self.cache.detach()
        try:
            self.pool.destroy_region(self.spec["region"])
        except beluga.BelugaError:
            pass
        self.cache = beluga.KVCache.open(self.pool, self.spec["region"], self.fp, create=True,
                                         region_bytes=self.region_bytes)

    def stats(self):
        return self.cache.stats()

    def close(self):
        if self.cache is not None:
            self.cache.detach()
        try:
            self.pool.destroy_region(self.spec["region"])
        except beluga.BelugaError:
            pass
        self.pool.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server on loopback, memory-bounded, no persistence."""

    def __init__(self, maxmemory_bytes, binary="redis-server", start_timeout=20):
        exe = shutil.which(binary) or ("/usr/bin/redis-server" if os.path.exists(
            "/usr/bin/redis-server") else None)
        if exe is None:
            raise RuntimeError("redis-server not found (Debian: apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="beluga-e2e-redis-")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--maxmemory", str(maxmemory_bytes),
             "--maxmemory-policy", "allkeys-lru", "--protected-mode", "yes",
             "--proto-max-bulk-len", str(max(512 << 20, 1 << 20))],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import redis
        deadline = time.time() + start_timeout
        while True:
            try:
                self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
                self.client.ping()
                break
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.close()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.1)
        self.spec = {"port": self.port}

    def reset(self):
        self.client.flushall()

    def stats(self):
        info = self.client.info()
        return {"keys": self.client.dbsize(), "used_memory": info.get("used_memory", 0)}

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
