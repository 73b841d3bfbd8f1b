"""Helpers the verl launchers in ``train/scripts/`` call: config validation and SFT data preparation.

``python -m veritas_rl.launch.validate {ppo,sft} -- OVERRIDES`` composes verl's own Hydra config with
the launcher's overrides and checks it with verl's own validators (``DRY_RUN=1``);
``python -m veritas_rl.launch.sft_data`` maps prompt/response columns to the ``messages`` column
verl 0.9.1's SFT trainer reads.
"""
