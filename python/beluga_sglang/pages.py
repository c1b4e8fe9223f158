# SPDX-License-Identifier: Apache-2.0
"""SGLang's host KV pool pages and Beluga blocks (no SGLang needed).

One Beluga block holds one SGLang page (``page_size`` tokens, every layer),
in a canonical byte order that does not depend on the host pool's layout,
so instances running ``page_first`` and ``page_first_direct`` share blocks:

- MHA (K and V): Beluga's own KV-block layout (beluga/kv_layout.h),
  ``[layer][K, V][token][head][head_dim]``; the fingerprint says
  ``layout="kv_block"``;
- MLA (one latent vector per token and layer, the same on every TP rank):
  ``[layer][token][1][kv_cache_dim]``; the fingerprint says
  ``layout="opaque"`` with ``num_kv_heads=1``, ``head_size=kv_cache_dim``.

The host pool tensors (SGLang's ``kv_buffer``, pool_host/mha.py and mla.py):

=================  ==============================================
MHA page_first     ``[2, size, layers, heads, head_dim]``
MHA page_first_dir ``[2, page_num, layers, page_size, heads, head_dim]``
MLA page_first     ``[size, layers, 1, kv_cache_dim]``
MLA page_first_dir ``[page_num, layers, page_size, 1, kv_cache_dim]``
=================  ==============================================

A page is read and written as a strided byte view of those tensors (no
copy), so moving a page between the host pool and a block is one copy.
"""

from __future__ import annotations

import beluga

from beluga_sglang import keys as K

LAYOUTS = ("page_first", "page_first_direct")

_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32",
           "float8_e4m3fn": "fp8_e4m3", "float8_e5m2": "fp8_e5m2"}


def beluga_dtype(torch_dtype):
    name = str(torch_dtype).replace("torch.", "")
    if name not in _DTYPES:
        raise ValueError(f"BelugaHiCacheStorage: host KV pool dtype {name} has no Beluga element "
                         f"type (supported: {', '.join(_DTYPES)})")
    return _DTYPES[name]


def kv_dtype(host, store_dtype):
    """The KV cache's element type.  SGLang stores an FP8 KV cache as uint8
    (its pools' store_dtype: index_put has no float8 kernel); the element
    type is then the device pool's dtype, which the fingerprint must name so
    that an e4m3 and an e5m2 instance never share pages."""
    import torch
    if store_dtype != torch.uint8:
        return store_dtype
    logical = getattr(getattr(host, "device_pool", None), "dtype", None)
    if logical is None or logical == torch.uint8:
        raise ValueError("BelugaHiCacheStorage: the host KV pool stores uint8 and its device "
                         "pool names no FP8 dtype: the KV element type is unknown")
    return logical


