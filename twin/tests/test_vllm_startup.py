"""Start-up of the vLLM twin: log sequence, readiness, compile cache, memory registration, and every failure."""

import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time

import pytest

from twin_support import EAGLE, FP4, GPT_OSS, LLAMA, Server, free_port, make_device, run_vllm, twin_env

SPEC = '{"method":"eagle3","model":"' + EAGLE + '","num_speculative_tokens":3}'


def snapshot(hub, repo_id):
    return next((hub / "hub" / ("models--" + repo_id.replace("/", "--")) / "snapshots").iterdir())


def copy_repo(hub, tmp_path, repo_id):
    """A private copy of one repo (symlinks preserved) so a test can damage it."""
    import shutil

    name = "models--" + repo_id.replace("/", "--")
    shutil.copytree(hub / "hub" / name, tmp_path / "hf" / "hub" / name, symlinks=True)
    return tmp_path / "hf"


def lines(out):
    """Log lines without prefix and timestamp: `LEVEL [file:line] msg`."""
    return [re.sub(r"^(\(\S+ pid=\d+\) )?(\w+) \d\d-\d\d \d\d:\d\d:\d\d ", r"\2 ", line) for line in out.splitlines()]


def test_successful_start_sequence_then_sigterm(hub, device):
    server = Server(LLAMA, twin_env(hub, device))
    rc, out, err = server.stop()
    assert rc == 0
    seq = [
        "INFO [__init__.py:241] Automatically detected platform cuda.",
        "INFO [api_server.py:1805] vLLM API server version 0.10.1.1",
        "INFO [__init__.py:711] Resolved architecture: LlamaForCausalLM",
        "INFO [__init__.py:1750] Using max model len 131072",
        "INFO [scheduler.py:222] Chunked prefill is enabled with max_num_batched_tokens=8192.",
        "INFO [core.py:636] Waiting for init message from front-end.",
        "INFO [gpu_model_runner.py:1953] Starting to load model " + LLAMA,
        "INFO [default_loader.py:262] Loading weights took",
        "INFO [gpu_model_runner.py:2007] Model loading took 14.9",
        "INFO [backends.py:215] Compiling a graph for dynamic shape takes",
        "INFO [monitor.py:34] torch.compile takes",
        "INFO [gpu_worker.py:276] Available KV cache memory:",
        "INFO [kv_cache_utils.py:849] GPU KV cache size:",
        "INFO [gpu_model_runner.py:2708] Graph capturing finished in",
        "INFO [core.py:214] init engine (profile, create kv cache, warmup model) took",
        "INFO [api_server.py:1880] Starting vLLM API server 0 on http://127.0.0.1:",
        "INFO [launcher.py:44] Route: /metrics, Methods: GET",
    ]
    got, i = lines(out), 0
    for want in seq:
        while i < len(got) and not got[i].startswith(want):
            i += 1
        assert i < len(got), f"missing or out of order: {want}"
    assert "vLLM twin: simulated engine" in out
    assert re.search(r"^\(EngineCore_0 pid=\d+\) INFO ", out, re.M) and re.search(r"^\(APIServer pid=\d+\) ", out, re.M)
    errl = err.splitlines()
    assert errl.count(f"(APIServer pid={server.proc.pid}) INFO:     Application startup complete.") == 1
    assert any("Loading safetensors checkpoint shards: 100% Completed | 4/4" in line for line in errl)
    assert "INFO:     Finished server process" in err


