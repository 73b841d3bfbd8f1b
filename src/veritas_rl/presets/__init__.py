"""Training presets (YAML): `veritas train grpo --preset fast|1hour|3hour|full`."""
