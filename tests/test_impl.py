"""Implementation selection: CDC_PURE_PYTHON forces the twin; CDC_IMPL=cython demands the build."""

import subprocess
import sys

import pytest


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})


def test_pure_python_env_forces_twin():
    result = run_python("import cdc; print(cdc.__impl__)", CDC_PURE_PYTHON="1")
    assert result.stdout.strip() == "python"


def test_default_uses_cython_when_built():
    import importlib.util

    if importlib.util.find_spec("cdc._ext.codecs") is None:
        pytest.skip("Cython extension not built")
    result = run_python("import cdc; print(cdc.__impl__)", CDC_PURE_PYTHON="0")
    assert result.stdout.strip() == "cython"


def test_missing_cython_module_error_says_how_to_build():
    from cdc.impl import load_extension

    with pytest.raises(ImportError, match=r"pip install -e '\.\[dev\]'"):
        load_extension("no_such_module")


def test_unknown_impl_value_is_an_import_error():
    result = run_python("import cdc", CDC_IMPL="fortran", CDC_PURE_PYTHON="")
    assert result.returncode != 0 and "CDC_IMPL='fortran'" in result.stderr