def locked(path):
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def test_port_refuses_until_ready(hub, device):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm_twin", "serve", LLAMA, "--host", "127.0.0.1", "--port", str(port)],
        env=twin_env(hub, device, VLLM_TWIN_TIME_SCALE="0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(0.6)
        assert proc.poll() is None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_allocation_is_registered_and_flocked_while_serving(hub, device):
    server = Server(LLAMA, twin_env(hub, device))
    try:
        (alloc,) = list((device / "alloc").glob("*.json"))
        record = json.loads(alloc.read_text())
        assert record["bytes"] == int(131881500672 * 0.9) and record["owner"] == "vllm" and record["model"] == LLAMA
        assert record["page_cache_bytes"] > 15e9
        assert locked(alloc)
        rc, _, err = run_vllm(["serve", LLAMA, "--host", "127.0.0.1", "--port", str(server.port)], twin_env(hub, device))
        assert rc == 1 and err.rstrip().endswith("OSError: [Errno 98] Address already in use")
    finally:
        server.stop()
    assert not locked(alloc)


def test_compile_cache_cold_then_warm_and_level_0_skips(hub, device):
    env = twin_env(hub, device)
    _, first, _ = Server(FP4, env).stop()
    _, second, _ = Server(FP4, env).stop()
    _, eager, _ = Server(FP4, env, ["--compilation-config", '{"level": 0}']).stop()
    assert "Cache the graph for dynamic shape for later use" in first
    assert "Directly load the compiled graph(s) for dynamic shape from the cache" in second
    assert "Compiling a graph" not in second
    path = re.search(r"Using cache directory: (\S+) for vLLM's torch.compile", first).group(1)
    assert re.search(r"/torch_compile_cache/[0-9a-f]{10}/rank_0_0/backbone$", path) and os.path.isdir(path)
    assert "torch.compile" not in eager and "Capturing CUDA graphs" not in eager


def test_missing_model_offline(hub, device):
    rc, out, err = run_vllm(["serve", "meta-llama/Llama-3.3-70B-Instruct"], twin_env(hub, device))
    assert rc == 1
    assert "non-default args: {'model_tag': 'meta-llama/Llama-3.3-70B-Instruct'" in out
    assert "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache" in err
    assert "The above exception was the direct cause of the following exception:" in err
    assert err.rstrip().endswith(
        "OSError: We couldn't connect to 'https://huggingface.co' to load the files, and "
        "couldn't find them in the cached files.\n(APIServer pid={}) Check your internet "
        "connection or see how to run the library in offline mode at 'https://huggingface.co/"
        "docs/transformers/installation#offline-mode'.".format(re.search(r"pid=(\d+)", err).group(1))
    )


def test_missing_model_online_says_there_is_no_network(hub, device):
    rc, out, _ = run_vllm(["serve", "org/absent"], twin_env(hub, device, HF_HUB_OFFLINE="0"))
    assert rc == 1 and "vLLM twin: there is no network here" in out


def test_missing_local_path(hub, device):
    rc, _, err = run_vllm(["serve", "/models/does-not-exist"], twin_env(hub, device))
    assert rc == 1
    assert err.count("HFValidationError: Repo id must be in the form") == 2
    assert "OSError: Can't load the configuration of '/models/does-not-exist'." in err


def test_missing_eagle3_draft(hub, device, tmp_path):
    env = twin_env(copy_repo(hub, tmp_path, FP4), device)
    rc, _, err = run_vllm(["serve", FP4, "--speculative-config", SPEC], env)
    assert rc == 1
    assert "ValidationError: 1 validation error for SpeculativeConfig" in err
    assert f"Value error, Invalid repository ID or local directory specified: '{EAGLE}'." in err


def test_broken_nvml(hub, tmp_path):
    """The runtime is there but NVML fails (the workshop's misconfigured units): Jetson still gets CUDA, then the
    inspection subprocess dies (§2b). No runtime at all is test_vllm_cli's §2c case."""
    dev = make_device(tmp_path / "gpu", nvml_ok=False)
    rc, out, err = run_vllm(["serve", GPT_OSS], twin_env(hub, dev))
    assert rc == 1
    assert "ERROR" in out and "Error in inspecting model architecture 'GptOssForCausalLM'" in out
    assert "UserWarning: Can't initialize NVML" in out and 'warnings.warn("Can\'t initialize NVML")' in out
    assert "NVMLError_Unknown" in out
    assert "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig" in err
    assert (
        "Value error, Model architectures ['GptOssForCausalLM'] failed to be inspected. Please check the logs for "
        "more details. [type=value_error, input_value=ArgsKwargs((), {'model': ...gits_processors': None}), "
        "input_type=ArgsKwargs]"
    ) in err


def test_free_memory_below_utilization_fails_in_engine_core(hub, tmp_path):
    dev = make_device(tmp_path / "gpu", free_gib=14.45)
    rc, out, err = run_vllm(["serve", LLAMA, "--gpu-memory-utilization", "0.7"], twin_env(hub, dev))
    assert rc == 1
    assert re.search(r"^\(EngineCore_0 pid=\d+\) ERROR \S+ \S+ \[core.py:700\] EngineCore failed to start\.$", out, re.M)
    text = (
        "ValueError: Free memory on device (14.45/122.82 GiB) on startup is less than desired GPU memory "
        "utilization (0.7, 85.98 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
    )
    assert text in out and text in err
    assert "Process EngineCore_0:" in err
    assert err.rstrip().endswith(
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore_0': 1}"
    )
    assert not list((dev / "alloc").glob("*.json")) if (dev / "alloc").exists() else True


def test_weights_larger_than_requested_memory(hub, device):
    rc, out, _ = run_vllm(["serve", LLAMA, "--gpu-memory-utilization", "0.1"], twin_env(hub, device))
    assert rc == 1 and "ValueError: No available memory for the cache blocks." in out


def test_max_model_len_kv_cache_too_small(hub, device):
    rc, out, _ = run_vllm(["serve", LLAMA, "--gpu-memory-utilization", "0.16"], twin_env(hub, device))
    assert rc == 1
    assert "ValueError: To serve at least one request with the models's max seq len (131072)" in out
    assert "the estimated maximum model length is" in out


def test_truncated_shard_is_a_safetensors_error(hub, device, tmp_path):
    root = copy_repo(hub, tmp_path, LLAMA)
    shard = snapshot(root.parent / "hf", LLAMA) / "model-00003-of-00004.safetensors"
    blob = shard.resolve()
    data = blob.read_bytes()
    blob.write_bytes(data[: len(data) - 100])
    rc, out, err = run_vllm(["serve", LLAMA], twin_env(root, device))
    assert rc == 1
    assert "safetensors_rust.SafetensorError: Error while deserializing header: MetadataIncompleteBuffer" in out
    assert "Loading safetensors checkpoint shards:  50% Completed | 2/4" in err
    assert "Failed core proc(s): {'EngineCore_0': 1}" in err


def test_corrupt_header_and_missing_shard(hub, device, tmp_path):
    root = copy_repo(hub, tmp_path, LLAMA)
    snap = snapshot(root, LLAMA)
    (snap / "model-00001-of-00004.safetensors").resolve().write_bytes(struct.pack("<Q", 10**12) + b"{}")
    rc, out, _ = run_vllm(["serve", LLAMA], twin_env(root, device))
    assert rc == 1 and "Error while deserializing header: HeaderTooLarge" in out
    (snap / "model-00001-of-00004.safetensors").unlink()
    rc, out, _ = run_vllm(["serve", LLAMA], twin_env(root, device))
    assert rc == 1 and "ValueError: Following weights were not initialized from checkpoint: {'model.embed_tokens" in out


def test_hash_verification_catches_a_same_size_corruption(hub, device, tmp_path):
    root = copy_repo(hub, tmp_path, LLAMA)
    blob = (snapshot(root, LLAMA) / "model-00002-of-00004.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert Server(LLAMA, twin_env(root, device)).stop()[0] == 0
    rc, out, _ = run_vllm(["serve", LLAMA], twin_env(root, device, VLLM_TWIN_VERIFY_HASHES=1))
    assert rc == 1 and f"vLLM twin: blob {blob.name}" in out


def test_gpt_oss_needs_checked_tiktoken_encodings(hub, device):
    rc, out, err = run_vllm(["serve", GPT_OSS], twin_env(hub, device))
    assert rc == 1
    assert "mxfp4 quantization is not fully optimized yet." in out
    assert "Loading safetensors checkpoint shards: 100% Completed | 15/15" in err
    assert err.rstrip().endswith("openai_harmony.HarmonyError: error downloading or loading vocab file")
    wrong = twin_env(hub, device, TIKTOKEN_ENCODINGS_BASE=hub / "encodings", VLLM_TWIN_TIKTOKEN_O200K_SHA256="0" * 64)
    assert run_vllm(["serve", GPT_OSS], wrong)[0] == 1
    server = Server(GPT_OSS, twin_env(hub, device, TIKTOKEN_ENCODINGS_BASE=hub / "encodings"))
    try:
        status, body, _ = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert status == 200 and json.loads(body)["usage"]["completion_tokens"] == 4
    finally:
        server.stop()


def test_eagle3_start_logs_draft_and_spec_metrics(hub, device):
    server = Server(FP4, twin_env(hub, device), ["--trust_remote_code", "--speculative-config", SPEC])
    try:
        _, metrics, _ = server.get("/metrics")
    finally:
        _, out, err = server.stop()
    assert "Resolved architecture: Eagle3LlamaForCausalLM" in out
    assert f"speculative_config=SpeculativeConfig(method='eagle3', model='{EAGLE}', num_spec_tokens=3)" in out
    assert "Loading drafter model..." in out and "Loading pt checkpoint shards: 100% Completed | 1/1" in err
    for pos in range(3):
        assert (
            f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine="0",model_name="{FP4}",position="{pos}"}} 0.0' in metrics
        )
    types = [line.split()[2] for line in metrics.splitlines() if line.startswith("# TYPE vllm:")]
    families = [name.removesuffix("_total") for name in types if not name.endswith("_created")]
    assert families[:5] == [  # SpecDecodingProm registers first, in this order (spec_decode/metrics.py:136-166)
        "vllm:spec_decode_num_drafts",
        "vllm:spec_decode_num_draft_tokens",
        "vllm:spec_decode_num_accepted_tokens",
        "vllm:spec_decode_num_accepted_tokens_per_pos",
        "vllm:num_requests_running",
    ]
    # the head's parameters (fc, one layer, draft lm_head; shared embedding): 6.05 + 0.79 (workshop: 6.86 GiB)
    loaded = float(re.search(r"Model loading took ([\d.]+) GiB", out).group(1))
    assert abs(loaded - 6.86) < 0.05


