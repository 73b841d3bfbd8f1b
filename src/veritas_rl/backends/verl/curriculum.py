"""verl 0.9.1 adapter of :mod:`veritas_rl.curriculum`: stages and failure replay for ``DynamicEnvDataset``.

**Why a named Ray actor behind a socket.** In verl 0.9.1 (``verl.trainer.main_ppo`` -> the v1 trainer)
the train sampler is fixed (``create_rl_sampler``: ``SequentialSampler`` with ``data.shuffle=False``,
no ``data.sampler`` hook, and no ``on_batch_end`` dataset hook as the older ``RayPPOTrainer`` had), the
tasks are read by ``StatefulDataLoader`` *worker processes* forked from the trainer actor (Ray's API does
not work in a forked child), and the scores are computed in the ``RewardLoopWorker`` Ray actors. So the
state lives in one place, a named Ray actor (``veritas-curriculum-<id>``, 0 CPUs, on the trainer's node)
created by the train dataset; the dataloader workers (draws) and the reward workers (scores) reach it
over an authenticated ``multiprocessing.connection`` socket whose address the train items carry in
``extra_info["curriculum"]``. Without Ray (tests, a CPU check) the same server runs as a thread.

**Determinism.** Slots (dataset indices, read in order) are grouped into batches of
``data.gen_batch_size or data.train_batch_size``; batch ``b``'s draws come from the state after batches
``< b - lag`` (:class:`~veritas_rl.curriculum.Schedule`): a worker asking early waits (up to ``wait_s``,
then draws from the state it has and says so). Validation (``data.val_files=[val]``) is never touched.

**Resume.** Every applied batch is appended to ``<state_dir>/curriculum/feedback.jsonl``; with
``state_dir`` = ``trainer.default_local_dir`` (the launchers set it), a run dir holding a verl checkpoint
(``latest_checkpointed_iteration.txt`` = N steps) replays the first N batches: the resumed stream is the
uninterrupted one (one batch per step: sync trainer, no group refill).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any, Mapping

logger = logging.getLogger(__name__)

KEYS = ("file", "failure_replay", "capacity", "fraction", "priority_exponent", "failure_threshold",
        "retire_after", "group_size", "state_dir", "lag", "wait_s", "name")
REPLAY_KEYS = ("capacity", "fraction", "priority_exponent", "failure_threshold", "retire_after")
LOG_NAME = "feedback.jsonl"
_ACTORS: dict[str, Any] = {}  # keeps the actor handles of this process alive
_SERVERS: dict[str, "CurriculumServer"] = {}
_CLIENTS: dict[tuple, "_Client"] = {}
_CLIENTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class VerlCurriculumSettings:
    """``data.custom_cls.config.curriculum`` (the launchers fill it from CURRICULUM, FAILURE_REPLAY, REPLAY_*)."""

    file: str | None = None
    failure_replay: bool | None = None
    replay: dict = field(default_factory=dict)
    group_size: int = 1
    state_dir: str | None = None
    lag: int = 2
    wait_s: float = 600.0
    name: str | None = None

    def spec(self):
        from veritas_rl.curriculum import load_curriculum

        return load_curriculum(self.file, failure_replay=self.failure_replay, replay_overrides=self.replay)


def parse_curriculum_settings(raw: Any) -> VerlCurriculumSettings | None:
    """Validate ``data.custom_cls.config.curriculum`` (None = off); errors name the key."""
    from veritas_rl.curriculum.schema import _bool, _int, _keys, _number

    if raw is None:
        return None
    where = "data.custom_cls.config.curriculum"
    raw = _keys(where, raw, KEYS)
    if raw.get("group_size") is None:
        raise ValueError(f"{where}.group_size is required: the completions per prompt "
                         "(actor_rollout_ref.rollout.n; the launchers pass ROLLOUT_N)")
    failure_replay = raw.get("failure_replay")
    settings = VerlCurriculumSettings(
        file=None if raw.get("file") in (None, "") else str(raw["file"]),
        failure_replay=None if failure_replay is None else _bool(f"{where}.failure_replay", failure_replay),
        replay={k: raw[k] for k in REPLAY_KEYS if raw.get(k) is not None},
        group_size=_int(f"{where}.group_size", raw["group_size"], 1),
        state_dir=None if raw.get("state_dir") in (None, "") else str(raw["state_dir"]),
        lag=_int(f"{where}.lag", raw.get("lag", 2), 0),
        wait_s=_number(f"{where}.wait_s", raw.get("wait_s", 600.0), 0.0, 86_400.0, lo_open=True),
        name=None if raw.get("name") in (None, "") else str(raw["name"]),
    )
    if settings.file is None and not settings.failure_replay:
        raise ValueError(f"{where} needs file (a curriculum file or ladder) and/or failure_replay=true")
    settings.spec()  # the file and the replay settings are valid
    return settings


def resume_step(state_dir: str | None) -> int:
    """verl's last checkpointed step in ``state_dir`` (0 = a fresh run)."""
    if not state_dir:
        return 0
    tracker = Path(state_dir) / "latest_checkpointed_iteration.txt"
    if not tracker.is_file():
        return 0
    text = tracker.read_text(encoding="utf-8").strip()
    return int(text) if text.isdigit() else 0


