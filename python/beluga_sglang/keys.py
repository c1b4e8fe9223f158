# SPDX-License-Identifier: Apache-2.0
"""SGLang's page keys and their Beluga form.

SGLang names a page of ``page_size`` tokens by a chained SHA-256: the digest
of the parent page's digest (its 32 bytes, absent for the first page)
followed by each token id as 4 little-endian bytes, written as 64 lowercase
hex characters (``get_hash_str`` in sglang/srt/mem_cache/utils.py).  There is
no seed: two SGLang instances always agree on the keys of one prefix.

A Beluga key is 32 bytes: the digest itself.  A key string that is not 64
hex characters (no SGLang version at the commit Documentation/sglang.md
names makes one) is stored under the SHA-256 of its UTF-8 bytes, so any
string key still works.
"""

from __future__ import annotations

import hashlib

# The fingerprint's hash_fn field for SGLang's key scheme: distinct from
# vLLM's ("sha256_cbor", "sha256"), so an SGLang and a vLLM instance never
# share one cache with keys that can never match.
HASH_FN = "sglang_sha256"
HASH_SEED = ""


def to_key(key):
    """One SGLang key (a hex string) as the store's 32-byte key."""
    if len(key) == 64:
        try:
            return bytes.fromhex(key)
        except ValueError:
            pass
    return hashlib.sha256(key.encode()).digest()


def to_keys(keys):
    return [to_key(k) for k in keys]


def page_hashes(token_ids, page_size, prior_hash=None):
    """SGLang's keys of the full pages of `token_ids` after `prior_hash`."""
    out = []
    for start in range(0, len(token_ids) - page_size + 1, page_size):
        h = hashlib.sha256()
        if prior_hash:
            h.update(bytes.fromhex(prior_hash))
        for t in token_ids[start:start + page_size]:
            h.update(int(t).to_bytes(4, byteorder="little", signed=False))
        prior_hash = h.hexdigest()
        out.append(prior_hash)
    return out
