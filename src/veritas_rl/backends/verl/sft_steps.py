"""Check, before torchrun, that verl 0.9.1's SFT trainer gets whole batches and reaches its last step.

``verl.trainer.sft_trainer.SFTTrainer`` splits both datasets over the data-parallel ranks with
``DistributedSampler(drop_last=True)`` and batches each rank's share in ``data.train_batch_size // dp``
rows with ``drop_last=True`` — the validation loader too. It stops the run at
``global_step >= total_training_steps`` and only there writes the final checkpoint and runs the final
validation. Two silent failures follow (both seen on an H100):

* fewer validation rows than one batch: no validation batch runs and ``val/loss`` is logged as NaN
  (``torch.mean`` of an empty tensor);
* ``trainer.total_training_steps`` above ``total_epochs`` × steps per epoch: the epochs end before the last
  step, so no final checkpoint is written (none at all with ``save_freq=-1``) and no final validation runs.

Also refused: fewer training rows than one batch (zero steps per epoch), and ``test_freq > 0`` without
validation files (verl iterates the missing validation loader at that step and fails with a TypeError).

The launcher runs this with its own overrides followed by the user's, composed with verl's Hydra config,
so the last override of a key wins as it does for verl::

    python -m veritas_rl.backends.verl.sft_steps --world-size 2 [--source FILE ORIGINAL ...] -- OVERRIDES...

``--source FILE ORIGINAL``: count ``ORIGINAL``'s rows for ``FILE`` (a dry run names converted copies that
are not written yet; the copy has the source's rows). Rows come from the parquet footers (no data read).
Problems are printed one per line on stderr (``error: ...``), exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from veritas_rl.backends.verl.validate import split_overrides

log = logging.getLogger(__name__)


def parquet_rows(path: str | Path) -> int:
    """Rows of a parquet file, from its footer."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except FileNotFoundError:
        raise ValueError(f"SFT data file {str(path)!r} does not exist") from None
    except Exception as err:  # pyarrow raises ArrowInvalid & co. for a file that is not parquet
        raise ValueError(f"SFT data file {str(path)!r} is not a readable parquet file: {err}") from None


def dataset_rows(files: Sequence[str], max_samples: int = -1, sources: Mapping[str, str] | None = None) -> int:
    """Rows verl's ``MultiTurnSFTDataset`` holds: all files concatenated, capped at ``max_samples`` when > 0."""
    sources = sources or {}
    rows = sum(parquet_rows(sources.get(str(f), str(f))) for f in files)
    return min(rows, max_samples) if max_samples > 0 else rows


