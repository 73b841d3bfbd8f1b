"""Single-machine training backend on TRL: GRPO and SFT on any registered environment.

Entry points: ``veritas train grpo`` / ``veritas train sft`` (:mod:`veritas_rl.commands.train`), or
:func:`veritas_rl.backends.trl.runner.run` with a :class:`veritas_rl.backends.trl.settings.TrainSettings`.
"""
