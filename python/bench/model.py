# SPDX-License-Identifier: Apache-2.0
"""A small Llama-style decoder-only transformer with a paged KV cache.

Random weights (the point is the compute and the KV traffic, not the text),
RMSNorm, rotary position embeddings, grouped-query attention, SwiGLU.  The
KV cache is paged exactly like vLLM's FlashAttention backend: one tensor per
layer of shape [2, num_blocks, block_size, num_kv_heads, head_size], so the
Beluga connector code (beluga_vllm.blockio) moves its blocks unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelShape:
    vocab: int = 32000
    d_model: int = 1024
    layers: int = 8
    heads: int = 8
    kv_heads: int = 2
    head_size: int = 128
    ffn: int = 2816
    block_size: int = 16
    dtype: str = "bfloat16"

    @property
    def params(self):
        attn = self.d_model * (self.heads + 2 * self.kv_heads) * self.head_size + \
            self.heads * self.head_size * self.d_model
        return 2 * self.vocab * self.d_model + self.layers * (attn + 3 * self.d_model * self.ffn)

    @property
    def kv_bytes_per_token(self):
        return self.layers * 2 * self.kv_heads * self.head_size * torch.tensor(
            [], dtype=getattr(torch, self.dtype)).element_size()

    def describe(self):
        d = asdict(self)
        d["params_M"] = round(self.params / 1e6, 1)
        d["kv_bytes_per_token"] = self.kv_bytes_per_token
        return d


SMOKE_SHAPE = ModelShape(vocab=512, d_model=64, layers=2, heads=4, kv_heads=2, head_size=16,
                         ffn=128, block_size=16, dtype="float32")


class PagedModel:
    def __init__(self, shape: ModelShape, num_blocks: int, seed: int = 1234):
        self.shape = s = shape
        self.dtype = getattr(torch, s.dtype)
        g = torch.Generator().manual_seed(seed)

        def w(out_f, in_f):
            return (torch.randn(out_f, in_f, generator=g) / math.sqrt(in_f)).to(self.dtype)

        self.embed = (torch.randn(s.vocab, s.d_model, generator=g)).to(self.dtype)
        self.lm_head = w(s.vocab, s.d_model)
        self.blocks = []
        for _ in range(s.layers):
            self.blocks.append(dict(
                wq=w(s.heads * s.head_size, s.d_model), wk=w(s.kv_heads * s.head_size, s.d_model),
                wv=w(s.kv_heads * s.head_size, s.d_model), wo=w(s.d_model, s.heads * s.head_size),
                gate=w(s.ffn, s.d_model), up=w(s.ffn, s.d_model), down=w(s.d_model, s.ffn)))
        inv = 1.0 / (10000 ** (torch.arange(0, s.head_size, 2).float() / s.head_size))
        self.inv_freq = inv
        self.num_blocks = num_blocks
        # vLLM FlashAttention layout, one tensor per layer.
        self.kv = [torch.zeros(2, num_blocks, s.block_size, s.kv_heads, s.head_size, dtype=self.dtype)
                   for _ in range(s.layers)]

    # ------------------------------------------------------------ pieces

    def _rms(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(self.dtype)

    def _rope(self, x, pos):
        # x: [n, heads, head_size]; rotate pairs (first half, second half).
        ang = pos.float()[:, None] * self.inv_freq[None, :]
        cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
        x1, x2 = x[..., : x.shape[-1] // 2].float(), x[..., x.shape[-1] // 2:].float()
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).to(self.dtype)

    def _slots(self, block_table, begin, end):
        bs = self.shape.block_size
        p = torch.arange(begin, end)
        return torch.tensor(block_table, dtype=torch.long)[p // bs] * bs + p % bs

    def _attention(self, q, k_all, v_all, start, chunk=256):
        # q [n, H, D]; k_all/v_all [ctx, KVH, D]; causal: query i sits at start+i.
        # Queries go in chunks that only see the keys they may attend to, and
        # the group's query heads are stacked: one GEMM per KV head and chunk
        # (oneDNN's fast path for bf16); the score matrix is touched twice.
        s = self.shape
        n, group = q.shape[0], s.heads // s.kv_heads
        q = q * (1.0 / math.sqrt(s.head_size))
        out = torch.empty(n, s.heads, s.head_size, dtype=self.dtype)
        keys = [k_all[:, g].contiguous() for g in range(s.kv_heads)]
        vals_t = [v_all[:, g].t().contiguous() for g in range(s.kv_heads)]
        for i0 in range(0, n, chunk):
            i1 = min(n, i0 + chunk)
            ctx = start + i1
            m = i1 - i0
            mask = torch.arange(ctx)[None, :] > (start + torch.arange(i0, i1))[:, None]
            for g in range(s.kv_heads):
                qg = q[i0:i1, g * group:(g + 1) * group].transpose(0, 1).reshape(group * m, -1)
                scores = F.linear(qg, keys[g][:ctx]).view(group, m, ctx)
                scores.masked_fill_(mask, float("-inf"))
                p = torch.softmax(scores, -1).view(group * m, ctx)
                og = F.linear(p, vals_t[g][:, :ctx])
                out[i0:i1, g * group:(g + 1) * group] = og.view(group, m, -1).transpose(0, 1)
        return out

    # ----------------------------------------------------------- forward

    @torch.no_grad()
    def forward(self, tokens, start, block_table):
        """Compute positions start..start+len(tokens)-1 (K/V before `start` must
        be in the cache already), write their K/V, return the last logits."""
        s = self.shape
        n = len(tokens)
        pos = torch.arange(start, start + n)
        slots = self._slots(block_table, start, start + n)
        ctx_slots = self._slots(block_table, 0, start + n)
        x = self.embed[torch.tensor(tokens, dtype=torch.long)]
        for layer, b in enumerate(self.blocks):
            h = self._rms(x)
            q = self._rope(F.linear(h, b["wq"]).view(n, s.heads, s.head_size), pos)
            k = self._rope(F.linear(h, b["wk"]).view(n, s.kv_heads, s.head_size), pos)
            v = F.linear(h, b["wv"]).view(n, s.kv_heads, s.head_size)
            flat = self.kv[layer].view(2, -1, s.kv_heads, s.head_size)
            flat[0, slots] = k
            flat[1, slots] = v
            att = self._attention(q, flat[0, ctx_slots], flat[1, ctx_slots], start)
            x = x + F.linear(att.reshape(n, -1), b["wo"])
            h = self._rms(x)
            x = x + F.linear(F.silu(F.linear(h, b["gate"])) * F.linear(h, b["up"]), b["down"])
        return F.linear(self._rms(x[-1:]), self.lm_head)[0].float()

    def decode(self, first, pos, block_table, count):
        """Greedy decoding after the prompt: `first` (its token) at position
        `pos`, then count - 1 more tokens; all `count` tokens."""
        out = [first]
        for _ in range(count - 1):
            logits = self.forward([out[-1]], pos, block_table)
            out.append(int(torch.argmax(logits)))
            pos += 1
        return out
