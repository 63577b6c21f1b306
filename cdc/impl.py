"""The twins: compiled Cython modules and their pure-Python twins, chosen once, at import.

Like psycopg's ``pq`` package: ``CDC_PURE_PYTHON=1`` forces the twins; ``CDC_IMPL=cython`` demands the
compiled modules and fails loudly when one is not built; otherwise the compiled modules are used when
every one of them is built, and the twins are the fallback (said once on stderr, with the fix).

The rule: the pure-Python twin ``a.b.c`` (the readable specification) has its compiled twin built from
``ext/a/b/c.pyx`` as ``cdc._ext.<name>``, ``TWINS[name] == "a.b.c"``; ``a/b/c.pyi`` is the one interface
of both. ``setup.py`` builds what ``TWINS`` lists, the tests run both of each pair (``implementations``)
and ``scripts/test.sh`` runs the twins' tests (``TWIN_TESTS``) again with ``CDC_PURE_PYTHON=1``. Code that uses a twin
asks for it with ``twin("a.b.c")``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

# compiled module (cdc._ext.<name>) -> its pure-Python twin (built from ext/<twin as a path>.pyx).
TWINS: dict[str, str] = {
    "pgoutput": "connectors.postgres.decode",
    "binlog_rows": "connectors.mysql.decode",
    "envelope": "cdc.envelope.encoders",
    "murmur2": "cdc.kafka.partitioner",
    "sparse": "cdc.kafka.sparse",
    "text_rows": "connectors.mysql.text_rows",
}

# compiled module -> the tests that hold its twins to each other (run again with CDC_PURE_PYTHON=1).
TWIN_TESTS: dict[str, tuple[str, ...]] = {
    "pgoutput": ("tests/connectors/postgres/test_decode*.py", "tests/test_codecs.py"),
    "binlog_rows": ("tests/connectors/mysql/test_decode*.py", "tests/connectors/mysql/test_oracle.py"),
    "envelope": ("tests/test_envelope*.py",),
    "murmur2": ("tests/kafka/test_partitioner.py",),
    "sparse": ("tests/kafka/test_sparse*.py",),
    "text_rows": ("tests/connectors/mysql/test_text_rows.py",),
}

BUILD_HINT = (
    "build the Cython extension with `pip install -e '.[dev]'` (or `python setup.py build_ext --inplace`) "
    "from the project root, or set CDC_PURE_PYTHON=1 to use the pure-Python twins"
)


def source_of(name: str) -> str:
    """The .pyx file (relative to the project root) that builds ``cdc._ext.<name>``."""
    return "ext/" + TWINS[name].replace(".", "/") + ".pyx"


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


def _missing() -> list[str]:
    """The compiled modules of TWINS not built for this Python (every one is checked, not one probe;
    found, not executed: each is imported when first asked for)."""
    return [name for name in TWINS if importlib.util.find_spec(f"cdc._ext.{name}") is None]


def _warn_slow(missing: list[str]) -> None:
    """Say once on stderr that the pure-Python twins run, why, and how to build the compiled ones."""
    names = ", ".join(f"cdc._ext.{name}" for name in missing)
    sys.stderr.write(
        f"cdc: the compiled modules are missing ({names}) in {os.path.dirname(os.path.dirname(__file__))}: "
        f"running the pure-Python twins, about 10x slower. Fix: {BUILD_HINT}. (Python imports the "
        "source tree when started from the project root after a non-editable `pip install .`.)\n"
    )


def _select() -> str:
    wanted = _wanted()
    if wanted == "python":
        return "python"
    if wanted not in ("auto", "cython"):
        raise ImportError(f"CDC_IMPL={wanted!r} is not one of 'auto', 'cython', 'python'")
    missing = _missing()
    if not missing:
        return "cython"
    if wanted == "cython":
        raise ImportError(f"CDC_IMPL=cython but the Cython modules {', '.join(missing)} are not built: {BUILD_HINT}")
    _warn_slow(missing)
    return "python"


IMPL: str = _select()


def twin(module: str) -> ModuleType:
    """The module to use for the pure-Python twin ``module`` (dotted path): its compiled twin when
    IMPL is "cython", else the twin itself."""
    if IMPL == "cython":
        for name, path in TWINS.items():
            if path == module:
                return load_extension(name)
        raise KeyError(f"{module} has no compiled twin in cdc.impl.TWINS")
    return importlib.import_module(module)


def twin_test_files(root: str = ".") -> list[str]:
    """The test files of every twin pair (TWIN_TESTS) and of this module, relative to `root`."""
    from pathlib import Path

    files = {"tests/test_impl.py"}
    for patterns in TWIN_TESTS.values():
        for pattern in patterns:
            files.update(str(path.relative_to(root)) for path in Path(root).glob(pattern))
    return sorted(files)


def implementations(module: str) -> dict[str, ModuleType | None]:
    """Both twins of ``module`` for tests: {"python": twin, "cython": compiled or None if not built}."""
    compiled = None
    for name, path in TWINS.items():
        if path == module:
            try:
                compiled = load_extension(name)
            except ImportError:
                compiled = None
    return {"python": importlib.import_module(module), "cython": compiled}
