"""Greedy accuracy and pass@k of a model on held-out tasks, scored by the env's own ``score``.

One code path for the TRL trainer's before/after accuracy (:func:`greedy_accuracy`) and ``veritas
eval`` (:func:`evaluate`): a *generator* turns chat prompts into completions (each one flagged when it
hit the token cap), the env scores them, and the results are summed up overall and per group (the
``task_type`` / ``case`` / ``dataset`` / ``source`` the env puts in ``Task.extra``), with the share of
replies at the cap and the count of each score kind (``Score.info["kind"]``).

Generators: :class:`HFGenerator` (transformers ``generate``, left-padded batches),
:class:`VLLMGenerator` (a vLLM engine in this process: one of its own, or the TRL trainer's colocated
engine) and :class:`OpenAIGenerator` (any OpenAI-compatible ``/v1/chat/completions`` endpoint, e.g. a
vLLM server; plain ``urllib``, no client library needed).
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol, Sequence

from veritas_rl.envs.base import Env, Score, Task

log = logging.getLogger(__name__)

#: Task.extra keys that name a task's group, in the order they are looked for (``env``: a ``mix`` component)
GROUP_KEYS = ("task_type", "case", "dataset", "source", "env")


@dataclass(frozen=True)
class Completion:
    text: str
    truncated: bool  # stopped at max_new_tokens, not at an end token


class Generator(Protocol):
    def generate(self, prompts: Sequence[list[dict]], max_new_tokens: int, n: int = 1, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, desc: str = "generate") -> list[list[Completion]]:
        """``n`` completions per prompt; ``temperature == 0`` is greedy (then ``n`` must be 1)."""


# -- generators -----------------------------------------------------------------------------------


class HFGenerator:
    """transformers ``generate`` on a loaded model, left-padded batches, special tokens stripped."""

    def __init__(self, model, tokenizer, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}; expected >= 1")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def _end_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def generate(self, prompts, max_new_tokens, n=1, temperature=0.0, top_p=1.0, seed=0, desc="generate"):
        import torch
        from tqdm.auto import tqdm

        if temperature == 0 and n != 1:
            raise ValueError(f"n={n} with temperature 0: greedy decoding gives one completion per prompt")
        model, tokenizer = self.model, self.tokenizer
        was_training, side = model.training, tokenizer.padding_side
        model.eval()
        tokenizer.padding_side = "left"
        device = next(model.parameters()).device
        end_ids = self._end_ids()
        sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=None, num_return_sequences=n) \
            if temperature > 0 else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
        if temperature > 0:
            torch.manual_seed(seed)
        out: list[list[Completion]] = []
        try:
            for start in tqdm(range(0, len(prompts), self.batch_size), desc=desc, leave=False):
                batch = prompts[start : start + self.batch_size]
                texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
                enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                with torch.no_grad():
                    gen = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                         **sampling)
                new = gen[:, enc["input_ids"].shape[1] :]
                texts_out = tokenizer.batch_decode(new, skip_special_tokens=True)
                rows = [Completion(t, new.shape[1] >= max_new_tokens and not end_ids & set(ids.tolist()))
                        for t, ids in zip(texts_out, new)]
                out.extend(rows[i : i + n] for i in range(0, len(rows), n))
        finally:
            tokenizer.padding_side = side
            model.train(was_training)
        return out


class VLLMGenerator:
    """A vLLM engine (``vllm.LLM``) in this process: prompts rendered with the tokenizer's chat template and
    passed as token ids (as the TRL trainer passes them), ``finish_reason == "length"`` marks a reply at the cap.

    ``before``/``after`` run around each ``generate`` call: the TRL backend uses them to sync the trainer's
    weights into its colocated engine and to put a sleeping engine back to sleep.
    """

    def __init__(self, llm, tokenizer, before=None, after=None):
        self.llm, self.tokenizer, self.before, self.after = llm, tokenizer, before, after

    @classmethod
    def load(cls, model_path: str, gpu_memory_utilization: float = 0.6, max_model_len: int | None = None,
             seed: int = 0, dtype: str = "auto") -> "VLLMGenerator":
        """A new engine on ``model_path`` (an HF dir; needs a CUDA GPU and ``pip install 'veritas-rl[vllm]'``)."""
        try:
            from vllm import LLM
        except ImportError:
            raise ValueError("--backend vllm needs vLLM on a CUDA GPU: pip install 'veritas-rl[vllm]'") from None
        import os

        from transformers import AutoTokenizer

        # vLLM's engine core is a child process; a parent that has touched CUDA cannot fork one (vLLM's own fix)
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        llm = LLM(model=model_path, tokenizer=model_path, gpu_memory_utilization=gpu_memory_utilization,
                  max_model_len=max_model_len, seed=seed, dtype=dtype)
        return cls(llm, AutoTokenizer.from_pretrained(model_path))

    def generate(self, prompts, max_new_tokens, n=1, temperature=0.0, top_p=1.0, seed=0, desc="generate"):
        from vllm import SamplingParams

        if temperature == 0 and n != 1:
            raise ValueError(f"n={n} with temperature 0: greedy decoding gives one completion per prompt")
        texts = [self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        params = SamplingParams(n=n, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                                max_tokens=max_new_tokens, seed=seed if temperature > 0 else None,
                                skip_special_tokens=True)
        if self.before is not None:
            self.before()
        try:
            outs = self.llm.generate([{"prompt_token_ids": list(x)} for x in ids], sampling_params=params,
                                     use_tqdm=True)
        finally:
            if self.after is not None:
                self.after()
        return [[Completion(o.text, o.finish_reason == "length") for o in out.outputs] for out in outs]


class OpenAIGenerator:
    """An OpenAI-compatible chat endpoint (``BASE_URL/chat/completions``); ``finish_reason == "length"``
    marks a reply cut at the cap. Server or transport failures raise (they are not model output)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, concurrency: int = 4,
                 timeout: float = 600.0):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url={base_url!r}; expected http(s)://HOST[:PORT]/v1")
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r}; expected >= 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.concurrency, self.timeout = model, api_key, concurrency, timeout

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            detail = err.read()[:500].decode(errors="replace")
            raise RuntimeError(f"{self.url}: HTTP {err.code}: {detail}") from err
        except urllib.error.URLError as err:
            raise RuntimeError(f"{self.url}: {err.reason}") from err

    def _one(self, prompt: list[dict], max_new_tokens: int, n: int, temperature: float, top_p: float,
             seed: int) -> list[Completion]:
        body = {"model": self.model, "messages": [dict(m) for m in prompt], "max_tokens": max_new_tokens,
                "temperature": temperature, "top_p": top_p, "n": n, "seed": seed}
        reply = self._post(body)
        choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise RuntimeError(f"{self.url}: asked for n={n} choices, got {len(choices)}: {json.dumps(reply)[:300]}")
        return [Completion((c.get("message") or {}).get("content") or "", c.get("finish_reason") == "length")
                for c in choices]

    def generate(self, prompts, max_new_tokens, n=1, temperature=0.0, top_p=1.0, seed=0, desc="generate"):
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(self.concurrency) as pool:
            jobs = [pool.submit(self._one, p, max_new_tokens, n, temperature, top_p, seed + i)
                    for i, p in enumerate(prompts)]
            return [j.result() for j in tqdm(jobs, desc=desc, leave=False)]


