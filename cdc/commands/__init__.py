"""Subcommands of the `cdc` CLI, one module each (each exposes `command`)."""
