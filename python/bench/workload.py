# SPDX-License-Identifier: Apache-2.0
"""The shared-prefix workload: long documents asked several questions, and
multi-turn chats whose every turn resends the conversation so far.

Token ids are drawn from a seeded generator, so every run and every
configuration sends byte-identical prompts.  Chat histories use scripted
assistant replies (as a replayed chat log does), so a turn's prefix does not
depend on what the model generated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkloadShape:
    docs: int = 4
    doc_tokens: int = 1024
    questions: int = 3          # per document
    question_tokens: int = 32
    chats: int = 3
    turns: int = 4
    system_tokens: int = 64
    user_tokens: int = 96
    reply_tokens: int = 64
    output_tokens: int = 8      # generated per request


SMOKE_WORKLOAD = WorkloadShape(docs=2, doc_tokens=64, questions=2, question_tokens=8, chats=1,
                               turns=2, system_tokens=16, user_tokens=16, reply_tokens=16,
                               output_tokens=2)


@dataclass
class Request:
    req_id: str
    kind: str                   # "doc" or "chat"
    prompt: list
    output_tokens: int
    after: str | None = None    # req_id that must complete first (previous chat turn)
    meta: dict = field(default_factory=dict)


def build(shape: WorkloadShape, vocab: int, seed: int = 7):
    """Requests in arrival order: documents round-robin (so one document's
    questions come far apart), chat turns interleaved with them."""
    rnd = random.Random(seed)

    def toks(n):
        return [rnd.randrange(1, vocab) for _ in range(n)]

    docs = [toks(shape.doc_tokens) for _ in range(shape.docs)]
    doc_reqs = []
    for q in range(shape.questions):
        for d in range(shape.docs):
            doc_reqs.append(Request(f"doc{d}-q{q}", "doc", docs[d] + toks(shape.question_tokens),
                                    shape.output_tokens, meta={"doc": d, "question": q}))
    chat_reqs = []
    system = toks(shape.system_tokens)
    for c in range(shape.chats):
        history = list(system)
        prev = None
        for t in range(shape.turns):
            history += toks(shape.user_tokens)
            rid = f"chat{c}-t{t}"
            chat_reqs.append(Request(rid, "chat", list(history), shape.output_tokens, after=prev,
                                     meta={"chat": c, "turn": t}))
            history += toks(shape.reply_tokens)     # the scripted assistant reply
            prev = rid
    # Interleave: one chat turn after every few document questions.
    out, every = [], max(1, len(doc_reqs) // max(1, len(chat_reqs)))
    ci = 0
    for i, r in enumerate(doc_reqs):
        out.append(r)
        if (i + 1) % every == 0 and ci < len(chat_reqs):
            out.append(chat_reqs[ci])
            ci += 1
    out += chat_reqs[ci:]
    return out
