"""Prometheus metrics with vLLM 0.10.1.1's names, labels, buckets and order (vllm-ground-truth.md §6).

Uses prometheus_client's default REGISTRY, so the python_* and process_* families are there as in vLLM.
VLLM_TWIN_METRICS_VERSION=0.11 (or later) adds the newer `vllm:inter_token_latency_seconds`.
"""

import os

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Summary

from vllm_twin.timing import time_scale

TTFT_BUCKETS = [
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
LATENCY_BUCKETS = [
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
]
ITERATION_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
HTTP_HIGHR_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60]
LABELS = ["model_name", "engine"]


def buckets_1_2_5(max_value):
    out, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return out
            out.append(value)
        exponent += 1


def newer_metrics():
    version = os.environ.get("VLLM_TWIN_METRICS_VERSION", "0.10.1.1")
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= (0, 11)


class Metrics:
    def __init__(self, model_name, max_model_len, num_spec_tokens, cache_info, registry=REGISTRY):
        label = (model_name, "0")

        def counter(name, doc, extra=()):
            c = Counter(name, doc, LABELS + list(extra), registry=registry)
            return c if extra else c.labels(*label)

        def gauge(name, doc):
            return Gauge(name, doc, LABELS, registry=registry).labels(*label)

        def histogram(name, doc, buckets):
            return Histogram(name, doc, LABELS, buckets=buckets, registry=registry).labels(*label)

        self.spec = None
        if num_spec_tokens:  # SpecDecodingProm registers these before everything else, in this order
            self.spec = {
                "drafts": counter("vllm:spec_decode_num_drafts", "Number of spec decoding drafts."),
                "draft_tokens": counter("vllm:spec_decode_num_draft_tokens", "Number of draft tokens."),
                "accepted": counter("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens."),
            }
            per_pos = counter("vllm:spec_decode_num_accepted_tokens_per_pos", "Accepted tokens per draft position.", ["position"])
            self.spec["per_pos"] = [per_pos.labels(*label, str(i)) for i in range(num_spec_tokens)]
        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.gpu_cache_usage = gauge(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
        )
        self.gpu_prefix_queries = counter(
            "vllm:gpu_prefix_cache_queries",
            "GPU prefix cache queries, in terms of number of queried tokens.DEPRECATED: Use vllm:prefix_cache_queries instead.",
        )
        self.gpu_prefix_hits = counter(
            "vllm:gpu_prefix_cache_hits",
            "GPU prefix cache hits, in terms of number of cached tokens.DEPRECATED: Use vllm:prefix_cache_hits instead.",
        )
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.prefix_queries = counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.")
        self.prefix_hits = counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = counter("vllm:request_success", "Count of successfully processed requests.", ["finished_reason"])
        self.success = {r: success.labels(*label, r) for r in ("stop", "length", "abort")}
        len_buckets = buckets_1_2_5(max_model_len)
        self.req_prompt = histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", len_buckets)
        self.req_generation = histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", len_buckets)
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", ITERATION_BUCKETS
        )
        self.max_generation = histogram(
            "vllm:request_max_num_generation_tokens", "Histogram of maximum number of requested generation tokens.", len_buckets
        )
        self.params_n = histogram("vllm:request_params_n", "Histogram of the n request parameter.", [1, 2, 5, 10, 20])
        self.params_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", len_buckets
        )
        self.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS)
        self.tpot = histogram(
            "vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", TPOT_BUCKETS
        )
        self.itl = (
            histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", TPOT_BUCKETS)
            if newer_metrics()
            else None
        )
        self.e2e = histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", LATENCY_BUCKETS)
        self.queue_time = histogram(
            "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", LATENCY_BUCKETS
        )
        self.inference_time = histogram(
            "vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", LATENCY_BUCKETS
        )
        self.prefill_time = histogram(
            "vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", LATENCY_BUCKETS
        )
        self.decode_time = histogram(
            "vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", LATENCY_BUCKETS
        )
        info = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", sorted(cache_info), registry=registry)
        info.labels(**cache_info).set(1)
        # Not a vLLM metric: says on every scrape that the numbers are simulated, and at which time scale.
        twin = Gauge(
            "vllm_twin:info",
            "vLLM twin: simulated engine; time_scale multiplies every simulated duration (1 = the Jetson Thor model)",
            ["simulated", "time_scale"],
            registry=registry,
        )
        twin.labels(simulated="true", time_scale=f"{time_scale():g}").set(1)
        self.http = HttpMetrics(registry)

    def step(self, running, waiting, kv_usage, iteration_tokens):
        self.running.set(running)
        self.waiting.set(waiting)
        self.kv_usage.set(kv_usage)
        self.gpu_cache_usage.set(kv_usage)
        if iteration_tokens:
            self.iteration_tokens.observe(iteration_tokens)

    def prefix(self, queries, hits):
        for c in (self.prefix_queries, self.gpu_prefix_queries):
            c.inc(queries)
        for c in (self.prefix_hits, self.gpu_prefix_hits):
            c.inc(hits)

    def inter_token(self, seconds):
        self.tpot.observe(seconds)
        if self.itl:
            self.itl.observe(seconds)

    def draft(self, k, accepted):
        self.spec["drafts"].inc()
        self.spec["draft_tokens"].inc(k)
        self.spec["accepted"].inc(accepted)
        for pos in range(accepted):
            self.spec["per_pos"][pos].inc()

    def finished(self, req, reason):
        """Per-request histograms, observed when a request finishes (times are simulated engine times)."""
        self.success[reason].inc()
        self.req_prompt.observe(len(req.prompt_ids))
        self.req_generation.observe(req.num_output)
        self.max_generation.observe(req.max_tokens)
        self.params_n.observe(1)
        self.params_max_tokens.observe(req.max_tokens)
        end = req.last_token or req.finished_at
        self.e2e.observe(req.finished_at - req.arrival)
        if req.scheduled is not None:
            self.queue_time.observe(req.scheduled - req.arrival)
            self.inference_time.observe(end - req.scheduled)
            if req.first_token is not None:
                self.prefill_time.observe(req.first_token - req.scheduled)
                self.decode_time.observe(end - req.first_token)


class HttpMetrics:
    """prometheus-fastapi-instrumentator's families, which vLLM's /metrics also carries."""

    EXCLUDED = frozenset({"/metrics", "/health", "/load", "/ping", "/version", "/server_info"})

    def __init__(self, registry):
        self.requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["method", "status", "handler"],
            registry=registry,
        )
        note = "Only value of header is respected. Otherwise ignored. No percentile calculated. "
        self.req_size = Summary(
            "http_request_size_bytes", "Content length of incoming requests by handler. " + note, ["handler"], registry=registry
        )
        self.resp_size = Summary(
            "http_response_size_bytes", "Content length of outgoing responses by handler. " + note, ["handler"], registry=registry
        )
        self.highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate percentile calculations. ",
            buckets=HTTP_HIGHR_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by handler is important. ",
            ["handler", "method"],
            buckets=(0.1, 0.5, 1),
            registry=registry,
        )

    def observe(self, handler, method, status, req_bytes, resp_bytes, seconds):
        if handler in self.EXCLUDED:
            return
        self.requests.labels(method, f"{status // 100}xx", handler).inc()
        self.req_size.labels(handler).observe(req_bytes)
        self.resp_size.labels(handler).observe(resp_bytes)
        self.highr.observe(seconds)
        self.duration.labels(handler, method).observe(seconds)
