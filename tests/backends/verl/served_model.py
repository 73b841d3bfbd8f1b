"""verl 0.9.1's agent-loop machinery in one process, on CPU, with the real SmolLM2 behind it.

What verl runs as Ray actors runs here as plain objects of verl's own classes:

* :class:`HFTokenServer` — the real SmolLM2 (transformers, CPU) behind the rollout server's
  token-in/token-out ``generate(prompt_ids, sampling_params, request_id, ...) -> TokenOutput`` (the
  signature of verl's vLLM server, with its ``max_tokens`` rule, EOS kept in ``token_ids``, logprobs
  on request, prefix caching across turns). Sampling is seeded (temperature 0 = greedy). ``guide``
  optionally restricts the tokens
  the model may choose at each step, as a serving engine's guided decoding does; the model still picks.
* :class:`InProcessActor` — ``handle.method.remote(...)`` as an awaitable, the one piece of Ray a
  verl class needs from another: it wraps verl's real ``GlobalRequestLoadBalancer`` and
  ``RewardLoopWorker`` and the server above.
* :func:`agent_loop_worker` — verl's real ``AgentLoopWorker`` with verl's real ``LLMServerClient``
  (load balancer, sticky sessions) and the real reward loop worker (our ``compute_score`` through
  verl's ``naive`` reward manager), so ``generate_sequences`` runs the agent loop, padding,
  position ids, streaming reward and ``_postprocess`` exactly as in training.

Left untested by this harness: vLLM itself (paged KV cache, its sampler and logprob modes, prefix
caching across turns, ``max_model_len`` from the engine), Ray (actor placement, serialisation of
``extra_fields`` between processes, several workers), weight sync between FSDP and the rollout, and
the trainer's step after the rollout (advantages, the PPO update over ``response_mask``).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Callable, Sequence

import torch

Guide = Callable[[Sequence[int]], Sequence[int] | None]


class InProcessActor:
    """``actor.method.remote(*args, **kwargs)`` -> an awaitable of ``obj.method(*args, **kwargs)``."""

    def __init__(self, obj: Any):
        self._obj = obj

    def __getattr__(self, name: str):
        method = getattr(self._obj, name)

        class _Remote:
            @staticmethod
            def remote(*args, **kwargs):
                result = method(*args, **kwargs)
                if inspect.isawaitable(result):
                    return asyncio.ensure_future(result)
                future = asyncio.get_running_loop().create_future()
                future.set_result(result)
                return future

        return _Remote()


class HFTokenServer:
    """The real model behind verl's rollout-server ``generate`` (token ids in, ``TokenOutput`` out)."""

    def __init__(self, model_dir: str, *, prompt_length: int, response_length: int, max_model_len: int = 8192,
                 seed: int = 0, guide: Guide | None = None, global_steps: int | None = 1):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
        self.prompt_length, self.response_length, self.max_model_len = prompt_length, response_length, max_model_len
        self.generator = torch.Generator().manual_seed(seed)
        self.guide = guide
        # the weights version, as verl's vLLM server reports it in every output's extra_fields (it is set at each
        # weight sync: vllm_async_server.set_global_steps); a test may change it between turns
        self.global_steps = global_steps
        self.calls: list[dict[str, Any]] = []  # what each request asked for (prompt length, max_tokens)
        self._lock = threading.Lock()
        self._cache: list[tuple[list[int], Any]] = []  # (token ids in the KV cache, the cache), newest last

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data=None, video_data=None, audio_data=None, mm_processor_kwargs=None,
                       priority: int = 0, kv_transfer_params=None):
        params = dict(sampling_params)
        if "max_tokens" in params:  # verl's vLLM server: the caller's max_tokens, else the configured lengths
            max_tokens = params.pop("max_tokens")
        else:
            max_tokens = min(self.response_length, self.prompt_length + self.response_length - len(prompt_ids))
        max_tokens = max(1, min(int(max_tokens), self.max_model_len - len(prompt_ids)))
        self.calls.append({"request_id": request_id, "prompt_len": len(prompt_ids), "max_tokens": max_tokens})
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._generate, list(prompt_ids), params, max_tokens)

    def _cached_prefix(self, prompt_ids: list[int]):
        """The longest cached sequence that ``prompt_ids`` extends (prefix caching across a game's turns)."""
        best = None
        for ids, past in self._cache:
            if len(ids) < len(prompt_ids) and prompt_ids[: len(ids)] == ids and (best is None or len(ids) > len(best[0])):
                best = (ids, past)
        return best

    @torch.no_grad()
    def _generate(self, prompt_ids: list[int], params: dict[str, Any], max_tokens: int):
        from verl.workers.rollout.replica import TokenOutput

        temperature = float(params.get("temperature", 1.0))
        top_p, top_k = float(params.get("top_p", 1.0)), int(params.get("top_k", -1))
        want_logprobs = bool(params.get("logprobs"))
        eos = self.tokenizer.eos_token_id
        with self._lock:
            out, logprobs, past, fed = [], [], None, []
            cached = self._cached_prefix(prompt_ids)
            if cached is not None:
                self._cache.remove(cached)
                fed, past = list(cached[0]), cached[1]
            inputs = torch.tensor([prompt_ids[len(fed):]])
            for _ in range(max_tokens):
                result = self.model(input_ids=inputs, past_key_values=past, use_cache=True)
                past = result.past_key_values
                fed += inputs[0].tolist()
                logits = result.logits[0, -1].float()
                allowed = self.guide(out) if self.guide is not None else None
                if allowed is not None:
                    masked = torch.full_like(logits, float("-inf"))
                    masked[list(allowed)] = logits[list(allowed)]
                    logits = masked
                token = self._sample(logits, temperature, top_p, top_k)
                if want_logprobs:
                    logprobs.append(float(torch.log_softmax(logits, -1)[token]))
                out.append(token)
                if token == eos:
                    break
                inputs = torch.tensor([[token]])
            self._cache = [*self._cache[-7:], (fed, past)]
        return TokenOutput(token_ids=out, log_probs=logprobs if want_logprobs else None, stop_reason="completed",
                           extra_fields={"global_steps": self.global_steps})

    def _sample(self, logits: torch.Tensor, temperature: float, top_p: float, top_k: int) -> int:
        if temperature <= 0:
            return int(torch.argmax(logits))
        logits = logits / temperature
        if top_k > 0:
            cut = torch.topk(logits, min(top_k, logits.numel())).values[-1]
            logits = torch.where(logits < cut, torch.full_like(logits, float("-inf")), logits)
        probs = torch.softmax(logits, -1)
        if top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_probs, 0) - sorted_probs < top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        return int(torch.multinomial(probs, 1, generator=self.generator))


