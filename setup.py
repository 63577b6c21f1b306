"""Build the Cython modules in ext/ as cdc._ext.<name> (pyproject.toml holds the metadata)."""
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

EXTENSIONS = [
    Extension(f"cdc._ext.{path.stem}", [str(path)], extra_compile_args=["-O3"])
    for path in sorted(Path("ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
