"""Command-line interface: thin typer commands over the Python API (each command has an API twin)."""

from genpas.cli.app import app, main

__all__ = ["app", "main"]