def answer_guide(tokenizer, choices: Sequence[str]) -> Guide:
    """Guided decoding to ``<answer>C</answer>`` + EOS, the model choosing ``C`` among single-token ``choices``."""
    head = tokenizer("<answer>", add_special_tokens=False)["input_ids"]
    tail = tokenizer("</answer>", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    options = []
    for choice in choices:
        ids = tokenizer(choice, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, f"choice {choice!r} is {len(ids)} tokens"
        options.append(ids[0])

    def guide(generated: Sequence[int]) -> Sequence[int] | None:
        at = len(generated)
        if at < len(head):
            return [head[at]]
        if at == len(head):
            return options
        at -= len(head) + 1
        return [tail[min(at, len(tail) - 1)]]

    return guide


async def agent_loop_worker(config, server: HFTokenServer):
    """verl's ``AgentLoopWorker`` over ``server`` (through verl's client and load balancer) with verl's reward worker.

    Call it inside the event loop that will run ``generate_sequences`` (verl's workers keep that loop).
    """
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.workers.rollout.llm_server import LLMServerClient
    from verl.workers.rollout.router import GlobalRequestLoadBalancer

    balancer = InProcessActor(GlobalRequestLoadBalancer({"cpu-0": InProcessActor(server)}))
    client = LLMServerClient(config, load_balancer_handle=balancer)
    reward_worker = InProcessActor(RewardLoopWorker(config))
    return AgentLoopWorker(config, client, None, [reward_worker])


def game_batch(items: Sequence[dict], *, validate: bool = False, global_steps: int = 1):
    """Dataset items as the ``DataProto`` verl's trainer hands the agent loop (verl's collate + ``from_single_dict``)."""
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import collate_fn

    batch = DataProto.from_single_dict(collate_fn(list(items)))
    batch.meta_info = {"validate": validate, "global_steps": global_steps}
    return batch
