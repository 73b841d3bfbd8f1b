"""The SFT launcher's batch and step checks (veritas_rl.backends.verl.sft_steps) against verl 0.9.1's dataloader arithmetic.

Two silent failures seen on an H100: 270 train / 30 val rows with batch 32 logged ``val/loss`` NaN (no
validation batch), and 1260 train rows, batch 32, 1 epoch with ``trainer.total_training_steps=40`` ended
after 39 steps without a checkpoint. The launcher now refuses both before torchrun.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.test_launchers import REPO, SFT, command_of, run, sft_files  # noqa: F401  (fixtures)


def generate(out, num_samples: int) -> tuple[str, str]:
    """lgc-v2 SFT parquet as data_processing/generate_dataset.py writes it (default --val-ratio 0.1)."""
    proc = subprocess.run([sys.executable, str(REPO / "data_processing/generate_dataset.py"), "--env", "lgc-v2",
                           "--format", "sft", "--num-samples", str(num_samples), "--output-dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(out / "lgc-v2_sft_train.parquet"), str(out / "lgc-v2_sft_val.parquet")


@pytest.fixture(scope="module")
def data_300(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("sft300"), 300)


@pytest.fixture(scope="module")
def data_1400(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("sft1400"), 1400)


def test_generated_rows_are_the_h100_cases(data_300, data_1400):
    from veritas_rl.backends.verl.sft_steps import parquet_rows

    assert [parquet_rows(f) for f in data_300] == [270, 30]
    assert [parquet_rows(f) for f in data_1400] == [1260, 140]


def test_batches_equal_torch_distributed_sampler_and_dataloader():
    """What verl builds: DistributedSampler(drop_last=True) per rank, batches of batch // dp with drop_last=True."""
    from torch.utils.data import DataLoader, DistributedSampler

    from veritas_rl.backends.verl.sft_steps import batches

    for rows in (0, 15, 30, 31, 32, 33, 270, 1260):
        dataset = list(range(rows))
        for dp in (1, 2, 3, 4, 8):
            for batch in (1, 2, 7, 16, 30, 32, 64):
                if batch // dp == 0:
                    assert batches(rows, batch, dp) == 0
                    continue
                for rank in range(dp):  # every rank gets as many batches
                    sampler = DistributedSampler(dataset, num_replicas=dp, rank=rank, shuffle=False, drop_last=True)
                    loader = DataLoader(dataset, batch_size=batch // dp, sampler=sampler, drop_last=True)
                    assert batches(rows, batch, dp) == len(loader), (rows, batch, dp, rank)


def test_known_numbers():
    from veritas_rl.backends.verl.sft_steps import batches

    assert batches(1260, 32, 1) == 39 and batches(1260, 32, 2) == 39 and batches(1260, 32, 8) == 39
    assert batches(30, 32, 1) == 0 and batches(30, 32, 2) == 0 and batches(32, 32, 2) == 1
    assert batches(1260, 32, 3) == 42  # 420 rows per rank in batches of 10
    assert batches(140, 32, 1) == 4


# -- the launcher (DRY_RUN=1 and a real run with VALIDATE=0; both stop before torchrun) --------------------------


def stopped_before_torchrun(proc) -> bool:
    return proc.returncode != 0 and "command:" not in proc.stderr and "torch.distributed.run" not in proc.stderr


@pytest.mark.parametrize("mode", [{"DRY_RUN": "1"}, {"DRY_RUN": "0", "VALIDATE": "0"}])
def test_fewer_val_rows_than_a_batch_fails_naming_val_loss(run, data_300, tmp_path, mode):
    """generate_dataset.py --num-samples 300 (270 train / 30 val) with SFT_TRAIN_BATCH_SIZE=32 on one GPU."""
    train, val = data_300
    # SFT_PARQUET_DIR: the launcher's default files, train and val, as generate_dataset.py writes them
    env = {"SFT_PARQUET_DIR": str(Path(train).parent), "GPU_COUNT": "1", "SFT_SAVE_DIR": str(tmp_path / "ckpt"), **mode}
    proc = run(SFT, env=env, dry=mode["DRY_RUN"], check=False)
    assert stopped_before_torchrun(proc), proc.stderr[-3000:]
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error: val/loss")]
    assert f"SFT_VAL_FILES: {val}) have 30 rows" in line
    assert "data.train_batch_size=32 (SFT_TRAIN_BATCH_SIZE)" in line
    assert "30 rows // 1 data-parallel rank(s) = 30 per rank, in batches of 32 // 1 = 32 with drop_last -> 0" in line
    assert "at least 32 validation rows" in line and "SFT_TRAIN_BATCH_SIZE=30 or less" in line
    assert "SFT_VAL_FILES=none" in line
    assert not any(line.startswith("error: zero steps") or line.startswith("error: no checkpoint")
                   for line in proc.stderr.splitlines())  # 270 train rows are fine: 8 steps per epoch
    assert not (tmp_path / "ckpt").exists()  # nothing created


def test_val_check_splits_over_the_data_parallel_ranks(run, data_300):
    train, val = data_300
    env = {"SFT_TRAIN_FILES": train, "SFT_VAL_FILES": val, "GPU_COUNT": "2", "NNODES": "2", "MASTER_ADDR": "10.0.0.1"}
    proc = run(SFT, env=env, dry="1", check=False)
    assert stopped_before_torchrun(proc)
    split = "30 rows // 4 data-parallel rank(s) = 7 per rank, in batches of 32 // 4 = 8 with drop_last -> 0"
    assert split in proc.stderr
    assert "SFT_TRAIN_BATCH_SIZE=28 or less" in proc.stderr  # 28 // 4 = 7 rows per rank: one batch
    # the user's Hydra override wins over SFT_TRAIN_BATCH_SIZE, as for verl: 28 // 4 = 7 rows, one val batch per rank
    proc = run(SFT, "data.train_batch_size=28", env=env, dry="1")
    assert "[sft_steps] 270 train rows, data.train_batch_size=28 over 4 data-parallel rank(s) -> 9 steps per epoch" \
        in proc.stderr
    assert "30 val rows -> 1 val batches" in proc.stderr


@pytest.mark.parametrize("mode", [{"DRY_RUN": "1"}, {"DRY_RUN": "0", "VALIDATE": "0"}])
def test_unreachable_total_training_steps_fails_naming_sft_total_epochs(run, data_1400, tmp_path, mode):
    """1260 train rows, batch 32, 1 epoch = 39 steps; trainer.total_training_steps=40 would save nothing."""
    train, val = data_1400
    env = {"SFT_TRAIN_FILES": train, "SFT_VAL_FILES": val, "GPU_COUNT": "1", "SFT_TOTAL_EPOCHS": "1",
           "SFT_SAVE_FREQ": "-1", "SFT_SAVE_DIR": str(tmp_path / "ckpt"), **mode}
    proc = run(SFT, "trainer.total_training_steps=40", env=env, dry=mode["DRY_RUN"], check=False)
    assert stopped_before_torchrun(proc), proc.stderr[-3000:]
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error: no checkpoint written")]
    assert "trainer.total_training_steps=40 is never reached" in line
    assert "trainer.total_epochs=1 (SFT_TOTAL_EPOCHS) x 39 steps per epoch" in line
    assert "1260 rows // 1 data-parallel rank(s) = 1260 per rank, in batches of 32 // 1 = 32 with drop_last -> 39" \
        in line
    assert "= 39 steps" in line and "with save_freq=-1 nothing is saved" in line
    assert "Fix: SFT_TOTAL_EPOCHS=2, or trainer.total_training_steps=39 or less" in line
    assert "val/loss" not in proc.stderr  # 140 val rows: 4 batches
    assert not (tmp_path / "ckpt").exists()


def test_last_override_wins_and_a_valid_config_passes(run, data_1400):
    train, val = data_1400
    env = {"SFT_TRAIN_FILES": train, "SFT_VAL_FILES": val, "GPU_COUNT": "1", "SFT_TOTAL_EPOCHS": "1"}
    # Hydra: the last value of a key wins; 39 steps are reachable, and the run validates with verl's schema
    proc = run(SFT, "trainer.total_training_steps=40", "trainer.total_training_steps=39", env=env, dry="1")
    assert ("[sft_steps] 1260 train rows, data.train_batch_size=32 over 1 data-parallel rank(s) -> 39 steps per epoch "
            "x 1 epoch(s) = 39; total_training_steps=39; 140 val rows -> 4 val batches") in proc.stderr
    assert "validated against verl's schema" in proc.stderr
    assert "trainer.total_training_steps=39" in command_of(run(SFT, "trainer.total_training_steps=39", env=env))
    # SFT_TOTAL_EPOCHS=2 is the fix the error names: 78 steps reachable
    proc = run(SFT, "trainer.total_training_steps=40", env={**env, "SFT_TOTAL_EPOCHS": "2"}, dry="1")
    assert "x 2 epoch(s) = 78; total_training_steps=40" in proc.stderr
    # a batch-size override changes the steps per epoch: 1260 // 64 = 19, so 39 steps need 3 epochs
    proc = run(SFT, "data.train_batch_size=64", "trainer.total_training_steps=39", env=env, dry="1", check=False)
    assert stopped_before_torchrun(proc)
    assert "x 19 steps per epoch" in proc.stderr and "Fix: SFT_TOTAL_EPOCHS=3" in proc.stderr


def test_fewer_train_rows_than_a_batch_fails(run, data_300, sft_files, tmp_path):
    _, val = data_300
    proc = run(SFT, env={"SFT_TRAIN_FILES": val, "SFT_VAL_FILES": "none", "GPU_COUNT": "1"}, dry="1", check=False)
    assert stopped_before_torchrun(proc)
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error: zero steps per epoch")]
    assert f"(SFT_TRAIN_FILES: {val}) have 30 rows" in line and "data.train_batch_size=32" in line
    assert "at least 32 training rows, or SFT_TRAIN_BATCH_SIZE=30 or less" in line
    # a real run checks before it writes the messages copy of a prompt/response file
    pr, _ = sft_files
    env = {"SFT_TRAIN_FILES": str(pr), "SFT_VAL_FILES": "none", "DRY_RUN": "0", "VALIDATE": "0",
           "SFT_SAVE_DIR": str(tmp_path / "ckpt"), "RUN_NAME": "small"}
    proc = run(SFT, env=env, dry="0", check=False)
    assert stopped_before_torchrun(proc) and "have 2 rows" in proc.stderr  # the source's rows for the copy's path
    assert not (tmp_path / "ckpt").exists()


def test_no_val_files_means_no_test_steps(run, data_1400):
    train, _ = data_1400
    env = {"SFT_TRAIN_FILES": train, "SFT_VAL_FILES": "none", "GPU_COUNT": "1"}
    argv = command_of(run(SFT, env=env))
    assert "data.val_files=null" in argv and "trainer.test_freq=-1" in argv  # SFT_TEST_FREQ (50) needs val files
    # verl 0.9.1 would iterate the missing val loader at step 10: refused
    proc = run(SFT, "trainer.test_freq=10", env=env, dry="1", check=False)
    assert stopped_before_torchrun(proc)
    assert "error: trainer.test_freq=10 without validation files" in proc.stderr and "at step 10" in proc.stderr
    assert "validated against verl's schema" in run(SFT, env=env, dry="1").stderr


# -- the module on its own -----------------------------------------------------------------------------------


def test_check_reads_overrides_like_verl(data_1400, data_300, tmp_path):
    from veritas_rl.backends.verl.sft_steps import check

    train, val = data_1400
    base = [f"data.train_files=['{train}']", f"data.val_files=['{val}']", "data.train_batch_size=32",
            "trainer.total_epochs=1"]
    steps = check(base, world_size=1)
    assert (steps.dp, steps.train_rows, steps.val_rows) == (1, 1260, 140)
    assert (steps.steps_per_epoch, steps.val_batches) == (39, 4)
    assert steps.total_steps == 39 and steps.test_freq == -1  # verl's sft_trainer_engine default
    # ulysses sequence parallelism: 4 processes, dp 2
    steps = check([*base, "engine.ulysses_sequence_parallel_size=2"], world_size=4)
    assert (steps.dp, steps.steps_per_epoch) == (2, 39)
    # verl caps the datasets at *_max_samples
    with pytest.raises(ValueError, match=r"val/loss would be NaN.* have 20 rows"):
        check([*base, "data.val_max_samples=20"], world_size=1)
    assert check([*base, "data.train_max_samples=64"], world_size=1).steps_per_epoch == 2
    # test_freq=after_each_epoch is steps_per_epoch for verl
    assert check([*base, "trainer.test_freq=after_each_epoch"], world_size=1).test_freq == 39
    # every problem is reported at once
    with pytest.raises(ValueError) as err:
        check([f"data.train_files=['{data_300[1]}']", f"data.val_files=['{data_300[1]}']",
               "trainer.total_training_steps=5", "data.train_batch_size=32"], world_size=2)
    kinds = [line.split(":")[0] for line in str(err.value).splitlines()]
    assert kinds == ["zero steps per epoch", "val/loss would be NaN"]
    # a batch smaller than the ranks
    with pytest.raises(ValueError, match=r"data.train_batch_size=2 \(SFT_TRAIN_BATCH_SIZE\) is smaller than the 4"):
        check([*base, "data.train_batch_size=2"], world_size=4)


def test_sources_and_unusable_overrides(data_1400, tmp_path, caplog):
    from veritas_rl.backends.verl.sft_steps import check

    train, val = data_1400
    copy = str(tmp_path / "not-written-yet.messages.parquet")
    steps = check([f"data.train_files=['{copy}']", "data.train_batch_size=32"], world_size=1, sources={copy: train})
    assert steps.train_rows == 1260 and steps.val_rows is None
    with pytest.raises(ValueError, match="does not exist"):
        check([f"data.train_files=['{copy}']"], world_size=1)
    # what the validation reports (unknown keys, wrong types) skips these checks with a warning
    assert check([f"data.train_files=['{train}']", "data.train_batch_sizee=3"], world_size=1) is None
    assert check([f"data.train_files=['{train}']", "data.train_batch_size=abc"], world_size=1) is None
    assert "batch and step checks skipped" in caplog.text


def test_cli_exit_status_and_messages(data_300, capsys):
    from veritas_rl.backends.verl.sft_steps import main

    train, val = data_300
    overrides = ["--", f"data.train_files=['{train}']", f"data.val_files=['{val}']", "data.train_batch_size=32"]
    assert main(["--world-size", "1", *overrides]) == 2
    assert capsys.readouterr().err.startswith("error: val/loss would be NaN")
    assert main(["--world-size", "1", *overrides, "data.train_batch_size=30"]) == 0