def batches(rows: int, batch_size: int, dp: int) -> int:
    """Batches per rank of verl's SFT dataloaders: ``(rows // dp) // (batch_size // dp)``, both with drop_last."""
    per_rank = batch_size // dp
    return (rows // dp) // per_rank if per_rank > 0 else 0


@dataclass(frozen=True)
class SFTSteps:
    """What verl's SFT trainer will do with the composed config on ``dp`` data-parallel ranks."""

    dp: int
    batch_size: int
    train_files: tuple[str, ...]
    train_rows: int
    val_files: tuple[str, ...]
    val_rows: int | None  # None: no validation files
    total_epochs: int
    requested_steps: int | None  # trainer.total_training_steps; None = epochs x steps per epoch
    test_freq: int

    @property
    def steps_per_epoch(self) -> int:
        return batches(self.train_rows, self.batch_size, self.dp)

    @property
    def val_batches(self) -> int | None:
        return None if self.val_rows is None else batches(self.val_rows, self.batch_size, self.dp)

    @property
    def reachable_steps(self) -> int:
        return self.total_epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        """verl's ``total_training_steps``: the override when given, else epochs x steps per epoch."""
        return self.reachable_steps if self.requested_steps is None else self.requested_steps

    def line(self) -> str:
        val = f"{self.val_rows} val rows -> {self.val_batches} val batches" if self.val_rows is not None else "no val"
        return (
            f"{self.train_rows} train rows, data.train_batch_size={self.batch_size} over {self.dp} data-parallel "
            f"rank(s) -> {self.steps_per_epoch} steps per epoch x {self.total_epochs} epoch(s) = "
            f"{self.reachable_steps}; total_training_steps={self.total_steps}; {val}"
        )

    def problems(self) -> list[str]:
        """Why the run would train nothing, log ``val/loss`` NaN, or never reach its last step (empty: fine)."""
        dp, batch, per_rank = self.dp, self.batch_size, self.batch_size // self.dp
        if per_rank == 0:
            return [
                f"data.train_batch_size={batch} (SFT_TRAIN_BATCH_SIZE) is smaller than the {dp} data-parallel ranks "
                f"(GPU_COUNT x NNODES / ulysses_sequence_parallel_size): each rank's batch would be 0 rows. "
                f"Fix: SFT_TRAIN_BATCH_SIZE={dp} or more (a multiple of {dp})"
            ]
        needed = dp * per_rank  # rows for one batch on every rank

        def split(rows: int) -> str:  # how verl's dataloaders cut `rows`
            return (f"{rows} rows // {dp} data-parallel rank(s) = {rows // dp} per rank, in batches of "
                    f"{batch} // {dp} = {per_rank} with drop_last -> {batches(rows, batch, dp)}")

        def smaller_batch(rows: int) -> str:  # the largest batch that gives every rank one batch of `rows`
            largest = dp * (rows // dp)
            return f", or SFT_TRAIN_BATCH_SIZE={largest} or less" if largest >= dp else ""

        one_batch = f"fewer than one batch of data.train_batch_size={batch} (SFT_TRAIN_BATCH_SIZE)"
        out = []
        if self.steps_per_epoch == 0:
            out.append(
                f"zero steps per epoch: the training files (SFT_TRAIN_FILES: {', '.join(self.train_files)}) have "
                f"{self.train_rows} rows, {one_batch}: {split(self.train_rows)}, and verl 0.9.1 fails dividing by "
                f"zero steps per epoch. Fix: at least {needed} training rows{smaller_batch(self.train_rows)}"
            )
        if self.val_rows is not None and self.val_batches == 0:
            out.append(
                f"val/loss would be NaN: the validation files (SFT_VAL_FILES: {', '.join(self.val_files)}) have "
                f"{self.val_rows} rows, {one_batch}: verl 0.9.1 validates in training batches "
                f"({split(self.val_rows)}), so no validation batch runs and val/loss is logged as NaN (the mean of "
                f"no losses). Fix: at least {needed} validation rows (generate_dataset.py: more --num-samples or a "
                f"larger --val-ratio){smaller_batch(self.val_rows)}, or no validation (SFT_VAL_FILES=none)"
            )
        if self.steps_per_epoch > 0 and self.total_steps > self.reachable_steps:
            epochs = math.ceil(self.total_steps / self.steps_per_epoch)
            out.append(
                f"no checkpoint written: trainer.total_training_steps={self.total_steps} is never reached, since "
                f"trainer.total_epochs={self.total_epochs} (SFT_TOTAL_EPOCHS) x {self.steps_per_epoch} steps per epoch "
                f"({split(self.train_rows)}) = {self.reachable_steps} steps. verl writes the final "
                f"checkpoint and runs the final validation only at step total_training_steps, so the run would end "
                f"without them (with save_freq=-1 nothing is saved). Fix: SFT_TOTAL_EPOCHS={epochs}, or "
                f"trainer.total_training_steps={self.reachable_steps} or less"
            )
        if self.val_rows is None and 0 < self.test_freq <= self.total_steps:
            out.append(
                f"trainer.test_freq={self.test_freq} without validation files (data.val_files is null): verl 0.9.1 "
                f"iterates the missing validation loader at step {self.test_freq} and fails "
                f"(TypeError: 'NoneType' object is not iterable). Fix: trainer.test_freq=-1, or give SFT_VAL_FILES"
            )
        return out


class _Unchecked(Exception):
    """Overrides the checks cannot use (not composable, a value of the wrong type): the validation reports them."""


def _compose(overrides: Sequence[str]):
    from veritas_rl.backends.verl.validate import compose

    try:
        return compose("sft", overrides)
    except ValueError as err:
        raise _Unchecked(str(err)) from None


def _int(cfg, key: str) -> int:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unchecked(f"{key}={value!r} is not an integer")
    return value


def _files(cfg, key: str) -> tuple[str, ...]:
    from omegaconf import ListConfig, OmegaConf

    value = OmegaConf.select(cfg, key)
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple, ListConfig)) else (str(value),)


