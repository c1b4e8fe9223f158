# SPDX-License-Identifier: Apache-2.0
"""Minimal stand-ins for the vLLM types the KV connector API passes around.

vLLM cannot be installed here (no package index), so the connector tests
install these as `vllm.*` modules and drive BelugaConnector with the call
sequence vLLM uses.  Every name, signature and field below mirrors
vllm-project/vllm as read from its source (written anew, not copied):

- vllm/distributed/kv_transfer/kv_connector/v1/base.py @ 003df2961dd8830c317a61f9745ccd557da9fa06
  (KVConnectorBase_V1, KVConnectorMetadata, KVConnectorRole: every method and
  property, listed with its signature line in vllm_manifest.py and checked
  against this stand-in and the connector by test_vllm_manifest.py);
- vllm/distributed/kv_transfer/kv_connector/v1/metrics.py @ 578b601cd1f41074873532e99af8369bf75cb5a9
  (KVConnectorStats: a dataclass with ``data``, reset/aggregate/reduce/is_empty);
- vllm/config/vllm.py (compilation_config.static_forward_context, the layers by
  name; get_layers_from_vllm_config(vllm_config, layer_type, layer_names); when
  cudagraph_mode has full graphs and the connector class's
  requires_piecewise_for_cudagraph(kv_connector_extra_config) is true, vLLM
  overrides cudagraph_mode to PIECEWISE) and
  vllm/model_executor/layers/attention_layer_base.py (get_attn_backend());
- the attention backends' get_kv_cache_shape(num_blocks, block_size,
  num_kv_heads, head_size): flash_attn.py [2, B, T, H, D], flashinfer.py
  [B, 2, T, H, D], cpu_attn.py @ 00358600ed52e00c3c99b35e54aa916f900c4c15
  [2, B, H, T, D];
- vllm/v1/core/sched/scheduler.py @ 00024d314514900f361ad072af6931e403b7f589
  (schedule(): get_num_new_matched_tokens(request, num_new_local_computed_tokens),
  allocate_slots, update_state_after_alloc(request, kv_cache_manager.get_blocks(id),
  num_external_computed_tokens), build_connector_meta(scheduler_output) after the
  SchedulerOutput is built; _connector_finished(): request_finished(request,
  block_ids[0]); CachedRequestData with resumed_req_ids);
- vllm/v1/worker/kv_connector_model_runner_mixin.py (get_finished() version,
  e.g. the one using kv_connector.get_finished(scheduler_output.finished_req_ids);
  the newest, 00f4240ee6458263d76cf51ca7901ce1350bb4d1, calls start_load_kv
  before the forward when the step has synchronous loads, as here);
- vllm/model_executor/layers/attention/kv_transfer_utils.py @ 2b9269b23f28d9dbf33fe0a7ca493887e12a578e
  (per attention layer: wait_for_layer_load(layer_name), the attention, then
  save_kv_layer(layer_name, kv_cache, attn_metadata));
- vllm/v1/core/kv_cache_utils.py: BlockHash = bytes; hash_block_tokens with
  sha256_cbor = sha256(cbor2.dumps((parent, tuple(tokens), extra), canonical=True)),
  NONE_HASH = sha256_cbor(PYTHONHASHSEED).
"""

from __future__ import annotations

import abc
import enum
import hashlib
import importlib
import os
import sys
import types
from dataclasses import dataclass, field

import cbor2

VLLM_BASE_COMMIT = "003df2961dd8830c317a61f9745ccd557da9fa06"
VLLM_SCHEDULER_COMMIT = "00024d314514900f361ad072af6931e403b7f589"


# ---------------------------------------------------------------- base.py

class KVConnectorRole(enum.Enum):
    SCHEDULER = 0
    WORKER = 1


class KVConnectorMetadata(abc.ABC):  # noqa: B024 (as in vLLM: a marker base)
    pass


