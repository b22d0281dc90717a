"""`vllm serve`: the API server's start-up sequence (vllm-ground-truth.md §3), then the HTTP server.

Failures are raised as errors.VllmFailure (printed as the real traceback, exit code 1).
"""

import asyncio
import hashlib
import os
import signal
import socket
import sys

from vllm_twin import SIMULATED_WARNING, VERSION, device, enginecore, errors, logfmt, model_cache, modelspec
from vllm_twin.cli import CompilationConfig
from vllm_twin.engine import Engine, log_stats
from vllm_twin.metrics import Metrics
from vllm_twin.server import ROUTES, Api
from vllm_twin.textgen import TextGen
from vllm_twin.timing import PHASE_SECONDS, TimingModel, simulate
from vllm_twin.tokenizer import Tokenizer

SPEC_METHODS = ["ngram", "eagle", "eagle3", "medusa", "mlp_speculator", "draft_model", "deepseek_mtp"]
SAMPLING_KEYS = ("repetition_penalty", "temperature", "top_k", "top_p", "min_p", "max_new_tokens")


class State:
    """Everything the start-up resolves; EngineCore_0 inherits it through fork."""

    def __init__(self, args):
        self.args = args
        self.offline = model_cache.offline()
        self.local = model_cache.is_local_path(args.model)
        self.names = args.served_model_name or [args.model]
        self.draft_spec = self.draft_checkpoint = None
        self.num_spec_tokens = 0
        self.max_num_seqs = args.max_num_seqs or 256
        self.max_batched = args.max_num_batched_tokens or 8192
        level = (args.compilation_config or {}).get("level")
        self.compile_level = 3 if level is None else level


def bind(args):
    """vLLM binds its socket before building the engine but listens only once ready (connections are refused)."""
    host = args.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, args.port))
    except OSError as exc:
        raise errors.bind_failed(exc) from None
    return sock


def resolve_model(state):
    args = state.args
    snapshot = model_cache.resolve(args.model)
    if snapshot is not None:
        return snapshot
    if state.local:
        raise errors.local_path_missing(args.model)
    if not state.offline:
        logfmt.warning(
            "file_download.py:1649",
            "vLLM twin: there is no network here; %s is not in the Hugging Face cache %s and cannot be downloaded",
            args.model,
            model_cache.hub_cache_dir(),
        )
    raise errors.model_not_cached(state.offline)


def check_gpu(state, arch):
    """No NVIDIA runtime (no device dir) or NVML failing: the registry's inspection subprocess dies (§2b)."""
    dev = device.probe()
    if dev is not None and dev.nvml_ok:
        return dev
    cause = (
        "pynvml.NVMLError_Unknown: Unknown Error"
        if dev is not None
        else "RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and "
        "installed a driver from http://www.nvidia.com/Download/index.aspx"
    )
    inspect, failure = errors.nvml_inspect_failure(arch, cause)
    logfmt.log("ERROR", "registry.py:424", "Error in inspecting model architecture '%s'\n%s", arch, inspect)
    raise failure


def speculative(state, target):
    cfg = state.args.speculative_config
    if not cfg:
        return
    method = cfg.get("method")
    if method not in SPEC_METHODS:
        choices = ", ".join(f"'{m}'" for m in SPEC_METHODS[:-1]) + f" or '{SPEC_METHODS[-1]}'"
        raise errors.VllmFailure(
            errors.render(
                errors.ENGINE_CONFIG[:-3],
                (
                    "pydantic_core._pydantic_core.ValidationError: 1 validation error for SpeculativeConfig\nmethod\n"
                    f"  Input should be {choices} [type=literal_error, input_value={method!r}, "
                    f"input_type={type(method).__name__}]\n"
                    f"    For further information visit {errors.PYDANTIC_URL}literal_error"
                ),
            )
        )
    k = cfg.get("num_speculative_tokens")
    if not cfg.get("model"):
        raise errors.speculative_config_error("num_speculative_tokens was provided without speculative model.")
    if method not in ("eagle", "eagle3"):
        raise errors.speculative_config_error(f"vLLM twin: speculative method {method!r} is not emulated.")
    draft_dir = model_cache.resolve(cfg["model"])
    if draft_dir is None:
        raise errors.draft_not_found(cfg["model"])
    if not isinstance(k, int) or k <= 0:
        raise errors.speculative_config_error(f"Expected num_speculative_tokens to be greater than zero ({k}).")
    if method == "eagle3" and not any(t in target.model_type for t in ("llama", "qwen")):
        raise errors.speculative_config_error(
            "Eagle3 is only supported for ['llama', 'qwen'] models. Got "
            f"self.target_model_config.hf_text_config.model_type='{target.model_type}'"
        )
    draft_config = model_cache.read_json(draft_dir / "config.json")
    draft_config["architectures"] = ["Eagle3" + target.arch if method == "eagle3" else "Eagle" + target.arch]
    logfmt.info("__init__.py:711", "Resolved architecture: %s", draft_config["architectures"][0])
    logfmt.info("__init__.py:1750", "Using max model len %s", modelspec.derived_max_len(draft_config))
    draft_args = type(state.args)(**{**vars(state.args), "max_model_len": None, "quantization": None})
    state.draft_spec = modelspec.model_spec(draft_config, draft_args, None)
    state.draft_checkpoint = model_cache.Checkpoint(draft_dir)
    state.num_spec_tokens = k