@pytest.mark.parametrize(
    ("config", "last_line"),
    [
        (
            {"method": "eagle3", "model": EAGLE},
            "TypeError: 'NoneType' object cannot be interpreted as an integer",
        ),
        (
            {"method": "eagle3", "model": EAGLE, "num_speculative_tokens": 3, "disable_by_batch_size": 1},
            "  Value error, Expect the batch size threshold of disabling speculative decoding is > 1, but got "
            "self.disable_by_batch_size=1 [type=value_error",
        ),
        (
            {"method": "eagle3", "model": EAGLE, "num_speculative_tokens": 0},
            "  Value error, Expected num_speculative_tokens to be greater than zero (0). [type=value_error",
        ),
        (
            {"method": "eagle3"},
            "  Value error, num_speculative_tokens must be provided with speculative model unless the draft model "
            "config contains an n_predict parameter. [type=value_error",
        ),
    ],
)
def test_speculative_config_checks(hub, device, config, last_line):
    rc, out, err = run_vllm(["serve", FP4, "--speculative-config", json.dumps(config)], twin_env(hub, device))
    err = re.sub(r"^\(APIServer pid=\d+\) ", "", err, flags=re.M)
    assert rc == 1 and last_line in err and "(None)" not in err
    if "TypeError" in last_line:  # raised in __post_init__, after the draft's ModelConfig was built
        assert "Resolved architecture: Eagle3LlamaForCausalLM" in out
        assert "line 2207, in __post_init__\n    for i in range(self.num_speculative_tokens)" in err
        assert err.rstrip().endswith(last_line)


