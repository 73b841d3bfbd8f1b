"""Game play on OpenSpiel: shared plumbing (:mod:`.spiel`), full games (:mod:`.play`), evaluation (:mod:`.evaluate`)."""