class CurriculumServer:
    """The schedule behind a socket: ``draw``, ``report``, ``stats``. Runs in a Ray actor or a thread."""

    def __init__(self, settings: dict, env: str, base_config: dict, offset: int, batch_size: int, seed: int,
                 permutation: type, resume_at: int = 0, host: str = "127.0.0.1"):
        from veritas_rl.curriculum import build_schedule

        self.settings = VerlCurriculumSettings(**settings)
        self.schedule, _ = build_schedule(self.settings.spec(), env, base_config, offset=offset,
                                          batch_size=batch_size, group_size=self.settings.group_size,
                                          lag=self.settings.lag, space=PermutedSpace(seed, permutation))
        self.cond = threading.Condition()
        self.log_path = Path(self.settings.state_dir) / "curriculum" / LOG_NAME if self.settings.state_dir else None
        self.written = 0
        if self.log_path is not None:
            self._restore(int(resume_at))
        self.authkey = secrets.token_bytes(16)
        self.listener = Listener((host, 0), authkey=self.authkey)
        threading.Thread(target=self._accept, name="curriculum-accept", daemon=True).start()

    def _restore(self, batches: int) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if batches > 0 and self.log_path.is_file():
            from veritas_rl.jsonio import read_jsonl

            rows = [r["results"] for r in read_jsonl(self.log_path)][:batches]
            if len(rows) < batches:
                logger.warning("curriculum: %s holds %d batch(es) but the checkpoint is at step %d; the stream "
                               "continues from the feedback it has", self.log_path, len(rows), batches)
            state = self.schedule.state_dict()
            state.update(log=rows, partial={})
            self.schedule.load_state_dict(state)
        with self.log_path.open("w", encoding="utf-8") as fh:  # drop batches after the checkpoint
            for b, results in enumerate(rows):
                fh.write(json.dumps({"batch": b, "results": results}) + "\n")
        self.written = len(rows)
        logger.info("curriculum: %s: %d batch(es) replayed, stage %d", self.log_path, len(rows),
                    self.schedule.curriculum.stage)

    def address(self) -> dict[str, Any]:
        host, port = self.listener.address
        return {"address": [host, int(port)], "key": self.authkey.hex()}

    def _accept(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except (OSError, EOFError):  # a client that failed the handshake, or the listener closed
                continue
            threading.Thread(target=self._serve, args=(conn,), name="curriculum-conn", daemon=True).start()

    def _serve(self, conn) -> None:
        with conn:
            while True:
                try:
                    method, args = conn.recv()
                except (EOFError, OSError):
                    return
                conn.send(getattr(self, f"rpc_{method}")(*args))

    # -- the calls ---------------------------------------------------------------------------------

    def rpc_draw(self, slot: int) -> list:
        with self.cond:
            if not self.cond.wait_for(lambda: self.schedule.ready(slot), timeout=self.settings.wait_s):
                logger.warning("curriculum: slot %d waited %.0f s for the feedback of batch %d; drawing from the "
                               "state at hand (the stream is no longer reproducible)", slot, self.settings.wait_s,
                               self.schedule.batch_of(slot) - self.schedule.lag - 1)
                self.schedule.force(slot)
            return self.schedule.draw(slot).to_list()

    def rpc_report(self, slot: int, scores: list) -> dict[str, float]:
        with self.cond:
            for event in self.schedule.report(slot, scores):
                logger.info("curriculum: promoted %s", event)
            if self.log_path is not None and len(self.schedule.log) > self.written:
                with self.log_path.open("a", encoding="utf-8") as fh:
                    for b in range(self.written, len(self.schedule.log)):
                        fh.write(json.dumps({"batch": b, "results": self.schedule.log[b]}) + "\n")
                self.written = len(self.schedule.log)
            self.cond.notify_all()
            return self.schedule.metrics()

    def rpc_stats(self) -> dict[str, Any]:
        with self.cond:
            return {**self.schedule.metrics(), "applied": self.schedule.applied, "drawn": self.schedule.drawn,
                    "forced": self.schedule.forced, "dropped": self.schedule.dropped,
                    "events": list(self.schedule.events)}

    def rpc_state(self) -> dict[str, Any]:
        with self.cond:
            return self.schedule.state_dict()

    # Ray actor methods (the trainer process can ask directly)
    def stats(self) -> dict[str, Any]:
        return self.rpc_stats()


def start_server(settings: VerlCurriculumSettings, env: str, base_config: dict, offset: int,
                 batch_size: int, seed: int, permutation: type) -> dict[str, Any]:
    """Start (or find) this run's server; returns ``{"address": [host, port], "key": hex, "name": ...}``."""
    import dataclasses

    name = settings.name or f"veritas-curriculum-{secrets.token_hex(4)}"
    args = (dataclasses.asdict(settings), env, dict(base_config), int(offset), int(batch_size), int(seed),
            permutation, resume_step(settings.state_dir))
    try:
        import ray
    except ImportError:  # pragma: no cover - ray comes with verl
        ray = None
    if ray is not None and ray.is_initialized():
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        host = ray.util.get_node_ip_address()
        actor = ray.remote(num_cpus=0)(CurriculumServer).options(
            name=name, get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True),
        ).remote(*args, host=host)
        _ACTORS[name] = actor
        found = ray.get(actor.address.remote())
        logger.info("curriculum: Ray actor %s serves draws and scores at %s:%d", name, *found["address"])
    else:
        server = _SERVERS.get(name) or CurriculumServer(*args)
        _SERVERS[name] = server
        found = server.address()
        logger.info("curriculum: no Ray here; the server runs in this process at %s:%d", *found["address"])
    return {**found, "name": name}


