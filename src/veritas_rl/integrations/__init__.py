"""Backend adapters over the environment contract: ``verl`` (dataset class, ``compute_score``), ``trl``.

Each submodule imports its backend lazily or on import of the submodule only, so importing
``veritas_rl.integrations`` itself stays cheap.
"""