def config_string(state):
    a, spec = state.args, state.spec
    sc = state.args.speculative_config
    spec_str = (
        f"SpeculativeConfig(method='{sc['method']}', model='{sc['model']}', num_spec_tokens={sc.get('num_speculative_tokens')})"
        if state.num_spec_tokens
        else "None"
    )
    return (
        f"model='{a.model}', speculative_config={spec_str}, tokenizer='{a.model}', skip_tokenizer_init=False, "
        f"tokenizer_mode=auto, revision=None, override_neuron_config={{}}, tokenizer_revision=None, "
        f"trust_remote_code={a.trust_remote_code}, dtype={spec.dtype}, max_seq_len={spec.max_model_len}, "
        f"download_dir=None, load_format=auto, tensor_parallel_size=1, pipeline_parallel_size=1, "
        f"disable_custom_all_reduce={a.disable_custom_all_reduce}, quantization={spec.quantization}, "
        f"enforce_eager={a.enforce_eager}, kv_cache_dtype={a.kv_cache_dtype}, device_config=cuda, "
        f"served_model_name={state.names[0]}, enable_prefix_caching=True, chunked_prefill_enabled=True, "
        f"compilation_config={a.compilation_config or CompilationConfig(level=3)!r}"
    )


def generation_defaults(state, snapshot):
    if state.args.generation_config == "vllm":
        return {}
    try:
        config = model_cache.read_json(snapshot / "generation_config.json")
    except OSError:
        return {}
    return {k: config[k] for k in SAMPLING_KEYS if k in config}


def check_harmony_encodings():
    """gpt-oss: openai_harmony loads o200k_base/cl100k_base from TIKTOKEN_ENCODINGS_BASE and checks their sha256."""
    from vllm_twin.tiktoken_files import expected_sha256

    base = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    for name, want in expected_sha256().items():
        try:
            with open(os.path.join(base or "", name), "rb") as f:
                ok = base and hashlib.sha256(f.read()).hexdigest() == want
        except OSError:
            ok = False
        if not ok:
            raise errors.harmony_vocab_error()


def prepare(args, nondefault):
    logfmt.info("api_server.py:1805", "vLLM API server version %s", VERSION)
    logfmt.info("utils.py:326", "non-default args: %s", nondefault)
    logfmt.warning("api_server.py:1805", SIMULATED_WARNING)
    state = State(args)
    state.sock = bind(args)
    snapshot = resolve_model(state)
    config = model_cache.read_json(snapshot / "config.json")
    simulate(PHASE_SECONDS["config"])
    arch = config["architectures"][0]
    state.device = check_gpu(state, arch)
    quant = modelspec.check_config(config, args)
    logfmt.info("__init__.py:711", "Resolved architecture: %s", arch)
    state.spec = modelspec.model_spec(config, args, quant)
    logfmt.info("__init__.py:1750", "Using max model len %s", state.spec.max_model_len)
    if quant and quant not in modelspec.OPTIMIZED:
        logfmt.warning(
            "__init__.py:1088",
            "%s quantization is not fully optimized yet. The speed can be slower than non-quantized models.",
            quant,
        )
    speculative(state, state.spec)
    logfmt.info("scheduler.py:222", "Chunked prefill is enabled with max_num_batched_tokens=%d.", state.max_batched)
    if args.enforce_eager:
        logfmt.info("__init__.py:3565", "Cudagraph is disabled under eager mode")
    state.checkpoint = model_cache.Checkpoint(snapshot)
    state.compile_key = {k: v for k, v in sorted(nondefault.items()) if k not in ("host", "port", "api_key")}
    state.config_str = config_string(state)
    state.snapshot, state.config = snapshot, config
    return state


