"""YAML recipes: every shipped file builds its settings, the precedence defaults < preset < recipe < flags,
refused keys and values, the mixture shorthand, and the vLLM server-mode flags (settings wiring only:
there is no vLLM on a CPU, so a real `trl vllm-serve` round trip is the GPU benchmark's part)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from veritas_rl.backends.trl.recipes import build_with_recipe, read_recipe, recipe_paths, valid_keys
from veritas_rl.backends.trl.settings import TrainSettings, load_preset
from veritas_rl.cli import build_parser, main
from veritas_rl.commands.train import settings_from_args
from veritas_rl.envs import make

REPO = Path(__file__).resolve().parents[3]
RECIPES = recipe_paths(REPO / "recipes")


def _learning_cases() -> dict:
    spec = importlib.util.spec_from_file_location("learning_benchmark", REPO / "benchmarks" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


def _args(*argv: str):
    return settings_from_args(build_parser().parse_args(["train", *argv]))


def test_the_shipped_recipes_are_there():
    names = {f"{p.parent.name}/{p.stem}" for p in RECIPES}
    assert {"smollm2-135m/arithmetic", "smollm2-135m/openspiel-legal", "smollm2-135m/lgc-v2-boolean",
            "smollm2-135m/quickstart", "qwen2.5-coder-0.5b/gsm_symbolic"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recipe_builds_settings_and_its_env(path):
    s = build_with_recipe(path, None, {"mode": "grpo"})
    assert isinstance(s, TrainSettings) and s.mode == "grpo"
    env = make(s.env, **s.env_config)  # the env config is valid too (unknown keys would fail here)
    assert env.num_tasks >= s.train_size + s.eval_size
    header = path.read_text().splitlines()[0]
    assert header.startswith("#") and ("Reproduces" in header or "UNMEASURED" in header or "quickstart" in header)


@pytest.mark.parametrize("case, recipe, steps", [("arithmetic", "arithmetic", 100), ("openspiel-legal",
                                                                                    "openspiel-legal", 40)])
def test_recipes_match_the_benchmark_cases_they_reproduce(case, recipe, steps):
    env, env_config, overrides = _learning_cases()[case]
    s = build_with_recipe(REPO / "recipes" / "smollm2-135m" / f"{recipe}.yaml", None, {"mode": "grpo"})
    assert (s.env, s.env_config, s.max_steps) == (env, env_config, steps)
    for key, value in overrides.items():
        assert getattr(s, key) == value, key
    # learning.py's harness: 8 prompts x 8 completions, 2048 training tasks, seed 0, no breaker
    assert (s.batch_size, s.num_generations, s.train_size, s.seed, s.zero_reward_patience) == (64, 8, 2048, 0, 0)


def test_lgc_recipe_is_the_sft_then_grpo_row():
    env, env_config, _ = _learning_cases()["lgc-v2-boolean"]
    s = build_with_recipe(REPO / "recipes" / "smollm2-135m" / "lgc-v2-boolean.yaml", None, {"mode": "grpo"})
    assert (s.env, s.env_config) == (env, env_config)
    assert (s.max_steps, s.num_generations, s.batch_size, s.learning_rate, s.max_new_tokens, s.precision) == \
        (150, 16, 128, 3e-6, 64, "fp32")


def test_gsm_recipe_is_the_measured_gsm_qwen_run():
    env, env_config, overrides = _learning_cases()["gsm-qwen"]
    s = build_with_recipe(REPO / "recipes" / "qwen2.5-coder-0.5b" / "gsm_symbolic.yaml", None, {"mode": "grpo"})
    assert (s.env, s.env_config) == (env, env_config)
    for key, value in overrides.items():
        assert getattr(s, key) == value, key
    assert (s.train_size, s.eval_size, s.max_steps, s.max_train_minutes, s.seed) == (8000, 500, 1000, 11.0, 0)


def test_quickstart_recipe_matches_the_cpu_quickstart():
    text = (REPO / "train" / "scripts" / "quickstart.sh").read_text()
    s = build_with_recipe(REPO / "recipes" / "smollm2-135m" / "quickstart.yaml", None, {"mode": "grpo"})
    assert s.preset == "fast" and s.max_steps == 30 and s.learning_rate == 2e-5 and s.lora_rank == 0
    assert "--batch-size 16 --num-generations 4 --max-new-tokens 32 --eval-size 64" in text
    assert (s.batch_size, s.num_generations, s.max_new_tokens, s.eval_size) == (16, 4, 32, 64)


# -- precedence ------------------------------------------------------------------------------


def test_precedence_defaults_preset_recipe_flags(tmp_path):
    fast = load_preset("fast")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("preset: fast\nenv: answer-tag\nlearning_rate: 3.0e-5\nmax_new_tokens: 48\n")
    s = _args("grpo", "--config", str(recipe), "--max-new-tokens", "40")
    assert s.max_new_tokens == 40  # flag > recipe
    assert s.learning_rate == 3e-5 != fast["learning_rate"]  # recipe > preset
    assert s.save_steps == fast["save_steps"] != TrainSettings.__dataclass_fields__["save_steps"].default  # preset
    assert s.lora_rank == 0 and s.env == "answer-tag"  # default; recipe
    # --preset wins over the recipe's preset; the recipe still wins over that preset
    s = _args("grpo", "--config", str(recipe), "--preset", "1hour")
    assert s.preset == "1hour" and s.learning_rate == 3e-5
    assert s.max_steps == load_preset("1hour")["max_steps"]


def test_a_flag_env_drops_the_recipe_env_config(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("env: lgc-v2\nenv_config: {task_types: [sudoku]}\n")
    assert _args("grpo", "--config", str(recipe)).env_config == {"task_types": ["sudoku"]}
    s = _args("grpo", "--config", str(recipe), "--env", "answer-tag")
    assert (s.env, s.env_config) == ("answer-tag", {})
    s = _args("grpo", "--config", str(recipe), "--env-config", '{"task_types": ["game_of_24"]}')
    assert s.env_config == {"task_types": ["game_of_24"]}


def test_yaml_values_are_coerced_to_the_field_types(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("env: math\nlearning_rate: 2e-6\nmax_steps: '12'\nlora_target_modules: [q_proj, v_proj]\n"
                      "vllm_server_url: http://127.0.0.1:8011\n")
    values = read_recipe(recipe)
    assert values["learning_rate"] == 2e-6 and isinstance(values["learning_rate"], float)  # YAML 1.1 string
    assert values["max_steps"] == 12 and values["lora_target_modules"] == "q_proj,v_proj"
    assert values["vllm_server_base_url"] == "http://127.0.0.1:8011"


@pytest.mark.parametrize("text, message", [
    ("env: math\nlearnin_rate: 1.0e-5\n", r"unknown key\(s\) 'learnin_rate'; valid keys: .*learning_rate"),
    ("env: math\nmax_steps: true\n", "max_steps must be an integer, got True"),
    ("env: math\nuse_vllm: 'yes'\n", "use_vllm must be true or false"),
    ("env: math\nlearning_rate: fast\n", "learning_rate must be a number"),
    ("- env: math\n", "must be a mapping of settings"),
    ("env: math\nenv_config: [1]\n", "env_config must be a mapping"),
    ("env: math\nobjective: maxnet\n", r"objective='maxnet' is not valid; choose from: grpo, maxent"),
    ("env: math\nmixture: [{env: math}]\n", "mixture makes the env 'mix'"),
    ("mixture: [{env: math}]\nenv_config: {x: 1}\n", "give mixture or env_config, not both"),
    ("env: math\nvllm_server_url: a\nvllm_server_base_url: b\n", "not both"),
    ("env: math\n: [\n", "not valid YAML"),
])
def test_bad_recipes_fail_at_start_naming_the_key(tmp_path, text, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    with pytest.raises(ValueError, match=message):
        build_with_recipe(recipe, None, {"mode": "grpo"})


def test_cli_refuses_an_unknown_recipe_key_with_exit_2(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("env: math\nlora_rnak: 8\n")
    with pytest.raises(SystemExit) as stop:
        main(["train", "grpo", "--config", str(recipe)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "'lora_rnak'" in err and "lora_rank" in err and str(recipe) in err
    with pytest.raises(SystemExit):
        main(["train", "grpo", "--config", str(tmp_path / "missing.yaml")])
    assert "no such recipe file" in capsys.readouterr().err


def test_valid_keys_are_the_settings_plus_mixture():
    assert "mixture" in valid_keys() and "objective" in valid_keys() and "curriculum" in valid_keys()
    assert set(valid_keys()) - {"mixture"} == set(TrainSettings.__dataclass_fields__)


def test_mixture_shorthand(tmp_path):
    recipe = tmp_path / "m.yaml"
    recipe.write_text("mixture:\n  components: [{env: math, weight: 2}, {env: answer-tag}]\n  seed: 1\n")
    s = build_with_recipe(recipe, None, {"mode": "grpo"})
    assert s.env == "mix" and s.env_config == {"components": [{"env": "math", "weight": 2}, {"env": "answer-tag"}],
                                               "seed": 1}
    assert make(s.env, **s.env_config).weights == [2, 1]


# -- vLLM server mode (wiring only: no vLLM on a CPU) -------------------------------------------


def test_vllm_server_url_flag_and_its_alias():
    for flag in ("--vllm-server-url", "--vllm-server-base-url"):
        s = _args("grpo", "--env", "math", "--use-vllm", "--vllm-mode", "server", flag, "http://10.0.0.2:8000",
                  "--vllm-server-timeout", "30")
        assert (s.vllm_mode, s.vllm_server_base_url, s.vllm_server_timeout) == ("server", "http://10.0.0.2:8000", 30.0)


def test_server_mode_becomes_trls_vllm_client_settings(monkeypatch):
    """What the runner hands GRPOConfig: TRL's own server-mode fields (VLLMClient(base_url=...) connects)."""
    import torch

    from trl import GRPOConfig

    from veritas_rl.backends.trl import runner

    s = _args("grpo", "--env", "math", "--use-vllm", "--vllm-mode", "server", "--vllm-server-url",
              "http://127.0.0.1:8123", "--vllm-server-timeout", "12")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the runner checks for a GPU and vLLM first
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else None)
    args = runner._vllm_args(s)
    assert args == {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": "http://127.0.0.1:8123",
                    "vllm_server_timeout": 12.0}
    fields = GRPOConfig.__dataclass_fields__
    assert all(k in fields for k in args)


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host:1", "http://", "http://host:99999"])
def test_bad_server_urls_are_refused(url):
    with pytest.raises(ValueError, match="vllm_server_base_url"):
        _args("grpo", "--env", "math", "--use-vllm", "--vllm-mode", "server", "--vllm-server-url", url)


def test_server_mode_needs_a_url():
    with pytest.raises(ValueError, match="needs vllm_server_base_url"):
        _args("grpo", "--env", "math", "--use-vllm", "--vllm-mode", "server")
