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
