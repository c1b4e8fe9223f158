# SPDX-License-Identifier: Apache-2.0
"""Moving KV blocks between an engine's paged KV cache and a Beluga cache.

Independent of vLLM: the connector and the end-to-end benchmark both use it.
A *block* is one engine KV block (``block_size`` tokens, all layers); its
pool block is the C-order array ``[layers][K, V][tokens][heads][head_size]``
(beluga/kv_layout.h), so layer ``l`` sits at ``shape.layer_offset(l)`` and
a transfer can move a layer range (layer-wise loading and saving).

Three data paths:

- ``"beluga"``: libbeluga's CPU path (CpuCopier) straight between the paged
  tensors and the pool blocks: loads scatter out of pinned blocks, saves
  gather into slots reserved in the region (KVCache.reserve), one copy each
  way; host tensors only;
- ``"cuda"``: libbeluga's GPU path (GpuCopier: the CUDA kernels and copy
  engines of beluga/xfer_cuda.h) between CUDA tensors and the same pinned
  blocks and reserved slots, read and written in place through the cache's
  memory registered with CUDA (``registration``, a GpuRegistration of the
  mapping the cache is attached over): no staging buffer, no ``.to(device)``.
  Loads are enqueued on a side stream (LoadBatch.issue: one copy and event
  per layer, torch's current stream waiting for each layer's event), saves
  on torch's current stream as one gather that also computes each block's
  checksum on the GPU (gather_sum), passed to the commit; a load's pins are
  released, and a save's slots committed, once their copies' events have
  completed;
- ``"torch"``: torch indexing and copies, for tensors on any device (the
  fallback for CUDA tensors where the GPU path cannot run).

The layout of the engine's tensors (which dimension is which) comes from
the attention backend when the connector knows it (guess_dims()).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

import beluga
import beluga.gpu

# Dimension letters of a paged KV tensor: Block, K/V, Token, Head, head Dim,
# in the tensor's logical order (vLLM permutes its physical layout, e.g. HND,
# back to the backend's logical shape; strides carry the physical order).
FLASH_ATTN_DIMS = "KBTHD"   # vLLM FlashAttention: [2, num_blocks, block_size, heads, head_size]
FLASHINFER_DIMS = "BKTHD"   # vLLM FlashInfer:     [num_blocks, 2, block_size, heads, head_size]
CPU_ATTN_DIMS = "KBHTD"     # vLLM CPU attention:  [2, num_blocks, heads, block_size, head_size]
KNOWN_DIMS = (FLASH_ATTN_DIMS, FLASHINFER_DIMS, CPU_ATTN_DIMS)

# Sizes no real dimension has, to tell a backend's shape formula apart.
_PROBE_BLOCKS, _PROBE_HEADS, _PROBE_HEAD_SIZE = 9973, 9949, 9931


def layer_order(names):
    """vLLM layer names sorted by their layer index ("model.layers.3.self_attn.attn")."""
    def key(name):
        return (tuple(int(x) for x in re.findall(r"\d+", name)), name)
    return sorted(names, key=key)


def _check_dims(dims, where):
    if len(dims) != 5 or sorted(dims) != sorted("BKTHD"):
        raise ValueError(f"{where}: {dims!r} is not a KV layout Beluga knows: it must name the five "
                         "dimensions of a paged KV tensor with B, K, T, H, D (e.g. 'KBTHD'); "
                         "MLA and other layouts are not supported")
    return dims


def dims_from_backend(backend, block_size):
    """The dimension letters of `backend`'s per-layer KV tensor.

    Asks the attention backend's own get_kv_cache_shape() (vLLM's
    AttentionBackend API) with sizes that identify each dimension, so the
    order comes from vLLM and not from a guess.  Refuses a shape that is not
    the five dimensions of a paged K/V cache (MLA, for instance).
    """
    name = getattr(backend, "get_name", lambda: repr(backend))()
    try:
        shape = tuple(backend.get_kv_cache_shape(_PROBE_BLOCKS, block_size, _PROBE_HEADS,
                                                 _PROBE_HEAD_SIZE))
    except Exception as e:  # a backend that validates its arguments
        raise ValueError(f"attention backend {name}: get_kv_cache_shape() refused probe sizes "
                         f"({e}); set kv_layout in kv_connector_extra_config") from e
    letters = {2: "K", _PROBE_BLOCKS: "B", block_size: "T", _PROBE_HEADS: "H",
               _PROBE_HEAD_SIZE: "D"}
    if block_size in (2, _PROBE_BLOCKS, _PROBE_HEADS, _PROBE_HEAD_SIZE):
        raise ValueError(f"block_size {block_size} cannot be told apart from the other dimensions")
    dims = "".join(letters.get(n, "?") for n in shape)
    return _check_dims(dims, f"attention backend {name} (KV cache shape {shape})")


def guess_dims(shape, hint=None, *, num_kv_heads=None, head_size=None, block_size=None,
               backend=None):
    """The dimension letters of a per-layer KV tensor of logical `shape`.

    In order of preference: `hint` (the kv_layout setting), the attention
    `backend`'s shape formula, or the one layout among those vLLM uses that
    fits `shape` given the known heads, head size and block size.  When the
    shape fits several layouts (e.g. block_size == num_kv_heads for the CPU
    backend's [2, B, H, T, D] against FlashAttention's [2, B, T, H, D]) and
    no backend says which, it refuses rather than move the wrong bytes.
    """
    if hint:
        dims = _check_dims(hint, "kv_layout")
    elif backend is not None:
        dims = dims_from_backend(backend, block_size)
    else:
        if len(shape) != 5:
            raise ValueError(f"a KV tensor of shape {tuple(shape)} is not a paged K/V cache "
                             "Beluga knows (5 dimensions; MLA is not supported)")
        want = {"K": 2, "H": num_kv_heads, "D": head_size}
        fits = []
        for cand in KNOWN_DIMS:
            size = dict(zip(cand, shape))
            if any(n is not None and size[d] != n for d, n in want.items()):
                continue
            if block_size is not None and (size["T"] < 1 or block_size % size["T"]):
                continue
            fits.append(cand)
        if len(fits) != 1:
            raise ValueError(
                f"cannot tell the layout of a KV tensor of shape {tuple(shape)} "
                f"(heads {num_kv_heads}, head size {head_size}, block size {block_size}): "
                f"{'it fits ' + ' and '.join(fits) if fits else 'it fits no layout Beluga knows'}; "
                "set kv_layout in kv_connector_extra_config ('KBTHD' FlashAttention, "
                "'BKTHD' FlashInfer, 'KBHTD' CPU attention)")
        dims = fits[0]
    if len(shape) != 5:
        raise ValueError(f"a KV tensor of shape {tuple(shape)} does not have the 5 dimensions "
                         f"of layout {dims}")
    size = dict(zip(dims, shape))
    for d, n in (("K", 2), ("H", num_kv_heads), ("D", head_size)):
        if n is not None and size[d] != n:
            raise ValueError(f"KV tensor of shape {tuple(shape)} read as {dims}: dimension {d} is "
                             f"{size[d]}, expected {n}")
    return dims


def kv_device(layers):
    """Where the KV tensors live: ("cpu", -1), ("cuda", ordinal) when all are
    on one CUDA device, else (the first tensor's device type, None)."""
    types = {t.device.type for t in layers}
    if types == {"cpu"}:
        return "cpu", -1
    if types == {"cuda"}:
        idx = {t.device.index for t in layers}
        if len(idx) == 1:
            (i,) = idx
            if i is None:
                import torch
                i = torch.cuda.current_device()
            return "cuda", i
    return layers[0].device.type, None


@dataclass
class Stats:
    """What this process moved (the cache's own counters: KVCache.stats())."""
    lookups: int = 0
    lookup_hits: int = 0
    loaded_blocks: int = 0
    loaded_bytes: int = 0
    load_misses: int = 0
    saved_blocks: int = 0
    saved_bytes: int = 0
    saved_zero_copy: int = 0     # of saved_blocks: gathered straight into reserved slots
    save_exists: int = 0
    save_skipped: int = 0
    save_failed: int = 0
    # Kept by the connector: steps with a load or save, and their wall time.
    load_ops: int = 0
    load_seconds: float = 0.0
    save_ops: int = 0
    save_seconds: float = 0.0


class KVBlockIO:
    """Lookup, load (pin + scatter) and save (gather + put) of KV blocks."""

    def __init__(self, cache, layers, dims=FLASH_ATTN_DIMS, data_path="auto",
                 copier_threads=0, verify_loads=True, registration=None):
        self.cache = cache
        self.shape = beluga.shape_of(cache.fingerprint)
        # Loads check each block's checksum (one more read of the block).
        self.verify_loads = bool(verify_loads)
        # Zero-copy saves hold one reservation per block until commit.
        self.max_reservations = max(0, int(cache.info()["max_batch"]) - 1)
        self.layers = list(layers)
        self.dims = dims
        self.stats = Stats()
        first = self.layers[0]
        if len(self.layers) != self.shape.num_layers:
            raise ValueError(f"{len(self.layers)} KV layers, the cache holds "
                             f"{self.shape.num_layers}")
        size = dict(zip(dims, first.shape))
        kernel_block = size["T"]
        if self.shape.block_size % kernel_block:
            raise ValueError(f"block_size {self.shape.block_size} is not a multiple of the "
                             f"tensors' {kernel_block}-token blocks")
        # vLLM may split one block into `ratio` consecutive kernel blocks.
        self.ratio = self.shape.block_size // kernel_block
        self.num_blocks = size["B"] // self.ratio
        where, self.device = kv_device(self.layers)
        on_host = where == "cpu"
        on_cuda = where == "cuda" and self.device is not None
        if data_path == "auto":
            if on_host:
                data_path = "beluga"
            elif on_cuda and registration is not None:
                data_path = "cuda"
            else:
                data_path = "torch"
        if data_path == "beluga" and not on_host:
            raise ValueError("the 'beluga' data path needs host tensors; use 'cuda' or 'torch'")
        if data_path == "cuda" and not on_cuda:
            raise ValueError("the 'cuda' data path needs CUDA tensors; use 'beluga' for host tensors")
        if data_path == "cuda" and registration is None:
            raise ValueError("the 'cuda' data path needs the cache's memory registered with the GPU "
                             "(registration=: a GpuRegistration of the mapping the cache is attached "
                             "over, beluga_vllm.config.open_cache_for_gpu)")
        self.data_path = data_path
        self.registration = registration if data_path == "cuda" else None
        self.paged = self._paged() if data_path in ("beluga", "cuda") else None
        self.copier = beluga.CpuCopier(threads=copier_threads) if data_path == "beluga" else None
        self.gpu = None
        self._side_stream = None      # GPU path: the stream loads run on (side_stream())
        if data_path == "cuda":
            # A copy-engine piece must not cross a registered chunk: with
            # several chunks, the kernel moves everything.
            kernel_only = registration.chunks > 1
            self.gpu = beluga.gpu.copier(self.device,
                                         batch_min_bytes=(1 << 64) - 1 if kernel_only else 0)

    def _paged(self):
        t = self.layers[0]
        stride = dict(zip(self.dims, t.stride()))
        size = dict(zip(self.dims, t.shape))
        if self.ratio == 1:
            return beluga.paged_from_tensors(self.shape, self.layers, self.dims)
        # One block = `ratio` kernel blocks: linear only if they are contiguous in tokens.
        if stride["B"] != size["T"] * stride["T"]:
            raise ValueError("kernel blocks are not token-contiguous (HND?): use data_path='torch'")
        return beluga.PagedKV(self.shape, self.num_blocks,
                              (stride["B"] * self.ratio, stride["K"], stride["T"], stride["H"]),
                              [x.data_ptr() for x in self.layers], owners=self.layers,
                              device=self.device)

    def side_stream(self):
        """GPU path: this worker's side stream for loads, created once."""
        if self._side_stream is None:
            self._side_stream = beluga.gpu.new_stream(self.device)
        return self._side_stream

    # ------------------------------------------------------------ lookup

    def lookup(self, keys):
        """How many leading keys are cached (by any process or host)."""
        n = self.cache.lookup_prefix(keys) if keys else 0
        self.stats.lookups += 1
        self.stats.lookup_hits += n
        return n

    # ------------------------------------------------------------- load

    def begin_load(self, specs):
        """Pin blocks for loading: `specs` = [(engine block ids, keys)] per request."""
        return LoadBatch(self, specs)

    def load(self, block_ids, keys):
        """Load blocks now (all layers).  Returns how many leading blocks landed."""
        batch = self.begin_load([(block_ids, keys)])
        try:
            batch.scatter(0, self.shape.num_layers)
        finally:
            batch.release()
        return batch.loaded

    # ------------------------------------------------------------- save

    def begin_save(self, block_ids, keys, skip_cached=True):
        return SaveBatch(self, block_ids, keys, skip_cached)

    def save(self, block_ids, keys, skip_cached=True):
        """Store blocks now (all layers).  Returns the per-block put results."""
        batch = self.begin_save(block_ids, keys, skip_cached)
        batch.gather(0, self.shape.num_layers)
        return batch.commit()

    # --------------------------------------------------- torch data path

    def _kernel_ids(self, block_ids):
        import torch
        ids = torch.tensor(block_ids, dtype=torch.long)
        if self.ratio == 1:
            return ids
        return (ids[:, None] * self.ratio + torch.arange(self.ratio)).reshape(-1)

    def _bkthd(self, layer):
        return self.layers[layer].permute([self.dims.index(c) for c in "BKTHD"])

    def torch_read(self, layer, block_ids):
        """Layer `layer` of blocks as a host tensor [n, 2, block_size, H, D]."""
        x = self._bkthd(layer)[self._kernel_ids(block_ids).to(self.layers[layer].device)]
        n, r = len(block_ids), self.ratio
        x = x.reshape(n, r, *x.shape[1:]).transpose(1, 2)
        return x.reshape(n, 2, r * x.shape[3], *x.shape[4:]).cpu()

    def torch_write(self, layer, block_ids, src):
        """Write [n, 2, block_size, H, D] into layer `layer` of blocks."""
        n, r = len(block_ids), self.ratio
        dst = self._bkthd(layer)
        src = src.to(dst.device, non_blocking=False)
        src = src.reshape(n, 2, r, src.shape[2] // r, *src.shape[3:]).transpose(1, 2)
        dst[self._kernel_ids(block_ids).to(dst.device)] = src.reshape(n * r, *src.shape[2:])


def _layer_view(buf, shape, layer, dtype):
    """Layer `layer` of a pool block (a uint8 tensor) as [2, T, H, D] of `dtype`."""
    off = shape.layer_offset(layer)
    return buf[off:off + shape.layer_bytes].view(dtype).view(
        2, shape.block_size, shape.num_kv_heads, shape.head_size)


class LoadBatch:
    """Blocks pinned for loading; scatter() layer ranges, then release().

    `specs` is a list of (engine block ids, keys), one per request: each
    request's usable prefix ends at its first miss (a block removed since
    the lookup), and the engine blocks from there on are `failed_block_ids`.
    """

    def __init__(self, io, specs):
        self.io = io
        self.block_ids, self.pins, self.failed_block_ids = [], [], []
        keys = [k for _, ks in specs for k in ks]
        for ids, ks in specs:
            if len(ids) != len(ks):
                raise ValueError("one engine block id per key")
        # verify: a block whose checksum fails reads as a miss (recomputed).
        pins = io.cache.pin(keys, verify=io.verify_loads) if keys else []
        at = 0
        for ids, ks in specs:
            mine = pins[at:at + len(ks)]
            at += len(ks)
            n = next((i for i, p in enumerate(mine) if p is None), len(mine))
            for p in mine[n:]:
                if p is not None:
                    p.unpin()
            self.block_ids += list(ids[:n])
            self.pins += mine[:n]
            self.failed_block_ids += list(ids[n:])
        self.loaded = len(self.pins)
        # GPU path: the pinned blocks as the GPU sees them, and the copies'
        # events (the pins are held until they have completed).  issue()
        # fills layer_events: layer l -> the event of the copy covering it.
        self.events = []
        self.layer_events = [None] * io.shape.num_layers
        self.error = None        # why the GPU load failed (its blocks are load errors)
        self.addrs = ([io.registration.device_address(p.address, len(p)) for p in self.pins]
                      if io.data_path == "cuda" else None)
        io.stats.loaded_blocks += self.loaded
        io.stats.loaded_bytes += self.loaded * io.shape.block_bytes
        io.stats.load_misses += len(keys) - self.loaded

    def scatter(self, begin, end):
        if not self.pins or begin >= end:
            return
        io = self.io
        if io.data_path == "beluga":
            io.copier.scatter(io.paged, self.block_ids, self.pins, layers=(begin, end))
            return
        if io.data_path == "cuda":
            self.events.append(beluga.gpu.scatter(io.gpu, io.paged, self.block_ids, self.addrs,
                                                  layers=(begin, end)))
            return
        import torch
        import torch.utils.dlpack
        blocks = [torch.utils.dlpack.from_dlpack(p) for p in self.pins]
        dtype = io.layers[0].dtype
        for layer in range(begin, end):
            src = torch.stack([_layer_view(b, io.shape, layer, dtype) for b in blocks])
            io.torch_write(layer, self.block_ids, src)
        del blocks

    # GPU path: every copy is issued at once on the worker's side stream
    # (after the work already on torch's current stream, which may still
    # use the destination blocks), and the current stream waits for a layer's
    # event before the layer's attention (wait_layer): a stream wait, never a
    # host sync.

    def issue(self, layerwise):
        """GPU path: enqueue the load on the side stream, one copy and event
        per layer (`layerwise`) or one copy of every layer.  A copy that
        cannot be enqueued fails the whole batch (error, failed_block_ids);
        nothing raises."""
        io = self.io
        if io.data_path != "cuda" or not self.pins:
            return
        n = io.shape.num_layers
        try:
            side = io.side_stream()
            beluga.gpu.wait_stream(side, None, io.device)
            handle = beluga.gpu.stream_handle(side)
            ranges = [(layer, layer + 1) for layer in range(n)] if layerwise else [(0, n)]
            for begin, end in ranges:
                ev = beluga.gpu.scatter(io.gpu, io.paged, self.block_ids, self.addrs,
                                        layers=(begin, end), stream=handle)
                self.events.append(ev)
                for layer in range(begin, end):
                    self.layer_events[layer] = ev
        except Exception as e:   # noqa: BLE001 - any failure fails the load, not the step
            self.fail(e)

    def wait_layer(self, layer):
        """GPU path: make torch's current stream wait for layer `layer`'s
        copy (no host sync).  Raises if that layer's load was not issued."""
        if self.error is not None or not self.pins:
            return
        ev = self.layer_events[layer]
        if ev is None:
            raise RuntimeError(f"layer {layer} waited for before its load was issued")
        try:
            ev.wait(beluga.gpu.stream_handle(None, self.io.device))
        except Exception as e:   # noqa: BLE001
            self.fail(e)

    def wait_all(self):
        """GPU path: the current stream waits for the last layer (the side
        stream runs the copies in order, so for every layer)."""
        if self.io.data_path == "cuda" and self.pins:
            self.wait_layer(self.io.shape.num_layers - 1)

    def fail(self, error):
        """The load failed: every block of the batch is reported as a load
        error (vLLM recomputes it) and nothing is counted as loaded."""
        if self.error is None:
            self.error = error
            self.failed_block_ids += self.block_ids
            self.io.stats.loaded_blocks -= self.loaded
            self.io.stats.loaded_bytes -= self.loaded * self.io.shape.block_bytes
            self.io.stats.load_misses += self.loaded
            self.loaded = 0

    def release(self):
        """Unpin every block, once the copies reading them have completed
        (the host waits for them).  A copy that failed fails the batch."""
        events, self.events = self.events, []
        try:
            for ev in events:
                ev.synchronize()
        except Exception as e:   # noqa: BLE001 - the device failed: nothing reads the pins any more
            self.fail(e)
        finally:
            self._unpin()

    def _unpin(self):
        for p in self.pins:
            p.unpin()
        self.pins = []


class SaveBatch:
    """Blocks being saved, zero-copy: reserve slots, gather() layer ranges
    straight into them, then commit() (checksum, write-back, publish).

    One lookup per key (the reservation): keys already cached are skipped.
    A process holds at most max_batch - 1 reservations (the cache's limit);
    blocks beyond that, or refused a slot for that reason, go through a
    staging buffer and put() at commit.  Dropping the batch (an error, a
    killed process) gives the slots back unpublished.
    """

    def __init__(self, io, block_ids, keys, skip_cached=True):
        # skip_cached: kept for callers; a reservation never overwrites a
        # cached block, so cached keys are always skipped.
        if len(block_ids) != len(keys):
            raise ValueError("one engine block id per key")
        self.io = io
        n = len(keys)
        bb = io.shape.block_bytes
        gpu = io.data_path == "cuda"
        self.events = []         # GPU path: the gathers' events, completed before commit/abort
        self._sum_event = None   # GPU path: the gather_sum whose sums the commit passes
        cap = min(n, io.max_reservations)
        self.reservation = io.cache.reserve(list(keys[:cap]), bb) if cap else None
        res = self.reservation.results if self.reservation is not None else []
        self.block_ids, self.keys, self.targets = [], [], []
        self._zc = []            # positions in reservation of the zero-copy items
        staged = []              # (block id, key) through staging + put
        skipped = failed = 0
        for i in range(n):
            r = res[i] if i < cap else -errno.ENOBUFS
            if r == 0:
                self._zc.append(i)
                self.block_ids.append(block_ids[i])
                self.keys.append(keys[i])
                # The slot itself: a writable view (CPU), or its device
                # address in the registered memory (GPU).
                self.targets.append(io.registration.device_address(self.reservation.address(i), bb)
                                    if gpu else self.reservation.view(i))
            elif r == beluga.EXISTS:
                skipped += 1
            elif r == -errno.ENOBUFS:
                staged.append((block_ids[i], keys[i]))
            else:
                failed += 1
        self.staging = None
        self._staged_keys = [k for _, k in staged]
        if staged:
            self.block_ids += [b for b, _ in staged]
            self.keys += self._staged_keys
            if gpu:   # pinned host memory: device-visible at its host address
                import torch
                self.staging = torch.empty((len(staged), bb), dtype=torch.uint8, pin_memory=True)
                base = self.staging.data_ptr()
                self.targets += [base + j * bb for j in range(len(staged))]
            else:
                import numpy as np
                self.staging = np.empty((len(staged), bb), np.uint8)
                self.targets += [self.staging[j] for j in range(len(staged))]
        io.stats.save_skipped += skipped
        io.stats.save_failed += failed
        self.zero_copy = len(self._zc)
        self.gathered = [False] * io.shape.num_layers

    def gather(self, begin, end):
        if not self.keys:
            return
        io = self.io
        if io.data_path == "cuda":
            # Whole blocks at commit (gather_sum needs every layer written:
            # one launch that also checksums them), ordered after the
            # forward on torch's current stream.
            return
        todo = [layer for layer in range(begin, end) if not self.gathered[layer]]
        if not todo:
            return
        if io.data_path == "beluga":
            io.copier.gather(io.paged, self.block_ids, self.targets, layers=(todo[0], todo[-1] + 1))
        elif io.data_path == "cuda":
            self.events.append(beluga.gpu.gather(io.gpu, io.paged, self.block_ids, self.targets,
                                                 layers=(todo[0], todo[-1] + 1)))
        else:
            import numpy as np
            import torch
            for layer in todo:
                x = io.torch_read(layer, self.block_ids).contiguous().view(torch.uint8).reshape(
                    len(self.block_ids), -1).numpy()
                off = io.shape.layer_offset(layer)
                for i, t in enumerate(self.targets):
                    np.frombuffer(t, np.uint8)[off:off + io.shape.layer_bytes] = x[i]
        for layer in todo:
            self.gathered[layer] = True

    def commit(self):
        """Gather what no save_kv_layer() gathered, then publish.  Per-block
        results for the blocks not skipped: 0 stored, EXISTS (stored by
        another process meanwhile), or a negative errno."""
        if not self.keys:
            self.abort()
            return []
        if self.io.data_path == "cuda":
            self._gather_gpu()
        else:
            self.gather(0, self.io.shape.num_layers)
        self._wait_gathers()
        self.targets = []
        res = self._commit_reserved()
        res = [res[i] for i in self._zc]
        if self._staged_keys:
            staging = self.staging.numpy() if self.io.data_path == "cuda" else self.staging
            res += list(self.io.cache.put(self._staged_keys, staging))
        self.reservation = None
        st = self.io.stats
        stored = sum(1 for r in res if r == 0)
        st.saved_blocks += stored
        st.saved_bytes += stored * self.io.shape.block_bytes
        st.saved_zero_copy += sum(1 for i, r in enumerate(res[:len(self._zc)]) if r == 0)
        st.save_exists += sum(1 for r in res if r == beluga.EXISTS)
        st.save_failed += sum(1 for r in res if r < 0)
        self.keys, self.staging = [], None
        return res

    def _gather_gpu(self):
        """GPU path: the reserved slots with their checksums (one
        gather_sum), the staged blocks with a plain gather, on torch's
        current stream."""
        io, zc = self.io, len(self._zc)
        if zc:
            self._sum_event = beluga.gpu.gather_sum(io.gpu, io.paged, self.block_ids[:zc],
                                                    self.targets[:zc])
            self.events.append(self._sum_event)
        if len(self.block_ids) > zc:
            self.events.append(beluga.gpu.gather(io.gpu, io.paged, self.block_ids[zc:],
                                                 self.targets[zc:]))
        self.gathered = [True] * io.shape.num_layers

    def _wait_gathers(self):
        """Block until every GPU gather into the slots has completed."""
        events, self.events = self.events, []
        for ev in events:
            ev.synchronize()

    def _commit_reserved(self):
        """Publish the reserved slots: the one place a save is committed.

        The payload is in the slots (CPU stores, or GPU writes whose events
        _wait_gathers() waited for).  GPU path: the checksums the GPU
        computed during the gather are passed, one per reservation item in
        the items' order, so the payload is not read again; host paths: the
        library checksums each slot on the CPU.  Either way the payload is
        written back where the cache is not coherent, then published."""
        if self.reservation is None:
            return []
        ev, self._sum_event = self._sum_event, None
        if ev is None:
            return self.reservation.commit()
        sums = [0] * len(self.reservation)      # items holding no slot: ignored
        for s, i in zip(ev.sums, self._zc):
            sums[i] = s
        return self.reservation.commit(sums=sums)

    def abort(self):
        """Give every slot back unpublished (nothing is stored)."""
        # A slot given back must not still be written by the GPU.
        self._sum_event = None
        self._wait_gathers()
        self.targets = []
        if self.reservation is not None:
            self.reservation.abort()
            self.reservation = None
        self.keys, self.staging = [], None
