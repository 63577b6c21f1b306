"""The default batch compression, the same for both backends.

lz4 when the `lz4` Python package is installed, else none: kafka-python needs that package to read
lz4 batches, so a producer compresses only where every consumer on this installation can decompress.
"""

from __future__ import annotations

import importlib.util

COMPRESSIONS = ("lz4", "none")


def default_compression() -> str:
    """`lz4` if the lz4 package is importable, else `none`."""
    return "lz4" if importlib.util.find_spec("lz4") is not None else "none"
