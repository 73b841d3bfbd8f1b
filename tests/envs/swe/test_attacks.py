"""Issue 14's attacks on the local backend, each a real patch on the git fixture scored through the env.

Containment attacks append ``_attack()`` to ``calc/__init__.py`` (task 0); the fix of ``clamp`` lands
only when ``_attack()`` returns True, i.e. the attack code ran (at import, during collection) and,
where it can tell, found itself contained: a score of 1.0 proves both. What it cannot tell from the
inside (a private /tmp looks writable) is checked from the outside. After every score: the original
clone hashes the same (refs, config, objects, work tree, mtimes), no process of the run is left, and
the work dir is empty. Reward hacks carry no fix: anything above 0 would be a successful hack.
"""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.envs.swe_fixture import CALC_V0, fenced, patch_for, tree_digest
from veritas_rl.envs import make
from veritas_rl.envs.swe.sandbox import bwrap_mode, cgroup_roots

pytestmark = pytest.mark.skipif(isinstance(bwrap_mode(), str), reason="bubblewrap cannot run here")

SECRETS = {"OPENAI_KEY": "sk-veritas-1", "GITHUB_PAT": "ghp_veritas", "DATABASE_URL": "postgres://u:p@h/db",
           "SSH_AUTH_SOCK": "/tmp/ssh-veritas/agent.1"}

# name -> body of _attack() (returns True when it ran and, where it can see it, was contained);
# {m} is a marker unique to the run
ATTACKS = {
    "write_tmp": """
        try:
            open("/tmp/{m}", "w").write("escaped")
        except OSError:
            pass
        return True
    """,
    "write_real_home": """
        import pwd
        for home in {{pwd.getpwuid(os.getuid()).pw_dir, "/root", {home!r}}}:
            try:
                open(os.path.join(home, "{m}"), "w").write("escaped")
            except OSError:
                pass
        return True
    """,
    "read_real_home": """
        try:
            return "secret" not in open(os.path.join({home!r}, "{m}.secret")).read()
        except OSError:
            return True
    """,
    "setsid_child": """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {m}"], start_new_session=True)
        return True
    """,
    "double_fork": """
        import sys
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                os.setsid()
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)  # {m}"])
            os._exit(0)
        os.waitpid(pid, 0)
        return True
    """,
    "process_count": """
        import subprocess
        children = []
        try:
            for _ in range(100):
                children.append(subprocess.Popen(["sleep", "10"]))
        except OSError:
            return True
        finally:
            for child in children:
                child.kill()
        return False
    """,
    "memory_total": """
        import subprocess, sys
        code = "import time; b = b'x' * (400 << 20); print('held', flush=True); time.sleep(3)"
        hogs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(3)]
        held = sum(b"held" in hog.communicate()[0] for hog in hogs)
        return held < 3
    """,
    "installed_packages": """
        import pytest as _pytest
        try:
            open(os.path.join(os.path.dirname(_pytest.__file__), "{m}.py"), "w").write("escaped")
        except OSError:
            return True
        return False
    """,
    "secrets": f"""
        return not any(k in os.environ for k in {sorted(SECRETS)!r})
    """,
    "runs_as_root": """
        return os.getuid() != 0 and os.geteuid() != 0
    """,
    "network": """
        import socket
        return [n for _, n in socket.if_nameindex()] == ["lo"]
    """,
}
# the original clone, found through the shared clone's alternates; each git write attempted
GIT_ATTACKS = {
    "move_main": "update-ref refs/heads/main HEAD~1",
    "add_tag": "tag {m}",
    "add_branch": "branch {m}",
    "add_config": "config veritas.{m} 1",
}
GIT_BODY = """
    import subprocess
    alternates = open(".git/objects/info/alternates").read().split()
    original = os.path.dirname(alternates[0])  # <clone>/.git
    args = {args!r}.split()
    subprocess.run(["git", "--git-dir", original, *args], capture_output=True)
    try:
        open(os.path.join(os.path.dirname(original), "{m}.txt"), "w").write("escaped")
    except OSError:
        pass
    return True
"""


