"""The twin's HTTP API: shapes of vLLM 0.10.1.1 (§5, §6), determinism across precisions, the trace endpoint,
and the official openai client against it."""

import itertools
import json
import os
import re
import signal
import threading
import time

import pytest

from twin_support import EAGLE, FP4, FP8, LLAMA, Server, twin_env

SPEC = ["--speculative-config", '{"method":"eagle3","model":"' + EAGLE + '","num_speculative_tokens":3}']
PROMPT = [{"role": "user", "content": "Write a 5-sentence paragraph about Jetson Thor for robotics developers."}]


@pytest.fixture(scope="module")
def servers(hub, module_dir):
    from twin_support import make_device

    started = {}
    try:
        for key, model, extra in (
            ("fp16", LLAMA, ["--api-key", "sk-test"]),
            ("fp8", FP8, []),
            ("fp4", FP4, ["--enable-prompt-tokens-details"]),
            ("eagle", FP4, SPEC),
            ("nocache", FP8, ["--no-enable-prefix-caching", "--enable-prompt-tokens-details"]),
        ):
            dev = make_device(module_dir / key)
            env = twin_env(hub, dev, VLLM_TWIN_TIME_SCALE="0.0005", VLLM_LOG_STATS_INTERVAL="0.2")
            started[key] = Server(model, env, extra)
        yield started
    finally:
        for server in started.values():
            server.stop()


AUTH = {"Authorization": "Bearer sk-test"}


