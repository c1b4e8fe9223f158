# SPDX-License-Identifier: Apache-2.0
"""The CPU data path (KVShape, PagedKV, CpuCopier) against numpy/torch indexing."""

import errno

import pytest

import beluga

np = pytest.importorskip("numpy")


def test_shape_geometry():
    s = beluga.KVShape(32, 16, 8, 128, "bf16")      # Llama-3-8B
    assert (s.row_bytes, s.slice_bytes, s.layer_bytes, s.block_bytes) == (
        256, 32768, 65536, 2 << 20)
    assert s.layer_offset(3) == 3 * 65536 and s.slice_offset(3, 1) == 3 * 65536 + 32768
    with pytest.raises(beluga.BelugaError) as e:
        beluga.KVShape(0, 16, 8, 128)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(IndexError):
        s.layer_offset(32)


def reference_block(layers, b, dims):
    """Pool block b from per-layer numpy arrays of logical dims `dims`."""
    perm = [dims.index(c) for c in "BKTHD"]
    return np.stack([layer.transpose(perm)[b] for layer in layers])


@pytest.mark.parametrize("dims,phys", [("KBTHD", "KBTHD"), ("BKTHD", "BKTHD"),
                                       ("KBTHD", "KBHTD"), ("BKTHD", "BKHTD")])
