"""What the twin derives from a model's config.json and the serve flags: sizes, footprint, simulated speed.

Bytes per parameter by quantization are exact for bf16/fp8/mxfp4; NVFP4's 0.63 (4-bit values plus scales and the
layers ModelOpt leaves in higher precision) is fitted to the workshop's 6.07 GiB. Decode speed is an effective
memory bandwidth over the bytes read per token, calibrated so that Llama-3.1-8B gives the workshop's published
Thor numbers (FP16 10.7, FP8 14.2, FP4 19.1 tok/s); gpt-oss-120b's 150 GB/s (about 30 tok/s) is a chosen,
plausible value. All of it is a simulation.
"""

from dataclasses import dataclass

from vllm_twin import errors

GiB = 1 << 30
BYTES_PER_PARAM = {None: 2.0, "fp8": 1.0, "modelopt": 1.0, "modelopt_fp4": 0.63, "mxfp4": 0.53125}
# Effective bytes/s a decode step streams: published tok/s x the 8B's bytes read per token (embedding excluded).
EFFECTIVE_BANDWIDTH = {None: 160.61e9, "fp8": 114.03e9, "modelopt": 114.03e9, "modelopt_fp4": 104.06e9, "mxfp4": 150.0e9}
PREFILL_TOKENS_PER_S = {None: 2500.0, "fp8": 3500.0, "modelopt": 3500.0, "modelopt_fp4": 4500.0, "mxfp4": 2000.0}
OPTIMIZED = {"fp8", "modelopt", "modelopt_fp4", "marlin", "gptq_marlin", "awq_marlin", "compressed-tensors"}


def config_quantization(config):
    """The quantization method vLLM derives from config.json (ModelOpt FP8 -> modelopt, NVFP4 -> modelopt_fp4)."""
    quant = config.get("quantization_config")
    if not quant:
        return None
    method = quant.get("quant_method")
    if method == "modelopt" and "FP4" in str(quant.get("quant_algo", "")).upper():
        return "modelopt_fp4"
    return method


@dataclass
class ModelSpec:
    arch: str
    model_type: str
    quantization: str
    dtype: str
    layers: int
    hidden: int
    vocab: int
    max_model_len: int
    weight_bytes: int
    active_bytes: int
    kv_bytes_per_token: int
    activation_peak_bytes: int

    @property
    def family(self):
        """Outputs depend on the weights family: same for bf16/fp8, slightly perturbed for 4-bit (see textgen)."""
        return f"{self.model_type}-{self.layers}x{self.hidden}-{self.vocab}"

    @property
    def perturbed(self):
        return self.quantization == "modelopt_fp4"

    @property
    def decode_tokens_per_s(self):
        return EFFECTIVE_BANDWIDTH.get(self.quantization, EFFECTIVE_BANDWIDTH[None]) / self.active_bytes

    @property
    def prefill_tokens_per_s(self):
        return PREFILL_TOKENS_PER_S.get(self.quantization, PREFILL_TOKENS_PER_S[None])


def derived_max_len(config):
    rope = config.get("rope_scaling") or {}
    if rope.get("rope_type") == "yarn" and "original_max_position_embeddings" in rope:
        return int(rope["original_max_position_embeddings"] * rope["factor"])
    return int(config.get("max_position_embeddings", 2048))


def _param_groups(config):
    """(quantizable linear params, expert params, other params, active fraction of experts)."""
    h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    hd = config.get("head_dim", h // heads)
    inter = config["intermediate_size"]
    attn = h * heads * hd * 2 + 2 * h * kv * hd
    embed = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    experts = config.get("num_local_experts")
    if experts:
        expert_params = layers * experts * 3 * h * inter
        other = layers * (attn + experts * h + 2 * h) + embed
        return 0, expert_params, other, config.get("num_experts_per_tok", 1) / experts
    return layers * (attn + 3 * h * inter), 0, layers * 2 * h + embed, 0.0


def model_spec(config, args, quantization):
    layers, h = config["num_hidden_layers"], config["hidden_size"]
    linear, experts, other, active = _param_groups(config)
    dtype_bytes = 4 if args.dtype in ("float", "float32") else 2
    bpp = BYTES_PER_PARAM.get(quantization, 2.0) if quantization else dtype_bytes
    weight = linear * bpp + experts * bpp + other * dtype_bytes
    embed_rows = config["vocab_size"] * h * dtype_bytes  # the embedding is looked up, not streamed
    active_bytes = linear * bpp + experts * bpp * active + other * dtype_bytes - embed_rows
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads", heads)
    hd = config.get("head_dim", h // heads)
    kv_dtype_bytes = 1 if args.kv_cache_dtype.startswith("fp8") else 2
    batched = args.max_num_batched_tokens or 8192
    peak = batched * (2 * config["intermediate_size"] + 4 * h) * 2 + (args.max_num_seqs or 256) * config["vocab_size"] * 4
    return ModelSpec(
        arch=config["architectures"][0],
        model_type=config.get("model_type", ""),
        quantization=quantization,
        dtype=config.get("torch_dtype", "bfloat16") if args.dtype == "auto" else args.dtype,
        layers=layers,
        hidden=h,
        vocab=config["vocab_size"],
        max_model_len=args.max_model_len or derived_max_len(config),
        weight_bytes=int(weight),
        active_bytes=int(active_bytes),
        kv_bytes_per_token=2 * layers * kv * hd * kv_dtype_bytes,
        activation_peak_bytes=int(peak),
    )


def eagle3_head_bytes(config):
    """Weights vLLM loads for an EAGLE3 head (bf16/fp16): the fc that fuses three target hidden states, one decoder
    layer whose q/k/v read twice the hidden size, and the lm_head over the draft vocabulary. The embedding is shared
    with the target ("Assuming the EAGLE head shares the same vocab embedding"), so it is not counted. For
    yuhuili/EAGLE3-LLaMA3.1-Instruct-8B that is 0.791 GiB: with FP4's 6.05 GiB, 6.84 GiB (workshop: 6.07 and 6.86)."""
    h, heads = config["hidden_size"], config["num_attention_heads"]
    kv, hd = config.get("num_key_value_heads", heads), config.get("head_dim", h // heads)
    inter, vocab = config["intermediate_size"], config.get("draft_vocab_size") or config["vocab_size"]
    layer = 2 * h * heads * hd + 2 * (2 * h) * kv * hd + heads * hd * h + 3 * h * inter + 3 * h
    return int((3 * h * h + layer + h * vocab + h) * 2)


def check_config(config, args):
    """ModelConfig checks that fail before the engine starts; returns the effective quantization method."""
    quant = config_quantization(config)
    if args.quantization and quant and args.quantization != quant:
        raise errors.model_config_error(
            f"Quantization method specified in the model config ({quant}) does not match the quantization "
            f"method specified in the `quantization` argument ({args.quantization})."
        )
    if args.quantization and not quant and args.quantization != "fp8":
        raise errors.model_config_error(
            f"vLLM twin: --quantization {args.quantization} on an unquantized checkpoint is not emulated (only online fp8 is)."
        )
    derived = derived_max_len(config)
    if args.max_model_len and args.max_model_len > derived:
        raise errors.model_config_error(
            f"User-specified max_model_len ({args.max_model_len}) is greater than the derived max_model_len "
            f"(max_position_embeddings={derived} or model_max_length=None in model's config.json). This may lead "
            "to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"
        )
    return quant or args.quantization