class KVConnectorBase_V1(abc.ABC):
    """Every method and property of vLLM's base class, with its defaults."""

    @property
    def prefer_cross_layer_blocks(self):
        return False

    @property
    def supports_eagle_prefix_cache_hashing(self):
        return False

    @property
    def requires_kv_delivery(self):
        return self._kv_transfer_config.is_kv_producer

    def __init__(self, vllm_config, role, kv_cache_config):
        self._connector_metadata = None
        self._vllm_config = vllm_config
        if vllm_config.kv_transfer_config is None:
            raise ValueError("kv_transfer_config must be set for KVConnectorBase_V1")
        self._kv_transfer_config = vllm_config.kv_transfer_config
        self._kv_cache_config = kv_cache_config
        self._role = role
        self.use_eagle_prefix_cache_hashing = False

    def set_eagle_prefix_cache_hashing(self, enabled):
        self.use_eagle_prefix_cache_hashing = enabled

    @property
    def role(self):
        return self._role

    # worker side
    def bind_connector_metadata(self, connector_metadata):
        self._connector_metadata = connector_metadata

    def clear_connector_metadata(self):
        self._connector_metadata = None

    def _get_connector_metadata(self):
        assert self._connector_metadata is not None
        return self._connector_metadata

    def has_connector_metadata(self):
        return self._connector_metadata is not None

    def register_kv_caches(self, kv_caches):
        return

    def register_cross_layers_kv_cache(self, kv_cache, attn_backend):
        return

    def set_host_xfer_buffer_ops(self, copy_operation):
        return

    def handle_preemptions(self, kv_connector_metadata):
        return

    @abc.abstractmethod
    def start_load_kv(self, forward_context, **kwargs): ...

    @abc.abstractmethod
    def wait_for_layer_load(self, layer_name): ...

    @abc.abstractmethod
    def save_kv_layer(self, layer_name, kv_layer, attn_metadata, **kwargs): ...

    @abc.abstractmethod
    def wait_for_save(self): ...

    def get_finished(self, finished_req_ids):
        return None, None

    def get_block_ids_with_load_errors(self):
        return set()

    def shutdown(self):
        return None

    def get_kv_connector_stats(self):
        return None

    def get_kv_connector_kv_cache_events(self):
        return None

    def get_handshake_metadata(self):
        return None

    def build_connector_worker_meta(self):
        return None

    # scheduler side
    def bind_gpu_block_pool(self, gpu_block_pool):
        return

    @abc.abstractmethod
    def get_num_new_matched_tokens(self, request, num_computed_tokens): ...

    @abc.abstractmethod
    def update_state_after_alloc(self, request, blocks, num_external_tokens): ...

    @abc.abstractmethod
    def build_connector_meta(self, scheduler_output): ...

    def on_new_request(self, request):
        return

    def update_connector_output(self, connector_output):
        return

    def request_finished(self, request, block_ids):
        return False, None

    def take_events(self):
        return ()

    def has_pending_push_work(self):
        return False

    @classmethod
    def get_required_kvcache_layout(cls, vllm_config):
        if cls is KVConnectorBase_V1:
            raise TypeError("get_required_kvcache_layout should not be called "
                            "on the abstract base class")
        return None

    @classmethod
    def requires_piecewise_for_cudagraph(cls, extra_config):
        return False

    def get_finished_count(self):
        return None

    @classmethod
    def build_kv_connector_stats(cls, data=None):
        return None

    def set_xfer_handshake_metadata(self, metadata):
        return None

    def set_xfer_handshake_metadata_pp_aware(self, metadata):
        if any(pp_rank != 0 for pp_rank, _ in metadata):
            raise ValueError(f"{type(self).__name__} received pp_rank > 0 handshake metadata "
                             "but does not support PP-disaggregated KV transfer.")
        self.set_xfer_handshake_metadata({tp: m for (_, tp), m in metadata.items()})

    @classmethod
    def build_prom_metrics(cls, vllm_config, metric_types, labelnames, per_engine_labelvalues):
        return None

    def reset_cache(self):
        return None


# ------------------------------------------------------------ metrics.py

@dataclass
class KVConnectorStats:
    data: dict = field(default_factory=dict)

    def reset(self):
        raise NotImplementedError

    def aggregate(self, other):
        raise NotImplementedError

    def reduce(self):
        raise NotImplementedError

    def is_empty(self):
        raise NotImplementedError


# ----------------------------------------------------------- configs

@dataclass
class KVTransferConfig:
    kv_connector: str = "BelugaConnector"
    kv_connector_module_path: str = "beluga_vllm.connector"
    kv_role: str = "kv_both"
    kv_connector_extra_config: dict = field(default_factory=dict)
    engine_id: str = "engine-0"

    @property
    def is_kv_producer(self):
        return self.kv_role in ("kv_producer", "kv_both")

    def get_from_extra_config(self, key, default):
        return self.kv_connector_extra_config.get(key, default)


@dataclass
class CacheConfig:
    block_size: int = 16
    cache_dtype: str = "auto"
    prefix_caching_hash_algo: str = "sha256_cbor"
    enable_prefix_caching: bool = True


@dataclass
class ParallelConfig:
    tensor_parallel_size: int = 1
    rank: int = 0