class PermutedSpace:
    """A stage env's tasks in the dataset's seeded order: position ``p`` -> ``task_id_at(perm(p))``; positions
    ``[0, val_size)`` are the validation split (skipped by fresh draws when the stage config is the run's)."""

    def __init__(self, seed: int, permutation: type):
        self.seed = int(seed)
        self.permutation = permutation  # the dataset's IndexPermutation (passed in: no import back up to it)

    def __call__(self, stage_env) -> tuple[int, Any]:
        perm = self.permutation(int(stage_env.num_tasks), self.seed)
        return int(stage_env.num_tasks), lambda position: stage_env.task_id_at(perm(position))


class DatasetCurriculum:
    """What a curriculum train split of ``DynamicEnvDataset`` holds: the server's endpoint and the stage configs."""

    def __init__(self, dataset, config):
        from veritas_rl.curriculum import stage_configs

        settings = dataset.settings.curriculum
        if config is not None and config.get("shuffle", False):
            raise ValueError("data.shuffle=True: a curriculum draws the tasks itself and needs the slots in order; "
                             "set data.shuffle=False")
        batch_size = int((config.get("gen_batch_size", None) or config.get("train_batch_size", 0)) if config else 0)
        if batch_size < 1:
            raise ValueError("a curriculum needs data.train_batch_size (or data.gen_batch_size) >= 1")
        self.env_name = dataset.env_name
        self.configs = stage_configs(settings.spec(), dataset.env_name, dataset.env_config)
        self.config_json = [json.dumps(c, sort_keys=True) for c in self.configs]
        self.server = start_server(settings, dataset.env_name, dataset.env_config, dataset.val_size, batch_size,
                                   dataset.settings.seed, type(dataset.permutation))

    def endpoint(self, slot: int) -> dict[str, Any]:
        return {"address": list(self.server["address"]), "key": self.server["key"], "slot": int(slot)}

    def task(self, slot: int):
        """``(task, env_config JSON)`` of ``slot``, as the server draws it."""
        from veritas_rl.curriculum import Draw
        from veritas_rl.envs import make_cached

        draw = Draw.from_list(client(self.server).call("draw", int(slot)))
        return make_cached(self.env_name, self.configs[draw.stage]).task(draw.task_id), self.config_json[draw.stage]


class _Client:
    def __init__(self, address: tuple[str, int], key: str):
        self.address, self.key = address, bytes.fromhex(key)
        self.conn = None
        self.lock = threading.Lock()

    def call(self, method: str, *args: Any) -> Any:
        with self.lock:
            for attempt in (0, 1):
                try:
                    if self.conn is None:
                        self.conn = Client(self.address, authkey=self.key)
                    self.conn.send((method, args))
                    return self.conn.recv()
                except (OSError, EOFError):
                    self.conn = None
                    if attempt:
                        raise


def client(endpoint: Mapping[str, Any]) -> _Client:
    """One connection per process (a forked dataloader worker opens its own) and server."""
    address = (str(endpoint["address"][0]), int(endpoint["address"][1]))
    key = (os.getpid(), address)
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(key)
        if found is None:
            found = _CLIENTS[key] = _Client(address, str(endpoint["key"]))
        return found


#: what :func:`report_score` returns for every train sample (verl averages them per step: its console,
#: TensorBoard and W&B loggers show them as reward extra-info metrics)
METRIC_KEYS = ("curriculum/stage", "curriculum/promotions", "curriculum/buffer_size", "curriculum/replay_share",
               "curriculum/stage_success_rate")


def report_score(info: Mapping[str, Any], value: float) -> dict[str, float]:
    """From ``compute_score``: send one completion's score of a curriculum train item to the server; returns the
    server's metrics (the same keys always, zeros when the server could not be reached)."""
    endpoint = info.get("curriculum")
    if not endpoint or info.get("split") != "train":
        return {}
    try:
        metrics = client(endpoint).call("report", int(endpoint["slot"]), [float(value)])
    except (OSError, EOFError) as err:  # the trainer (and its server) went away; the score itself stands
        logger.error("curriculum: could not report a score to %s: %s", endpoint.get("address"), err)
        metrics = {}
    return {key: float(metrics.get(key, 0.0)) for key in METRIC_KEYS}
