"""Backends: adapters of the environment contract (:mod:`veritas_rl.envs`) to a training engine.

- :mod:`veritas_rl.backends.verl` — verl 0.9.1 plug-ins (dataset class, ``compute_score``) and the
  helpers the bash launchers in ``train/scripts/`` call;
- :mod:`veritas_rl.backends.trl` — the single-machine TRL runner behind ``veritas train``.

Neither imports the other; both import ``envs`` (and ``eval``), never the reverse.
"""
