"""Pieces of the vLLM twin tested in-process: log format, metrics families, timing model, text generation."""

import argparse
import io
import math

from prometheus_client import CollectorRegistry, generate_latest

from twin_support import EAGLE, FP4, LLAMA
from vllm_twin import logfmt, metrics, model_cache, modelspec
from vllm_twin.textgen import TextGen
from vllm_twin.timing import TimingModel
from vllm_twin.tokenizer import Tokenizer


def test_prefix_writer_and_crlf_continuation(monkeypatch):
    raw = io.StringIO()
    monkeypatch.setattr("sys.stdout", logfmt.PrefixWriter(raw, "(APIServer pid=1) "))
    logfmt.log("ERROR", "core.py:700", "EngineCore failed to start.\nTraceback (most recent call last):")
    lines = raw.getvalue().split("\n")
    assert lines[0].startswith("(APIServer pid=1) ERROR ") and lines[0].endswith(" [core.py:700] EngineCore failed to start.\r")
    assert lines[1].startswith("(APIServer pid=1) ERROR ") and lines[1].endswith(
        "[core.py:700] Traceback (most recent call last):"
    )


def test_tqdm_lines():
    assert logfmt.tqdm_line("Loading safetensors checkpoint shards", 0, 4, 0) == (
        "\rLoading safetensors checkpoint shards:   0% Completed | 0/4 [00:00<?, ?it/s]\n"
    )
    assert logfmt.tqdm_line("Loading safetensors checkpoint shards", 4, 4, 1.2) == (
        "\rLoading safetensors checkpoint shards: 100% Completed | 4/4 [00:01<00:00,  3.33it/s]\n"
    )
    assert logfmt.tqdm_line("x", 1, 15, 2.0).endswith("[00:02<00:28, 2.00s/it]\n")


def test_metric_families_buckets_and_newer_version(monkeypatch):
    registry = CollectorRegistry()
    metrics.Metrics("m", 131072, 0, {"block_size": "16", "engine": "0"}, registry)
    text = generate_latest(registry).decode()
    assert metrics.buckets_1_2_5(131072)[-1] == 100000 and len(metrics.buckets_1_2_5(131072)) == 16
    assert 'vllm:time_per_output_token_seconds_bucket{engine="0",le="80.0",model_name="m"} 0.0' in text
    assert 'vllm:time_to_first_token_seconds_bucket{engine="0",le="2560.0",model_name="m"} 0.0' in text
    assert 'vllm:cache_config_info{block_size="16",engine="0"} 1.0' in text
    assert "inter_token_latency" not in text
    monkeypatch.setenv("VLLM_TWIN_METRICS_VERSION", "0.11.0")
    registry = CollectorRegistry()
    metrics.Metrics("m", 4096, 2, {"engine": "0"}, registry)
    text = generate_latest(registry).decode()
    assert "vllm:inter_token_latency_seconds_bucket" in text
    assert text.index("vllm:spec_decode_num_drafts_total") < text.index("vllm:num_requests_running")


def spec_of(hub, repo_id, **over):
    snapshot = model_cache.Checkpoint(next((hub / "hub" / ("models--" + repo_id.replace("/", "--")) / "snapshots").iterdir())).dir
    config = model_cache.read_json(snapshot / "config.json")
    args = argparse.Namespace(
        dtype="auto",
        kv_cache_dtype="auto",
        max_num_batched_tokens=None,
        max_num_seqs=None,
        max_model_len=None,
        quantization=None,
        **over,
    )
    return snapshot, modelspec.model_spec(config, args, modelspec.config_quantization(config))


def test_footprints_and_decode_rates_match_the_workshop(hub):
    expected = {LLAMA: (14.99, 10.7), "nvidia/Llama-3.1-8B-Instruct-FP8": (8.49, 14.2), FP4: (6.07, 19.1)}
    for repo_id, (gib, toks) in expected.items():
        spec = spec_of(hub, repo_id)[1]
        assert abs(spec.weight_bytes / modelspec.GiB - gib) < 0.05, repo_id
        assert abs(spec.decode_tokens_per_s - toks) < 0.05, repo_id


def eagle3_timing(hub, k=5):
    draft = model_cache.read_json(spec_of(hub, EAGLE)[0] / "config.json")
    return TimingModel(spec_of(hub, FP4)[1], num_spec_tokens=k, draft_bytes=modelspec.eagle3_head_bytes(draft))