def sse(body):
    events = [e[len("data: ") :] for e in body.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def chat(server, headers=None, **body):
    body = {"messages": PROMPT, "temperature": 0, **body}
    status, text, hdrs = server.post("/v1/chat/completions", body, headers=headers)
    return status, (sse(text) if body.get("stream") and status == 200 else json.loads(text)), hdrs


def test_health_ping_version_models(servers):
    s = servers["fp8"]
    status, body, headers = s.get("/health")
    assert status == 200 and body == "" and "Content-Type" not in headers
    assert s.get("/ping")[0] == 200 and s.post("/ping", {})[0] == 200
    version = json.loads(s.get("/version")[1])
    assert version["version"].startswith("0.10.1.1+")
    assert version["twin"]["simulated"] is True and version["twin"]["time_scale"] == 0.0005
    models = json.loads(s.get("/v1/models")[1])
    card = models["data"][0]
    assert list(card) == ["id", "object", "created", "owned_by", "root", "parent", "max_model_len", "permission"]
    assert card["id"] == FP8 and card["root"] == FP8 and card["max_model_len"] == 131072
    assert card["permission"][0]["id"].startswith("modelperm-") and card["permission"][0]["object"] == "model_permission"


def test_api_key_only_guards_v1(servers):
    s = servers["fp16"]
    status, body, _ = s.get("/v1/models")
    assert status == 401 and body == '{"error":"Unauthorized"}'
    assert s.get("/v1/models", headers=AUTH)[0] == 200
    assert s.get("/health")[0] == 200 and s.get("/metrics")[0] == 200


def test_streaming_chat_chunk_shapes_and_usage(servers):
    status, chunks, headers = chat(servers["fp8"], stream=True, max_tokens=6, stream_options={"include_usage": True})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    first, *content, usage = chunks
    assert list(first) == ["id", "object", "created", "model", "choices"]
    assert first["object"] == "chat.completion.chunk" and first["id"].startswith("chatcmpl-")
    assert first["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    assert {c["created"] for c in chunks} == {first["created"]} and {c["id"] for c in chunks} == {first["id"]}
    assert all("stop_reason" not in c["choices"][0] for c in content[:-1])
    assert content[-1]["choices"][0]["finish_reason"] == "length" and content[-1]["choices"][0]["stop_reason"] is None
    assert usage["choices"] == [] and list(usage["usage"]) == ["prompt_tokens", "total_tokens", "completion_tokens"]
    assert usage["usage"]["completion_tokens"] == 6


def test_continuous_usage_and_stream_options_without_stream(servers):
    s = servers["fp8"]
    _, chunks, _ = chat(s, stream=True, max_tokens=4, stream_options={"include_usage": True, "continuous_usage_stats": True})
    assert chunks[0]["usage"]["completion_tokens"] == 0
    running = [c["usage"]["completion_tokens"] for c in chunks[1:-1]]
    assert running == sorted(running) and running[-1] == 4
    status, body, _ = chat(s, max_tokens=4, stream_options={"include_usage": True})
    assert status == 400 and body["error"]["type"] == "Bad Request" and body["error"]["code"] == 400
    assert "Stream options can only be defined when `stream=True`." in body["error"]["message"]
    assert body["error"]["message"].startswith("[{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, ")


def test_errors_unknown_model_and_context_length(servers):
    status, body, _ = chat(servers["fp8"], model="nope", max_tokens=2)
    assert status == 404 and body == {
        "error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "param": None, "code": 404}
    }
    status, body, _ = chat(servers["fp8"], max_tokens=200000)
    n = json.loads(servers["fp8"].post("/tokenize", {"messages": PROMPT})[1])["count"]
    # 0.10.1.1's text; chat wraps the ValueError as f"{e} {e.__cause__}", hence the trailing " None"
    assert status == 400 and body["error"] == {
        "message": f"'max_tokens' or 'max_completion_tokens' is too large: 200000. This model's maximum context length "
        f"is 131072 tokens and your request has {n} input tokens (200000 > 131072 - {n}). None",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    status, text, _ = servers["fp8"].post("/v1/completions", {"prompt": "hi", "max_tokens": 200000})
    assert status == 400 and json.loads(text)["error"]["message"].endswith("(200000 > 131072 - 2).")


def test_max_min_tokens_ignore_eos_and_stop(servers):
    s = servers["fp8"]
    _, natural, _ = chat(s)
    assert natural["choices"][0]["finish_reason"] == "stop"
    n = natural["usage"]["completion_tokens"]
    _, longer, _ = chat(s, max_tokens=n + 20, ignore_eos=True)
    assert longer["usage"]["completion_tokens"] == n + 20 and longer["choices"][0]["finish_reason"] == "length"
    _, min_tok, _ = chat(s, min_tokens=n + 5, max_tokens=n + 5)
    assert min_tok["usage"]["completion_tokens"] == n + 5
    text = natural["choices"][0]["message"]["content"]
    word = text.split()[3]
    _, stopped, _ = chat(s, stop=[word])
    choice = stopped["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == word and word not in choice["message"]["content"]


def test_determinism_across_precisions(servers):
    def text(key, **kw):
        headers = AUTH if key == "fp16" else None
        return chat(servers[key], headers=headers, max_tokens=120, ignore_eos=True, **kw)[1]["choices"][0]["message"][
            "content"
        ].split()

    fp16, fp8, fp4, eagle = (text(k) for k in ("fp16", "fp8", "fp4", "eagle"))
    assert fp16 == fp8 and fp4 == eagle and fp16 != fp4
    differing = sum(a != b for a, b in zip(fp16, fp4, strict=False))
    assert 0 < differing < len(fp16) // 5
    assert text("fp8", temperature=0.8) != text("fp8", temperature=0.8)
    assert text("fp8", temperature=0.8, seed=7) == text("fp8", temperature=0.8, seed=7)


def test_completions_and_tokenize(servers):
    s = servers["fp8"]
    status, body, _ = s.post("/v1/completions", {"prompt": "Jetson Thor is", "max_tokens": 5, "temperature": 0})
    assert status == 200 and body.startswith('{"id":"cmpl-')
    body = json.loads(body)
    assert body["object"] == "text_completion" and body["choices"][0]["finish_reason"] == "length"
    status, text, _ = s.post("/v1/completions", {"prompt": "Jetson Thor is", "max_tokens": 3, "stream": True})
    chunks = sse(text)
    assert [c["object"] for c in chunks] == ["text_completion"] * 3 and chunks[-1]["choices"][0]["finish_reason"]
    tok = json.loads(s.post("/tokenize", {"prompt": "Jetson Thor is fast."})[1])
    assert tok["count"] == 7 and tok["max_model_len"] == 131072
    assert tok["tokens"] == [128000, 36741, 942, 29550, 374, 5043, 13]  # BOS + Llama 3's ids
    # /detokenize keeps the special tokens, as vLLM's does.
    detok = json.loads(s.post("/detokenize", {"tokens": tok["tokens"]})[1])
    assert detok == {"prompt": "<|begin_of_text|>Jetson Thor is fast."}


def test_metrics_exposition(servers):
    s = servers["fp8"]
    chat(s, max_tokens=3)
    status, text, headers = s.get("/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    for name in (
        "vllm:num_requests_running{",
        "vllm:kv_cache_usage_perc{",
        "vllm:prompt_tokens_total{",
        "vllm:generation_tokens_total{",
        "vllm:time_to_first_token_seconds_bucket{",
        "vllm:time_per_output_token_seconds_bucket{",
        "vllm:e2e_request_latency_seconds_count{",
        "vllm:iteration_tokens_total_bucket{",
        "process_cpu_seconds_total",
        "vllm:cache_config_info{",
    ):
        assert name in text, name
    for reason in ("stop", "length", "abort"):
        assert f'vllm:request_success_total{{engine="0",finished_reason="{reason}",model_name="{FP8}"}}' in text
    assert f'vllm:request_prompt_tokens_bucket{{engine="0",le="100000.0",model_name="{FP8}"}}' in text
    assert "inter_token_latency" not in text and "spec_decode" not in text
    assert 'http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"}' in text


def test_trace_records_write_times_next_to_model_times(servers):
    s = servers["fp4"]
    s.request("DELETE", "/twin/requests")
    chat(s, stream=True, max_tokens=5)
    records = json.loads(s.get("/twin/requests")[1])["requests"]
    (rec,) = records
    assert rec["stream"] and rec["completion_tokens"] == 5 and sum(c["tokens"] for c in rec["chunks"]) == 5
    writes = [c["write_ns"] for c in rec["chunks"]]
    assert writes == sorted(writes) and rec["recv_ns"] <= writes[0]
    assert all(c["model_ns"] <= c["engine_ns"] <= c["write_ns"] for c in rec["chunks"])


def test_engine_keeps_its_clock_in_its_own_process_while_the_api_server_is_stopped(hub, module_dir):
    """EngineCore_0 runs the engine loop in its own process (vLLM V1): with the API server frozen (SIGSTOP) for
    0.4 s mid-stream, the engine still ends its steps on the model's schedule (engine_ns close to model_ns), and
    the chunks of those steps are written only once the API server runs again."""
    from twin_support import make_device

    s = Server(FP4, twin_env(hub, make_device(module_dir / "split"), VLLM_TWIN_TIME_SCALE="0.2"))
    try:
        children = open(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children").read().split()
        assert len(children) == 1  # EngineCore_0
        done = []
        streamer = threading.Thread(target=lambda: done.append(chat(s, stream=True, max_tokens=80, ignore_eos=True)))
        streamer.start()
        time.sleep(0.15)
        paused = time.perf_counter_ns()
        os.kill(s.proc.pid, signal.SIGSTOP)
        time.sleep(0.4)
        resumed = time.perf_counter_ns()
        os.kill(s.proc.pid, signal.SIGCONT)
        streamer.join(timeout=30)
        assert done and done[0][0] == 200
        (rec,) = json.loads(s.get("/twin/requests")[1])["requests"]
        during = [c for c in rec["chunks"] if paused + 20_000_000 < c["model_ns"] < resumed]
        assert len(during) >= 10  # ~10.5 ms steps at this scale
        assert all(c["engine_ns"] - c["model_ns"] < 50_000_000 for c in during)
        assert all(c["write_ns"] >= resumed for c in during)
        assert all(c["model_ns"] <= c["engine_ns"] <= c["write_ns"] for c in rec["chunks"])
    finally:
        s.stop()


def test_speculative_decoding_emits_multi_token_chunks_and_counters(servers):
    s = servers["eagle"]
    _, chunks, _ = chat(
        s, stream=True, max_tokens=400, ignore_eos=True, stream_options={"continuous_usage_stats": True, "include_usage": True}
    )
    sizes = [b["usage"]["completion_tokens"] - a["usage"]["completion_tokens"] for a, b in itertools.pairwise(chunks)]
    assert max(sizes) > 1 and sum(sizes) == 400
    metrics = s.get("/metrics")[1]
    drafts = [line for line in metrics.splitlines() if line.startswith("vllm:spec_decode_num_drafts_total{")]
    assert drafts and float(drafts[0].split()[-1]) > 0


def test_periodic_stats_lines(servers):
    chat(servers["eagle"], max_tokens=50, ignore_eos=True)
    time.sleep(0.5)
    _, out, _ = servers.pop("eagle").stop()
    stats = re.findall(
        r"\[loggers.py:123\] Engine 000: Avg prompt throughput: [\d.]+ tokens/s, Avg generation "
        r"throughput: [\d.]+ tokens/s, Running: \d+ reqs, Waiting: \d+ reqs, GPU KV cache usage: "
        r"[\d.]+%, Prefix cache hit rate: [\d.]+%",
        out,
    )
    spec = re.findall(
        r"\[metrics.py:87\] SpecDecoding metrics: Draft acceptance rate: [\d.]+%, Mean acceptance "
        r"length: [\d.]+, Accepted: \d+ tokens, Drafted: \d+ tokens, Per-position acceptance rate: "
        r"[\d.]+, [\d.]+, [\d.]+$",
        out,
        re.M,
    )
    assert stats and spec


def test_openai_client_streaming_and_not(servers):
    openai = pytest.importorskip("openai", reason="the controller venv provides openai")
    client = openai.OpenAI(base_url=servers["fp16"].url + "/v1", api_key="sk-test")
    assert [m.id for m in client.models.list()] == [LLAMA]
    full = client.chat.completions.create(model=LLAMA, messages=PROMPT, max_tokens=12, temperature=0)
    assert full.usage.completion_tokens == 12 and full.choices[0].finish_reason == "length"
    stream = client.chat.completions.create(
        model=LLAMA, messages=PROMPT, max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        usage = chunk.usage or usage
    assert "".join(parts) == full.choices[0].message.content and usage.completion_tokens == 12
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=servers["fp16"].url + "/v1", api_key="wrong").models.list()


def test_client_disconnect_aborts_the_request(servers):
    import http.client

    s = servers["fp8"]
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    body = {"messages": PROMPT, "max_tokens": 5000, "ignore_eos": True, "stream": True}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read1(100)
    conn.close()
    for _ in range(100):
        metrics = s.get("/metrics")[1]
        line = next(x for x in metrics.splitlines() if x.startswith("vllm:request_success_total") and "abort" in x)
        if float(line.split()[-1]) >= 1:
            break
        time.sleep(0.05)
    assert float(line.split()[-1]) >= 1
    assert s.get("/health")[0] == 200


def raw_post(server, path, data, content_type="application/json"):
    import urllib.error
    import urllib.request

    headers = {} if content_type is None else {"Content-Type": content_type}
    req = urllib.request.Request(server.url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


def error_of(response):
    status, body, _ = response
    return status, json.loads(body)["error"]


# Messages below are str(errors) of vLLM 0.10.1.1's own request models (pydantic 2.11) for the same bodies.
WRONG_TYPES = (
    "[{'type': 'int_parsing', 'loc': ('body', 'max_tokens'), 'msg': 'Input should be a valid integer, unable to parse "
    "string as an integer', 'input': 'ten'}, {'type': 'string_type', 'loc': ('body', 'stop', 'str'), 'msg': 'Input "
    "should be a valid string', 'input': 5}, {'type': 'list_type', 'loc': ('body', 'stop', 'list[str]'), 'msg': "
    "'Input should be a valid list', 'input': 5}, {'type': 'bool_parsing', 'loc': ('body', 'stream'), 'msg': 'Input "
    "should be a valid boolean, unable to interpret input', 'input': 'maybe'}, {'type': 'float_type', 'loc': ('body', "
    "'top_p'), 'msg': 'Input should be a valid number', 'input': [1]}]"
)
PROMPT_5 = (
    "[{'type': 'list_type', 'loc': ('body', 'prompt', 'list[int]'), 'msg': 'Input should be a valid list', 'input': 5}, "
    "{'type': 'list_type', 'loc': ('body', 'prompt', 'list[list[int]]'), 'msg': 'Input should be a valid list', "
    "'input': 5}, {'type': 'string_type', 'loc': ('body', 'prompt', 'str'), 'msg': 'Input should be a valid string', "
    "'input': 5}, {'type': 'list_type', 'loc': ('body', 'prompt', 'list[str]'), 'msg': 'Input should be a valid "
    "list', 'input': 5}]"
)


def test_wrong_types_are_400_in_vllms_error_shape(servers):
    s = servers["fp8"]
    status, body, _ = chat(s, temperature="hot")
    assert status == 400 and body["error"] == {
        "message": "[{'type': 'float_parsing', 'loc': ('body', 'temperature'), 'msg': 'Input should be a valid number, "
        "unable to parse string as a number', 'input': 'hot'}]",
        "type": "Bad Request",
        "param": None,
        "code": 400,
    }
    status, body, _ = chat(s, max_tokens="ten", top_p=[1], stream="maybe", stop=5)
    assert status == 400 and body["error"]["message"] == WRONG_TYPES
    status, body, _ = chat(s, reasoning_effort="max", truncate_prompt_tokens=0)
    assert status == 400 and body["error"]["message"] == (
        "[{'type': 'literal_error', 'loc': ('body', 'reasoning_effort'), 'msg': \"Input should be 'low', 'medium' or "
        "'high'\", 'input': 'max', 'ctx': {'expected': \"'low', 'medium' or 'high'\"}}, {'type': 'greater_than_equal', "
        "'loc': ('body', 'truncate_prompt_tokens'), 'msg': 'Input should be greater than or equal to 1', 'input': 0, "
        "'ctx': {'ge': 1}}]"
    )
    status, text, _ = s.post("/v1/completions", {"prompt": 5})
    assert status == 400 and json.loads(text)["error"]["message"] == PROMPT_5
    status, text, _ = s.post("/v1/completions", {"max_tokens": 3})
    assert status == 400 and json.loads(text)["error"]["message"].startswith(
        "[{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, At least one of `prompt` or `prompt_embeds` "
        "must be set.', 'input': {'max_tokens': 3}, 'ctx': {'error': ValueError("
    )
    status, body, _ = chat(s, top_logprobs=-1, logprobs=True)
    assert status == 400 and "'msg': 'Value error, `top_logprobs` must be a positive value.'" in body["error"]["message"]


def test_out_of_range_values_and_max_tokens_below_one(servers):
    s = servers["fp8"]
    for value in (0, -1):
        status, body, _ = chat(s, max_tokens=value)
        assert status == 400 and body["error"] == {
            "message": f"max_tokens must be at least 1, got {value}.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    for field, value, message in (
        ("temperature", -1, "temperature must be non-negative, got -1.0."),
        ("top_p", 0, "top_p must be in (0, 1], got 0.0."),
        ("top_k", -2, "top_k must be 0 (disable), or at least 1, got -2."),
        ("presence_penalty", 3, "presence_penalty must be in [-2, 2], got 3.0."),
        ("repetition_penalty", 0, "repetition_penalty must be greater than zero, got 0.0."),
        ("min_p", 2, "min_p must be in [0, 1], got 2.0."),
        ("stop", [""], "stop cannot contain an empty string."),
    ):
        status, body, _ = chat(s, max_tokens=3, **{field: value})
        assert (status, body["error"]["message"], body["error"]["type"]) == (400, message, "BadRequestError"), field
    status, body, _ = chat(s, max_tokens=3, min_tokens=5)
    assert status == 400 and body["error"]["message"] == "min_tokens must be less than or equal to max_tokens=3, got 5."
    status, text, _ = s.post("/v1/completions", {"prompt": "hi", "max_tokens": 0})
    assert status == 400 and json.loads(text)["error"]["message"] == "max_tokens must be at least 1, got 0."


def test_lax_coercions_extra_fields_and_empty_stream_options_are_accepted(servers):
    s = servers["fp8"]
    body = {"messages": PROMPT, "temperature": "0", "max_tokens": "3", "stream": "false", "n": True, "foo": 1}
    status, text, _ = s.post("/v1/chat/completions", body)
    assert status == 200 and json.loads(text)["usage"]["completion_tokens"] == 3
    assert chat(s, max_tokens=2, stream_options={})[0] == 200  # `{}` is falsy for validate_stream_options


def test_body_errors_before_validation(servers):
    s = servers["fp8"]
    status, err = error_of(raw_post(s, "/v1/chat/completions", b'{"messages": [}'))
    assert status == 400 and err["type"] == "Bad Request"
    assert err["message"] == (
        "[{'type': 'json_invalid', 'loc': ('body', 14), 'msg': 'JSON decode error', 'input': {}, "
        "'ctx': {'error': 'Expecting value'}}]"
    )
    body = json.dumps({"messages": PROMPT, "max_tokens": 2}).encode()
    status, err = error_of(raw_post(s, "/v1/chat/completions", body, "application/x-www-form-urlencoded"))
    assert status == 400 and err["message"] == "[\"Unsupported Media Type: Only 'application/json' is allowed\"]"
    status, text, headers = raw_post(s, "/v1/chat/completions", b"[1, 2]")
    assert (status, text) == (500, "Internal Server Error") and headers["Content-Type"].startswith("text/plain")


def metric(server, name, **labels):
    for line in server.get("/metrics")[1].splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.split()[-1])
    raise AssertionError(name)


LONG = [{"role": "user", "content": "Describe the Jetson AGX Thor developer kit for a robotics workshop. " * 6}]


def test_prompt_tokens_count_the_whole_prompt_and_cached_tokens_are_reported(servers):
    s = servers["fp4"]
    before = metric(s, "vllm:prompt_tokens_total"), metric(s, "vllm:prefix_cache_hits_total")
    _, first, _ = chat(s, messages=LONG, max_tokens=2)
    _, second, _ = chat(s, messages=LONG, max_tokens=2)
    n = first["usage"]["prompt_tokens"]
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    before_first = (first["usage"]["prompt_tokens_details"] or {}).get("cached_tokens", 0)  # the chat template's start
    assert before_first < cached < n and cached == (n - 1) // 16 * 16
    assert metric(s, "vllm:prompt_tokens_total") - before[0] == 2 * n  # cached tokens count too, as in vLLM
    assert metric(s, "vllm:prefix_cache_hits_total") - before[1] == before_first + cached
    _, chunks, _ = chat(s, messages=LONG, max_tokens=2, stream=True, stream_options={"include_usage": True})
    assert list(chunks[-1]["usage"]) == ["prompt_tokens", "total_tokens", "completion_tokens", "prompt_tokens_details"]
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": cached}


def test_no_enable_prefix_caching_counts_no_hits(servers):
    s = servers["nocache"]
    for _ in range(2):
        _, body, _ = chat(s, messages=LONG, max_tokens=2)
        assert body["usage"]["prompt_tokens_details"] is None
    assert metric(s, "vllm:prefix_cache_queries_total") == 0 and metric(s, "vllm:prefix_cache_hits_total") == 0
    assert metric(s, "vllm:cache_config_info", enable_prefix_caching="False") == 1
    assert metric(servers["fp8"], "vllm:cache_config_info", enable_prefix_caching="True") == 1


def test_time_scale_is_labelled_wherever_a_number_is_read(servers):
    s = servers["fp8"]
    assert 'vllm_twin:info{simulated="true",time_scale="0.0005"} 1.0' in s.get("/metrics")[1]
    trace = json.loads(s.get("/twin/requests")[1])
    assert trace["simulated"] is True and trace["time_scale"] == 0.0005
    assert "0.0005 x the Jetson Thor model" in trace["time_scale_note"]
    log = "".join(s.output())
    assert "VLLM_TWIN_TIME_SCALE=0.0005" in log and "token counts and cache hits are not" in log
