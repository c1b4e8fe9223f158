# SPDX-License-Identifier: Apache-2.0
"""A miniature vLLM instance that drives a KV connector the way vLLM does.

Scheduler side (vllm/v1/core/sched/scheduler.py @ 00024d31): for a waiting
request, local prefix-cache lookup -> connector.get_num_new_matched_tokens
(request, num_new_local_computed_tokens) -> allocate_slots ->
connector.update_state_after_alloc(request, blocks, num_external_tokens);
running requests get new blocks as they grow; the SchedulerOutput is built,
then connector.build_connector_meta(scheduler_output) is attached to it;
num_computed_tokens advances; finished requests go through
connector.request_finished(request, block_ids) and into finished_req_ids.

Worker side (kv_connector_model_runner_mixin.py, kv_transfer_utils.py):
bind_connector_metadata -> start_load_kv(forward_context) -> for each
attention layer: wait_for_layer_load(name), the layer writes this step's
K/V into the paged cache, save_kv_layer(name, kv_cache, attn_metadata) ->
wait_for_save -> get_finished(finished_req_ids) ->
get_block_ids_with_load_errors -> clear_connector_metadata; the scheduler
then gets update_connector_output().

The "model" writes, for token position p of a request, K/V values that are a
function of tokens[0..p] (as a causal model's are), so any block loaded from
the cache can be checked against what this instance would have computed.
With check_attention, each layer's "attention" also reads, at the moment it
runs, the KV of every earlier position of the scheduled requests and records
any that differs (what a real model would turn into wrong output).

CUDA graphs (vllm/config/vllm.py, gpu_model_runner): the engine starts in
the given cudagraph_mode; VllmConfig switches FULL_AND_PIECEWISE to
PIECEWISE when the connector's requires_piecewise_for_cudagraph() says so.
Under FULL_AND_PIECEWISE a uniform decode batch (one new token per request)
replays a full graph: the per-layer hooks (wait_for_layer_load,
save_kv_layer) do not run; start_load_kv and wait_for_save still do.
"""

from __future__ import annotations

import importlib

import torch

import vllm_standins as V


def kv_value(prefix_sum, layer, kv, head, dim):
    # Small integers: exact in bf16.
    return float((prefix_sum * 7 + layer * 31 + kv * 17 + head * 5 + dim) % 251)


def expected_block(tokens, start, n, layers, heads, head_size):
    """[layers, 2, n, heads, head_size] expected K/V of positions start..start+n-1."""
    out = torch.empty(layers, 2, n, heads, head_size)
    s = sum((i + 1) * t for i, t in enumerate(tokens[:start]))
    for j in range(n):
        p = start + j
        s += (p + 1) * tokens[p]
        for layer in range(layers):
            for kv in range(2):
                for h in range(heads):
                    for d in range(head_size):
                        out[layer, kv, j, h, d] = kv_value(s, layer, kv, h, d)
    return out


