"""Data processing: SWE-synth trajectories → SFT parquet, and env tasks → RL/SFT parquet for verl.

Entry points (thin files in ``data_processing/`` import these ``main`` functions):

- :mod:`veritas_rl.data.swe_synth` — ``convert_swe_synth_sft.py``
- :mod:`veritas_rl.data.generate` — ``generate_dataset.py``
"""
