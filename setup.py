"""Build the compiled twins listed in `cdc.impl.TWINS` (pyproject.toml holds the metadata).

`cdc._ext.<name>` is built from `ext/<its twin's module path>.pyx` (`cdc.impl.source_of`); the shared
includes are in ext/include/. `CDC_EXT_ONLY=name1,name2` builds only those modules (handy while
developing one decoder).
"""
import ast
import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

ONLY = {name for name in os.environ.get("CDC_EXT_ONLY", "").split(",") if name}


def twins() -> dict[str, str]:
    """`cdc.impl.TWINS`, read without importing cdc (whose import checks the very modules built here)."""
    for node in ast.parse(Path("cdc/impl.py").read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "TWINS":
            return ast.literal_eval(node.value)
    raise SystemExit("cdc/impl.py has no TWINS table")


EXTENSIONS = [
    Extension(f"cdc._ext.{name}", ["ext/" + twin.replace(".", "/") + ".pyx"], extra_compile_args=["-O3"])
    for name, twin in sorted(twins().items())
    if not ONLY or name in ONLY
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        include_path=["ext/include"],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