@dataclass
class ModelConfig:
    model: str = "test/tiny-llama"
    revision: str | None = "r1"
    dtype: str = "bfloat16"
    num_layers: int = 2
    num_kv_heads: int = 2
    head_size: int = 8

    def get_num_layers(self, parallel_config):
        return self.num_layers

    def get_num_kv_heads(self, parallel_config):
        return self.num_kv_heads // parallel_config.tensor_parallel_size

    def get_head_size(self):
        return self.head_size


class CUDAGraphMode(enum.Enum):
    """vllm/config/compilation.py: the modes a connector test tells apart."""
    NONE = 0
    PIECEWISE = 1
    FULL_AND_PIECEWISE = 4   # full graphs for uniform decode batches, piecewise otherwise

    def has_full_cudagraphs(self):
        return self is CUDAGraphMode.FULL_AND_PIECEWISE


@dataclass
class CompilationConfig:
    static_forward_context: dict = field(default_factory=dict)   # layer name -> layer
    cudagraph_mode: CUDAGraphMode = CUDAGraphMode.NONE


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    parallel_config: ParallelConfig = field(default_factory=ParallelConfig)
    kv_transfer_config: KVTransferConfig | None = field(default_factory=KVTransferConfig)
    compilation_config: CompilationConfig = field(default_factory=CompilationConfig)

    def resolve_cudagraph_mode(self, connector_cls):
        """VllmConfig's check: a connector that needs piecewise graphs gets them."""
        cc, ktc = self.compilation_config, self.kv_transfer_config
        if (ktc is not None and cc.cudagraph_mode.has_full_cudagraphs()
                and connector_cls.requires_piecewise_for_cudagraph(ktc.kv_connector_extra_config)):
            cc.cudagraph_mode = CUDAGraphMode.PIECEWISE


def get_layers_from_vllm_config(vllm_config, layer_type, layer_names=None):
    fc = vllm_config.compilation_config.static_forward_context
    if layer_names is None:
        layer_names = list(fc.keys())
    return {n: layer for n in layer_names if isinstance(layer := fc.get(n), layer_type)}


class AttentionLayerBase(abc.ABC):
    @abc.abstractmethod
    def get_attn_backend(self): ...


class Attention(AttentionLayerBase):
    """An attention layer as the static forward context holds it."""

    def __init__(self, backend):
        self._backend = backend

    def get_attn_backend(self):
        return self._backend


@dataclass
class KVCacheGroupSpec:
    layer_names: list


@dataclass
class KVCacheTensor:
    size: int
    shared_by: list


@dataclass
class KVCacheConfig:
    num_blocks: int
    kv_cache_groups: list
    kv_cache_tensors: list = field(default_factory=list)


class FlashAttentionBackend:
    """The bits of vllm/v1/attention/backends/flash_attn.py a connector sees."""

    @staticmethod
    def get_name():
        return "FLASH_ATTN"

    @staticmethod
    def get_kv_cache_shape(num_blocks, block_size, num_kv_heads, head_size, cache_dtype_str="auto"):
        return (2, num_blocks, block_size, num_kv_heads, head_size)

    @staticmethod
    def get_kv_cache_stride_order(include_num_layers_dimension=False):
        # NHD; with the layers dimension: physical [num_blocks, layers, 2, T, H, D].
        return (2, 0, 1, 3, 4, 5) if include_num_layers_dimension else (0, 1, 2, 3, 4)


class FlashInferBackend:
    @staticmethod
    def get_name():
        return "FLASHINFER"

    @staticmethod
    def get_kv_cache_shape(num_blocks, block_size, num_kv_heads, head_size, cache_dtype_str="auto"):
        return (num_blocks, 2, block_size, num_kv_heads, head_size)


class CPUAttentionBackend:
    """vllm/v1/attention/backends/cpu_attn.py: heads before tokens."""

    @staticmethod
    def get_name():
        return "CPU_ATTN"

    @staticmethod
    def get_kv_cache_shape(num_blocks, block_size, num_kv_heads, head_size, cache_dtype_str="auto"):
        return (2, num_blocks, num_kv_heads, block_size, head_size)


class MLABackend:
    """An MLA backend: one latent vector per token, no K/V split."""

    @staticmethod
    def get_name():
        return "FLASHMLA"

    @staticmethod
    def get_kv_cache_shape(num_blocks, block_size, num_kv_heads, head_size, cache_dtype_str="auto"):
        return (num_blocks, block_size, head_size)


# ------------------------------------------------- requests and hashes

def sha256_cbor(obj):
    return hashlib.sha256(cbor2.dumps(obj, canonical=True)).digest()


def none_hash():
    return sha256_cbor(os.environ["PYTHONHASHSEED"])


