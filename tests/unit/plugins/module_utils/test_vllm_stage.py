"""module_utils/_vllm_stage: the catalog, the serve arguments, the start-up log and the failure hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _vllm_stage as vs

REPO = Path(__file__).resolve().parents[4]
# The vLLM twin's own start-up logs (VLLM_TWIN_TIME_SCALE=0.01), as `docker logs --timestamps` gives them: stdout and
# stderr of each case, kept in JSON so that the tqdm CRs and the CRLF continuation lines survive as they are.
LOGS = json.loads((REPO / "tests" / "unit" / "plugins" / "modules" / "files" / "vllm_logs.json").read_text())


def builtin():
    return yaml.safe_load((REPO / "playbooks" / "vars" / "stages.yml").read_text())["workshop_stages_builtin"]


def log(name):
    return vs.merge_logs(LOGS[name]["stdout"], LOGS[name]["stderr"])


# --- catalog ------------------------------------------------------------------------------------------------------


def test_builtin_catalog_has_the_issue_stages_in_order():
    stages = vs.catalog(builtin())
    assert [s["name"] for s in stages] == ["gpt-oss-120b", "fp16", "fp8", "fp4", "fp4_eagle3"]
    by_name = {s["name"]: s for s in stages}
    assert by_name["gpt-oss-120b"]["requires"]["encodings"] == ["o200k_base.tiktoken", "cl100k_base.tiktoken"]
    assert by_name["fp4_eagle3"]["requires"]["models"] == [
        "nvidia/Llama-3.1-8B-Instruct-FP4",
        "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B",
    ]
    for stage in stages:
        assert stage["served_name"] == stage["model"]
        assert stage["memory_gib"] > 0 and stage["disk_gib"] > 0
        assert stage["model"] in stage["requires"]["models"]


def test_extra_stage_is_appended_and_completed():
    extra = [{"name": "fp8_short", "model": "nvidia/Llama-3.1-8B-Instruct-FP8", "served_name": "llama-fp8-short",
              "args": ["--max-model-len", 2048]}]
    stages = vs.catalog(builtin(), extra)
    added = stages[-1]
    assert added["name"] == "fp8_short"
    assert added["args"] == ["--max-model-len", "2048"]
    assert added["extra_models"] == [] and added["env"] == {}
    assert added["requires"] == {"models": ["nvidia/Llama-3.1-8B-Instruct-FP8"], "encodings": []}
    assert added["memory_gib"] is None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([{"name": "fp8", "model": "a/b"}], "stage name 'fp8' is already in the catalog"),
        ([{"name": "x y", "model": "a/b"}], "needs a name"),
        ([{"name": "x", "model": "not-a-repo"}], "model must be a Hugging Face repo id"),
        ([{"name": "x", "model": "a/b", "args": "--foo"}], "args must be a list"),
        ([{"name": "x", "model": "a/b", "flags": []}], "unknown keys flags"),
        ([{"name": "x", "model": "a/b", "extra_models": ["c/d"], "requires": {"models": ["a/b"]}}], "missing c/d"),
        ([{"name": "x", "model": "openai/gpt-oss-20b"}], "no TIKTOKEN_ENCODINGS_BASE"),
        ([{"name": "x", "model": "a/b", "memory_gib": -1}], "memory_gib must be a number"),
        ({"name": "x"}, "workshop_stages_extra must be a list"),
        (["fp9"], "must be a mapping"),
    ],
)
def test_bad_extra_stages_are_refused_with_the_problem(extra, needle):
    with pytest.raises(vs.CatalogError, match=None) as info:
        vs.catalog(builtin(), extra)
    assert needle in str(info.value)


def test_duplicate_inside_extra_names_the_source():
    extra = [{"name": "a", "model": "x/y"}, {"name": "a", "model": "x/z"}]
    with pytest.raises(vs.CatalogError) as info:
        vs.catalog(builtin(), extra)
    assert "(from workshop_stages_extra)" in str(info.value)


# --- serve arguments ----------------------------------------------------------------------------------------------


def test_serve_args_without_options_are_the_stage_args():
    stage = {s["name"]: s for s in vs.catalog(builtin())}["fp4_eagle3"]
    assert vs.serve_args(stage, {}) == stage["args"]
    assert vs.serve_args(stage) is not stage["args"]


def test_serve_args_append_the_common_options_in_order():
    stage = {"name": "s", "model": "a/b", "args": ["--trust_remote_code"]}
    options = {"fast_startup": True, "gpu_memory_utilization": 0.7, "max_model_len": 4096, "max_num_seqs": "8"}
    assert vs.serve_args(stage, options) == [
        "--trust_remote_code",
        "--compilation-config",
        '{"level": 0}',
        "--gpu-memory-utilization",
        "0.7",
        "--max-model-len",
        "4096",
        "--max-num-seqs",
        "8",
    ]


def test_zero_and_false_options_add_nothing_and_the_stage_flag_wins():
    stage = {"name": "s", "model": "a/b", "args": ["--max_model_len", "1024", "-O0"]}
    options = {"fast_startup": "true", "gpu_memory_utilization": 0, "max_model_len": 4096, "max_num_seqs": None}
    assert vs.serve_args(stage, options) == ["--max_model_len", "1024", "-O0"]


def test_served_name_adds_the_flag():
    stage = {"name": "s", "model": "a/b", "served_name": "short", "args": []}
    assert vs.serve_args(stage, {}) == ["--served-model-name", "short"]


def test_unknown_option_is_an_error():
    with pytest.raises(vs.CatalogError, match="unknown serve options enforce_eager"):
        vs.serve_args({"name": "s", "model": "a/b"}, {"enforce_eager": True})


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], 0.9), (["--gpu-memory-utilization", "0.7"], 0.7), (["--gpu_memory_utilization=0.5"], 0.5)],
)
def test_utilization(args, expected):
    assert vs.utilization(args) == expected


# --- the log ------------------------------------------------------------------------------------------------------


def first_time(lines):
    return min(when for when, _text in lines if when is not None)


def test_cold_start_phases():
    lines = log("cold")
    started = first_time(lines) - 0.5
    p = vs.phases(lines, started)
    assert p["compile"] == "compiled" and p["compile_skipped"] is False
    assert p["load_s"] == 0.1
    assert p["compile_s"] == 0.39
    assert p["graphs_s"] == 0.0
    assert p["engine_init_s"] == 0.66
    assert p["startup_complete"] is True
    complete = next(when for when, text in lines if "Application startup complete." in text)
    assert p["total_s"] == round(complete - started, 2)
    assert p["total_s"] > 1.0 and p["total_s"] < 3.0  # the fixture's start-up, 1-3 s at VLLM_TWIN_TIME_SCALE=0.01


def test_warm_start_loads_from_the_cache():
    p = vs.phases(log("warm"))
    assert p["compile"] == "from_cache" and p["compile_skipped"] is True
    assert p["compile_s"] == 0.05
    assert p["total_s"] is None  # no container start time given


def test_eagle3_compiles_two_modules():
    p = vs.phases(log("eagle"))
    assert p["compile"] == "compiled"
    assert p["compile_s"] == 0.4


def test_level0_has_no_compile():
    p = vs.phases(log("level0"))
    assert p["compile"] == "off" and p["compile_skipped"] is True
    assert p["compile_s"] is None and p["graphs_s"] is None
    assert vs.describe_phases(p).startswith("load ")
    assert "compile off" in vs.describe_phases(p)


def test_merge_orders_stdout_and_stderr_by_time_and_cleans():
    lines = log("cold")
    times = [when for when, _text in lines]
    assert times == sorted(times)
    texts = [text for _when, text in lines]
    assert not [t for t in texts if "\x1b" in t or "\r" in t]
    # uvicorn's line (stderr) comes after the API server's route lines (stdout) that precede it in time.
    assert texts.index("(APIServer pid=11936) INFO:     Application startup complete.") > next(
        i for i, t in enumerate(texts) if "Starting vLLM API server" in t
    )
    # A tqdm line keeps its last update only.
    capture = [t for t in texts if "Capturing CUDA graphs" in t]
    assert len(capture) == 1 and "67/67" in capture[0]


def test_parse_time():
    assert vs.parse_time("2026-12-02T13:36:59.5Z") == pytest.approx(1796218619.5)
    assert vs.parse_time("2026-12-02T14:36:59.5+01:00") == pytest.approx(1796218619.5)
    assert vs.parse_time("0001-01-01T00:00:00Z") is not None
    assert vs.parse_time("") is None
    assert vs.parse_time("yesterday") is None


# --- failures -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "evidence"),
    [
        ("nvml", "runtime", "failed to be inspected"),
        ("memory", "memory", "Free memory on device (19.07/122.82 GiB)"),
        ("encodings", "encodings", "HarmonyError"),
        ("missing", "model", "couldn't connect to 'https://huggingface.co'"),
        ("cold", None, None),
    ],
)
def test_classify_the_twin_failures(name, kind, evidence):
    texts = [text for _when, text in log(name)]
    found, line = vs.classify(texts)
    assert found == kind
    if evidence:
        assert evidence in line
        assert vs.hint(found)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Error creating container: 400 Client Error: Bad Request (\"Unknown runtime specified nvidia\")", "runtime"),
        ("thor-m1: not enough free GPU memory for vLLM after drop_caches: free 18.82/122.82 GiB", "memory"),
        ("OSError: [Errno 98] Address already in use", "port"),
        ("Cannot find image thor-twin/vllm:25.09-py3 locally", "image"),
        ("something else", None),
    ],
)
def test_classify_task_messages(message, kind):
    assert vs.classify(message)[0] == kind


def test_error_lines_strip_prefixes():
    texts = [text for _when, text in log("memory")]
    errors = vs.error_lines(texts)
    assert errors[-1].startswith("RuntimeError: Engine core initialization failed.")
    assert any(e.startswith("ValueError: Free memory on device") for e in errors)
