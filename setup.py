"""Build the Cython modules in ext/ as cdc._ext.<name> (pyproject.toml holds the metadata).

`CDC_EXT_ONLY=name1,name2` builds only those modules (handy while developing one decoder).
"""
import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

ONLY = {name for name in os.environ.get("CDC_EXT_ONLY", "").split(",") if name}

EXTENSIONS = [
    Extension(f"cdc._ext.{path.stem}", [str(path)], extra_compile_args=["-O3"])
    for path in sorted(Path("ext").glob("*.pyx"))
    if not ONLY or path.stem in ONLY
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