def front_end(state, ready):
    """Lines 27-30, the gpt-oss vocab check, tokenizer and engine objects."""
    logfmt.info(
        "loggers.py:142",
        "Engine %03d: vllm cache_config_info with initialization after num_gpu_blocks is: %d",
        0,
        ready["num_gpu_blocks"],
    )
    logfmt.info("api_server.py:1611", "Supported_tasks: %s", ["generate"])
    state.defaults = generation_defaults(state, state.snapshot)
    if state.defaults:
        logfmt.warning(
            "__init__.py:1625",
            "Default sampling parameters have been overridden by the model's Hugging "
            "Face generation config recommended from the model creator. If this is not intended, please "
            "relaunch vLLM instance with `--generation-config vllm`.",
        )
    if state.spec.model_type == "gpt_oss":
        check_harmony_encodings()
    if state.defaults:
        for site in ("serving_responses.py:120", "serving_chat.py:134"):
            logfmt.info(site, "Using default chat sampling params from %s: %s", "model", state.defaults)
        logfmt.info("serving_completion.py:77", "Using default completion sampling params from %s: %s", "model", state.defaults)
    simulate(PHASE_SECONDS["front_end"])
    state.tokenizer = Tokenizer(state.snapshot, state.spec.vocab)
    state.textgen = TextGen(state.tokenizer, state.spec)
    cache_info = {
        "block_size": "16",
        "cache_dtype": state.args.kv_cache_dtype,
        "calculate_kv_scales": "False",
        "cpu_kvcache_space_bytes": "None",
        "cpu_offload_gb": "0",
        "enable_prefix_caching": "True",
        "engine": "0",
        "gpu_memory_utilization": str(state.args.gpu_memory_utilization),
        "is_attention_free": "False",
        "kv_sharing_fast_prefill": "False",
        "mamba_cache_dtype": "auto",
        "mamba_page_size_padded": "None",
        "mamba_ssm_cache_dtype": "auto",
        "num_cpu_blocks": "0",
        "num_gpu_blocks": str(ready["num_gpu_blocks"]),
        "num_gpu_blocks_override": "None",
        "prefix_caching_hash_algo": "builtin",
        "sliding_window": "None",
        "swap_space": "4",
        "swap_space_bytes": str(4 * 1024**3),
    }
    state.metrics = Metrics(state.names[0], state.spec.max_model_len, state.num_spec_tokens, cache_info)


async def serve_http(state):
    from aiohttp import web

    args = state.args
    host = args.host or "0.0.0.0"
    url_host = f"[{host}]" if ":" in host else host
    logfmt.info("api_server.py:1880", "Starting vLLM API server %d on %s", 0, f"http://{url_host}:{args.port}")
    logfmt.info("launcher.py:36", "Available routes are:")
    for route, methods in ROUTES:
        logfmt.info("launcher.py:44", "Route: %s, Methods: %s", route, methods)
    timing = TimingModel(state.spec, state.num_spec_tokens)
    state.engine = Engine(state.tokenizer, timing, state.metrics, state.max_num_seqs, state.max_batched, state.kv_tokens)
    state.engine.start()
    stats = None if args.disable_log_stats else asyncio.ensure_future(log_stats(state.engine))
    api = Api(state)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, state.sock).start()
    logfmt.uvicorn(f"Started server process [{os.getpid()}]")
    logfmt.uvicorn("Waiting for application startup.")
    logfmt.uvicorn("Application startup complete.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logfmt.uvicorn("Shutting down")
    api.ready = False
    state.engine.abort_all()
    if stats:
        stats.cancel()
    logfmt.uvicorn("Waiting for application shutdown.")
    await runner.cleanup()
    logfmt.uvicorn("Application shutdown complete.")
    logfmt.uvicorn(f"Finished server process [{os.getpid()}]")


def run(args, nondefault):
    simulate(PHASE_SECONDS["imports"])
    logfmt.info("__init__.py:241", "Automatically detected platform cuda.")
    logfmt.decorate("APIServer")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        state = prepare(args, nondefault)
        ready = enginecore.start(state)
        state.kv_tokens = ready["kv_tokens"]
        front_end(state, ready)
        asyncio.run(serve_http(state))
    except errors.VllmFailure as failure:
        sys.stderr.write(failure.text + "\n")
        return failure.code
    return 0
