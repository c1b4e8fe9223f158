# SPDX-License-Identifier: Apache-2.0
"""What a HiCache storage backend meets in SGLang, quoted at named commits.

Each entry quotes SGLang's source as it stands at the commit named for its
file, with the line of the quote (for a def, the line of the ``def``), so
anyone can check it against
https://github.com/sgl-project/sglang/blob/<commit>/<file>#L<line>.
test_sglang_manifest.py checks BelugaHiCacheStorage and the stand-ins of
sglang_standins.py against it.  When SGLang changes, update the commit and
the entries from the new source: the test then shows what must follow.

The host pool files were read at the commits the source index holds for
them, which differ from the storage interface's.
"""

SGLANG_COMMIT = "001067fffe33427bee0ed2f007fb7551a1d76b44"

# ---------------------------------------------------------------- interface
STORAGE_FILE = "python/sglang/srt/mem_cache/hicache_storage.py"   # at SGLANG_COMMIT
STORAGE_CLASS_LINE = 159   # class HiCacheStorage(ABC):

# HiCacheStorageConfig (line 27): its fields, in order, as declared.
CONFIG_CLASS_LINE = 27
CONFIG_FIELDS = [
    "tp_rank: int",
    "tp_size: int",
    "pp_rank: int",
    "pp_size: int",
    "attn_cp_rank: int",
    "attn_cp_size: int",
    "is_mla_model: bool",
    "enable_storage_metrics: bool",
    "is_page_first_layout: bool",
    "model_name: Optional[str]",
    "dp_rank: int = 0",
    "dp_size: int = 1",
    "tp_lcm_size: Optional[int] = None",
    "should_split_heads: bool = False",
    "extra_config: Optional[dict] = None",
]

# Every member of HiCacheStorage: (name, kind, line of the def, signature).
STORAGE_ENTRIES = [
    ('register_mem_pool_host', 'method', 166,
     'def register_mem_pool_host(self, mem_pool_host: HostKVCache):'),
    ('register_mem_host_pool_v2', 'method', 169,
     'def register_mem_host_pool_v2(self, host_pool: HostKVCache, host_pool_name):'),
    ('batch_exists_v2', 'method', 174,
     "\n".join([
         'def batch_exists_v2(',
         '    self,',
         '    keys: List[str],',
         '    pool_transfers: Optional[List[PoolTransfer]] = None,',
         '    extra_info: Optional[HiCacheStorageExtraInfo] = None,',
         ') -> PoolTransferResult:',
     ])),
    ('batch_get_v2', 'method', 207,
     "\n".join([
         'def batch_get_v2(',
         '    self,',
         '    transfers: List[PoolTransfer],',
         '    extra_info: Optional[HiCacheStorageExtraInfo] = None,',
         ') -> dict[str, List[bool]]:',
     ])),
    ('batch_set_v2', 'method', 218,
     "\n".join([
         'def batch_set_v2(',
         '    self,',
         '    transfers: List[PoolTransfer],',
         '    extra_info: Optional[HiCacheStorageExtraInfo] = None,',
         ') -> dict[str, List[bool]]:',
     ])),
    ('batch_get_v1', 'method', 229,
     "\n".join([
         'def batch_get_v1(',
         '    self,',
         '    keys: List[str],',
         '    host_indices: torch.Tensor,',
         '    extra_info: Optional[HiCacheStorageExtraInfo] = None,',
         ') -> List[bool]:',
     ])),
    ('batch_set_v1', 'method', 246,
     "\n".join([
         'def batch_set_v1(',
         '    self,',
         '    keys: List[str],',
         '    host_indices: torch.Tensor,',
         '    extra_info: Optional[HiCacheStorageExtraInfo] = None,',
         ') -> List[bool]:',
     ])),
    ('get', 'abstractmethod', 263,
     "\n".join([
         'def get(',
         '    self,',
         '    key: str,',
         '    target_location: Optional[Any] = None,',
         '    target_sizes: Optional[Any] = None,',
         ') -> torch.Tensor | None:',
     ])),
    ('batch_get', 'abstractmethod', 277,
     "\n".join([
         'def batch_get(',
         '    self,',
         '    keys: List[str],',
         '    target_locations: Optional[Any] = None,',
         '    target_sizes: Optional[Any] = None,',
         ') -> List[torch.Tensor | None] | int:',
     ])),
    ('set', 'abstractmethod', 290,
     "\n".join([
         'def set(',
         '    self,',
         '    key: str,',
         '    value: Optional[Any] = None,',
         '    target_location: Optional[Any] = None,',
         '    target_sizes: Optional[Any] = None,',
         ') -> bool:',
     ])),
    ('batch_set', 'abstractmethod', 305,
     "\n".join([
         'def batch_set(',
         '    self,',
         '    keys: List[str],',
         '    values: Optional[Any] = None,',
         '    target_locations: Optional[Any] = None,',
         '    target_sizes: Optional[Any] = None,',
         ') -> bool:',
     ])),
    ('exists', 'abstractmethod', 319,
     'def exists(self, key: str) -> bool:'),
    ('batch_exists', 'method', 327,
     "\n".join([
         'def batch_exists(',
         '    self, keys: List[str], extra_info: Optional[HiCacheStorageExtraInfo] = None',
         ') -> int:',
     ])),
    ('clear', 'method', 340,
     'def clear(self) -> None:'),
    ('get_stats', 'method', 343,
     'def get_stats(self):'),
]


