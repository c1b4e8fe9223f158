# SPDX-License-Identifier: Apache-2.0
"""What the manifest tests compare of a function's signature."""

import inspect


def params_of(fn):
    """(positional names, keyword-only names, the **kwargs name or None) of @fn."""
    sig = inspect.signature(fn)
    pos = [p.name for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    kwonly = [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY]
    kwarg = next((p.name for p in sig.parameters.values() if p.kind == p.VAR_KEYWORD), None)
    return pos, kwonly, kwarg
