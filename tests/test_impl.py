"""Twin selection (cdc/impl.py): one table of twins, every compiled module checked at start,
CDC_PURE_PYTHON forces the twins, CDC_IMPL=cython demands the build, a missing build is said once."""

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdc import impl

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    if cwd is not None:
        environment["PYTHONPATH"] = str(cwd)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=cwd)


@pytest.fixture
def unbuilt_tree(tmp_path):
    """A copy of the source tree without any compiled module (as after a non-editable `pip install .`,
    Python started from the project root imports the tree, not the installed package)."""
    tree = tmp_path / "tree"
    for package in ("cdc", "connectors"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return tree


def test_pure_python_env_forces_twin():
    result = run_python("import cdc; print(cdc.__impl__)", CDC_PURE_PYTHON="1")
    assert result.stdout.strip() == "python"


def test_default_uses_cython_when_built():
    if impl._missing():
        pytest.skip("Cython extension not built")
    result = run_python("import cdc; print(cdc.__impl__)", CDC_PURE_PYTHON="0", CDC_IMPL="")
    assert result.stdout.strip() == "cython" and result.stderr == ""


def test_missing_cython_module_error_says_how_to_build():
    with pytest.raises(ImportError, match=r"pip install -e '\.\[dev\]'"):
        impl.load_extension("no_such_module")


def test_unknown_impl_value_is_an_import_error():
    result = run_python("import cdc", CDC_IMPL="fortran", CDC_PURE_PYTHON="")
    assert result.returncode != 0 and "CDC_IMPL='fortran'" in result.stderr


def test_an_unbuilt_tree_says_so_once_on_stderr_with_the_fix(unbuilt_tree):
    code = ("import cdc, cdc.envelope, connectors.mysql.decoder, cdc.kafka.sparse, connectors.postgres.source;"
            "print(cdc.__impl__)")
    result = run_python(code, cwd=unbuilt_tree, CDC_PURE_PYTHON="", CDC_IMPL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python"
    assert result.stderr.count("cdc: the compiled modules are missing") == 1, result.stderr
    assert "10x slower" in result.stderr and "build_ext --inplace" in result.stderr
    assert all(f"cdc._ext.{name}" in result.stderr for name in impl.TWINS)


def test_an_unbuilt_tree_is_quiet_with_pure_python(unbuilt_tree):
    result = run_python("import cdc, cdc.envelope; print(cdc.__impl__)", cwd=unbuilt_tree, CDC_PURE_PYTHON="1")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "python", "")


def test_an_unbuilt_tree_fails_loudly_when_cython_is_demanded(unbuilt_tree):
    result = run_python("import cdc", cwd=unbuilt_tree, CDC_PURE_PYTHON="", CDC_IMPL="cython")
    assert result.returncode != 0
    assert "CDC_IMPL=cython" in result.stderr and "pip install -e" in result.stderr


def test_one_missing_compiled_module_is_enough_to_fall_back(unbuilt_tree):
    """Every compiled module is checked at start, not one probe: all but one built is still 'missing'."""
    built = sorted((ROOT / "cdc" / "_ext").glob("*.so"))
    if len(built) != len(impl.TWINS):
        pytest.skip("Cython extension not built")
    for path in built[1:]:
        shutil.copy(path, unbuilt_tree / "cdc" / "_ext" / path.name)
    result = run_python("import cdc; print(cdc.__impl__)", cwd=unbuilt_tree, CDC_PURE_PYTHON="", CDC_IMPL="")
    assert result.stdout.strip() == "python"
    assert built[0].name.split(".")[0] in result.stderr


@pytest.mark.parametrize(("name", "twin"), sorted(impl.TWINS.items()))
def test_every_twin_pair_follows_the_rule(name, twin):
    """Source at ext/<twin path>.pyx, one .pyi beside the twin, the same public names and an
    IMPLEMENTATION attribute in both."""
    assert (ROOT / impl.source_of(name)).is_file()
    stub = ROOT / (twin.replace(".", "/") + ".pyi")
    assert stub.is_file(), f"{stub} is missing"
    python = importlib.import_module(twin)
    assert python.IMPLEMENTATION == "python" or python.IMPLEMENTATION == impl.IMPL  # self-selecting modules
    compiled = impl.implementations(twin)["cython"]
    if compiled is None:
        if impl.IMPL == "cython":
            pytest.fail(f"cdc._ext.{name} is not built")
        pytest.skip(f"cdc._ext.{name} is not built")
    assert compiled.IMPLEMENTATION == "cython"
    shared = stub.read_text().split("# The pure-Python twin")[0]  # what both twins must have
    declared = [line.split("(")[0].split(":")[0].split()[-1] for line in shared.splitlines()
                if line.startswith(("def ", "class ")) or (line and line[0].isalpha() and ":" in line.split("=")[0])]
    for attribute in declared:
        assert hasattr(compiled, attribute) and hasattr(python, attribute), attribute


def test_twin_picks_the_selected_implementation():
    for twin in impl.TWINS.values():
        expected = "cython" if impl.IMPL == "cython" else "python"
        assert impl.twin(twin).IMPLEMENTATION == expected


def test_setup_builds_what_the_table_lists():
    """setup.py reads TWINS from cdc/impl.py (without importing cdc) and builds each from its source."""
    source = (ROOT / "setup.py").read_text()
    namespace: dict = {"__name__": "setup_under_test"}
    exec(compile(source.split("EXTENSIONS = [")[0], "setup.py", "exec"), namespace)  # the part before setup()
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        assert namespace["twins"]() == impl.TWINS
    finally:
        os.chdir(cwd)
    assert '["ext/" + twin.replace(".", "/") + ".pyx"]' in source


def test_every_twin_pair_has_tests_that_scripts_test_sh_reruns():
    assert set(impl.TWIN_TESTS) == set(impl.TWINS)
    for name, patterns in impl.TWIN_TESTS.items():
        for pattern in patterns:
            assert list(ROOT.glob(pattern)), (name, pattern)
    assert "twin_test_files" in (ROOT / "scripts" / "test.sh").read_text()