def test_gather_scatter_match_indexing(dims, phys):
    rng = np.random.default_rng(7)
    L, NB, T, H, D = 3, 9, 4, 2, 8
    size = dict(B=NB, K=2, T=T, H=H, D=D)
    shape = beluga.KVShape(L, T, H, D, "fp32")
    layers = []
    for _ in range(L):
        a = rng.standard_normal([size[c] for c in phys]).astype(np.float32)
        layers.append(a.transpose([phys.index(c) for c in dims]))   # logical view
    strides = dict(zip(dims, [s // 4 for s in layers[0].strides]))
    bases = [a.base if a.base is not None else a for a in layers]
    paged = beluga.PagedKV(shape, NB, (strides["B"], strides["K"], strides["T"], strides["H"]),
                           [memoryview(b).cast("B") for b in bases])
    cp = beluga.CpuCopier(threads=2)
    ids = [4, 0, 8]
    out = np.zeros((3, shape.block_bytes), np.uint8)
    cp.gather(paged, ids, out)
    for i, b in enumerate(ids):
        want = reference_block(layers, b, dims)
        assert (out[i].view(np.float32).reshape(want.shape) == want).all()
    # Scatter back into other blocks, layers 1..2 only.
    cp.scatter(paged, [1, 2, 3], out, layers=(1, 3))
    for i, b in enumerate([1, 2, 3]):
        got = reference_block(layers, b, dims)
        want = reference_block(layers, ids[i], dims)
        assert (got[1:] == want[1:]).all()


def test_bounds_and_errors():
    shape = beluga.KVShape(2, 4, 2, 8, "bf16")
    small = bytearray(100)
    with pytest.raises(ValueError, match="strides reach"):
        beluga.PagedKV(shape, 4, (128, 512, 16, 8), [small, small])
    buf = [bytearray(2 * 4 * 2 * 4 * 2 * 8 * 2) for _ in range(2)]
    with pytest.raises(beluga.BelugaError) as e:          # heads alias tokens
        beluga.PagedKV(shape, 4, (64, 256, 8, 8), buf)
    assert e.value.errno == errno.EINVAL
    paged = beluga.PagedKV.vllm(shape, 4, "flash_attn", "NHD", buf)
    assert paged.strides == (64, 256, 16, 8)
    assert paged.run_bytes() == (shape.slice_bytes, 4)
    cp = beluga.CpuCopier(threads=1)
    blk = np.zeros((2, shape.block_bytes), np.uint8)
    with pytest.raises(beluga.BelugaError):
        cp.scatter(paged, [4], blk[:1])                  # block id out of range
    with pytest.raises(ValueError, match="named twice"):
        cp.scatter(paged, [1, 1], blk)                   # same paged block twice
    with pytest.raises(ValueError, match="named twice"):
        cp.gather(paged, [0, 1], [blk[0], blk[0]])       # same pool block twice
    with pytest.raises(ValueError, match="layers need"):
        cp.gather(paged, [0], [bytearray(10)])
    with pytest.raises(BufferError):
        cp.gather(paged, [0], [bytes(shape.block_bytes)])   # read-only destination
    with pytest.raises(ValueError):
        beluga.CpuCopier(nt="sometimes")


def test_torch_tensors_and_pins_round_trip(pool):
    torch = pytest.importorskip("torch")
    shape = beluga.KVShape(2, 4, 2, 8, "bf16")
    layers = [torch.randn(2, 6, 4, 2, 8).bfloat16() for _ in range(2)]
    paged = beluga.paged_from_tensors(shape, layers, "KBTHD")
    fp = beluga.Fingerprint(model_id="t", num_layers=2, block_size=4, num_kv_heads=2,
                            head_size=8, dtype="bf16")
    c = beluga.KVCache.open(pool, "xf", fp, region_bytes=4 << 20)
    staging = np.zeros((2, shape.block_bytes), np.uint8)
    beluga.CpuCopier().gather(paged, [1, 5], staging)
    keys = beluga.hash_tokens(beluga.root_key("0"), range(8), 4)
    assert c.put(keys, staging) == [0, 0]
    dst = [torch.zeros_like(t) for t in layers]
    pins = c.pin(keys)
    beluga.CpuCopier().scatter(beluga.paged_from_tensors(shape, dst, "KBTHD"), [0, 3], pins)
    for p in pins:
        p.unpin()
    for t, d in zip(layers, dst):
        assert torch.equal(d[:, 0], t[:, 1]) and torch.equal(d[:, 3], t[:, 5])
    with pytest.raises(ValueError, match="dims"):
        beluga.paged_from_tensors(shape, layers, "KBTH")
    c.detach()


# ------------------------------------------------------------ the GPU path
# Everything below that needs a GPU skips by name with the reason here (no
# GPU on the build machine); the argument checks run everywhere.

GPU_OK, GPU_WHY = beluga.gpu_available()


def _torch_cuda():
    """(torch, None) when torch has a usable CUDA device, else (None, reason)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, "torch sees no CUDA device (a CPU build of torch, or no GPU)"
    return torch, None


def require_gpu():
    if not beluga.HAVE_CUDA_XFER:
        pytest.skip(f"GPU data path not built: {GPU_WHY}")
    if not GPU_OK:
        pytest.skip(f"no usable GPU: {GPU_WHY}")
    torch, why = _torch_cuda()
    if torch is None:
        pytest.skip(why)
    return torch


class FakeCudaTensor:
    """What paged_from_tensors reads of a torch CUDA tensor, without one."""

    class _Dev:
        type, index = "cuda", 0

    def __init__(self, shape, strides, ptr, esize=2):
        self.shape, self._strides, self._ptr, self._esize = tuple(shape), tuple(strides), ptr, esize
        self.device = self._Dev()

    def dim(self):
        return len(self.shape)

    def stride(self):
        return self._strides

    def element_size(self):
        return self._esize

    def data_ptr(self):
        return self._ptr


def _contig_strides(shape):
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


def test_gpu_availability_is_reported():
    assert isinstance(beluga.HAVE_CUDA_XFER, bool)
    ok, why = beluga.gpu_available()
    assert ok == GPU_OK and isinstance(why, str)
    assert ok or why, "without a usable GPU the reason is given"
    assert beluga.gpu.available() == (ok, why)


def test_gpu_copier_without_a_gpu_says_why():
    if GPU_OK:
        pytest.skip("a GPU is usable here; this case covers machines without one")
    with pytest.raises(beluga.BelugaError) as e:
        beluga.gpu.copier(0)
    assert e.value.errno == errno.ENODEV
    assert GPU_WHY in str(e.value)
    if beluga.HAVE_CUDA_XFER:
        with pytest.raises(beluga.BelugaError) as e:
            beluga.GpuCopier(device=0)
        assert e.value.errno == errno.ENODEV and GPU_WHY in str(e.value)


def test_register_gpu_without_a_gpu_says_why(pool):
    if GPU_OK:
        pytest.skip("a GPU is usable here; this case covers machines without one")
    with pool.create_region("reg", beluga.REGION_ALIGN) as r:
        m = r.map()
        with pytest.raises(beluga.BelugaError) as e:
            m.register_gpu(0)
        assert e.value.errno in (beluga.ENOGPU, beluga.ENOCUDA), e.value
        assert m.gpu is None
        m.close()


def test_device_paged_kv_descriptors_and_cpu_refusal():
    shape = beluga.KVShape(2, 16, 4, 64, "bf16")
    nb = 10
    fake = 1 << 40                          # a device address: never dereferenced here
    for backend in ("flash_attn", "flashinfer"):
        for order in ("NHD", "HND"):
            p = beluga.PagedKV.vllm(shape, nb, backend, order, [fake, fake + (1 << 30)], device=0)
            h = beluga.PagedKV.vllm(shape, nb, backend, order,
                                    [bytearray(p.layer_span_bytes) for _ in range(2)])
            assert p.device == 0 and h.device == -1
            assert p.strides == h.strides and p.run_bytes() == h.run_bytes()
            x = beluga.PagedKV.vllm_cross_layer(shape, nb, backend, order, fake, device=0)
            assert x.layer_base(0) >= fake and x.layer_base(1) > x.layer_base(0)
    with pytest.raises(TypeError, match="device addresses"):
        beluga.PagedKV.vllm(shape, nb, "flash_attn", "NHD", [bytearray(1 << 20)] * 2, device=0)
    with pytest.raises(ValueError, match="base address 0"):
        beluga.PagedKV.vllm(shape, nb, "flash_attn", "NHD", [0, fake], device=0)
    with pytest.raises(ValueError, match="device must be"):
        beluga.PagedKV.vllm(shape, nb, "flash_attn", "NHD", [fake, fake], device=-2)
    with pytest.raises(ValueError, match="'flash_attn' or 'flashinfer'"):
        beluga.PagedKV.vllm(shape, nb, "mla", "NHD", [fake, fake], device=0)
    p = beluga.PagedKV.vllm(shape, nb, "flash_attn", "NHD", [fake, fake + (1 << 30)], device=0)
    with pytest.raises(ValueError, match="CPU copier moves host memory only"):
        beluga.CpuCopier().gather(p, [0], np.zeros((1, shape.block_bytes), np.uint8))


def test_check_gpu_transfer_refuses_bad_raw_pointers():
    shape = beluga.KVShape(2, 16, 4, 64, "bf16")
    fake, pool = 1 << 40, 1 << 41
    bb = shape.block_bytes
    p = beluga.PagedKV.vllm(shape, 8, "flash_attn", "NHD", [fake, fake + (1 << 30)], device=0)
    assert beluga.check_gpu_transfer(p, [0, 7], [pool, pool + bb]) == (shape.slice_bytes, 8)
    assert beluga.check_gpu_transfer(p, [0], [pool], "scatter", (1, 2)) == (shape.slice_bytes, 2)
    with pytest.raises(beluga.BelugaError, match="item 1 names engine block 8, the cache has 8"):
        beluga.check_gpu_transfer(p, [0, 8], [pool, pool + bb])
    with pytest.raises(beluga.BelugaError, match="item 0's pool block is NULL"):
        beluga.check_gpu_transfer(p, [0], [0])
    with pytest.raises(ValueError, match="a pool block is named twice"):
        beluga.check_gpu_transfer(p, [0, 1], [pool, pool], "gather")
    with pytest.raises(ValueError, match="an engine block is named twice"):
        beluga.check_gpu_transfer(p, [3, 3], [pool, pool + bb], "scatter")
    with pytest.raises(beluga.BelugaError, match=r"layers \[2, 2\)"):
        beluga.check_gpu_transfer(p, [0], [pool], "gather", (2, 2))
    with pytest.raises(ValueError, match="1 pool addresses for 2 block ids"):
        beluga.check_gpu_transfer(p, [0, 1], [pool])
    with pytest.raises(TypeError, match="must be an int"):
        beluga.check_gpu_transfer(p, [0], [memoryview(bytearray(bb))])
    with pytest.raises(ValueError, match="negative block id"):
        beluga.check_gpu_transfer(p, [-1], [pool])
    with pytest.raises(ValueError, match="direction must be"):
        beluga.check_gpu_transfer(p, [0], [pool], "copy")
    host = beluga.PagedKV.vllm(shape, 8, "flash_attn", "NHD", [bytearray(p.layer_span_bytes)] * 2)
    with pytest.raises(ValueError, match="in host memory"):
        beluga.check_gpu_transfer(host, [0], [pool])


def test_paged_from_tensors_takes_cuda_tensors_by_address():
    shape = beluga.KVShape(2, 16, 4, 64, "bf16")
    logical = (2, 8, 16, 4, 64)                      # FlashAttention [2, NB, T, H, D]
    layers = [FakeCudaTensor(logical, _contig_strides(logical), (1 << 40) + i * (1 << 30))
              for i in range(2)]
    p = beluga.paged_from_tensors(shape, layers, "KBTHD")
    assert p.device == 0 and p.layer_base(1) == (1 << 40) + (1 << 30)
    assert p.strides == beluga.PagedKV.vllm(shape, 8, "flash_attn", "NHD", [1 << 40] * 2,
                                            device=0).strides
    mixed = [layers[0], FakeCudaTensor(logical, _contig_strides(logical), 1 << 42)]
    mixed[1].device = type("D", (), {"type": "cpu", "index": None})()
    with pytest.raises(ValueError, match="one device"):
        beluga.paged_from_tensors(shape, mixed, "KBTHD")


def test_stream_handles():
    class S:
        cuda_stream = 1234
    assert beluga.gpu.stream_handle(0) == 0
    assert beluga.gpu.stream_handle(S()) == 1234
    with pytest.raises(ValueError):
        beluga.gpu.stream_handle(-1)
    with pytest.raises(TypeError, match="cuda_stream"):
        beluga.gpu.stream_handle("default")


def test_cross_layer_cpu_matches_indexing():
    # The cross-layer descriptor the GPU path uses, checked on the CPU:
    # NHD [NB, L, 2, T, H, D] in one buffer.
    rng = np.random.default_rng(3)
    L, NB, T, H, D = 3, 5, 4, 2, 8
    shape = beluga.KVShape(L, T, H, D, "fp32")
    a = rng.standard_normal((NB, L, 2, T, H, D)).astype(np.float32)
    p = beluga.PagedKV.vllm_cross_layer(shape, NB, "flash_attn", "NHD", a.ctypes.data, owners=[a])
    out = np.zeros((2, shape.block_bytes), np.uint8)
    beluga.CpuCopier().gather(p, [4, 1], out)
    assert (out[0].view(np.float32).reshape(L, 2, T, H, D) == a[4]).all()
    assert (out[1].view(np.float32).reshape(L, 2, T, H, D) == a[1]).all()
    assert p.run_bytes() == (shape.block_bytes, 1)


GPU_LAYOUTS = [("flash_attn", "NHD"), ("flash_attn", "HND"), ("flashinfer", "NHD"),
               ("flashinfer", "HND"), ("cross", "NHD")]


@pytest.mark.parametrize("backend,order", GPU_LAYOUTS)
def test_gpu_gather_scatter_match_the_cpu_byte_for_byte(backend, order, pool):
    """CUDA tensors <-> registered pool memory through GpuCopier, against the
    CPU copier on host copies of the same tensors."""
    torch = require_gpu()
    L, NB, T, H, D = 3, 9, 16, 4, 64
    shape = beluga.KVShape(L, T, H, D, "bf16")
    g = torch.Generator().manual_seed(5)
    if backend == "cross":
        phys = torch.randn((NB, L, 2, T, H, D), generator=g).bfloat16()
        dev = phys.cuda()
        host_p = beluga.PagedKV.vllm_cross_layer(shape, NB, "flash_attn", "NHD", phys.data_ptr(),
                                                 owners=[phys])
        dev_p = beluga.PagedKV.vllm_cross_layer(shape, NB, "flash_attn", "NHD", dev.data_ptr(),
                                                owners=[dev], device=dev.device.index)
    else:
        dims = {"flash_attn": (2, NB, T, H, D), "flashinfer": (NB, 2, T, H, D)}[backend]
        if order == "HND":
            dims = dims[:2] + (H, T, D)
        phys = [torch.randn(dims, generator=g).bfloat16() for _ in range(L)]
        dev = [t.cuda() for t in phys]
        host_p = beluga.PagedKV.vllm(shape, NB, backend, order, [t.data_ptr() for t in phys], owners=phys)
        dev_p = beluga.PagedKV.vllm(shape, NB, backend, order, [t.data_ptr() for t in dev], owners=dev,
                                    device=dev[0].device.index)
    bb = shape.block_bytes
    with pool.create_region("gpu", 8 * beluga.REGION_ALIGN) as r:
        m = r.map()
        reg = m.register_gpu(0)
        assert m.gpu is reg and reg.chunks >= 1
        with pytest.raises(ValueError, match="already"):
            m.register_gpu(0)
        view = np.frombuffer(m, np.uint8)
        ids = [7, 0, 4]
        addrs = [reg.device_address(reg.host_address + i * bb, bb) for i in range(3)]
        gpu = beluga.gpu.copier(0)
        ev = beluga.gpu.gather(gpu, dev_p, ids, addrs)
        ev.synchronize()
        assert ev.query()
        want = np.zeros((3, bb), np.uint8)
        beluga.CpuCopier().gather(host_p, ids, want)
        assert (view[:3 * bb].reshape(3, bb) == want).all(), "GPU gather differs from the CPU's"
        # gather_sum: the same bytes, and each block's store checksum in the addresses' order.
        view[:3 * bb] = 0
        ev = beluga.gpu.gather_sum(gpu, dev_p, ids, addrs)
        ev.synchronize()
        assert (view[:3 * bb].reshape(3, bb) == want).all(), "GPU gather_sum differs from the CPU's"
        assert ev.sums == [beluga.checksum(want[i]) for i in range(3)]
        with pytest.raises(AttributeError, match="gather_sum"):
            beluga.gpu.gather(gpu, dev_p, ids, addrs).sums
        # Scatter the blocks back into other engine blocks, layers 1..2, on torch's stream.
        beluga.gpu.scatter(gpu, dev_p, [1, 2, 3], addrs, layers=(1, 3)).wait(
            torch.cuda.current_stream().cuda_stream)
        beluga.CpuCopier().scatter(host_p, [1, 2, 3], want, layers=(1, 3))
        torch.cuda.synchronize()
        got = dev.cpu() if backend == "cross" else [t.cpu() for t in dev]
        same = torch.equal(got, phys) if backend == "cross" else all(
            torch.equal(a, b) for a, b in zip(got, phys))
        assert same, "GPU scatter differs from the CPU's"
        del view
        reg.close()
        assert reg.closed and m.gpu is None
        m.close()


def test_reservation_and_pin_addresses_lie_in_the_mapping_the_cache_is_attached_over(pool):
    """What the GPU path hands GpuRegistration.device_address(): the host
    addresses of reserved slots and pins, inside the mapping."""
    fp = beluga.Fingerprint(model_id="t", num_layers=2, block_size=4, num_kv_heads=2,
                            head_size=8, dtype="bf16")
    with pool.create_region("addr", 4 << 20) as r:
        m = r.map()
        beluga.KVCache.format(m, fp)
        c = beluga.KVCache.attach(m, fp)
        keys = beluga.hash_tokens(beluga.root_key("0"), range(8), 4)
        bb = beluga.shape_of(fp).block_bytes
        res = c.reserve(keys, bb)
        offsets = [res.offset(i) for i in range(2)]
        for i in range(2):
            a = res.address(i)
            assert m.address <= a and a + bb <= m.address + m.size
            assert a == np.frombuffer(res.view(i), np.uint8).ctypes.data
            assert a - m.address == res.offset(i)
        assert res.commit() == [0, 0]
        with pytest.raises(ValueError, match="no slot"):
            res.address(0)
        pins = c.pin(keys)
        assert [p.address for p in pins] == [m.address + o for o in offsets]
        for p in pins:
            p.unpin()
        del res
        c.detach()
        m.close()
