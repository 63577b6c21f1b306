"""Compiled Cython modules (built from ext/*.pyx at install time)."""
