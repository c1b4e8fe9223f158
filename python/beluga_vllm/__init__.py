# SPDX-License-Identifier: Apache-2.0
"""beluga_vllm: vLLM's KV connector over a shared Beluga KV cache.

- ``beluga_vllm.BelugaConnector`` (module ``beluga_vllm.connector``): the
  KVConnectorBase_V1 implementation; importing it needs vLLM.
- ``beluga_vllm.blockio``: moving KV blocks between a paged KV cache and the
  store (used by the connector and by the end-to-end benchmark); no vLLM.
- ``beluga_vllm.scheduler``: the connector's scheduler bookkeeping; no vLLM.

Enable in vLLM with kv_connector="BelugaConnector",
kv_connector_module_path="beluga_vllm.connector" (Documentation/vllm.md).
"""

__all__ = ["BelugaConnector", "BelugaConnectorMetadata"]


def __getattr__(name):
    # vLLM is imported only when the connector itself is asked for.
    if name in __all__:
        from beluga_vllm import connector
        return getattr(connector, name)
    raise AttributeError(f"module 'beluga_vllm' has no attribute {name!r}")