def test_eagle3_timing_model_has_a_constant_acceptance_derived_from_the_published_speedup(hub):
    """Draft cost = head bytes / target bytes per token (memory-bound, 0.156); acceptance 0.600 per draft token at
    every output position, so FP4+EAGLE3 (k=5) decodes at the workshop's long-answer 25.6 tok/s at any length."""
    timing = eagle3_timing(hub)
    fp4 = TimingModel(spec_of(hub, FP4)[1])
    assert math.isclose(1 / fp4.step_seconds(1, 0), 19.1, abs_tol=0.05)
    assert math.isclose(timing.draft_cost, 0.156, abs_tol=0.001)
    assert math.isclose(timing.mean_acceptance_length(), 2.39, abs_tol=0.01)
    rate = timing.mean_acceptance_length() / timing.step_seconds(1, 0)
    assert math.isclose(rate, 25.6, abs_tol=0.1)
    assert not hasattr(timing, "warmup")  # no ramp by output position: 128-token answers are faster than FP4 too


def test_eagle3_engine_acceptance_matches_the_model(hub):
    """The engine draws acceptance per draft token with the model's constant probability."""
    import random

    timing = eagle3_timing(hub)
    rng, steps, tokens = random.Random(1), 20000, 0
    for _ in range(steps):
        accepted = 0
        while accepted < timing.k and rng.random() < timing.accept:
            accepted += 1
        tokens += 1 + accepted
    assert math.isclose(tokens / steps, timing.mean_acceptance_length(), abs_tol=0.03)


def test_eagle3_head_memory_matches_the_workshop(hub):
    draft = model_cache.read_json(spec_of(hub, EAGLE)[0] / "config.json")
    head = modelspec.eagle3_head_bytes(draft) / modelspec.GiB
    assert math.isclose(head, 0.79, abs_tol=0.005)
    assert abs(spec_of(hub, FP4)[1].weight_bytes / modelspec.GiB + head - 6.86) < 0.05


def test_spec_decode_families_are_registered_first_in_vllms_order():
    registry = CollectorRegistry()
    metrics.Metrics("m", 4096, 3, {"engine": "0"}, registry)
    names = [m.name for m in registry.collect() if m.name.startswith("vllm:")]
    assert names[:5] == [
        "vllm:spec_decode_num_drafts",
        "vllm:spec_decode_num_draft_tokens",
        "vllm:spec_decode_num_accepted_tokens",
        "vllm:spec_decode_num_accepted_tokens_per_pos",
        "vllm:num_requests_running",
    ]


