"""vllm_ready, run for real against a stand-in vLLM HTTP server and a stand-in `docker` command."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible_collections.jetson_thor.workshop.plugins.modules import vllm_ready

# The vLLM twin's start-up logs (stdout and stderr per case), see test_vllm_stage.py.
LOGS = json.loads((Path(__file__).resolve().parent / "files" / "vllm_logs.json").read_text())
MODEL = "nvidia/Llama-3.1-8B-Instruct-FP4"


class Server:
    """/health, /v1/models and /v1/completions as vLLM answers them; `state` changes what it answers."""

    def __init__(self):
        self.state = {"health": 200, "models": [MODEL], "completion": 200, "key": None, "seen": []}
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body=None):
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorized(self):
                key = state["key"]
                return key is None or self.headers.get("Authorization") == f"Bearer {key}"

            def do_GET(self):
                state["seen"].append(("GET", self.path, self.headers.get("Authorization")))
                if self.path == "/health":
                    self._send(state["health"])
                elif self.path == "/v1/models":
                    if not self._authorized():
                        return self._send(401, {"error": "Unauthorized"})
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in state["models"]]})
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                state["seen"].append(("POST", self.path, body))
                if not self._authorized():
                    return self._send(401, {"error": "Unauthorized"})
                if state["completion"] != 200:
                    return self._send(state["completion"])
                self._send(200, {"id": "cmpl-1", "choices": [{"index": 0, "text": " Hello", "finish_reason": "length"}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def fake_docker(tmp_path, log="cold", running=True, exit_code=0, exists=True):
    """A `docker` that answers inspect with the given state and logs with a fixture's stdout and stderr."""
    first = LOGS[log]["stdout"].split(" ", 1)[0]
    for stream in ("stdout", "stderr"):
        (tmp_path / f"log.{stream}").write_bytes(LOGS[log][stream].encode())
    started = first.replace("59.273830783Z", "58.773830783Z") if log == "cold" else first
    inspect = [{
        "Id": "abc123",
        "Name": "/vllm",
        "State": {"Status": "running" if running else "exited", "Running": running, "Restarting": False,
                  "ExitCode": exit_code, "StartedAt": started, "FinishedAt": "0001-01-01T00:00:00Z"},
        "Config": {"Image": "thor-twin/vllm:25.09-py3"},
    }]
    (tmp_path / "inspect.json").write_text(json.dumps(inspect))
    script = tmp_path / "docker"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/calls
case "$1" in
  inspect) {'cat ' + str(tmp_path / 'inspect.json') if exists else 'echo "Error: No such container: vllm" >&2; exit 1'};;
  logs) cat {tmp_path}/log.stdout; cat {tmp_path}/log.stderr >&2;;
esac
""")
    script.chmod(0o755)
    return str(script)


def args(server, docker, **extra):
    base = {"container": "vllm", "served_name": MODEL, "url": server.url, "docker": docker, "timeout": 5,
            "interval": 0.1, "request_timeout": 5}
    base.update(extra)
    return base


def test_ready_with_phases(run_module, server, tmp_path):
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path)))
    assert result["_rc"] == 0 and result["changed"] is False
    assert result["ready"] is True and result["reason"] is None and result["failure"] is None
    assert result["checks"] == {"health": 200, "models": True, "completion": True}
    assert result["models"] == [MODEL]
    assert result["phases"]["compile"] == "compiled"
    assert result["phases"]["load_s"] == 0.1
    # Container start 0.5 s before the first line; startup complete at 13:37:00.874.
    assert result["phases"]["total_s"] == pytest.approx(2.1, abs=0.01)
    assert result["phases_text"].startswith("load 0.1 s, compile 0.39 s (compiled)")
    post = next(s for s in server.state["seen"] if s[0] == "POST")
    assert post[1] == "/v1/completions" and post[2]["max_tokens"] == 1 and post[2]["model"] == MODEL
    calls = (tmp_path / "calls").read_text()
    assert "logs --timestamps --since" in calls


def test_api_key_is_sent(run_module, server, tmp_path):
    server.state["key"] = "s3cret"
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path), api_key="s3cret"))
    assert result["ready"] is True
    assert ("GET", "/v1/models", "Bearer s3cret") in server.state["seen"]
    assert "s3cret" not in json.dumps(result)


def test_wrong_served_name_times_out(run_module, server, tmp_path):
    server.state["models"] = ["meta-llama/Llama-3.1-8B-Instruct"]
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path, "warm"), timeout=0))
    assert result["ready"] is False
    assert result["failure"]["kind"] == "timeout"
    assert "lists meta-llama/Llama-3.1-8B-Instruct, not " + MODEL in result["reason"]
    assert result["phases"]["compile"] == "from_cache"


def test_health_down_times_out_with_the_hint(run_module, server, tmp_path):
    server.state["health"] = 503
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path), timeout=1))
    assert result["ready"] is False
    assert "/health answered 503" in result["reason"]
    assert "vllm_stage_ready_timeout" in result["failure"]["hint"]
    assert result["elapsed"] >= 1


@pytest.mark.parametrize(
    ("log", "kind", "error"),
    [
        ("nvml", "runtime", "Value error, Model architectures ['LlamaForCausalLM'] failed to be inspected"),
        ("memory", "memory", "RuntimeError: Engine core initialization failed."),
        ("encodings", "encodings", "openai_harmony.HarmonyError: error downloading or loading vocab file"),
        ("missing", "model", "OSError: We couldn't connect to 'https://huggingface.co'"),
    ],
)
def test_exited_container_gives_the_failure_and_the_log(run_module, server, tmp_path, log, kind, error):
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path, log, running=False, exit_code=1), log_lines=5))
    assert result["ready"] is False
    assert result["reason"] == "the container vllm exited (exit code 1) before vLLM was ready"
    assert result["failure"]["kind"] == kind
    assert result["failure"]["hint"]
    assert any(e.startswith(error) for e in result["errors"]), result["errors"]
    assert len(result["log_tail"]) == 5
    assert not server.state["seen"]  # an exited container is not probed


def test_missing_container(run_module, server, tmp_path):
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path, exists=False)))
    assert result["ready"] is False
    assert result["failure"]["kind"] == "missing"
    assert result["container"] is None and result["log_tail"] == []


def test_bad_arguments_fail(run_module, server, tmp_path):
    result = run_module(vllm_ready.main, args(server, fake_docker(tmp_path), timeout=-1))
    assert result["failed"] and "timeout must be 0 or more" in result["msg"]
