"""Win/draw/loss/illegal-move rates of a policy against an opponent, per case, seat-balanced.

Used by ``veritas eval-games``. Episode ``e`` of a case puts the policy at seat ``e % num_players``
with episode seed derived from ``(seed, case, e)``, so runs are reproducible and every seat gets the
same number of games (when ``num_episodes`` is a multiple of the number of players).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from veritas_rl.envs.base import seeded_rng
from veritas_rl.eval.hf_policy import HFPolicy
from veritas_rl.games import spiel
from veritas_rl.games.opponents import make_opponent, parse_rung
from veritas_rl.games.play import OUTCOMES, BotPolicy, Policy, play_game

log = logging.getLogger(__name__)

#: ``eval-games`` defaults: small boards, fast games
DEFAULT_EVAL_CASES = ("tic_tac_toe", "hex(board_size=5)", "connect_four")
#: what a model policy is shown per turn: a fresh position (``move``) or the game so far (``game``)
EPISODES = ("move", "game")


def policy_factory(
    spec: str,
    *,
    mcts_simulations: int = 100,
    uct_c: float = 2.0,
    max_new_tokens: int = 32,
    threads: int | None = None,
):
    """A ladder rung or ``hf:PATH`` -> ``factory(case, episode_seed) -> Policy``.

    ``random`` | ``first_legal`` | ``mcts`` (``--mcts-simulations``) | ``mcts:N`` | ``hf:PATH`` |
    ``policy:PATH`` (the same as ``hf:PATH``). Bots get a fresh seeded RNG per episode; a model is
    loaded once and shared (``PATH``: any checkpoint form :func:`veritas_rl.models.resolve_checkpoint` takes).
    """
    try:
        rung = parse_rung(spec, mcts_default=mcts_simulations, key="--policy")
    except ValueError as err:
        raise ValueError(f"{err} (or hf:PATH)") from None
    if rung.kind == "policy":
        policy = HFPolicy(str(rung.path), max_new_tokens=max_new_tokens, threads=threads)
        return lambda case, episode_seed: policy

    def factory(case: str, episode_seed: int) -> Policy:
        rng = seeded_rng("eval-policy", spec, case, episode_seed)
        return BotPolicy(make_opponent(rung, case, rng, uct_c=uct_c))

    return factory


def summarise(results: Sequence[Any], num_players: int) -> dict[str, Any]:
    counts = {o: 0 for o in OUTCOMES}
    by_seat: dict[int, dict[str, int]] = {s: {o: 0 for o in OUTCOMES} for s in range(num_players)}
    for r in results:
        counts[r.outcome] += 1
        by_seat[r.seat][r.outcome] += 1
    n = len(results)
    return {
        "episodes": n,
        "counts": counts,
        "rates": {o: (counts[o] / n if n else 0.0) for o in OUTCOMES},
        "by_seat": {str(s): c for s, c in by_seat.items()},
        "mean_return": (sum(r.returns[r.seat] for r in results) / n) if n else 0.0,
        "mean_policy_moves": (sum(sum(m.by == "policy" for m in r.trajectory) for r in results) / n) if n else 0.0,
    }


def evaluate(
    policy: str,
    opponent: str,
    cases: Sequence[str],
    num_episodes: int,
    seed: int = 0,
    *,
    mcts_simulations: int = 100,
    uct_c: float = 2.0,
    max_new_tokens: int = 32,
    max_moves: int | None = None,
    threads: int | None = None,
    factory: Callable[[str, int], Policy] | None = None,
    progress: bool = True,
    episode: str = "move",
) -> dict[str, Any]:
    """Play ``num_episodes`` games per case and return the report (rates per case, settings, episodes).

    ``opponent`` is any ladder rung (a bare ``mcts`` is ``mcts:<mcts_simulations>``). ``episode="game"``
    shows a model policy the whole game so far at each turn (the conversation ``--episode game``
    trains on); ``"move"`` a fresh single-position prompt per turn (the env's task prompt).
    """
    from tqdm.auto import tqdm

    if num_episodes < 1:
        raise ValueError(f"--num-episodes={num_episodes} must be >= 1")
    if episode not in EPISODES:
        raise ValueError(f"--episode={episode!r} is not valid; choose from: {', '.join(EPISODES)}")
    rung = parse_rung(opponent, mcts_default=mcts_simulations, key="--opponent")
    cases = [spiel.normalise_case(c) for c in spiel.split_cases(list(cases))]
    games = {c: spiel.load_game(c) for c in cases}  # bad cases fail before any model is loaded
    factory = factory or policy_factory(
        policy, mcts_simulations=mcts_simulations, uct_c=uct_c, max_new_tokens=max_new_tokens, threads=threads
    )
    report: dict[str, Any] = {
        "policy": policy,
        "opponent": opponent,
        "seed": seed,
        "num_episodes": num_episodes,
        "mcts_simulations": mcts_simulations,
        "uct_c": uct_c,
        "max_moves": max_moves,
        "episode": episode,
        "cases": {},
    }
    bar = tqdm(total=num_episodes * len(cases), desc="eval-games", disable=not progress)
    for case in cases:
        results = []
        n_players = games[case].num_players()
        for e in range(num_episodes):
            episode_seed = seeded_rng("eval-episode", seed, case, e).getrandbits(31)
            seat = e % n_players
            bot: Any = rung.name
            if rung.kind == "policy":  # a frozen model: loaded once, with this run's generation settings
                bot = make_opponent(rung, case, seeded_rng("play-opponent", episode_seed, case, seat),
                                    max_new_tokens=max_new_tokens, threads=threads)
            result = play_game(
                case,
                factory(case, episode_seed),
                bot,
                seed=episode_seed,
                seat=seat,
                mcts_simulations=mcts_simulations,
                uct_c=uct_c,
                max_moves=max_moves,
                keep_prompts=False,
                conversation=episode == "game",
            )
            results.append(result)
            bar.update(1)
        summary = summarise(results, n_players)
        summary["episodes_detail"] = [
            {
                "seat": r.seat,
                "seed": r.seed,
                "outcome": r.outcome,
                "returns": r.returns,
                "reason": r.illegal_reason,
                "last_completion": _last_completion(r),
            }
            for r in results
        ]
        report["cases"][case] = summary
        log.info("%s: %s", case, " ".join(f"{o}={summary['rates'][o]:.2f}" for o in OUTCOMES))
    bar.close()
    return report


def _last_completion(result) -> str | None:
    texts = [m.completion for m in result.trajectory if m.by == "policy" and m.completion is not None]
    return texts[-1][:300] if texts else None


def markdown_rows(report: dict[str, Any], label: str | None = None) -> list[str]:
    """Rows of the benchmarks table: ``| policy | opponent | case | episodes | win | draw | loss | illegal move |``."""
    rows = []
    for case, s in report["cases"].items():
        r = s["rates"]
        rows.append(f"| {label or report['policy']} | {report['opponent']} | `{case}` | {s['episodes']} | "
                    f"{r['win']:.2f} | {r['draw']:.2f} | {r['loss']:.2f} | {r['illegal']:.2f} |")
    return rows


def markdown_table(report: dict[str, Any], label: str | None = None) -> str:
    """The per-case table, then the same rates as rows of the benchmarks table (:func:`markdown_rows`)."""
    lines = [
        f"policy `{report['policy']}` vs opponent `{report['opponent']}` (seed {report['seed']}, "
        f"{report['num_episodes']} episodes per case, seat-balanced)",
        "",
        "| case | episodes | win | draw | loss | illegal move |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case, s in report["cases"].items():
        r = s["rates"]
        lines.append(
            f"| `{case}` | {s['episodes']} | {r['win']:.2f} | {r['draw']:.2f} | {r['loss']:.2f} | {r['illegal']:.2f} |"
        )
    lines += ["", "| policy | opponent | case | episodes | win | draw | loss | illegal move |",
              "|---|---|---|---:|---:|---:|---:|---:|", *markdown_rows(report, label)]
    return "\n".join(lines) + "\n"


def bar_chart(report: dict[str, Any], path: Path) -> None:
    """Stacked win/draw/loss/illegal bars per case (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(report["cases"])
    colours = {"win": "#2a9d8f", "draw": "#e9c46a", "loss": "#e76f51", "illegal": "#6c757d"}
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(cases) + 2), 3.6))
    bottom = [0.0] * len(cases)
    for outcome in OUTCOMES:
        vals = [report["cases"][c]["rates"][outcome] for c in cases]
        ax.bar(cases, vals, bottom=bottom, label=outcome, color=colours[outcome])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate")
    ax.set_title(f"{report['policy']} vs {report['opponent']} ({report['num_episodes']} episodes/case)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: str | Path, stem: str = "eval_games",
                 label: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` under ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "png": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown_table(report, label), encoding="utf-8")
    bar_chart(report, paths["png"])
    return paths
