"""``veritas eval`` on the real SmolLM2: the trainer's held-out tasks and numbers, every model form, the
OpenAI-compatible backend against a real local HTTP server that serves SmolLM2."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from veritas_rl.cli import main

# two-term sums: SmolLM2 gets some right, so accuracy is neither 0 nor 1 (tests/backends/trl/test_runs.py)
SUMS = {"rg_dataset": "basic_arithmetic",
        "rg_config": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+"],
                      "allow_parentheses": False, "allow_negation": False}}


def _eval(tmp_path, name, *flags):
    out = tmp_path / name
    assert main(["eval", *flags, "--out-dir", str(out)]) == 0
    return json.loads((out / "report.json").read_text()), out


def test_eval_equals_the_trainers_before_accuracy(smollm2_dir, tmp_path):
    """A real TRL run (1 SFT step) writes its before-accuracy; `veritas eval` on the same indices gives the same."""
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings

    result = run(build_settings(None, {
        "mode": "sft", "env": "math", "env_config": SUMS, "model": "embedded:smollm2-135m", "train_size": 2,
        "eval_size": 6, "max_new_tokens": 24, "batch_size": 1, "max_steps": 1, "save_steps": 100,
        "save_final_model": False, "output_dir": str(tmp_path / "runs"), "run_name": "r", "cpu_threads": 1}))
    before = json.loads((result.run_dir / "baseline.json").read_text())

    report, out = _eval(tmp_path, "eval", "--env", "math", "--config", json.dumps(SUMS), "--eval-size", "6",
                        "--max-new-tokens", "24", "--threads", "1")
    g = report["greedy"]
    assert report["held_out"] == [0, 6] and report["model_path"] == str(smollm2_dir)
    assert (g["n"], g["accuracy"], g["mean_score"]) == (before["n"], before["accuracy"], before["mean_score"])
    assert g["samples"] == before["samples"]  # the same replies, word for word
    assert 0 < g["accuracy"] < 1
    assert sum(g["kinds"].values()) == 6 and g["kinds"].get("correct", 0) == round(6 * g["accuracy"])
    assert g["groups"]["source"]["reasoning-gym"]["n"] == 6
    assert [p["task_id"] for p in report["per_task"]] == list(range(6))
    md = (out / "report.md").read_text()
    assert f"| all | 6 | {100 * g['accuracy']:.1f}% |" in md and "| score kind (greedy) | replies |" in md
    assert (out / "greedy_by_source.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
# two short-prompt games: go(9) or checkers positions are ~10x the prompt tokens and the test is about equality
@pytest.mark.parametrize(("env", "config"), [
    ("lgc-v2", {}), ("openspiel", {"reward_mode": "legal", "game_types": ["tic_tac_toe", "connect_four"]})])
def test_eval_equals_the_trainers_before_accuracy_on_more_envs(smollm2_dir, tmp_path, env, config):
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings

    result = run(build_settings(None, {
        "mode": "grpo", "env": env, "env_config": config, "train_size": 2, "eval_size": 8, "max_new_tokens": 24,
        "num_generations": 2, "batch_size": 2, "max_steps": 1, "save_steps": 100, "save_final_model": False,
        "zero_reward_patience": 0, "output_dir": str(tmp_path / "runs"), "run_name": "r", "cpu_threads": 1}))
    before = json.loads((result.run_dir / "baseline.json").read_text())
    report, out = _eval(tmp_path, "eval", "--env", env, "--config", json.dumps(config), "--eval-size", "8",
                        "--max-new-tokens", "24")
    assert report["greedy"]["accuracy"] == before["accuracy"] and report["greedy"]["samples"] == before["samples"]
    key = "task_type" if env == "lgc-v2" else "case"
    assert sum(v["n"] for v in report["greedy"]["groups"][key].values()) == 8
    assert (out / f"greedy_by_{key}.png").is_file()


def test_eval_a_lora_adapter_and_pass_at_k(smollm2_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = tmp_path / "adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2_dir),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    model.save_pretrained(adapter)  # B = 0: the adapter leaves the base's replies as they are
    report, _ = _eval(tmp_path, "lora", "--model", str(adapter), "--env", "math", "--config", json.dumps(SUMS),
                      "--eval-size", "3", "--max-new-tokens", "16", "--n", "3", "--k", "2", "--threads", "1")
    assert report["model_path"] == str(smollm2_dir) and report["adapter"] == str(adapter)
    s = report["sampled"]
    assert (s["n"], s["k"], s["n_tasks"]) == (3, 2, 3) and len(s["per_task"]) == 3
    assert all(0 <= r["correct"] <= 3 for r in s["per_task"])
    assert 0 <= s["pass@1"] <= s["pass@2"] <= 1


def test_vllm_backend_on_a_cpu_fails_at_start_naming_the_way_out(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--env", "math", "--backend", "vllm"])
    assert exc.value.code == 2 and "--backend vllm needs a CUDA GPU; on a CPU use --backend hf" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--k", "3"], "--k=3 > --n=1"),
    (["--n", "2", "--temperature", "0"], "sampling needs temperature > 0"),
    (["--backend", "openai", "--model", "m"], "--backend openai needs --base-url"),
    (["--backend", "openai", "--base-url", "http://x/v1"], "needs --model"),
    (["--eval-size", "0"], "--eval-size=0; expected >= 1"),
    (["--backend", "vllm", "--base-url", "http://x/v1"], "--base-url is for --backend openai"),
    (["--gpu-memory-utilization", "0"], "--gpu-memory-utilization=0.0; expected a share in (0, 1]"),
    (["--config", "[1]"], "--config must be a JSON object"),
    (["--model", "embedded:xyz"], "valid: embedded:smollm2-135m, embedded:qwen2.5-coder-0.5b"),
])
def test_bad_options_fail_with_one_line(capsys, flags, message):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--env", "math", *flags])
    assert exc.value.code == 2 and message in capsys.readouterr().err


# -- the OpenAI-compatible backend against a real server ------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_server(smollm2_dir):
    """``/v1/chat/completions`` served by SmolLM2 through transformers (greedy, one request at a time)."""
    import torch

    from veritas_rl.eval.greedy import HFGenerator
    from veritas_rl.models import load_causal_lm

    torch.set_num_threads(1)  # the CI box is shared: one thread per process runs far faster than two there
    model, tok = load_causal_lm(str(smollm2_dir))
    gen = HFGenerator(model, tok, batch_size=1)
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            if self.path != "/v1/chat/completions" or body["model"] != "smollm2":
                return self._send(404, {"error": {"message": f"no model {body['model']!r} at {self.path}"}})
            if body["temperature"] != 0 or body["n"] != 1:
                return self._send(400, {"error": {"message": "this test server is greedy only"}})
            [[c]] = gen.generate([body["messages"]], body["max_tokens"])
            self._send(200, {"object": "chat.completion", "model": "smollm2", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": c.text},
                 "finish_reason": "length" if c.truncated else "stop"}]})

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", gen, seen
    server.shutdown()
    server.server_close()


def test_openai_backend_scores_a_served_model_like_the_hf_backend(smollm2_server, tmp_path):
    from veritas_rl.backends.trl.data import tasks_at
    from veritas_rl.envs import make
    from veritas_rl.eval.greedy import score_greedy

    url, gen, seen = smollm2_server
    report, out = _eval(tmp_path, "served", "--backend", "openai", "--base-url", url, "--model", "smollm2",
                        "--api-key", "secret", "--env", "math", "--config", json.dumps(SUMS), "--eval-size", "3",
                        "--max-new-tokens", "16", "--concurrency", "2")
    assert report["backend"] == "openai" and len(seen) == 3
    assert all(r["auth"] == "Bearer secret" and r["max_tokens"] == 16 for r in seen)
    env = make("math", **SUMS)
    local = score_greedy(gen, env, tasks_at(env, range(3)), max_new_tokens=16)  # in-process, same model
    assert [(p["score"], p["kind"], p["truncated"]) for p in report["per_task"]] == \
        [(r["score"], r["kind"], r["truncated"]) for r in local.records]
    assert report["greedy"]["samples"] == local.to_dict()["samples"]
    assert (out / "report.md").read_text().startswith("# veritas eval: math")


def test_openai_backend_raises_on_a_server_error(smollm2_server):
    from veritas_rl.eval.greedy import OpenAIGenerator

    url, _, _ = smollm2_server
    with pytest.raises(RuntimeError, match=r"/v1/chat/completions: HTTP 404: .*no model 'other'"):
        OpenAIGenerator(url, "other").generate([[{"role": "user", "content": "hi"}]], 4)
    with pytest.raises(RuntimeError, match="HTTP 400: .*greedy only"):
        OpenAIGenerator(url, "smollm2").generate([[{"role": "user", "content": "hi"}]], 4, n=2, temperature=1.0)


def test_markdown_merges_reasons_that_differ_only_past_the_shown_prefix():
    from veritas_rl.commands.eval import markdown

    long = "no answer found " + "x" * 120
    greedy = {"n": 5, "accuracy": 0.0, "mean_score": 0.0, "clipped": 0.0, "kinds": {"no_answer": 5}, "groups": {},
              "reasons": {long + " (a)": 2, long + " (b)": 1, "wrong | value": 2}}
    report = {"env": "math", "model": "m", "backend": "hf", "env_config": {}, "held_out": [0, 5],
              "max_new_tokens": 8, "seconds": 1.0, "greedy": greedy}
    text = markdown(report)
    assert text.count(long[:120]) == 1 and f"| {long[:120]} | 3 |" in text and "| wrong / value | 2 |" in text
