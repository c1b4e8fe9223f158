# SPDX-License-Identifier: Apache-2.0
"""BelugaHiCacheStorage and the SGLang stand-ins against SGLang's source.

sglang_manifest.py quotes, at named commits, every member of SGLang's
HiCacheStorage, the fields of HiCacheStorageConfig, the factory's dynamic
construction, the host pool calls and the host KV tensor of each layout.
These tests fail when the stand-ins drift from those quotes (so the storage
tests exercise the real contract) or when the backend overrides a member
with other parameters, leaves an abstract method unimplemented, defines a
public method SGLang never calls, or reads a host pool layout differently.
"""

import ast
import dataclasses
import inspect
import textwrap

import pytest

torch = pytest.importorskip("torch", reason="python3-torch is needed for SGLang's host KV pool")

import sglang_manifest as M  # noqa: E402
import sglang_standins as S  # noqa: E402
from signature_parts import params_of  # noqa: E402

# Public members BelugaHiCacheStorage has beyond SGLang's interface: close()
# (the controller calls it on detach when present), cache_stats() (the
# shared cache's counters) and region_name().
BELUGA_EXTRAS = {"close", "cache_stats", "region_name"}


def manifest_params(sig):
    fn = ast.parse(textwrap.dedent(sig) + "\n    ...").body[0]
    a = fn.args
    return (fn.name, [x.arg for x in a.posonlyargs + a.args], [x.arg for x in a.kwonlyargs],
            a.kwarg and a.kwarg.arg)


def kind_of(cls, name):
    if name in getattr(cls, "__abstractmethods__", ()):
        return "abstractmethod"
    return "method"


@pytest.fixture
def backend_cls():
    uninstall = S.install()
    from beluga_sglang.storage import BelugaHiCacheStorage
    yield BelugaHiCacheStorage
    uninstall()


def test_manifest_entries_quote_what_they_name():
    assert len(M.SGLANG_COMMIT) == 40 and len(M.HOST_BASE_COMMIT) == 40
    for entries in (M.STORAGE_ENTRIES, M.HOST_POOL_ENTRIES):
        seen = set()
        for name, kind, line, sig in entries:
            assert manifest_params(sig)[0] == name, f"entry {name} quotes another def"
            assert kind in ("method", "abstractmethod")
            assert name not in seen
            seen.add(name)
        lines = [e[2] for e in entries]
        assert lines == sorted(lines), "entries follow the file's order"
    assert all(M.STORAGE_CLASS_LINE < e[2] for e in M.STORAGE_ENTRIES)


@pytest.mark.parametrize("entry", M.STORAGE_ENTRIES, ids=[e[0] for e in M.STORAGE_ENTRIES])
def test_standin_base_matches_sglang(entry):
    name, kind, line, sig = entry
    where = f"{M.STORAGE_FILE}:{line} @ {M.SGLANG_COMMIT[:12]}"
    cls = S.HiCacheStorage
    assert name in cls.__dict__, f"stand-in lacks {name} ({where})"
    assert kind_of(cls, name) == kind, f"{name}: SGLang has a {kind} ({where})"
    _, pos, kwonly, kwarg = manifest_params(sig)
    assert params_of(cls.__dict__[name]) == (pos, kwonly, kwarg), f"{name}: differs from {where}"


def test_standin_base_has_nothing_sglang_lacks():
    names = {e[0] for e in M.STORAGE_ENTRIES}
    extra = {n for n, v in S.HiCacheStorage.__dict__.items() if callable(v)} - names
    assert extra == set()


def test_standin_config_has_sglangs_fields():
    want = [f.split(":")[0] for f in M.CONFIG_FIELDS]
    assert [f.name for f in dataclasses.fields(S.HiCacheStorageConfig)] == want
    required = [f.split(":")[0] for f in M.CONFIG_FIELDS if "=" not in f]
    got = [f.name for f in dataclasses.fields(S.HiCacheStorageConfig)
           if f.default is dataclasses.MISSING]
    assert got == required, f"{M.STORAGE_FILE}:{M.CONFIG_CLASS_LINE}: defaults differ"


