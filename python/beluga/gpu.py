# SPDX-License-Identifier: Apache-2.0
"""The GPU data path with torch CUDA tensors: a thin layer over the binding.

The binding (``beluga.GpuCopier``, ``GpuEvent``, ``Mapping.register_gpu``)
takes raw device addresses and integer CUDA stream handles and has no torch
dependency; this module turns tensors and torch streams into those::

    reg = mapping.register_gpu(0)                 # once per mapping
    paged = beluga.paged_from_tensors(shape, cuda_layers, "KBTHD")
    gpu = beluga.gpu.copier(0)
    ev = beluga.gpu.gather(gpu, paged, block_ids,
                           [reg.device_address(a) for a in slot_addresses])
    ev.synchronize()                              # or ev.wait(stream), ev.query()

Without a usable GPU, or in a module built without CUDA, copier() raises
BelugaError(ENODEV) with the reason (available() returns it too).
"""

from __future__ import annotations

import errno

import beluga


def available():
    """(usable, reason): whether the GPU data path can run here, and why not."""
    return beluga.gpu_available()


def copier(device=0, **options):
    """A GpuCopier on CUDA device `device` (options: staging_slots,
    staging_refs, max_ctas, batch_min_bytes).  BelugaError(ENODEV) saying
    why when the GPU path cannot run here."""
    if not beluga.HAVE_CUDA_XFER:
        raise beluga.BelugaError(errno.ENODEV, f"GPU data path: {available()[1]}")
    return beluga.GpuCopier(device, **options)


def stream_handle(stream=None, device=None):
    """The int cudaStream_t of `stream`: an int as it is, an object with a
    ``cuda_stream`` attribute (torch.cuda.Stream), or None for torch's current
    stream on `device`."""
    if stream is None:
        import torch
        return int(torch.cuda.current_stream(device).cuda_stream)
    if isinstance(stream, int):
        if stream < 0:
            raise ValueError("a CUDA stream handle is not negative")
        return stream
    handle = getattr(stream, "cuda_stream", None)
    if handle is None:
        raise TypeError(f"a CUDA stream is an int handle or has .cuda_stream, not {type(stream).__name__}")
    return int(handle)


def new_stream(device=None):
    """A new CUDA stream on `device` (a torch.cuda.Stream; stream_handle()
    gives its int handle), e.g. a side stream for loads."""
    import torch
    return torch.cuda.Stream(device=device)


def wait_stream(stream, on=None, device=None):
    """Make `stream` (a torch.cuda.Stream) wait, without blocking the host,
    for the work enqueued so far on `on` (default: torch's current stream on
    `device`)."""
    import torch
    stream.wait_stream(on if on is not None else torch.cuda.current_stream(device))


def gather(gpu, paged, block_ids, pool_addresses, layers=None, stream=None):
    """Engine blocks -> pool blocks at device-visible addresses, enqueued on
    `stream` (default: torch's current stream on the copier's device).
    Returns the GpuEvent of the copy."""
    return gpu.gather(paged, list(block_ids), list(pool_addresses), layers,
                      stream_handle(stream, gpu.device if stream is None else None))


def gather_sum(gpu, paged, block_ids, pool_addresses, stream=None, method=None):
    """Whole blocks -> reserved slots at device-visible addresses, with each
    block's store checksum computed on the GPU.  Returns the GpuEvent; its
    ``sums`` (one per address, in their order), once it completed, go to
    Reservation.commit(sums=)."""
    return gpu.gather_sum(paged, list(block_ids), list(pool_addresses),
                          stream_handle(stream, gpu.device if stream is None else None),
                          beluga.SUM_AUTO if method is None else method)


def scatter(gpu, paged, block_ids, pool_addresses, layers=None, stream=None):
    """Pool blocks at device-visible addresses -> engine blocks (see gather)."""
    return gpu.scatter(paged, list(block_ids), list(pool_addresses), layers,
                       stream_handle(stream, gpu.device if stream is None else None))