def plan(cfg, world_size: int, sources: Mapping[str, str] | None = None) -> SFTSteps:
    """The SFT run ``cfg`` (verl's composed ``sft_trainer_engine`` config) describes on ``world_size`` processes."""
    from omegaconf import OmegaConf

    sp = OmegaConf.select(cfg, "engine.ulysses_sequence_parallel_size", default=1) or 1
    if isinstance(sp, bool) or not isinstance(sp, int):
        raise _Unchecked(f"engine.ulysses_sequence_parallel_size={sp!r} is not an integer")
    dp = max(1, world_size // sp)  # verl's FSDP engine: world size // ulysses size
    batch_size = _int(cfg, "data.train_batch_size")
    train_files = _files(cfg, "data.train_files")
    if not train_files:
        raise ValueError("data.train_files is empty (SFT_TRAIN_FILES)")
    val_files = _files(cfg, "data.val_files")
    train_rows = dataset_rows(train_files, _int(cfg, "data.train_max_samples"), sources)
    val_rows = dataset_rows(val_files, _int(cfg, "data.val_max_samples"), sources) if val_files else None
    requested = None
    if OmegaConf.select(cfg, "trainer.total_training_steps") is not None:
        requested = _int(cfg, "trainer.total_training_steps")
    if OmegaConf.select(cfg, "trainer.test_freq") == "after_each_epoch":  # verl: every steps_per_epoch steps
        test_freq = batches(train_rows, batch_size, dp)
    else:
        test_freq = _int(cfg, "trainer.test_freq")
    return SFTSteps(
        dp=dp,
        batch_size=batch_size,
        train_files=train_files,
        train_rows=train_rows,
        val_files=val_files,
        val_rows=val_rows,
        total_epochs=_int(cfg, "trainer.total_epochs"),
        requested_steps=requested,
        test_freq=test_freq,
    )


def check(overrides: Sequence[str], world_size: int, sources: Mapping[str, str] | None = None) -> SFTSteps | None:
    """Compose verl's SFT config with ``overrides``; raise ``ValueError`` listing every problem.

    Returns ``None`` (checks skipped, with a warning) when the overrides do not compose or hold a value of the
    wrong type: the launcher's validation (``VALIDATE=1``, ``DRY_RUN=1``) and verl itself report those.
    """
    if world_size < 1:
        raise ValueError(f"world_size={world_size}; expected >= 1 (GPU_COUNT x NNODES)")
    try:
        steps = plan(_compose(overrides), world_size, sources)
    except _Unchecked as err:
        log.warning("batch and step checks skipped: %s", err)
        return None
    problems = steps.problems()
    if problems:
        raise ValueError("\n".join(problems))
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m veritas_rl.backends.verl.sft_steps",
        description="Check that verl 0.9.1's SFT trainer gets whole train and validation batches and reaches "
        "trainer.total_training_steps with these Hydra overrides (put them after `--`).",
    )
    parser.add_argument("--world-size", type=int, required=True, help="torchrun processes: GPU_COUNT x NNODES")
    parser.add_argument("--source", nargs=2, action="append", default=[], metavar=("FILE", "ORIGINAL"),
                        help="count ORIGINAL's rows for FILE (a converted copy a dry run does not write)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; put them after `--`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv, extra = split_overrides(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sft_steps] %(message)s", stream=sys.stderr)
    try:
        steps = check([*args.overrides, *extra], args.world_size, dict(args.source))
    except ValueError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    if steps is not None:
        log.info("%s", steps.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
