"""Parity checks between a source and a target database (`cdc verify`); see docs/verify.md."""