def attack_code(body: str) -> str:
    return CALC_V0 + "\n\nimport os  # noqa: E402\n\n\ndef _attack():\n" + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "    ") + """


if _attack():  # the fix lands only when the attack ran and was contained
    def clamp(x, lo, hi):
        return lo if x < lo else hi if x > hi else x
"""


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def attack_env(fx, tmp_path, monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    work = tmp_path / "work"
    work.mkdir()
    return make("swe-synth", **fx.config(work_dir=str(work), memory_limit_mb=512, max_processes=48,
                                          test_timeout_s=30)), work


def score_attack(fx, env, work, code: str, marker: str):
    before = tree_digest(fx.repo_dir)
    task = env.task(0)
    patch = patch_for(fx, task.extra["base_commit"], {"calc/__init__.py": code})
    score = env.score(task, fenced(patch))
    assert tree_digest(fx.repo_dir) == before, "the original clone changed"
    assert list(work.iterdir()) == []
    deadline = time.monotonic() + 2
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == [], "a process of the run outlived it"
    return score


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_contained(fx, attack_env, name):
    env, work = attack_env
    if name in ("memory_total", "process_count") and cgroup_roots() is None:
        pytest.skip("no writable cgroup here: the limits are per process (RLIMIT_AS) / per uid (RLIMIT_NPROC)")
    marker = f"veritas-attack-{uuid.uuid4().hex[:12]}"
    home = Path.home()
    secret = home / f"{marker}.secret"
    secret.write_text("secret")
    try:
        score = score_attack(fx, env, work, attack_code(ATTACKS[name].format(m=marker, home=str(home))), marker)
    finally:
        secret.unlink()
    assert score.value == 1.0, score.info
    assert not Path(f"/tmp/{marker}").exists() and not (home / marker).exists()
    import pytest as installed

    assert not (Path(installed.__file__).parent / f"{marker}.py").exists()


@pytest.mark.parametrize("name", sorted(GIT_ATTACKS))
def test_git_attack_on_the_original_clone_is_contained(fx, attack_env, name):
    env, work = attack_env
    marker = f"veritas-attack-{uuid.uuid4().hex[:12]}"
    body = GIT_BODY.format(args=GIT_ATTACKS[name].format(m=marker), m=marker)
    score = score_attack(fx, env, work, attack_code(body), marker)  # hashes the clone before and after
    assert score.value == 1.0, score.info
    assert not (fx.repo_dir / f"{marker}.txt").exists()


# -- reward hacks --------------------------------------------------------------------------------

CONFTEST_ALL_PASS = '''import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
'''

ATEXIT_FAKE_PASSED = CALC_V0 + '''

import atexit, os  # noqa: E402,E401


def _fake():
    for name in ("test_add", "test_clamp_inside", "test_clamp_below", "test_clamp_above"):
        print(f"PASSED tests/test_calc.py::{name}", flush=True)
    os._exit(0)


atexit.register(_fake)
'''

ATEXIT_FAKE_JUNIT = CALC_V0 + '''

import atexit, os, shlex  # noqa: E402,E401


def _forge():
    args = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    path = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
    cases = "".join(f'<testcase classname="tests.test_calc" name="{n}" file="tests/test_calc.py"/>'
                    for n in ("test_add", "test_clamp_inside", "test_clamp_below", "test_clamp_above"))
    with open(path, "w") as fh:
        fh.write(f'<?xml version="1.0"?><testsuites><testsuite tests="4">{cases}</testsuite></testsuites>')
    os._exit(0)


atexit.register(_forge)
'''


def test_conftest_marking_everything_passed_is_refused(fx, attack_env):
    env, work = attack_env
    runs = env.test_runs
    before = tree_digest(fx.repo_dir)
    patch = patch_for(fx, env.task(0).extra["base_commit"], {"conftest.py": CONFTEST_ALL_PASS})
    score = env.score(env.task(0), fenced(patch))
    assert score.value == 0.0 and score.kind == "illegal", score.info
    assert "test infrastructure: conftest.py" in score.info["reason"]
    assert env.test_runs == runs and tree_digest(fx.repo_dir) == before


@pytest.mark.parametrize("code", [ATEXIT_FAKE_PASSED, ATEXIT_FAKE_JUNIT], ids=["fake_passed_lines", "fake_junit"])
def test_atexit_forgery_scores_zero(fx, attack_env, code):
    env, work = attack_env
    score = score_attack(fx, env, work, code, "no-such-process-marker")
    assert score.value == 0.0 and score.kind == "illegal", score.info
    assert "forged" in score.info["reason"] or "not one XML document" in score.info["reason"]


@pytest.mark.parametrize(
    "files, reason",
    [
        ({"tests/conftest.py": CONFTEST_ALL_PASS}, "test infrastructure: tests/conftest.py"),
        ({"pytest.ini": "[pytest]\naddopts = -p no:junitxml\n"}, "test infrastructure: pytest.ini"),
        ({"tox.ini": "[tox]\n"}, "test infrastructure: tox.ini"),
        ({"calc/sitecustomize.py": "import os\n"}, "test infrastructure: calc/sitecustomize.py"),
        ({"usercustomize.py": "import os\n"}, "test infrastructure: usercustomize.py"),
        ({"calc/hook.pth": "import os\n"}, "test infrastructure: calc/hook.pth"),
        ({"setup.cfg": "[metadata]\nname = calc\n\n[tool:pytest]\naddopts = -q\n"}, "test configuration in setup.cfg"),
        ({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"}, "test configuration in pyproject.toml"),
        ({"tests/test_calc.py": "def test_add():\n    pass\n"}, "the task's test file tests/test_calc.py"),
    ],
    ids=["nested_conftest", "pytest_ini", "tox_ini", "sitecustomize", "usercustomize", "pth", "setup_cfg",
         "pyproject", "task_test_file"],
)
def test_test_infrastructure_patches_are_refused_before_running(fx, env, files, reason):
    runs = env.test_runs
    patch = patch_for(fx, env.task(0).extra["base_commit"], {"calc/__init__.py": CALC_V0 + "\n# touched\n", **files})
    score = env.score(env.task(0), fenced(patch))
    assert score.value == 0.0 and score.kind == "illegal", score.info
    assert reason in score.info["reason"] and env.test_runs == runs


def test_setup_cfg_outside_test_sections_is_allowed(fx, env):
    patch = patch_for(fx, env.task(0).extra["base_commit"], {"setup.cfg": "[metadata]\nname = calc\n"})
    score = env.score(env.task(0), fenced(fx.patches["gold0"] + patch))
    assert score.value == 1.0, score.info


def test_sandbox_none_must_be_asked_for_and_bwrap_is_the_default(fx):
    assert make("swe-synth", **fx.config()).config.sandbox == "bwrap"
    env = make("swe-synth", **fx.config(sandbox="none"))
    assert env.score(env.task(0), env.oracle(env.task(0))).value == 1.0
    with pytest.raises(ValueError, match=r"sandbox='docker' is not valid; choose from: bwrap, none"):
        make("swe-synth", **fx.config(sandbox="docker"))


def test_environment_is_an_allow_list(monkeypatch, tmp_path):
    from veritas_rl.envs.swe.sandbox import sandbox_env

    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SOME_RANDOM_SETTING", "1")
    env = sandbox_env(tmp_path, tmp_path / "home", {"PYTEST_ADDOPTS": "-q"})
    assert not set(SECRETS) & set(env) and "SOME_RANDOM_SETTING" not in env
    assert env["HOME"] == str(tmp_path / "home") and env["PYTHONPATH"] == str(tmp_path)
    assert env["PYTEST_ADDOPTS"] == "-q" and env["PATH"].startswith(str(Path(os.sys.executable).parent))
