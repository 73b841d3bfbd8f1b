"""Game evaluation of a loaded model with its turns batched: many games at once, one ``generate`` per round.

The same games as :func:`veritas_rl.eval.games.evaluate` (episode ``e`` of a case: seat ``e % players``,
seed from ``(seed, case, e)``, the same opponent and chance seeds), but every game whose model is to move
is answered in one left-padded greedy ``generate`` call, so 200 games cost a few dozen calls instead of
a thousand. Used by ``benchmarks/games_learning.py`` (before/after tables and the win-rate curve during
training) and by ``veritas eval-games --batch-size``. Greedy decoding of a batch can differ from one
prompt at a time in the last bits of the logits, so rare texts may differ from the sequential path.
"""

from __future__ import annotations

from typing import Any, Sequence

from veritas_rl.envs.base import seeded_rng
from veritas_rl.games import spiel
from veritas_rl.games.episode import EpisodeConfig, GameEpisode
from veritas_rl.games.opponents import parse_rung
from veritas_rl.games.play import GameResult


class BatchGenerator:
    """Greedy chat completions for a batch of conversations from a loaded causal LM."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 32, device: str | None = None):
        import torch

        self.torch, self.model, self.tokenizer = torch, model, tokenizer
        self.max_new_tokens = max_new_tokens
        self.device = device or next(model.parameters()).device

    def __call__(self, conversations: Sequence[list[dict[str, str]]]) -> list[str]:
        tok = self.tokenizer
        texts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        finally:
            tok.padding_side = side
        was_training = self.model.training
        self.model.eval()
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id)
        if was_training:
            self.model.train()
        new = out[:, enc["input_ids"].shape[1]:]
        return tok.batch_decode(new, skip_special_tokens=True)


def play_batched(configs: Sequence[EpisodeConfig], generate, *, conversation: bool = True,
                 batch_size: int = 64) -> list[GameResult]:
    """Play every episode of ``configs``; ``generate(message lists) -> texts`` answers the model's turns."""
    episodes = [GameEpisode(c) for c in configs]
    messages = [e.start() for e in episodes]
    while True:
        active = [i for i, e in enumerate(episodes) if not e.done]
        if not active:
            break
        for lo in range(0, len(active), batch_size):
            chunk = active[lo:lo + batch_size]
            prompts = [messages[i] if conversation else episodes[i].prompt() for i in chunk]
            for i, text in zip(chunk, generate(prompts)):
                out = episodes[i].step(text)
                if not out.done:
                    messages[i] = [*messages[i], {"role": "assistant", "content": text},
                                   {"role": "user", "content": out.observation}]
    results = []
    for e in episodes:
        r = e.result()
        results.append(GameResult(case=r.case, seat=r.seat, seed=r.seed, returns=r.returns, trajectory=r.moves,
                                  illegal_move=r.outcome == "illegal", illegal_reason=r.reason,
                                  truncated=r.outcome == "max_turns"))
    return results


def evaluate_batched(generate, label: str, opponent: str, cases: Sequence[str], num_episodes: int, seed: int = 0, *,
                     episode: str = "game", mcts_simulations: int = 100, uct_c: float = 2.0,
                     batch_size: int = 64) -> dict[str, Any]:
    """:func:`veritas_rl.eval.games.evaluate`'s report for a batched ``generate`` (same keys, same games)."""
    from veritas_rl.eval.games import EPISODES, _last_completion, summarise

    if num_episodes < 1:
        raise ValueError(f"num_episodes={num_episodes} must be >= 1")
    if episode not in EPISODES:
        raise ValueError(f"episode={episode!r} is not valid; choose from: {', '.join(EPISODES)}")
    rung = parse_rung(opponent, mcts_default=mcts_simulations, key="--opponent").name
    report: dict[str, Any] = {"policy": label, "opponent": opponent, "seed": seed, "num_episodes": num_episodes,
                              "mcts_simulations": mcts_simulations, "uct_c": uct_c, "max_moves": None,
                              "episode": episode, "batched": True, "cases": {}}
    for case in [spiel.normalise_case(c) for c in spiel.split_cases(list(cases))]:
        n_players = spiel.load_game(case).num_players()
        configs = [EpisodeConfig(case, e % n_players, seeded_rng("eval-episode", seed, case, e).getrandbits(31), rung,
                                 max_turns=10**9, uct_c=uct_c) for e in range(num_episodes)]
        results = play_batched(configs, generate, conversation=episode == "game", batch_size=batch_size)
        summary = summarise(results, n_players)
        summary["episodes_detail"] = [{"seat": r.seat, "seed": r.seed, "outcome": r.outcome, "returns": r.returns,
                                       "reason": r.illegal_reason, "last_completion": _last_completion(r)}
                                      for r in results]
        report["cases"][case] = summary
    return report