class MiniVLLM:
    """One vLLM instance: a scheduler-side and a worker-side connector."""

    BACKENDS = {"flash_attn": V.FlashAttentionBackend, "flashinfer": V.FlashInferBackend,
                "cpu": V.CPUAttentionBackend}

    def __init__(self, vllm_config, num_blocks=64, layout="flash_attn", kernel_block_size=None,
                 local_prefix_cache=False, hnd=False, call_save_layers=True, cross_layer=False,
                 cudagraph_mode=None, check_attention=False, register_backend=True, device="cpu"):
        self.cfg = vllm_config
        if cudagraph_mode is not None:
            vllm_config.compilation_config.cudagraph_mode = cudagraph_mode
        mc = vllm_config.model_config
        self.bs = vllm_config.cache_config.block_size
        self.layers = mc.num_layers
        self.heads = mc.num_kv_heads
        self.hs = mc.head_size
        self.layer_names = [f"model.layers.{i}.self_attn.attn" for i in range(self.layers)]
        backend = self.BACKENDS[layout]
        if register_backend:
            vllm_config.compilation_config.static_forward_context = {
                n: V.Attention(backend) for n in self.layer_names}
        ktc = vllm_config.kv_transfer_config
        vllm_config.resolve_cudagraph_mode(
            getattr(importlib.import_module(ktc.kv_connector_module_path), ktc.kv_connector))
        self.check_attention = check_attention
        self.attention_errors = []   # (step, layer, req_id, position)
        self.kv_cache_config = V.KVCacheConfig(
            num_blocks, [V.KVCacheGroupSpec(self.layer_names)],
            [V.KVCacheTensor(0, [n]) for n in self.layer_names])
        self.sched = V.create_connector(vllm_config, V.KVConnectorRole.SCHEDULER, self.kv_cache_config)
        self.worker = V.create_connector(vllm_config, V.KVConnectorRole.WORKER, self.kv_cache_config)
        self.kbs = kernel_block_size or self.bs
        r = self.bs // self.kbs
        self.layout = layout
        dtype = getattr(torch, mc.dtype)
        self.device = device          # where the paged KV lives ("cuda": the connector's GPU path)
        self.kv_caches = {}
        for name in self.layer_names:
            nb = num_blocks * r
            if layout == "flash_attn":
                phys = (2, nb, self.heads, self.kbs, self.hs) if hnd else (2, nb, self.kbs, self.heads, self.hs)
                t = torch.zeros(phys, dtype=dtype, device=device)
                t = t.permute(0, 1, 3, 2, 4) if hnd else t
            elif layout == "cpu":   # logical and physical [2, NB, H, T, D]
                t = torch.zeros((2, nb, self.heads, self.kbs, self.hs), dtype=dtype, device=device)
            else:
                phys = (nb, 2, self.heads, self.kbs, self.hs) if hnd else (nb, 2, self.kbs, self.heads, self.hs)
                t = torch.zeros(phys, dtype=dtype, device=device)
                t = t.permute(0, 1, 3, 2, 4) if hnd else t
            self.kv_caches[name] = t
        if cross_layer:
            self._cross_layer(num_blocks, dtype)
        else:
            self.worker.register_kv_caches(self.kv_caches)
        self.free = list(range(num_blocks))
        self.local = {} if local_prefix_cache else None   # block hash -> block id
        self.waiting, self.running = [], []
        self.blocks = {}
        self.finished_req_ids = set()
        self.call_save_layers = call_save_layers
        self.steps = []            # (scheduler_output, load errors)
        self.hook_before_load = None
        self.layer_probe = None

    def _cross_layer(self, num_blocks, dtype):
        # vLLM's allocate_uniform_kv_caches: one buffer in the backend's stride
        # order with the layers dimension, permuted back to the logical shape;
        # layer i's tensor is permuted[i].
        be = V.FlashAttentionBackend
        shape = (self.layers,) + be.get_kv_cache_shape(num_blocks, self.bs, self.heads, self.hs)
        order = be.get_kv_cache_stride_order(include_num_layers_dimension=True)
        phys = torch.zeros([shape[i] for i in order], dtype=dtype, device=self.device)
        inv = [order.index(i) for i in range(len(order))]
        cross = phys.permute(*inv)
        self.kv_caches = {n: cross[i] for i, n in enumerate(self.layer_names)}
        self.worker.register_cross_layers_kv_cache(cross, be)

    # ------------------------------------------------------ scheduler

    def add(self, request):
        self.waiting.append(request)

    def _local_hits(self, req):
        if self.local is None:
            return [], 0
        ids = []
        for h in req.block_hashes:
            if h not in self.local:
                break
            ids.append(self.local[h])
        # vLLM never reports the whole prompt as computed (one token is recomputed).
        while ids and len(ids) * self.bs >= req.num_tokens:
            ids.pop()
        return ids, len(ids) * self.bs

    def _alloc(self, n):
        assert len(self.free) >= n, "mini engine out of blocks"
        out, self.free = self.free[:n], self.free[n:]
        return out

    def schedule(self):
        new_reqs, cached = [], V.CachedRequestData([], set(), [], {}, [], [], [])
        num_sched = {}
        for req in self.running:
            need = -(-(req.num_tokens) // self.bs) - len(self.blocks[req.request_id])
            new_ids = self._alloc(need) if need > 0 else []
            self.blocks[req.request_id] += new_ids
            cached.req_ids.append(req.request_id)
            cached.new_block_ids.append((new_ids,) if new_ids else None)
            cached.num_computed_tokens.append(req.num_computed_tokens)
            cached.num_output_tokens.append(req.num_output_tokens)
            num_sched[req.request_id] = req.num_tokens - req.num_computed_tokens
        while self.waiting:
            req = self.waiting.pop(0)
            local_ids, n_local = self._local_hits(req)
            ext, load_async = self.sched.get_num_new_matched_tokens(req, n_local)
            assert ext is not None and load_async is False
            total = -(-req.num_tokens // self.bs)
            block_ids = local_ids + self._alloc(total - len(local_ids))
            self.blocks[req.request_id] = block_ids
            self.sched.update_state_after_alloc(req, V.KVCacheBlocks(block_ids), ext)
            req.num_computed_tokens = n_local + ext
            num_sched[req.request_id] = req.num_tokens - req.num_computed_tokens
            resumed = req.num_preemptions > 0
            if resumed:   # a resumed request is a cached request with all its block ids
                cached.req_ids.append(req.request_id)
                cached.resumed_req_ids.add(req.request_id)
                cached.new_block_ids.append((list(block_ids),))
                cached.num_computed_tokens.append(req.num_computed_tokens)
                cached.num_output_tokens.append(req.num_output_tokens)
            else:
                new_reqs.append(V.NewRequestData(req.request_id, req.prompt_token_ids,
                                                 (list(block_ids),), req.num_computed_tokens))
            self.running.append(req)
        so = V.SchedulerOutput(new_reqs, cached, num_sched, sum(num_sched.values()),
                               self.finished_req_ids)
        so.kv_connector_metadata = self.sched.build_connector_meta(so)
        self.finished_req_ids = set()
        return so

    # --------------------------------------------------------- worker

    def execute(self, so):
        w = self.worker
        w.bind_connector_metadata(so.kv_connector_metadata)
        attn = {n: V.FlashAttentionMetadata(so.total_num_scheduled_tokens, None)
                for n in self.layer_names}
        fc = V.ForwardContext({n: None for n in self.layer_names}, attn)
        if self.hook_before_load:
            self.hook_before_load(so)
        w.start_load_kv(fc)
        hooks = not self.full_graph_replay(so)
        for layer, name in enumerate(self.layer_names):
            if hooks:
                w.wait_for_layer_load(name)
            if self.layer_probe:
                self.layer_probe(layer, name)
            if self.check_attention:
                self._attend(layer, so)
            self._write_layer(layer, so)
            if self.call_save_layers and hooks:
                w.save_kv_layer(name, self.kv_caches[name], attn[name])
        w.wait_for_save()
        fin = w.get_finished(so.finished_req_ids)
        errors = w.get_block_ids_with_load_errors()
        w.clear_connector_metadata()
        self.steps.append((so, errors))
        return fin, errors

    def full_graph_replay(self, so):
        """Whether this step replays a full CUDA graph (the hooks do not run)."""
        mode = self.cfg.compilation_config.cudagraph_mode
        return mode.has_full_cudagraphs() and bool(so.num_scheduled_tokens) and all(
            n == 1 for n in so.num_scheduled_tokens.values())

    def _attend(self, layer, so):
        """The layer's attention reads every earlier position of each request."""
        reqs = self._by_req()
        view = self._kernel_view(self.layer_names[layer])
        for req_id in so.num_scheduled_tokens:
            req = reqs[req_id]
            n = req.num_computed_tokens
            if n == 0:
                continue
            want = expected_block(req.all_token_ids, 0, n, self.layers, self.heads, self.hs)[layer]
            for p in range(n):
                kb, off = self._slot(req_id, p)
                if not torch.equal(self._token(view, kb, off).float().cpu(), want[:, p]):
                    self.attention_errors.append((len(self.steps), layer, req_id, p))

    def _by_req(self):
        return {r.request_id: r for r in self.running}

    def _kernel_view(self, name):
        t = self.kv_caches[name]
        if self.layout == "cpu":
            return t.transpose(2, 3)      # [2, NB', T', H, D]
        return t if self.layout == "flash_attn" else t.transpose(0, 1)   # [2, NB', T', H, D]

    @staticmethod
    def _token(view, kb, off):
        return view[:, kb, off]

    def _slot(self, req_id, p):
        r = self.bs // self.kbs
        b = self.blocks[req_id][p // self.bs]
        return b * r + (p % self.bs) // self.kbs, p % self.kbs

    def _write_layer(self, layer, so):
        reqs = self._by_req()
        view = self._kernel_view(self.layer_names[layer])
        for req_id, n in so.num_scheduled_tokens.items():
            req = reqs[req_id]
            start = req.num_computed_tokens
            vals = expected_block(req.all_token_ids, start, n, self.layers, self.heads, self.hs)
            for j in range(n):
                kb, off = self._slot(req_id, start + j)
                view[:, kb, off] = vals[layer, :, j].to(view.dtype)

    def paged_tokens(self, req_id, n):
        """[layers, 2, n, H, D] read back from the paged cache for positions 0..n-1."""
        out = torch.empty(self.layers, 2, n, self.heads, self.hs)
        for layer, name in enumerate(self.layer_names):
            view = self._kernel_view(name)
            for p in range(n):
                kb, off = self._slot(req_id, p)
                out[layer, :, p] = view[:, kb, off].float()
        return out

    def check_request(self, req, n=None):
        """The paged cache holds, for positions 0..n-1 (default: the computed
        ones), exactly what this instance would compute."""
        n = req.num_computed_tokens if n is None else n
        got = self.paged_tokens(req.request_id, n)
        want = expected_block(req.all_token_ids, 0, n, self.layers, self.heads, self.hs)
        return torch.equal(got, want)

    # ------------------------------------------------------ completion

    def update(self, so, max_tokens=None):
        """update_from_output: advance, sample one token per request, finish."""
        for req_id, n in so.num_scheduled_tokens.items():
            req = self._by_req()[req_id]
            req.num_computed_tokens += n
        self.sched.update_connector_output(None)
        for req in list(self.running):
            if req.num_computed_tokens < req.num_tokens:
                continue
            req.append_output_token_ids(1000 + req.num_output_tokens)
            if req.num_output_tokens >= (max_tokens or req.max_tokens):
                self.finish(req)

    def finish(self, req):
        self.running.remove(req)
        block_ids = self.blocks.pop(req.request_id)
        delay, params = self.sched.request_finished(req, block_ids)
        assert delay is False and params is None
        if self.local is not None:
            for h, b in zip(req.block_hashes, block_ids):
                self.local.setdefault(h, b)
            kept = set(self.local.values())
            self.free += [b for b in block_ids if b not in kept]
        else:
            self.free += block_ids
        self.finished_req_ids.add(req.request_id)

    def preempt(self, req):
        """_preempt_request: free the blocks, back to waiting, recompute later."""
        self.running.remove(req)
        self.free += self.blocks.pop(req.request_id)
        req.num_computed_tokens = 0
        req.num_preemptions += 1
        self.waiting.insert(0, req)

    def run_to_completion(self, max_steps=100):
        for _ in range(max_steps):
            if not self.waiting and not self.running:
                return
            so = self.schedule()
            self.execute(so)
            self.update(so)
        raise AssertionError("requests did not finish")

    def close(self):
        self.worker.shutdown()
        self.sched.shutdown()
