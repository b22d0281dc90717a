"""What converge.yml's walk through the stages left: each step's fleet summary (steps/<NN-stage>/fleet-summary.json),
its output (run.log) and the vLLM container after it (container-thor-m1.json); and the unit at the end."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from thor_hosts import connect, thor_units

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
STEPS = ["gpt-oss-120b", "gpt-oss-120b", "fp16", "fp8", "fp4", "fp4_eagle3", "fp4", "fp8_short"]
SERVED = {
    "gpt-oss-120b": "openai/gpt-oss-120b",
    "fp16": "meta-llama/Llama-3.1-8B-Instruct",
    "fp8": "nvidia/Llama-3.1-8B-Instruct-FP8",
    "fp4": "nvidia/Llama-3.1-8B-Instruct-FP4",
    "fp4_eagle3": "nvidia/Llama-3.1-8B-Instruct-FP4",
    "fp8_short": "llama-fp8-short",
}
UNIT = "thor-m1"


def step_dir(index):
    return EPHEMERAL / "steps" / f"{index:02d}-{STEPS[index]}"


def summary(index):
    path = step_dir(index) / "fleet-summary.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing; the run said: {(step_dir(index) / 'run.log').read_text()[-3000:]}")
    return json.loads(path.read_text())


def row(index):
    return next(r for r in summary(index)["units"] if r["unit"] == UNIT)


def container(index):
    data = json.loads((step_dir(index) / f"container-{UNIT}.json").read_text())
    assert data, f"no vllm container after step {index}"
    return data[0]


@pytest.mark.parametrize("index", range(len(STEPS)))
def test_every_step_ends_ready_with_the_stage(index):
    r = row(index)
    assert r["status"] in ("changed", "converged"), r["what_happened"]
    details = r["details"]
    assert details["stage"] == STEPS[index]
    assert details["stage_ready"] is True
    assert details["stage_hint"] is None
    c = container(index)
    assert c["State"]["Running"] is True
    assert c["Config"]["Labels"]["org.jetson-thor.workshop.stage"] == STEPS[index]


@pytest.mark.parametrize("index", range(len(STEPS)))
def test_every_start_records_its_phases(index):
    startup = row(index)["details"]["startup"]
    assert re.search(r"^load [\d.]+ s", startup), startup
    assert re.search(r"total [\d.]+ s", startup), startup


def test_container_runs_the_catalog_command_with_the_workshop_options():
    c = container(5)  # fp4_eagle3
    assert c["Config"]["Cmd"] == [
        "vllm", "serve", "nvidia/Llama-3.1-8B-Instruct-FP4", "--trust_remote_code", "--speculative-config",
        '{"method":"eagle3","model":"yuhuili/EAGLE3-LLaMA3.1-Instruct-8B","num_speculative_tokens":5}',
    ]
    host_config = c["HostConfig"]
    assert host_config["NetworkMode"] == "host"
    assert host_config["Runtime"] == "nvidia"
    assert host_config["ShmSize"] == 16 * 1024**3
    assert {u["Name"] for u in host_config["Ulimits"]} == {"stack"}  # memlock dropped on the twin (molecule.yml)
    env = dict(e.split("=", 1) for e in c["Config"]["Env"])
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_TWIN_TIME_SCALE"] == "0.01"
    assert "TIKTOKEN_ENCODINGS_BASE" not in env
    binds = {tuple(b.split(":")[:2]): [*b.split(":"), "rw"][2] for b in host_config["Binds"]}
    assert binds[("/home/workshop/data/models/huggingface", "/root/.cache/huggingface")] == "rw"
    assert binds[("/home/workshop/data/vllm_cache", "/root/.cache/vllm")] == "rw"
    assert binds[("/home/workshop/data/encodings", "/etc/encodings")] == "ro"


def test_gpt_oss_gets_the_encodings():
    env = dict(e.split("=", 1) for e in container(0)["Config"]["Env"])
    assert env["TIKTOKEN_ENCODINGS_BASE"] == "/etc/encodings"


def test_repeated_stage_is_not_restarted_and_changes_nothing():
    first, again = container(0), container(1)
    assert again["Id"] == first["Id"]
    assert again["State"]["StartedAt"] == first["State"]["StartedAt"]
    assert row(1)["status"] == "converged", row(1)["what_happened"]


def test_each_new_stage_replaced_the_container():
    ids = [container(i)["Id"] for i in range(len(STEPS))]
    for i in range(2, len(STEPS)):
        assert ids[i] != ids[i - 1], f"step {i} ({STEPS[i]}) kept the container of step {i - 1}"
        assert row(i)["status"] == "changed"


@pytest.mark.parametrize(("index", "compile_word"), [(0, "compiled"), (4, "compiled"), (5, "compiled"), (6, "from cache")])
def test_compile_is_skipped_where_the_cache_is_warm(index, compile_word):
    """fp4 compiled at its first start (step 4) and loaded its graphs from the cache at its second (step 6)."""
    assert f"({compile_word})" in row(index)["details"]["startup"]


def test_a_stage_added_by_data_is_served_under_its_name():
    c = container(7)
    assert c["Config"]["Cmd"] == [
        "vllm", "serve", "nvidia/Llama-3.1-8B-Instruct-FP8", "--max-model-len", "2048",
        "--served-model-name", "llama-fp8-short",
    ]
    host = connect(thor_units()[UNIT])
    models = json.loads(host.check_output("curl -sf http://127.0.0.1:8000/v1/models"))
    assert [m["id"] for m in models["data"]] == ["llama-fp8-short"]
    assert models["data"][0]["max_model_len"] == 2048


def test_the_unit_answers_a_chat_at_the_end():
    host = connect(thor_units()[UNIT])
    body = json.dumps({"model": SERVED["fp8_short"], "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4})
    out = host.check_output(
        "curl -sf http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d %s", body
    )
    answer = json.loads(out)
    assert answer["model"] == "llama-fp8-short"
    assert answer["usage"]["completion_tokens"] >= 1
