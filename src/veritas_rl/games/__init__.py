"""Game play on OpenSpiel: shared plumbing (:mod:`.spiel`) and full games (:mod:`.play`); evaluation lives in :mod:`veritas_rl.eval.games`."""