def test_gpt_oss_chat_streams_reasoning_then_content(hub, device):
    server = Server(GPT_OSS, twin_env(hub, device, TIKTOKEN_ENCODINGS_BASE=hub / "encodings"))
    try:
        body = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0}
        full = json.loads(server.post("/v1/chat/completions", body)[1])["choices"][0]["message"]
        stream = server.post("/v1/chat/completions", {**body, "stream": True})[1]
    finally:
        server.stop()
    assert full["reasoning_content"] and full["content"] and full["reasoning_content"] != full["content"]
    deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in stream.split("\n\n") if e.startswith("data: {")]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert reasoning == full["reasoning_content"] and content == full["content"]
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all("reasoning_content" not in d for d in deltas[first_content:])


def test_engine_core_killed_health_fails_and_the_server_stays_up(hub, device):
    """kill -9 of EngineCore_0 (0.10.1.1): the monitor logs the death, its thread then dies on the finalizer's
    missing event loop (vllm-project/vllm#24230), /health and completions answer an empty 500, and the API server
    keeps running until it is stopped."""
    server = Server(LLAMA, twin_env(hub, device))
    try:
        assert server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})[0] == 200
        engine_pid = int(re.search(r"\(EngineCore_0 pid=(\d+)\)", server.output()[0]).group(1))
        (alloc,) = list((device / "alloc").glob("*.json"))
        os.kill(engine_pid, 9)
        for _ in range(100):
            if server.get("/health")[0] == 500:
                break
            time.sleep(0.05)
        status, body, headers = server.get("/health")
        assert status == 500 and body == "" and "Content-Type" not in headers
        assert server.post("/ping", {})[0] == 500
        chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert server.post("/v1/chat/completions", chat)[:2] == (500, "")
        assert server.post("/v1/chat/completions", {**chat, "stream": True})[:2] == (500, "")
        assert server.post("/v1/completions", {"prompt": "hi", "max_tokens": 2})[:2] == (500, "")
        assert server.post("/v1/chat/completions", {**chat, "model": "nope"})[0] == 404  # checked before the engine
        assert server.get("/v1/models")[0] == 200 and server.get("/metrics")[0] == 200
        assert not locked(alloc)  # the engine's memory went with it
        time.sleep(0.3)
        assert server.proc.poll() is None  # 0.10.1.1 does not shut the API server down
        out, err = server.output()
    finally:
        rc = server.stop()[0]
    assert rc == 0
    assert re.search(
        r"^\(APIServer pid=\d+\) ERROR \S+ \S+ \[core_client.py:562\] Engine core proc EngineCore_0 died "
        r"unexpectedly, shutting down client\.$",
        out,
        re.M,
    )
    prefix = f"(APIServer pid={server.proc.pid}) "
    crash = [line[len(prefix) :] for line in err.splitlines() if line.startswith(prefix)]
    start = crash.index("Exception in thread MPClientEngineMonitor:")
    assert crash[start - 2] == (
        "/usr/lib/python3.12/weakref.py:590: RuntimeWarning: No running event loop. zmq.asyncio should be used from "
        "within an asyncio loop."
    )
    assert crash[start + 1 : start + 3] == [
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3.12/threading.py", line 1075, in _bootstrap_inner',
    ]
    assert "RuntimeError: There is no current event loop in thread 'MPClientEngineMonitor'." in crash
    assert '"GET /health HTTP/1.1" 500 Internal Server Error' in err
