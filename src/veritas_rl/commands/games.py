"""Placeholder subcommand module: its issue replaces this file."""


def register(subparsers) -> None:  # noqa: ARG001 - filled in by its issue
    return None
