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
