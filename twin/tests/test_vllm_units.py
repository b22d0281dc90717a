"""Pieces of the vLLM twin tested in-process: log format, metrics families, timing model, text generation."""

import argparse
import io
import math

from prometheus_client import CollectorRegistry, generate_latest

from twin_support import FP4, LLAMA
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


def expected_decode_rate(timing, n):
    """Expected tok/s over an n-token answer (first token excluded), from the model's own formulas."""
    t, i = 0.0, 1.0
    while i < n:
        p, gained, chain = timing.accept_probability(i), 1.0, 1.0
        for _ in range(timing.k):
            chain *= p
            gained += chain
        t += timing.step_seconds(1, 0)
        i += gained
    return (n - 1) / t


def test_eagle3_timing_model_reproduces_long_and_short_answer_speeds(hub):
    timing = TimingModel(spec_of(hub, FP4)[1], num_spec_tokens=5)
    assert math.isclose(expected_decode_rate(timing, 1024), 25.6, abs_tol=0.3)
    assert math.isclose(expected_decode_rate(timing, 64), 14.3, abs_tol=0.3)
    assert math.isclose(1 / TimingModel(spec_of(hub, FP4)[1]).step_seconds(1, 0), 19.1, abs_tol=0.05)


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
