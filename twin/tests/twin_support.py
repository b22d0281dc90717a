"""Shared helpers and fixtures for the twin tests (conftest.py exposes the fixtures): puts twin/vllm and
twin/content on sys.path, builds a small twin HF cache once per session, and starts `vllm serve` (the vLLM twin)
in subprocesses on free loopback ports."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_DIR = ROOT / "twin" / "vllm"
CONTENT_DIR = ROOT / "twin" / "content"
for p in (VLLM_DIR, CONTENT_DIR):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

ANSI = re.compile(r"\x1b\[[0-9;]*m")
THOR_TOTAL = 131881500672
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
FP8, FP4 = "nvidia/Llama-3.1-8B-Instruct-FP8", "nvidia/Llama-3.1-8B-Instruct-FP4"
EAGLE = "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"
GPT_OSS = "openai/gpt-oss-120b"


def plain(text):
    return ANSI.sub("", text)


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    """A twin HF hub cache with every workshop model (scaled by 10^5) and the published tiktoken encodings."""
    import make_hf_cache

    root = tmp_path_factory.mktemp("hf")
    make_hf_cache.main(["--hub-dir", str(root / "hub"), "--encodings", str(root / "encodings")])
    return root


def make_device(path, free_gib=120.0, nvml_ok=True):
    path.mkdir(parents=True, exist_ok=True)
    info = {
        "name": "NVIDIA Thor",
        "total_bytes": THOR_TOTAL,
        "driver_version": "580.00",
        "cuda_version": "13.0",
        "compute_capability": "11.0",
        "nvml_ok": nvml_ok,
        "simulated": True,
    }
    (path / "device.json").write_text(json.dumps(info))
    (path / "meminfo").write_text(f"MemTotal:       128790528 kB\nMemFree:        {int(free_gib * 1024 * 1024)} kB\n")
    return path


@pytest.fixture
def device(tmp_path):
    return make_device(tmp_path / "gpu")


def twin_env(hub, device_dir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM", "HF_", "TIKTOKEN"))}
    env.update(
        PYTHONPATH=str(VLLM_DIR),
        HF_HUB_CACHE=str(hub / "hub"),
        HF_HUB_OFFLINE="1",
        VLLM_TWIN_DEVICE_DIR=str(device_dir),
        VLLM_TWIN_TIME_SCALE="0.001",
        VLLM_CACHE_ROOT=str(device_dir.parent / "vllm-cache"),
        HOME=str(device_dir.parent),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_vllm(args, env, timeout=30):
    proc = subprocess.run([sys.executable, "-m", "vllm_twin", *args], env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, plain(proc.stdout), plain(proc.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `vllm serve` twin; .url, .get(path), .post(path, body), .stop() -> (rc, stdout, stderr)."""

    def __init__(self, model, env, extra=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Files, not pipes: a server that logs a lot must never block on a full pipe.
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vllm_twin", "serve", model, "--host", "127.0.0.1", "--port", str(self.port), *extra],
            env=env,
            stdout=self.out,
            stderr=self.err,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("twin exited: " + "".join(self.output()))
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("twin did not become ready")

    def request(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(), dict(err.headers)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        return (self.proc.returncode, *self.output())

    def output(self):
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(plain(f.read()))
        return texts


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("twin")
