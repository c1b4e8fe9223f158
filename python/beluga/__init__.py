# SPDX-License-Identifier: Apache-2.0
"""Beluga: CXL memory pools and the shared KV-block store, from Python.

The compiled part (``beluga._beluga``, pybind11) wraps libbeluga (pools,
regions, mappings and their GPU registration), Beluga-KVCache (the store)
and the KV data path: the CPU copier, and the CUDA copier where the module
was built with CUDA (``HAVE_CUDA_XFER``; :mod:`beluga.gpu` takes tensors).
Everything zero-copy goes through the buffer protocol (``memoryview``,
``numpy.frombuffer``, ``torch.frombuffer``) or DLPack
(``torch.utils.dlpack.from_dlpack``).  Errors raise :class:`BelugaError`, an
``OSError`` whose ``errno`` is the library's code.

See Documentation/python.md.
"""

from beluga._beluga import (
    DTYPE_SIZES,
    EDRIVER_TOO_OLD,
    ELIBRARY_TOO_OLD,
    ENOCUDA,
    ENODRIVER,
    ENOGPU,
    EPLACEMENT,
    EXISTS,
    FORMAT_VERSION,
    HAVE_CUDA_XFER,
    KEY_BYTES,
    KVC_EFINGERPRINT,
    KVC_EFORMAT,
    KVC_ENOTREADY,
    KVC_EVERSION,
    REGION_ALIGN,
    BelugaError,
    CpuCopier,
    Fingerprint,
    GpuRegistration,
    KVCache,
    KVShape,
    Mapping,
    PagedKV,
    Pin,
    Pool,
    Region,
    abi_version,
    check_gpu_transfer,
    checksum,
    gpu_available,
    hash_block,
    hash_tokens,
    root_key,
    strerror,
    version,
)

__all__ = [
    "DTYPE_SIZES",
    "EDRIVER_TOO_OLD",
    "ELIBRARY_TOO_OLD",
    "ENOCUDA",
    "ENODRIVER",
    "ENOGPU",
    "EPLACEMENT",
    "EXISTS",
    "FORMAT_VERSION",
    "HAVE_CUDA_XFER",
    "KEY_BYTES",
    "KVC_EFINGERPRINT",
    "KVC_EFORMAT",
    "KVC_ENOTREADY",
    "KVC_EVERSION",
    "REGION_ALIGN",
    "BelugaError",
    "CpuCopier",
    "Fingerprint",
    "GpuRegistration",
    "KVCache",
    "KVShape",
    "Mapping",
    "PagedKV",
    "Pin",
    "Pool",
    "Region",
    "abi_version",
    "check_gpu_transfer",
    "checksum",
    "gpu_available",
    "hash_block",
    "hash_tokens",
    "root_key",
    "strerror",
    "version",
    "paged_from_tensors",
    "shape_of",
]

if HAVE_CUDA_XFER:
    from beluga._beluga import (  # noqa: F401
        GpuCopier, GpuEvent, SUM_AUTO, SUM_FUSED, SUM_READBACK, SUM_SOURCE)
    __all__ += ["GpuCopier", "GpuEvent", "SUM_AUTO", "SUM_FUSED", "SUM_READBACK", "SUM_SOURCE"]


def shape_of(fingerprint):
    """The KVShape of a kv_block Fingerprint (pool block geometry)."""
    return KVShape(fingerprint.num_layers, fingerprint.block_size,
                   fingerprint.num_kv_heads, fingerprint.head_size,
                   fingerprint.dtype)


def _device_of(t):
    """-1 for a host tensor, the CUDA ordinal for a CUDA one (torch or alike)."""
    dev = t.device
    if dev.type == "cpu":
        return -1
    if dev.type == "cuda":
        if dev.index is not None:
            return dev.index
        import torch
        return torch.cuda.current_device()
    raise ValueError(f"KV tensors on {dev} are not supported (host or CUDA tensors only)")


def paged_from_tensors(shape, tensors, dims):
    """A PagedKV over per-layer torch tensors, from their live strides.

    ``dims`` names each tensor dimension's role, in logical order, with the
    letters of vLLM's layouts: ``"KBTHD"`` for FlashAttention
    ``[2, num_blocks, block_size, heads, head_size]``, ``"BKTHD"`` for
    FlashInfer ``[num_blocks, 2, ...]``.  Strides come from ``tensor.stride()``
    (elements), so HND, cross-layer views (``cross[i]``) and any other
    physical order work unchanged, as long as ``head_size`` is innermost.
    Host tensors give a PagedKV for CpuCopier; CUDA tensors (all on one
    device) one for GpuCopier, with ``device`` set and the device addresses
    of ``data_ptr()``.  Only ``data_ptr``, ``shape``, ``stride()``, ``dim()``,
    ``element_size()`` and ``device`` are used: no torch import for host
    tensors.
    """
    if len(tensors) != shape.num_layers:
        raise ValueError(f"{len(tensors)} tensors for {shape.num_layers} layers")
    first = tensors[0]
    if len(dims) != first.dim() or sorted(dims) != sorted("BKTHD"):
        raise ValueError(f"dims {dims!r} must name the {first.dim()} dimensions with B, K, T, H, D")
    size = dict(zip(dims, first.shape))
    want = {"K": 2, "T": shape.block_size, "H": shape.num_kv_heads, "D": shape.head_size}
    for d, n in want.items():
        if size[d] != n:
            raise ValueError(f"dimension {d} of the KV tensors is {size[d]}, the shape says {n}")
    if first.element_size() != shape.dtype_size:
        raise ValueError(f"tensor element size {first.element_size()} != dtype {shape.dtype}")
    device = _device_of(first)
    for t in tensors:
        if tuple(t.shape) != tuple(first.shape) or tuple(t.stride()) != tuple(first.stride()):
            raise ValueError("every layer's KV tensor must have the same shape and strides")
        if _device_of(t) != device:
            raise ValueError(f"every layer's KV tensor must be on one device: {first.device} and {t.device}")
    stride = dict(zip(dims, first.stride()))
    if stride["D"] != 1:
        raise ValueError("head_size must be the innermost, contiguous dimension")
    return PagedKV(shape, size["B"], (stride["B"], stride["K"], stride["T"], stride["H"]),
                   [t.data_ptr() for t in tensors], owners=list(tensors), device=device)


from beluga import gpu  # noqa: E402  (the GPU data path with tensors; imports no torch)

__all__ += ["gpu"]