class Request:
    """vllm.v1.request.Request, the fields the connector reads."""

    def __init__(self, request_id, prompt_token_ids, block_size, max_tokens=4):
        self.request_id = request_id
        self.prompt_token_ids = list(prompt_token_ids)
        self.num_prompt_tokens = len(self.prompt_token_ids)
        self._all_token_ids = list(prompt_token_ids)
        self.num_computed_tokens = 0
        self.max_tokens = max_tokens
        self.num_output_tokens = 0
        self.block_size = block_size
        self.block_hashes = []
        self.num_preemptions = 0
        # SamplingParams/PoolingParams: prompt logprobs and pooling must not
        # read the prefix cache.
        self.skip_reading_prefix_cache = False
        self._update_block_hashes()

    @property
    def all_token_ids(self):
        return self._all_token_ids

    @property
    def num_tokens(self):
        return len(self._all_token_ids)

    def _update_block_hashes(self):
        # kv_cache_utils.get_request_block_hasher: hash every new full block.
        bs = self.block_size
        while (len(self.block_hashes) + 1) * bs <= self.num_tokens:
            i = len(self.block_hashes)
            parent = self.block_hashes[-1] if self.block_hashes else none_hash()
            tokens = tuple(self._all_token_ids[i * bs:(i + 1) * bs])
            self.block_hashes.append(sha256_cbor((parent, tokens, None)))

    def append_output_token_ids(self, token):
        self._all_token_ids.append(token)
        self.num_output_tokens += 1
        self._update_block_hashes()


class KVCacheBlocks:
    def __init__(self, block_ids):
        self._ids = list(block_ids)

    def get_block_ids(self, allow_none=False):
        return (list(self._ids),)


@dataclass
class NewRequestData:
    req_id: str
    prompt_token_ids: list
    block_ids: tuple
    num_computed_tokens: int


@dataclass
class CachedRequestData:
    req_ids: list
    resumed_req_ids: set
    new_token_ids: list
    all_token_ids: dict
    new_block_ids: list
    num_computed_tokens: list
    num_output_tokens: list


@dataclass
class SchedulerOutput:
    scheduled_new_reqs: list
    scheduled_cached_reqs: CachedRequestData
    num_scheduled_tokens: dict
    total_num_scheduled_tokens: int
    finished_req_ids: set
    preempted_req_ids: set = field(default_factory=set)
    kv_connector_metadata: object = None


@dataclass
class FlashAttentionMetadata:
    num_actual_tokens: int
    slot_mapping: object


@dataclass
class ForwardContext:
    no_compile_layers: dict
    attn_metadata: dict
    virtual_engine: int = 0


# ------------------------------------------------------- installation

MODULES = {
    "vllm": {},
    "vllm.distributed": {},
    "vllm.distributed.kv_transfer": {},
    "vllm.distributed.kv_transfer.kv_connector": {},
    "vllm.distributed.kv_transfer.kv_connector.v1": {},
    "vllm.distributed.kv_transfer.kv_connector.v1.base": {
        "KVConnectorBase_V1": KVConnectorBase_V1,
        "KVConnectorMetadata": KVConnectorMetadata,
        "KVConnectorRole": KVConnectorRole,
    },
    "vllm.distributed.kv_transfer.kv_connector.v1.metrics": {
        "KVConnectorStats": KVConnectorStats,
    },
    "vllm.config": {
        "get_layers_from_vllm_config": get_layers_from_vllm_config,
        "CUDAGraphMode": CUDAGraphMode,
    },
    "vllm.model_executor": {},
    "vllm.model_executor.layers": {},
    "vllm.model_executor.layers.attention_layer_base": {
        "AttentionLayerBase": AttentionLayerBase,
    },
}


def install():
    """Put the stand-ins in sys.modules as vllm.*; returns an uninstall function."""
    saved = {name: sys.modules.get(name) for name in MODULES}
    for name, attrs in MODULES.items():
        mod = types.ModuleType(name)
        mod.__path__ = []  # a package
        for k, v in attrs.items():
            setattr(mod, k, v)
        sys.modules[name] = mod
    sys.modules.pop("beluga_vllm.connector", None)

    def uninstall():
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
        sys.modules.pop("beluga_vllm.connector", None)
    return uninstall


def create_connector(vllm_config, role, kv_cache_config):
    """KVConnectorFactory.create_connector for a connector named by module path."""
    ktc = vllm_config.kv_transfer_config
    module = importlib.import_module(ktc.kv_connector_module_path)
    cls = getattr(module, ktc.kv_connector)
    return cls(vllm_config, role, kv_cache_config)
