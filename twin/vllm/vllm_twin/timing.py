"""The simulated timing model of one Jetson Thor (every number here is a model, not a measurement).

A decode step at batch b lasts t1 * (1 + slope * (b - 1)), t1 = 1 / decode tok/s of the model (modelspec);
prefill adds prompt tokens / prefill tok/s to the step it runs in. With EAGLE3 each step also runs the draft
head (draft_cost * k of a target step) and every request gains 1 + accepted tokens; draft token j is accepted
(given all before it were) with probability a * (1 - exp(-i / tau)) at output position i. The defaults
(draft_cost 0.09, a 0.612, tau 190) are fitted so that FP4 + EAGLE3 with k=5 decodes at the workshop's
25.6 tok/s on a 1024-token answer and 14.3 tok/s on a 64-token one (platform-facts §0).
"""

import math
import os
import time

# Simulated start-up phases (seconds at VLLM_TWIN_TIME_SCALE=1), chosen so that gpt-oss-120b lands near the
# workshop's breakdown: weights ~25 s (+ model init ~9 s = "model loading ~35 s"), torch.compile ~45 s cold and
# ~5 s warm, CUDA graphs ~21 s, about 60 s in all with compilation level 0.
PHASE_SECONDS = {
    "imports": 4.0,  # before `Automatically detected platform` (Python and torch imports)
    "config": 3.0,  # model config and architecture inspection
    "engine_spawn": 3.0,  # EngineCore_0 process start
    "model_init_per_layer": 0.25,  # building the model before weights stream in
    "dynamo_per_layer": 0.12,
    "cold_compile_per_layer": 1.1,
    "warm_compile_per_layer": 0.03,
    "profile": 5.0,  # memory profiling run
    "graph_per_size_layer": 0.0087,  # one CUDA graph size, one layer
    "warmup": 3.0,
    "front_end": 2.0,  # tokenizer, chat template, app state
}


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


class TimingModel:
    def __init__(self, spec, num_spec_tokens=0):
        self.t1 = 1.0 / env_float("VLLM_TWIN_DECODE_TOKS", spec.decode_tokens_per_s)
        self.prefill_rate = env_float("VLLM_TWIN_PREFILL_TOKS", spec.prefill_tokens_per_s)
        self.slope = env_float("VLLM_TWIN_BATCH_SLOWDOWN", 0.02)
        self.k = num_spec_tokens
        self.draft_cost = env_float("VLLM_TWIN_SPEC_DRAFT_COST", 0.09)
        self.accept = env_float("VLLM_TWIN_SPEC_ACCEPT", 0.612)
        self.warmup = env_float("VLLM_TWIN_SPEC_WARMUP_TOKENS", 190.0)
        self.scale = time_scale()

    def step_seconds(self, batch, prefill_tokens):
        """Duration of one engine step (already multiplied by VLLM_TWIN_TIME_SCALE)."""
        decode = self.t1 * (1 + self.slope * (max(batch, 1) - 1)) * (1 + self.draft_cost * self.k)
        return (decode + prefill_tokens / self.prefill_rate) * self.scale

    def accept_probability(self, position):
        return self.accept * (1 - math.exp(-position / self.warmup)) if self.warmup > 0 else self.accept


def time_scale():
    """VLLM_TWIN_TIME_SCALE multiplies every simulated duration (start-up phases and engine steps)."""
    return env_float("VLLM_TWIN_TIME_SCALE", 1.0)


def sleep_until(t):
    delay = t - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def simulate(seconds):
    """Spend a simulated phase's duration (scaled); returns the elapsed wall time."""
    start = time.perf_counter()
    sleep_until(start + seconds * time_scale())
    return time.perf_counter() - start
