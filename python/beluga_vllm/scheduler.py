# SPDX-License-Identifier: Apache-2.0
"""Scheduler-side bookkeeping of the connector, independent of vLLM.

Which leading blocks of a request the shared cache already holds (and so
get loaded instead of computed), and which blocks become full in a step (and
so get stored).  Keys are vLLM's block hashes, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BlockSpec:
    """Engine blocks and their keys, for one request in one step."""
    req_id: str
    block_ids: list
    keys: list


@dataclass
class StepPlan:
    """What the workers do in one step: loads before, saves during the forward."""
    loads: list = field(default_factory=list)    # BlockSpec
    saves: list = field(default_factory=list)    # BlockSpec

    def __bool__(self):
        return bool(self.loads or self.saves)


@dataclass
class _Req:
    hashes: list            # the request's live block_hashes list (grows while decoding)
    num_prompt_tokens: int
    block_ids: list = field(default_factory=list)
    next_save: int = 0      # first block not known to be in the cache yet
    load: BlockSpec | None = None
    request: object = None  # vLLM's Request, for num_publishable_block_hashes


class SchedulerState:
    def __init__(self, lookup, block_size, save_decode_blocks=True):
        self._lookup = lookup            # keys -> leading cached count
        self.block_size = block_size
        self.save_decode_blocks = save_decode_blocks
        self._matched = {}               # req_id -> (local tokens, external tokens)
        self._reqs = {}

    def matched_tokens(self, req_id, hashes, num_tokens, num_computed_tokens):
        """Tokens beyond `num_computed_tokens` that can be loaded (block-aligned,
        at most num_tokens - 1: the last token must be computed for its logits)."""
        bs = self.block_size
        hit = self._lookup(list(hashes)) * bs if hashes else 0
        hit = min(hit, num_tokens - 1)
        ext = max(0, hit - num_computed_tokens)
        self._matched[req_id] = (num_computed_tokens, ext)
        return ext

    def after_alloc(self, req_id, hashes, num_prompt_tokens, block_ids, num_external_tokens,
                    request=None):
        """Blocks are allocated: plan the load and start tracking the request."""
        bs = self.block_size
        local, ext = self._matched.pop(req_id, (0, 0))
        if num_external_tokens != ext:
            ext = num_external_tokens
        first = local // bs
        end = -(-(local + ext) // bs)
        st = _Req(hashes=hashes, num_prompt_tokens=num_prompt_tokens, block_ids=list(block_ids),
                  next_save=max(first, end), request=request)
        if ext > 0:
            st.load = BlockSpec(req_id, list(block_ids[first:end]), list(hashes[first:end]))
        self._reqs[req_id] = st

    def plan(self, scheduled):
        """`scheduled`: (req_id, all or new block ids, replace?, computed tokens, new tokens)
        for every request in the step.  Returns the StepPlan."""
        plan = StepPlan()
        for req_id, block_ids, replace, num_computed, num_new in scheduled:
            st = self._reqs.get(req_id)
            if st is None:
                continue
            if block_ids is not None:
                st.block_ids = list(block_ids) if replace else st.block_ids + list(block_ids)
            if st.load is not None:
                plan.loads.append(st.load)
                st.load = None
            spec = self._saves(req_id, st, num_computed + num_new)
            if spec.keys:
                plan.saves.append(spec)
        return plan

    def _saves(self, req_id, st, tokens_after):
        limit = tokens_after if self.save_decode_blocks else min(tokens_after, st.num_prompt_tokens)
        full = min(limit // self.block_size, len(st.hashes), len(st.block_ids))
        # Newer vLLM marks how many leading hashes may be published by
        # content (e.g. not the ones speculative decoding may still revise).
        publishable = getattr(st.request, "num_publishable_block_hashes", None)
        if publishable is not None:
            full = min(full, publishable)
        begin, st.next_save = st.next_save, max(st.next_save, full)
        return BlockSpec(req_id, st.block_ids[begin:full], list(st.hashes[begin:full]))

    def finished(self, req_id):
        self._reqs.pop(req_id, None)
        self._matched.pop(req_id, None)

    def tracked(self):
        return set(self._reqs)