# -- scoring and summaries ------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator ``1 - C(n-c, k) / C(n, k)`` (n samples, c of them correct), exact."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k(n={n}, c={c}, k={k}); expected 0 <= c <= n and 1 <= k <= n")
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def group_keys(tasks: Sequence[Task]) -> list[str]:
    """The :data:`GROUP_KEYS` every task carries in ``extra``."""
    return [k for k in GROUP_KEYS if tasks and all(k in t.extra for t in tasks)]


def _summary(records: list[dict]) -> dict[str, Any]:
    n = len(records)
    return {
        "n": n,
        "accuracy": sum(r["score"] >= 1.0 for r in records) / n if n else 0.0,
        "mean_score": sum(r["score"] for r in records) / n if n else 0.0,
        "clipped": sum(r["truncated"] for r in records) / n if n else 0.0,
        "kinds": dict(Counter(r["kind"] for r in records).most_common()),
    }


def _by_group(records: list[dict], keys: list[str], summarise) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        buckets: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            buckets[str(r["group"][key])].append(r)
        out[key] = {value: summarise(rs) for value, rs in sorted(buckets.items())}
    return out


def _record(task: Task, completion: Completion, score: Score, keys: list[str]) -> dict[str, Any]:
    return {"task_id": task.task_id, "group": {k: task.extra[k] for k in keys}, "completion": completion.text,
            "truncated": completion.truncated, "score": score.value, "kind": score.kind,
            "reason": str(score.info.get("reason", ""))}


@dataclass
class EvalResult:
    n: int
    accuracy: float  # fraction of tasks whose greedy completion scores 1.0
    mean_score: float
    clipped: float = 0.0  # share of completions that hit max_new_tokens
    kinds: dict[str, int] = field(default_factory=dict)  # Score.info["kind"] -> count
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> value -> summary
    reasons: dict[str, int] = field(default_factory=dict)  # the most frequent zero-score reasons
    samples: list[dict[str, Any]] = field(default_factory=list)  # the first few (task_id, completion, score)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)  # one per task (not in to_dict)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "accuracy": self.accuracy, "mean_score": self.mean_score, "clipped": self.clipped,
                "kinds": self.kinds, "groups": self.groups, "reasons": self.reasons, "samples": self.samples}


