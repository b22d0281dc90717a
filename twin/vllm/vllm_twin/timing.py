"""The simulated timing model of one Jetson Thor (every number here is a model, not a measurement).

A decode step at batch b lasts t1 * (1 + slope * (b - 1)), t1 = 1 / decode tok/s of the model (modelspec);
prefill adds prompt tokens / prefill tok/s to the step it runs in.

EAGLE3 (k draft tokens per step): each step also runs the draft head k times, at draft_cost = (bytes of the head)
/ (bytes the target streams per token) of a target step each; decode is memory-bound in this model, so that ratio
is the cost (FP4 Llama-3.1-8B + yuhuili's head: 0.791 GiB / 5.074 GiB = 0.156). Every draft token is accepted,
given all before it were, with one constant probability `accept` (no dependence on the output position), so a
step yields 1 + a + a^2 + ... + a^k tokens on average. `accept` = 0.600 is derived from the workshop's only
long-answer figure (platform-facts §0): FP4 19.1 tok/s and FP4+EAGLE3 (k=5) 25.6 tok/s, a 1.340x speed-up =
(1 + a + ... + a^5) / (1 + 5 * 0.156), i.e. a mean acceptance length of 2.39 tokens per step. The workshop's
14.3 tok/s on short answers is not reproduced (see docs/vllm-twin.md).
"""

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


SPEC_ACCEPT = 0.600  # per draft token, derived from the published FP4 -> FP4+EAGLE3 speed-up (module docstring)


class TimingModel:
    def __init__(self, spec, num_spec_tokens=0, draft_bytes=0):
        self.t1 = 1.0 / env_float("VLLM_TWIN_DECODE_TOKS", spec.decode_tokens_per_s)
        self.prefill_rate = env_float("VLLM_TWIN_PREFILL_TOKS", spec.prefill_tokens_per_s)
        self.slope = env_float("VLLM_TWIN_BATCH_SLOWDOWN", 0.02)
        self.k = num_spec_tokens
        self.draft_cost = env_float("VLLM_TWIN_SPEC_DRAFT_COST", draft_bytes / spec.active_bytes if draft_bytes else 0.0)
        self.accept = env_float("VLLM_TWIN_SPEC_ACCEPT", SPEC_ACCEPT)
        self.scale = time_scale()

    def step_seconds(self, batch, prefill_tokens):
        """Duration of one engine step (already multiplied by VLLM_TWIN_TIME_SCALE)."""
        decode = self.t1 * (1 + self.slope * (max(batch, 1) - 1)) * (1 + self.draft_cost * self.k)
        return (decode + prefill_tokens / self.prefill_rate) * self.scale

    def mean_acceptance_length(self):
        """Expected tokens per decode step (1 + accepted drafts)."""
        return sum(self.accept**j for j in range(self.k + 1))


def time_scale():
    """VLLM_TWIN_TIME_SCALE multiplies every simulated duration (start-up phases and engine steps)."""
    return env_float("VLLM_TWIN_TIME_SCALE", 1.0)


def twin_label():
    """What every place that shows a number says about it: simulated, and at which time scale."""
    scale = time_scale()
    return {
        "simulated": True,
        "time_scale": scale,
        "time_scale_note": (
            "every simulated duration is as modelled for Jetson Thor"
            if scale == 1.0
            else f"every simulated duration is {scale:g} x the Jetson Thor model (VLLM_TWIN_TIME_SCALE)"
        ),
    }


def sleep_until(t):
    delay = t - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def simulate(seconds):
    """Spend a simulated phase's duration (scaled); returns the elapsed wall time."""
    start = time.perf_counter()
    sleep_until(start + seconds * time_scale())
    return time.perf_counter() - start
