# SPDX-License-Identifier: Apache-2.0
"""beluga_sglang: a Beluga KV cache as SGLang's HiCache storage backend.

- ``beluga_sglang.BelugaHiCacheStorage`` (module ``beluga_sglang.storage``):
  the HiCacheStorage implementation SGLang loads with
  ``--hicache-storage-backend dynamic`` (Documentation/sglang.md).  It
  subclasses SGLang's HiCacheStorage when ``sglang`` is importable, and a
  plain base class otherwise (so it can be used and tested without SGLang).
- ``beluga_sglang.pages``: SGLang's host KV pool pages <-> Beluga blocks
  (layouts, fingerprint); no SGLang needed.
- ``beluga_sglang.keys``: SGLang's page keys (chained SHA-256 hex strings).
"""

__all__ = ["BelugaHiCacheStorage"]


def __getattr__(name):
    # The storage module (and SGLang, when present) is imported only on demand.
    if name in __all__:
        from beluga_sglang import storage
        return getattr(storage, name)
    raise AttributeError(f"module 'beluga_sglang' has no attribute {name!r}")