class HostPages:
    """Page views of one SGLang host KV pool (MHA or MLA)."""

    def __init__(self, host):
        import torch
        self.layout = getattr(host, "layout", None)
        if self.layout not in LAYOUTS:
            raise ValueError(f"BelugaHiCacheStorage supports the host KV pool layouts "
                             f"{' and '.join(LAYOUTS)} (--hicache-mem-layout), not {self.layout!r}")
        if hasattr(host, "entries") and hasattr(host, "anchor_entry"):
            raise ValueError("BelugaHiCacheStorage: the host pool is a HostPoolGroup (a hybrid "
                             "model: DSA indexer, Mamba or SWA pools beside the KV pool), which "
                             "SGLang moves through batch_*_v2: not implemented by this backend")
        buf = getattr(host, "kv_buffer", None)
        if buf is None:
            raise ValueError("BelugaHiCacheStorage: the host KV pool holds no KV tensor (a "
                             "dummy, allocator-only pool): nothing to store")
        if not isinstance(buf, torch.Tensor):
            raise ValueError("BelugaHiCacheStorage: the host KV pool keeps K and V in separate "
                             "tensors (head_dim != v_head_dim?): not supported")
        if int(getattr(host, "dcp_size", 1)) > 1:
            raise ValueError("BelugaHiCacheStorage: decode context parallelism (--dcp-size > 1) "
                             "splits each page across ranks: not supported")
        if buf.device.type != "cpu":
            raise ValueError(f"BelugaHiCacheStorage: the host KV pool is on {buf.device}, "
                             "not host memory")
        self.page_size = int(host.page_size)
        self.num_layers = int(host.layer_num)
        self.dtype = buf.dtype
        self.kv_dtype = kv_dtype(host, buf.dtype)
        self.mla = hasattr(host, "kv_cache_dim")
        if self.mla:
            self.num_heads, self.head_dim = 1, int(host.kv_cache_dim)
        else:
            self.num_heads, self.head_dim = int(host.head_num), int(host.head_dim)
        self.item = buf.element_size()
        # Byte view: the last dimension in bytes, every other stride kept.
        self.bytes = buf.view(torch.uint8)
        T, L, H, Db = self.page_size, self.num_layers, self.num_heads, self.head_dim * self.item
        self.canonical_shape = (L, T, H, Db) if self.mla else (L, 2, T, H, Db)
        self.page_bytes = L * T * H * Db * (1 if self.mla else 2)
        # One page in the host pool's own order (SGLang's flat data page).
        if self.mla:
            self.host_page_shape = ((T, L, 1, Db) if self.layout == "page_first"
                                    else (1, L, T, 1, Db))
        else:
            self.host_page_shape = ((2, T, L, H, Db) if self.layout == "page_first"
                                    else (2, 1, L, T, H, Db))
        want = self._expected_shape(buf)
        if tuple(self.bytes.shape) != want:
            raise ValueError(f"BelugaHiCacheStorage: host KV pool tensor of shape "
                             f"{tuple(buf.shape)} is not SGLang's {self.layout} "
                             f"{'MLA' if self.mla else 'MHA'} layout")

    def _expected_shape(self, buf):
        T, L, H, Db = self.page_size, self.num_layers, self.num_heads, self.head_dim * self.item
        n = buf.shape[1] if not self.mla else buf.shape[0]
        if self.mla:
            return (n, L, 1, Db) if self.layout == "page_first" else (n, L, T, 1, Db)
        return (2, n, L, H, Db) if self.layout == "page_first" else (2, n, L, T, H, Db)

    def to_canonical(self, page):
        """A host-order page view (host_page_shape) as the block's order."""
        if self.mla:
            return page.permute(1, 0, 2, 3) if self.layout == "page_first" else page[0]
        if self.layout == "page_first":
            return page.permute(2, 0, 1, 3, 4)
        return page[:, 0].permute(1, 0, 2, 3, 4)

    def host_page(self, index):
        """The page starting at host token index `index`, in the block's order
        (a view of the host pool: writing it writes the pool)."""
        index = int(index)
        if index % self.page_size:
            raise ValueError(f"host index {index} does not start a page")
        if self.layout == "page_first":
            page = (self.bytes[index:index + self.page_size] if self.mla
                    else self.bytes[:, index:index + self.page_size])
        else:
            p = index // self.page_size
            page = self.bytes[p:p + 1] if self.mla else self.bytes[:, p:p + 1]
        return self.to_canonical(page)

    def flat_page(self, tensor):
        """SGLang's flat data page (get_data_page / get_dummy_flat_data_page)
        as a view in the block's order."""
        import torch
        t = tensor.reshape(-1).view(torch.uint8)
        if t.numel() != self.page_bytes:
            raise ValueError(f"a data page of {t.numel()} bytes, expected {self.page_bytes}")
        return self.to_canonical(t.view(self.host_page_shape))

    def block(self, buf):
        """A block's bytes (a buffer or uint8 tensor) in the block's order."""
        import torch
        t = buf if isinstance(buf, torch.Tensor) else torch.frombuffer(buf, dtype=torch.uint8)
        return t[:self.page_bytes].view(self.canonical_shape)

    def page_starts(self, host_indices, n):
        """The first host index of each of `n` pages in `host_indices`."""
        if len(host_indices) < n * self.page_size:
            raise ValueError(f"{len(host_indices)} host indices for {n} pages of "
                             f"{self.page_size} tokens")
        return host_indices[0:n * self.page_size:self.page_size].tolist()


def fingerprint(pages, model_id, tp_rank, tp_size):
    """The Beluga fingerprint of an SGLang instance's pages."""
    common = dict(model_id=model_id, hash_fn=K.HASH_FN, hash_seed=K.HASH_SEED,
                  num_layers=pages.num_layers, block_size=pages.page_size,
                  num_kv_heads=pages.num_heads, head_size=pages.head_dim,
                  dtype=beluga_dtype(pages.kv_dtype), tp_rank=tp_rank, tp_size=tp_size)
    if pages.mla:
        return beluga.Fingerprint(layout="opaque", payload_bytes=pages.page_bytes, **common)
    return beluga.Fingerprint(**common)
