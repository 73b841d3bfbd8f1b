"""Evaluation shared by both backends and the CLI: greedy accuracy on an env (:mod:`.greedy`) and
game play against opponents (:mod:`.games`)."""