def test_backend_keeps_sglangs_signatures(backend_cls):
    overridden = [e for e in M.STORAGE_ENTRIES if e[0] in backend_cls.__dict__]
    assert {e[0] for e in overridden} >= {"register_mem_pool_host", "batch_get_v1", "batch_set_v1",
                                          "get", "batch_get", "set", "batch_set", "exists",
                                          "batch_exists", "clear", "get_stats"}
    for name, kind, line, sig in overridden:
        where = f"{M.STORAGE_FILE}:{line} @ {M.SGLANG_COMMIT[:12]}"
        _, pos, kwonly, kwarg = manifest_params(sig)
        got_pos, got_kwonly, got_kwarg = params_of(backend_cls.__dict__[name])
        # SGLang passes these positionally or by name: the same names, in order.
        assert got_pos[:len(pos)] == pos, f"{name}{tuple(got_pos)}: SGLang has {sig!r} ({where})"
        assert set(kwonly) <= set(got_kwonly) and bool(kwarg) <= bool(got_kwarg), where
    # The v2 (pool transfer) calls are left to the base class: see sglang.md.
    assert not {"batch_get_v2", "batch_set_v2", "batch_exists_v2"} & set(backend_cls.__dict__)


def test_backend_implements_every_abstract_method(backend_cls):
    abstract = {e[0] for e in M.STORAGE_ENTRIES if e[1] == "abstractmethod"}
    assert abstract <= set(backend_cls.__dict__)
    assert not backend_cls.__abstractmethods__
    assert issubclass(backend_cls, S.HiCacheStorage)     # the factory's check (FACTORY_LINES)


def test_backend_defines_no_call_sglang_does_not_make(backend_cls):
    names = {e[0] for e in M.STORAGE_ENTRIES}
    public = {n for n, v in backend_cls.__dict__.items() if not n.startswith("_") and callable(v)}
    assert sorted(public - names - BELUGA_EXTRAS) == [], "misspelled member or undocumented extra"


def test_factory_construction_is_sglangs(backend_cls):
    quoted = dict((q, n) for n, q in M.FACTORY_LINES)
    assert "return backend_class(storage_config, kwargs)" in quoted
    src = inspect.getsource(S.create_dynamic_backend)
    assert "backend_class(storage_config, kwargs)" in src
    assert "issubclass(backend_class, HiCacheStorage)" in src
    assert 'for f in ("backend_name", "module_path", "class_name")' in src
    # The backend takes (storage_config, kwargs) positionally, as the factory passes them.
    pos, _, _ = params_of(backend_cls.__init__)
    assert pos[:3] == ["self", "storage_config", "kwargs"]


@pytest.mark.parametrize("entry", M.HOST_POOL_ENTRIES, ids=[e[0] for e in M.HOST_POOL_ENTRIES])
@pytest.mark.parametrize("pool", [S.MHATokenToKVPoolHost, S.MLATokenToKVPoolHost],
                         ids=["mha", "mla"])
def test_standin_host_pools_match_sglang(entry, pool):
    name, kind, line, sig = entry
    where = f"{M.HOST_BASE_FILE}:{line} @ {M.HOST_BASE_COMMIT[:12]}"
    fn = getattr(pool, name, None)
    assert fn is not None, f"{pool.__name__} lacks {name} ({where})"
    _, pos, kwonly, kwarg = manifest_params(sig)
    assert params_of(fn) == (pos, kwonly, kwarg), f"{pool.__name__}.{name} differs from {where}"


@pytest.mark.parametrize("entry", M.KV_BUFFER_DIMS,
                         ids=[f"{e[2]}-{e[3]}" for e in M.KV_BUFFER_DIMS])
def test_host_kv_tensors_are_sglangs_and_the_backend_reads_them(entry):
    path, commit, cls, layout, line, dims = entry
    where = f"{path}:{line} @ {commit[:12]}"
    pool = (S.MHATokenToKVPoolHost(3, 2, 8, 4, 40, layout) if cls == "MHATokenToKVPoolHost"
            else S.MLATokenToKVPoolHost(3, 12, 4, 4, 40, layout))
    assert type(pool).__name__ == cls
    want = eval(dims, {}, {"self": pool})          # SGLang's own expression, on the stand-in
    assert tuple(pool.kv_buffer.shape) == want, where
    from beluga_sglang.pages import HostPages
    pages = HostPages(pool)                          # accepts exactly that tensor
    assert pages.mla == (cls == "MLATokenToKVPoolHost")
    # A page written through SGLang's flat data page reads back through the
    # backend's view of the pool, and the other way round.
    flat = torch.arange(pages.page_bytes // 2, dtype=torch.int16).view(pool.dtype)
    pool.set_from_flat_data_page(8, flat)
    assert torch.equal(pages.host_page(8), pages.flat_page(flat))
    assert torch.equal(pages.flat_page(pool.get_data_page(8)), pages.host_page(8))
