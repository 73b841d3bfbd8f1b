"""Subcommands of the `veritas` console script."""