# ------------------------------------------------------------------ factory
FACTORY_FILE = "python/sglang/srt/mem_cache/storage/backend_factory.py"   # at SGLANG_COMMIT
# (line, the line as quoted): how --hicache-storage-backend dynamic builds a backend.
FACTORY_LINES = [
    (29, "if not issubclass(backend_class, HiCacheStorage):"),
    (99, 'if backend_name == "dynamic" and storage_config.extra_config is not None:'),
    (122, 'required_fields = ["backend_name", "module_path", "class_name"]'),
    (145, "return backend_class(storage_config, kwargs)"),
]

# ---------------------------------------------------------------- host pool
HOST_BASE_FILE = "python/sglang/srt/mem_cache/pool_host/base.py"
HOST_BASE_COMMIT = "049f8e64daef5f97982ffd46d89c2277ce260a16"
HOST_BASE_CLASS_LINE = 79   # class HostKVCache(abc.ABC):

# HostKVCache members the controller and the backend use: (name, kind, line, signature).
HOST_POOL_ENTRIES = [
    ('get_size_per_token', 'abstractmethod', 166,
     'def get_size_per_token(self):'),
    ('init_kv_buffer', 'abstractmethod', 170,
     'def init_kv_buffer(self):'),
    ('get_data_page', 'abstractmethod', 192,
     'def get_data_page(self, index, flat: bool = True) -> torch.Tensor:'),
    ('get_dummy_flat_data_page', 'abstractmethod', 199,
     'def get_dummy_flat_data_page(self) -> torch.Tensor:'),
    ('set_from_flat_data_page', 'abstractmethod', 207,
     'def set_from_flat_data_page(self, index: int, data_page: torch.Tensor) -> None:'),
    ('available_size', 'method', 234,
     'def available_size(self):'),
    ('alloc', 'method', 238,
     'def alloc(self, need_size: int) -> Optional[torch.Tensor]:'),
    ('free', 'method', 251,
     'def free(self, indices: torch.Tensor) -> int:'),
]

# The host KV tensor of each layout the backend moves: (file, commit, class,
# layout, line of the dims tuple, the tuple as quoted and joined onto one line,
# "self." being the pool).
MHA_FILE = "python/sglang/srt/mem_cache/pool_host/mha.py"
MHA_COMMIT = "0047d999bb3a3ad311df5a4b6356bfb5586e0d66"
MLA_FILE = "python/sglang/srt/mem_cache/pool_host/mla.py"
MLA_COMMIT = "01c0ede38cc9645488fd2847dbea8a2f6a9241d8"
KV_BUFFER_DIMS = [
    (MHA_FILE, MHA_COMMIT, "MHATokenToKVPoolHost", "page_first", 176,
     "(2, self.size, self.layer_num, self.head_num, self.head_dim)"),
    (MHA_FILE, MHA_COMMIT, "MHATokenToKVPoolHost", "page_first_direct", 178,
     "(2, self.page_num, self.layer_num, self.page_size, self.head_num, self.head_dim)"),
    (MLA_FILE, MLA_COMMIT, "MLATokenToKVPoolHost", "page_first", 273,
     "(self.size, self.layer_num, 1, self.kv_cache_dim)"),
    (MLA_FILE, MLA_COMMIT, "MLATokenToKVPoolHost", "page_first_direct", 280,
     "(self.page_num, self.layer_num, self.page_size, 1, self.kv_cache_dim)"),
]
# MLA's per-token width (mla.py line 236): kv_cache_dim = kv_lora_rank + qk_rope_head_dim
# unless overridden.
MLA_KV_CACHE_DIM_LINE = (236, "self.kv_cache_dim = self.override_kv_cache_dim or (")