def score_greedy(generator: Generator, env: Env, tasks: list[Task], max_new_tokens: int, keep_samples: int = 5,
                 desc: str = "greedy eval") -> EvalResult:
    """Greedy (temperature 0) completion per task, scored by ``env``."""
    completions = [c[0] for c in generator.generate([t.prompt for t in tasks], max_new_tokens, desc=desc)]
    keys = group_keys(tasks)
    records = [_record(t, c, env.score(t, c.text), keys) for t, c in zip(tasks, completions)]
    total = _summary(records)
    reasons = Counter(r["reason"] for r in records if r["score"] < 1.0 and r["reason"])
    samples = [{"task_id": r["task_id"], "completion": r["completion"], "score": r["score"],
                "info": {"kind": r["kind"], "reason": r["reason"]}} for r in records[:keep_samples]]
    return EvalResult(n=total["n"], accuracy=total["accuracy"], mean_score=total["mean_score"],
                      clipped=total["clipped"], kinds=total["kinds"], groups=_by_group(records, keys, _summary),
                      reasons=dict(reasons.most_common(10)), samples=samples, records=records)


def greedy_accuracy(model, tokenizer, env: Env, tasks: list[Task], max_new_tokens: int, batch_size: int = 32,
                    keep_samples: int = 5, desc: str = "greedy eval") -> EvalResult:
    """The trainers' before/after accuracy: :func:`score_greedy` with an :class:`HFGenerator`."""
    return score_greedy(HFGenerator(model, tokenizer, batch_size), env, tasks, max_new_tokens, keep_samples, desc)


def greedy_completions(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                       desc: str = "greedy eval") -> list[str]:
    """Decode each chat prompt greedily (the texts only)."""
    return [c[0].text for c in HFGenerator(model, tokenizer, batch_size).generate(prompts, max_new_tokens, desc=desc)]


def score_pass_at_k(generator: Generator, env: Env, tasks: list[Task], max_new_tokens: int, n: int, k: int,
                    temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """``n`` sampled completions per task; pass@1 and pass@k (unbiased estimator), overall and per group."""
    if not 1 <= k <= n:
        raise ValueError(f"k={k} with n={n}; expected 1 <= k <= n (n samples per task)")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature!r}; pass@k samples need temperature > 0")
    samples = generator.generate([t.prompt for t in tasks], max_new_tokens, n=n, temperature=temperature,
                                 top_p=top_p, seed=seed, desc=f"sampling (n={n})")
    keys = group_keys(tasks)
    per_task = []
    for task, comps in zip(tasks, samples):
        recs = [_record(task, c, env.score(task, c.text), keys) for c in comps]
        correct = sum(r["score"] >= 1.0 for r in recs)
        per_task.append({"task_id": task.task_id, "group": recs[0]["group"], "correct": correct, "records": recs})

    def summarise(rows: list[dict]) -> dict[str, Any]:
        m = len(rows)
        flat = [r for row in rows for r in row["records"]]
        out = {"n_tasks": m, "pass@1": sum(pass_at_k(n, r["correct"], 1) for r in rows) / m if m else 0.0}
        out[f"pass@{k}"] = sum(pass_at_k(n, r["correct"], k) for r in rows) / m if m else 0.0
        out.update({"clipped": _summary(flat)["clipped"], "kinds": _summary(flat)["kinds"]})
        return out

    return {"n": n, "k": k, "temperature": temperature, "top_p": top_p, "seed": seed, **summarise(per_task),
            "groups": _by_group(per_task, keys, summarise),
            "per_task": [{"task_id": r["task_id"], "correct": r["correct"]} for r in per_task]}


def evaluate(generator: Generator, env: Env, tasks: list[Task], max_new_tokens: int, n: int = 1, k: int = 1,
             temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, keep_samples: int = 5) -> dict[str, Any]:
    """Greedy accuracy always; pass@k from ``n`` samples per task when ``n > 1``."""
    greedy = score_greedy(generator, env, tasks, max_new_tokens, keep_samples)
    out: dict[str, Any] = {"greedy": greedy.to_dict(), "per_task": [
        {"task_id": r["task_id"], "score": r["score"], "kind": r["kind"], "truncated": r["truncated"]}
        for r in greedy.records]}
    if n > 1:
        out["sampled"] = score_pass_at_k(generator, env, tasks, max_new_tokens, n, k, temperature, top_p, seed)
    elif k != 1:
        raise ValueError(f"k={k} with n=1; pass@k needs n >= k samples per task (--n)")
    return out
