"""eval/greedy.py: the pass@k estimator, the per-group summaries over real env scores, the HF generator's cap flag."""

from __future__ import annotations

import itertools
import math

import pytest

from veritas_rl.backends.trl.data import split_indices, tasks_at
from veritas_rl.envs import make
from veritas_rl.eval.greedy import Completion, HFGenerator, evaluate, group_keys, pass_at_k, score_greedy


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (5, 0, 1, 0.0), (5, 0, 5, 0.0), (5, 5, 1, 1.0), (5, 1, 1, 0.2), (8, 3, 1, 3 / 8),
    (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
    (10, 3, 5, 11 / 12),  # 1 - C(7,5)/C(10,5) = 1 - 21/252
    (4, 3, 2, 1.0),  # n - c < k: every k-subset holds a correct sample
    (200, 1, 100, 0.5),
])
def test_pass_at_k_on_constructed_cases(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-15)


def test_pass_at_k_is_the_share_of_k_subsets_with_a_correct_sample():
    for n in range(1, 7):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                share = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(share, abs=1e-15), (n, c, k)
                assert len(subsets) == math.comb(n, k)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match=r"expected 0 <= c <= n and 1 <= k <= n"):
        pass_at_k(n, c, k)


class Scripted:
    """A generator that replies from a table (the env's oracle or fixed garbage): a scripted policy."""

    def __init__(self, replies):
        self.replies, self.calls = replies, []

    def generate(self, prompts, max_new_tokens, n=1, temperature=0.0, top_p=1.0, seed=0, desc=""):
        self.calls.append((len(prompts), n, temperature))
        return [self.replies(i, n, temperature) for i in range(len(prompts))]


def test_greedy_summary_per_group_with_kinds_cap_share_and_reasons():
    env = make("lgc-v2", task_types=["game_of_24", "boolean_expressions"])
    _, held = split_indices(env, 0, 8)
    tasks = tasks_at(env, held)
    assert group_keys(tasks) == ["task_type"]
    # tasks 0, 1, 2 answered by the oracle; the rest hit the cap with nothing answered
    gen = Scripted(lambda i, n, t: [Completion(env.oracle(tasks[i]), False) if i < 3 else Completion("hmm", True)])
    result = score_greedy(gen, env, tasks, max_new_tokens=16)
    assert (result.n, result.accuracy, result.clipped) == (8, 3 / 8, 5 / 8)
    assert sum(result.kinds.values()) == 8 and result.kinds["correct"] == 3
    by_type = result.groups["task_type"]
    types = [t.extra["task_type"] for t in tasks]
    for name in set(types):
        mine = [i for i, ty in enumerate(types) if ty == name]
        assert by_type[name]["n"] == len(mine)
        assert by_type[name]["accuracy"] == sum(i < 3 for i in mine) / len(mine)
        assert by_type[name]["clipped"] == sum(i >= 3 for i in mine) / len(mine)
    assert sum(result.reasons.values()) == 5  # every non-correct reply has its reason counted
    assert [r["task_id"] for r in result.records] == [t.task_id for t in tasks]


def test_evaluate_sampled_pass_at_k_per_task_and_group():
    env = make("lgc-v2", task_types=["game_of_24", "boolean_expressions"])
    tasks = tasks_at(env, range(6))

    def replies(i, n, temperature):
        if temperature == 0:
            return [Completion("no idea", False)]
        good = i % (n + 1)  # task i: i correct samples of n (capped at n)
        return [Completion(env.oracle(tasks[i]) if j < good else "no idea", False) for j in range(n)]

    gen = Scripted(replies)
    out = evaluate(gen, env, tasks, max_new_tokens=8, n=4, k=2, temperature=0.7, seed=1)
    assert gen.calls == [(6, 1, 0.0), (6, 4, 0.7)]
    assert out["greedy"]["accuracy"] == 0.0
    s = out["sampled"]
    correct = [i % 5 for i in range(6)]
    assert [r["correct"] for r in s["per_task"]] == correct
    assert s["pass@1"] == pytest.approx(sum(c / 4 for c in correct) / 6)
    assert s["pass@2"] == pytest.approx(sum(pass_at_k(4, c, 2) for c in correct) / 6)
    assert sum(g["n_tasks"] for g in s["groups"]["task_type"].values()) == 6
    with pytest.raises(ValueError, match="k=3 with n=1"):
        evaluate(gen, env, tasks, max_new_tokens=8, n=1, k=3)


def test_hf_generator_flags_replies_cut_at_the_cap(smollm2_dir):
    from veritas_rl.models import load_causal_lm

    model, tok = load_causal_lm(str(smollm2_dir))
    gen = HFGenerator(model, tok, batch_size=2)
    prompts = [[{"role": "user", "content": "Say hello."}], [{"role": "user", "content": "Write a long story."}]]
    short = gen.generate(prompts, max_new_tokens=3)
    assert [len(c) for c in short] == [1, 1] and all(c[0].truncated for c in short)
    full = gen.generate(prompts[:1], max_new_tokens=48)
    assert not full[0][0].truncated and full[0][0].text.strip()  # ended at <|im_end|>, stripped
    with pytest.raises(ValueError, match="greedy decoding gives one completion"):
        gen.generate(prompts, max_new_tokens=3, n=2, temperature=0.0)