# Bodies and str(errors) from vLLM 0.10.1.1's ChatCompletionRequest / CompletionRequest with pydantic 2.11.7.
M = [{"role": "user", "content": "hi"}]
GOLDEN = [
    (
        "ChatCompletionRequest",
        {"messages": M, "max_tokens": 1.5, "n": True, "seed": "x", "min_tokens": None},
        "[{'type': 'int_from_float', 'loc': ('body', 'max_tokens'), 'msg': 'Input should be a valid integer, got a "
        "number with a fractional part', 'input': 1.5}, {'type': 'int_parsing', 'loc': ('body', 'seed'), 'msg': 'Input "
        "should be a valid integer, unable to parse string as an integer', 'input': 'x'}, {'type': 'int_type', 'loc': "
        "('body', 'min_tokens'), 'msg': 'Input should be a valid integer', 'input': None}]",
    ),
    (
        "ChatCompletionRequest",
        {"messages": M, "stream_options": "yes", "stream": True},
        "[{'type': 'model_type', 'loc': ('body', 'stream_options'), 'msg': 'Input should be a valid dictionary or "
        "instance of StreamOptions', 'input': 'yes', 'ctx': {'class_name': 'StreamOptions'}}]",
    ),
    (
        "ChatCompletionRequest",
        {"messages": M, "stream_options": {"include_usage": "x"}, "stream": True},
        "[{'type': 'bool_parsing', 'loc': ('body', 'stream_options', 'include_usage'), 'msg': 'Input should be a valid "
        "boolean, unable to interpret input', 'input': 'x'}]",
    ),
    (
        "ChatCompletionRequest",
        {"messages": "hi"},
        "[{'type': 'list_type', 'loc': ('body', 'messages'), 'msg': 'Input should be a valid list', 'input': 'hi'}]",
    ),
    (
        "ChatCompletionRequest",
        {"temperature": 1},
        "[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required', 'input': {'temperature': 1}}]",
    ),
    (
        "ChatCompletionRequest",
        {"messages": M, "stop": ["a", 1], "logit_bias": {"1": "x"}},
        "[{'type': 'float_parsing', 'loc': ('body', 'logit_bias', '1'), 'msg': 'Input should be a valid number, unable "
        "to parse string as a number', 'input': 'x'}, {'type': 'string_type', 'loc': ('body', 'stop', 'str'), 'msg': "
        "'Input should be a valid string', 'input': ['a', 1]}, {'type': 'string_type', 'loc': ('body', 'stop', "
        "'list[str]', 1), 'msg': 'Input should be a valid string', 'input': 1}]",
    ),
    (
        "ChatCompletionRequest",
        {"messages": M, "model": 5, "stream": 2, "ignore_eos": "yes"},
        "[{'type': 'string_type', 'loc': ('body', 'model'), 'msg': 'Input should be a valid string', 'input': 5}, "
        "{'type': 'bool_parsing', 'loc': ('body', 'stream'), 'msg': 'Input should be a valid boolean, unable to "
        "interpret input', 'input': 2}]",
    ),
    (
        "CompletionRequest",
        {"prompt": ["a", 1]},
        "[{'type': 'int_parsing', 'loc': ('body', 'prompt', 'list[int]', 0), 'msg': 'Input should be a valid integer, "
        "unable to parse string as an integer', 'input': 'a'}, {'type': 'list_type', 'loc': ('body', 'prompt', "
        "'list[list[int]]', 0), 'msg': 'Input should be a valid list', 'input': 'a'}, {'type': 'list_type', 'loc': "
        "('body', 'prompt', 'list[list[int]]', 1), 'msg': 'Input should be a valid list', 'input': 1}, {'type': "
        "'string_type', 'loc': ('body', 'prompt', 'str'), 'msg': 'Input should be a valid string', 'input': ['a', 1]}, "
        "{'type': 'string_type', 'loc': ('body', 'prompt', 'list[str]', 1), 'msg': 'Input should be a valid string', "
        "'input': 1}]",
    ),
]


def test_request_validation_matches_vllms_pydantic_errors():
    from vllm_twin import server

    for model, body, expected in GOLDEN:
        assert str(server.check_fields(model, body)[1]) == expected
    values, errs = server.check_fields(
        "ChatCompletionRequest",
        {"messages": M, "temperature": True, "top_p": "inf", "max_tokens": "12", "n": "2", "stream": "true", "min_tokens": 3.0},
    )
    assert not errs and (values["temperature"], values["max_tokens"], values["n"], values["stream"], values["min_tokens"]) == (
        1.0,
        12,
        2,
        True,
        3,
    )
    assert server.check_fields("CompletionRequest", {"prompt": ["1"]})[0]["prompt"] == ["1"]  # list[str]: the exact match


def test_text_is_a_function_of_prompt_and_weights_family(hub):
    snapshot, fp16 = spec_of(hub, LLAMA)
    tok = Tokenizer(snapshot, fp16.vocab)
    ids = tok.encode(tok.render_chat([{"role": "user", "content": "hello"}]))
    assert ids[0] == tok.special["<|begin_of_text|>"] and tok.special["<|eot_id|>"] in ids

    def take(spec, base, n=200):
        gen = TextGen(tok, spec).tokens(base, ignore_eos=True)
        return [next(gen) for _ in range(n)]

    base = TextGen(tok, fp16).base(ids, 0, None)
    fp8 = spec_of(hub, "nvidia/Llama-3.1-8B-Instruct-FP8")[1]
    fp4 = spec_of(hub, FP4)[1]
    assert take(fp16, base) == take(fp8, base)
    diff = sum(a != b for a, b in zip(take(fp16, base), take(fp4, base), strict=True))
    assert 0 < diff < 20
    assert TextGen(tok, fp16).base(ids, 0.7, None) != TextGen(tok, fp16).base(ids, 0.7, None)
