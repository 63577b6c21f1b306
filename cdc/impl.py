"""Choose, once at import, between the compiled Cython modules and their pure-Python twins.

Like psycopg's ``pq`` package: ``CDC_PURE_PYTHON=1`` forces the twins; ``CDC_IMPL=cython`` demands the
compiled modules and fails loudly when they are not built; otherwise the compiled modules are used when
present and the twins are the fallback.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

BUILD_HINT = (
    "build the Cython extension with `pip install -e '.[dev]'` (or `python setup.py build_ext --inplace`) "
    "from the project root, or set CDC_PURE_PYTHON=1 to use the pure-Python twin"
)

# The module that proves the extension was built; every ext/*.pyx ships with the others.
_PROBE_MODULE = "codecs"


def _wanted() -> str:
    if os.environ.get("CDC_PURE_PYTHON", "").strip() not in ("", "0"):
        return "python"
    return os.environ.get("CDC_IMPL", "auto").strip().lower() or "auto"


def load_extension(name: str) -> ModuleType:
    """Import the compiled module ``cdc._ext.<name>``; ImportError with the build command if missing."""
    try:
        return importlib.import_module(f"cdc._ext.{name}")
    except ImportError as exc:
        raise ImportError(f"the Cython module cdc._ext.{name} is not built: {BUILD_HINT}") from exc


def _select() -> str:
    wanted = _wanted()
    if wanted == "python":
        return "python"
    if wanted == "cython":
        load_extension(_PROBE_MODULE)
        return "cython"
    if wanted != "auto":
        raise ImportError(f"CDC_IMPL={wanted!r} is not one of 'auto', 'cython', 'python'")
    try:
        load_extension(_PROBE_MODULE)
    except ImportError:
        return "python"
    return "cython"


IMPL: str = _select()


def choose(name: str, twin: str) -> ModuleType:
    """Return the compiled module ``name`` when IMPL is cython, else the twin module (dotted path)."""
    if IMPL == "cython":
        return load_extension(name)
    return importlib.import_module(twin)
