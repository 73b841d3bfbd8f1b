"""A Hugging Face causal LM (any checkpoint the two backends write) as a greedy text policy."""

from __future__ import annotations

from typing import Any


class HFPolicy:
    """A causal LM as a policy: chat template, greedy ``generate``, new tokens decoded.

    ``path`` is anything :func:`veritas_rl.models.resolve_checkpoint` takes: an HF model dir (a merged
    verl checkpoint), a TRL run dir (its ``final/``, else its last ``checkpoint-N``), a ``checkpoint-N``
    dir, a LoRA adapter dir (loaded on its base), ``embedded:NAME`` or a hub id. Called with a
    :class:`~veritas_rl.games.moves.Turn` (its ``messages``) or with a list of chat messages.
    """

    def __init__(self, path: str, *, max_new_tokens: int = 32, device: str | None = None, threads: int | None = None):
        try:
            import torch
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError("hf: policies need transformers and torch: pip install 'veritas-rl[train]'") from err
        from veritas_rl.models import load_causal_lm, resolve_checkpoint

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)  # on a busy CPU, 1 thread is often several times faster than 2
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model_path, adapter = resolve_checkpoint(path)
        try:
            self.model, self.tokenizer = load_causal_lm(model_path, self.device, adapter=adapter)
        except OSError as err:  # not a model dir, and not a hub id reachable from here
            raise ValueError(f"hf:{path}: cannot load a model from it ({str(err).splitlines()[0]})") from None
        self.model.eval()
        self.path, self.adapter = model_path, adapter
        self.max_new_tokens = max_new_tokens

    def __call__(self, turn: Any) -> str:
        messages = turn.messages if hasattr(turn, "messages") else turn
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with self.torch.no_grad():
            out = self.model.generate(
                **enc, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
            )
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
