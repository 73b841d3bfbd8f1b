"""A small OpenAI-compatible HTTP server for the teacher tests (standard library only).

    python tests/data/teacher_server.py --answers answers.json --port-file port.txt --log requests.jsonl

``answers.json`` maps the content of a request's last user message to
``{"content": <completion>, "fail_first": <n>, "status": <http status>}``: the first ``n`` requests
for that prompt get HTTP 503 (to exercise retries), ``status`` other than 200 is returned always.
Requests must carry ``Authorization: Bearer $TEACHER_SERVER_KEY`` when that variable is set. Every
request is logged as one JSON line ``{"prompt", "status", "model"}``. The chosen port is written to
``--port-file`` once the server listens.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", required=True, help="JSON file: prompt -> {content, fail_first, status}")
    parser.add_argument("--port-file", required=True, help="where to write the port")
    parser.add_argument("--log", required=True, help="JSON-lines request log")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with open(args.answers, encoding="utf-8") as fh:
        answers = json.load(fh)
    key = os.environ.get("TEACHER_SERVER_KEY")
    seen: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def _reply(self, status: int, body: dict, prompt: str, model: str) -> None:
            with lock, open(args.log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"prompt": prompt, "status": status, "model": model}) + "\n")
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802 - http.server API
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            prompt = [m for m in request["messages"] if m["role"] == "user"][-1]["content"]
            model = request.get("model", "")
            if self.path != "/v1/chat/completions":
                return self._reply(404, {"error": f"no route {self.path}"}, prompt, model)
            if key and self.headers.get("Authorization") != f"Bearer {key}":
                return self._reply(401, {"error": "bad key"}, prompt, model)
            answer = answers.get(prompt)
            if answer is None:
                return self._reply(400, {"error": "unknown prompt"}, prompt, model)
            with lock:
                seen[prompt] = seen.get(prompt, 0) + 1
                count = seen[prompt]
            if count <= answer.get("fail_first", 0):
                return self._reply(503, {"error": "busy"}, prompt, model)
            status = answer.get("status", 200)
            if status != 200:
                return self._reply(status, {"error": "refused"}, prompt, model)
            body = {
                "id": f"chatcmpl-{count}",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer["content"]}}],
            }
            return self._reply(200, body, prompt, model)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
