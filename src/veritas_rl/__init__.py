"""veritas-rl: RL post-training of language models on verifiable environments (verl and TRL backends)."""

__version__ = "0.1.0"
