"""Greedy accuracy of a model on held-out tasks, scored by the env's own ``score``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from veritas_rl.envs.base import Env, Task

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    n: int
    accuracy: float  # fraction of tasks whose greedy completion scores 1.0
    mean_score: float
    samples: list[dict[str, Any]] = field(default_factory=list)  # the first few (task_id, completion, score)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "accuracy": self.accuracy, "mean_score": self.mean_score, "samples": self.samples}


def greedy_completions(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                       desc: str = "greedy eval") -> list[str]:
    """Decode each chat prompt greedily (left-padded batches, special tokens stripped)."""
    import torch
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = []
    device = next(model.parameters()).device
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False):
            batch = prompts[start : start + batch_size]
            texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = gen[:, enc["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def greedy_accuracy(model, tokenizer, env: Env, tasks: list[Task], max_new_tokens: int, batch_size: int = 32,
                    keep_samples: int = 5, desc: str = "greedy eval") -> EvalResult:
    completions = greedy_completions(model, tokenizer, [t.prompt for t in tasks], max_new_tokens, batch_size, desc)
    scores = [env.score(t, c) for t, c in zip(tasks, completions)]
    n = len(scores)
    solved = sum(1 for s in scores if s.value >= 1.0)
    samples = [
        {"task_id": t.task_id, "completion": c, "score": s.value, "info": {k: str(v) for k, v in s.info.items()}}
        for t, c, s in list(zip(tasks, completions, scores))[:keep_samples]
    ]
    return EvalResult(n=n, accuracy=solved / n if n else 0.0,
                      mean_score=sum(s.value for s in scores) / n if n else 0.0, samples=samples)
