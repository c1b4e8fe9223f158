# SPDX-License-Identifier: Apache-2.0
"""BelugaConnector and the vLLM stand-ins against vLLM's real interface.

vllm_manifest.py quotes every method and property of KVConnectorBase_V1 at
one vLLM commit.  These tests fail when the stand-in base class drifts from
it (so the connector tests exercise the real contract) or when the connector
overrides something with a different kind or parameters, misspells a hook, or
leaves an abstract method unimplemented.
"""

import ast
import inspect

import pytest

pytest.importorskip("torch", reason="python3-torch is needed for the connector tests")
pytest.importorskip("cbor2", reason="python3-cbor2 computes vLLM's reference block hashes")

import vllm_manifest as M  # noqa: E402
import vllm_standins as V  # noqa: E402
import signature_parts  # noqa: E402

# Public members BelugaConnector has beyond vLLM's interface.
BELUGA_EXTRAS = {"stats", "cache"}


def manifest_params(sig):
    """Parameter names and the **kwargs name of a quoted signature."""
    fn = ast.parse(sig + "\n    ...").body[0]
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args]
    return fn.name, names, [x.arg for x in a.kwonlyargs], a.kwarg and a.kwarg.arg


def kind_of(cls, name):
    static = inspect.getattr_static(cls, name)
    if isinstance(static, property):
        return "property"
    if isinstance(static, classmethod):
        return "classmethod"
    if name in getattr(cls, "__abstractmethods__", ()):
        return "abstractmethod"
    return "method"


def params_of(cls, name):
    static = inspect.getattr_static(cls, name)
    fn = static.fget if isinstance(static, property) else getattr(static, "__func__", static)
    return signature_parts.params_of(fn)


@pytest.fixture
def connector_cls(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    uninstall = V.install()
    import importlib
    yield importlib.import_module("beluga_vllm.connector").BelugaConnector
    uninstall()


def test_manifest_entries_quote_what_they_name():
    assert len(M.VLLM_COMMIT) == 40 and M.FILE.endswith("v1/base.py")
    seen = set()
    for name, kind, line, sig in M.ENTRIES:
        parsed, _, _, _ = manifest_params(sig)
        assert parsed == name, f"entry {name} quotes the signature of {parsed}"
        assert kind in ("property", "method", "abstractmethod", "classmethod")
        assert name not in seen, f"{name} listed twice"
        seen.add(name)
    lines = [e[2] for e in M.ENTRIES]
    assert lines == sorted(lines), "entries follow the file's order"


@pytest.mark.parametrize("entry", M.ENTRIES, ids=[e[0] for e in M.ENTRIES])
def test_standin_base_matches_vllm(entry):
    name, kind, line, sig = entry
    cls = V.KVConnectorBase_V1
    where = f"{M.FILE}:{line} @ {M.VLLM_COMMIT[:12]}"
    assert name in cls.__dict__, f"stand-in lacks {name} ({where})"
    assert kind_of(cls, name) == kind, f"{name}: vLLM has a {kind} ({where})"
    _, pos, kwonly, kwarg = manifest_params(sig)
    assert params_of(cls, name) == (pos, kwonly, kwarg), f"{name}: parameters differ from {where}"


def test_standin_base_has_nothing_vllm_lacks():
    names = {e[0] for e in M.ENTRIES}
    extra = [n for n, v in V.KVConnectorBase_V1.__dict__.items()
             if callable(v) or isinstance(v, (property, classmethod))]
    assert sorted(set(extra) - names) == []


def test_connector_overrides_keep_vllm_signatures(connector_cls):
    overridden = [e for e in M.ENTRIES if e[0] in connector_cls.__dict__]
    assert len(overridden) >= 15   # the abstract methods and the hooks Beluga uses
    for name, kind, line, sig in overridden:
        where = f"{M.FILE}:{line} @ {M.VLLM_COMMIT[:12]}"
        want_kind = "method" if kind == "abstractmethod" else kind
        assert kind_of(connector_cls, name) == want_kind, f"{name}: vLLM has a {kind} ({where})"
        _, pos, kwonly, kwarg = manifest_params(sig)
        got_pos, got_kwonly, got_kwarg = params_of(connector_cls, name)
        # vLLM passes these positionally or by name: the same names, in order
        # (a trailing extra parameter must have a default to be callable).
        assert got_pos[:len(pos)] == pos, f"{name}{tuple(got_pos)}: vLLM has {sig!r} ({where})"
        assert set(kwonly) <= set(got_kwonly), f"{name}: keyword-only {kwonly} ({where})"
        assert bool(kwarg) <= bool(got_kwarg), f"{name} must accept **{kwarg} ({where})"


def test_connector_implements_every_abstract_method(connector_cls):
    abstract = {e[0] for e in M.ENTRIES if e[1] == "abstractmethod"}
    assert abstract <= set(connector_cls.__dict__)
    assert not connector_cls.__abstractmethods__


def test_connector_defines_no_hook_vllm_does_not_call(connector_cls):
    names = {e[0] for e in M.ENTRIES}
    public = {n for n, v in connector_cls.__dict__.items()
              if not n.startswith("_") and (callable(v) or isinstance(v, (property, classmethod)))}
    assert sorted(public - names - BELUGA_EXTRAS) == [], "misspelled hook or undocumented extra"
