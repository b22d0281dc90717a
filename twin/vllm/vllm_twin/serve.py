"""`vllm serve`: the API server's start-up sequence (vllm-ground-truth.md §3), then the HTTP server.

Failures are raised as errors.VllmFailure (printed as the real traceback, exit code 1).
"""

import asyncio
import hashlib
import os
import signal
import socket
import sys
import threading

from vllm_twin import SIMULATED_WARNING, VERSION, device, enginecore, errors, logfmt, model_cache, modelspec, timing
from vllm_twin.cli import CompilationConfig
from vllm_twin.engine_client import EngineClient, log_stats
from vllm_twin.metrics import Metrics
from vllm_twin.server import ROUTES, Api
from vllm_twin.textgen import TextGen, generation_vocab
from vllm_twin.timing import PHASE_SECONDS, simulate
from vllm_twin.tokenizer import Tokenizer

SPEC_METHODS = ["ngram", "eagle", "eagle3", "medusa", "mlp_speculator", "draft_model", "deepseek_mtp"]
SAMPLING_KEYS = ("repetition_penalty", "temperature", "top_k", "top_p", "min_p", "max_new_tokens")
# `vllm serve` options whose effect the twin reproduces; any other option given is accepted (and shown in
# `non-default args`, as vLLM does) and named in one twin WARNING line, because it changes nothing here.
EMULATED = {
    "model_tag",
    "model",
    "host",
    "port",
    "uvicorn_log_level",
    "disable_uvicorn_access_log",
    "api_key",
    "enable_force_include_usage",
    "enable_prompt_tokens_details",
    "served_model_name",
    "trust_remote_code",
    "dtype",
    "max_model_len",
    "quantization",
    "enforce_eager",
    "generation_config",
    "gpu_memory_utilization",
    "kv_cache_dtype",
    "enable_prefix_caching",
    "max_num_batched_tokens",
    "max_num_seqs",
    "disable_log_stats",
    "speculative_config",
    "compilation_config",
}


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
        # V1 turns prefix caching on for generative models unless --no-enable-prefix-caching is given.
        self.prefix_caching = args.enable_prefix_caching is not False
        self.api_keys = [k for k in (args.api_key or [os.environ.get("VLLM_API_KEY")]) if k]
        self.draft_bytes = 0
        self.stopping = False


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
    """NVML failing (the runtime is there, NVML is not usable): on a Jetson vLLM still assumes CUDA, and the
    registry's inspection subprocess dies (§2b). No runtime at all fails earlier, in cli (§2c)."""
    dev = device.probe()
    if dev is None:
        raise errors.VllmFailure(errors.render(errors.NO_DEVICE_FRAMES, errors.NO_DEVICE_ERROR))
    if dev.nvml_ok:
        return dev
    inspect, failure = errors.nvml_inspect_failure(arch, "pynvml.NVMLError_Unknown: Unknown Error")
    logfmt.log("ERROR", "registry.py:424", "Error in inspecting model architecture '%s'\n%s", arch, inspect)
    raise failure


def speculative(state, target):
    """SpeculativeConfig as 0.10.1.1 builds it: field validation, __post_init__ (the draft ModelConfig, whose
    lines are printed, then the token tree built from num_speculative_tokens), then _verify_args."""
    cfg = state.args.speculative_config
    if not cfg:
        return
    method = cfg.get("method")
    if method is not None and method not in SPEC_METHODS:
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
    k, model, batch_limit = cfg.get("num_speculative_tokens"), cfg.get("model"), cfg.get("disable_by_batch_size")
    if model is None:
        raise errors.speculative_config_error(
            "num_speculative_tokens was provided without speculative model."
            if k is not None
            else "num_speculative_tokens must be provided with speculative model unless the draft model config "
            "contains an n_predict parameter."
        )
    if method is None and ("eagle-" in str(model).lower() or "eagle3-" in str(model).lower()):
        method = "eagle"  # vLLM's detection says "eagle" for both name patterns
    if method not in ("eagle", "eagle3"):
        raise errors.speculative_config_error(f"vLLM twin: speculative method {method!r} is not emulated.")
    draft_dir = model_cache.resolve(model)
    if draft_dir is None:
        raise errors.draft_not_found(model)
    draft_config = model_cache.read_json(draft_dir / "config.json")
    draft_config["architectures"] = ["Eagle3" + target.arch if method == "eagle3" else "Eagle" + target.arch]
    logfmt.info("__init__.py:711", "Resolved architecture: %s", draft_config["architectures"][0])
    logfmt.info("__init__.py:1750", "Using max model len %s", modelspec.derived_max_len(draft_config))
    if not isinstance(k, int):  # SkipValidation[int]: range(None) in __post_init__
        raise errors.speculative_type_error(f"'{type(k).__name__}' object cannot be interpreted as an integer")
    if k <= 0:
        raise errors.speculative_config_error(f"Expected num_speculative_tokens to be greater than zero ({k}).")
    if batch_limit is not None and batch_limit < 2:
        raise errors.speculative_config_error(
            "Expect the batch size threshold of disabling speculative decoding is > 1, but got "
            f"self.disable_by_batch_size={batch_limit!r}"
        )
    if method == "eagle3" and not any(t in target.model_type for t in ("llama", "qwen")):
        raise errors.speculative_config_error(
            "Eagle3 is only supported for ['llama', 'qwen'] models. Got "
            f"self.target_model_config.hf_text_config.model_type='{target.model_type}'"
        )
    draft_args = type(state.args)(**{**vars(state.args), "max_model_len": None, "quantization": None})
    state.draft_spec = modelspec.model_spec(draft_config, draft_args, None)
    state.draft_bytes = modelspec.eagle3_head_bytes(draft_config)
    state.draft_checkpoint = model_cache.Checkpoint(draft_dir)
    state.num_spec_tokens = k
    state.spec_method = method


def config_string(state):
    a, spec = state.args, state.spec
    sc = state.args.speculative_config
    spec_str = (
        f"SpeculativeConfig(method='{state.spec_method}', model='{sc['model']}', num_spec_tokens={state.num_spec_tokens})"
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
        f"served_model_name={state.names[0]}, enable_prefix_caching={state.prefix_caching}, chunked_prefill_enabled=True, "
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


def validate_api_server_args(args):
    """setup_server -> validate_api_server_args (api_server.py:1786): an unknown tool parser with auto tool choice.
    (--reasoning-parser has argparse choices in 0.10.1.1, so its KeyError cannot be reached from the CLI.)"""
    from vllm_twin.cli import tool_parsers

    if args.enable_auto_tool_choice and args.tool_call_parser not in tool_parsers():
        frames = [
            *errors.SERVE[:-1],
            (errors.sp("vllm/entrypoints/openai/api_server.py"), 1849, "run_server", "listen_address, sock = setup_server(args)"),
            (errors.sp("vllm/entrypoints/openai/api_server.py"), 1811, "setup_server", "validate_api_server_args(args)"),
            (
                errors.sp("vllm/entrypoints/openai/api_server.py"),
                1790,
                "validate_api_server_args",
                'raise KeyError(f"invalid tool call parser: {args.tool_call_parser} "',
            ),
        ]
        message = f"invalid tool call parser: {args.tool_call_parser} (chose from {{ {','.join(tool_parsers())} }})"
        raise errors.VllmFailure(errors.render(frames, f"KeyError: {message!r}"))


def prepare(args, nondefault):
    logfmt.info("api_server.py:1805", "vLLM API server version %s", VERSION)
    logfmt.info("utils.py:326", "non-default args: %s", nondefault)
    validate_api_server_args(args)
    logfmt.warning("api_server.py:1805", SIMULATED_WARNING)
    label = timing.twin_label()
    if label["time_scale"] != 1.0:
        logfmt.warning(
            "api_server.py:1805",
            "vLLM twin: VLLM_TWIN_TIME_SCALE=%g: %s; start-up, TTFT and inter-token times are scaled, "
            "token counts and cache hits are not (docs/vllm-twin.md)",
            label["time_scale"],
            label["time_scale_note"],
        )
    ignored = [k for k in nondefault if k not in EMULATED]
    if ignored:
        logfmt.warning(
            "api_server.py:1805",
            "vLLM twin: accepted, but without effect in the simulation: %s",
            ", ".join("--" + k.replace("_", "-") for k in ignored),
        )
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
        "enable_prefix_caching": str(state.prefix_caching),
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
    state.engine = EngineClient(state.engine_sock, state.metrics, generation_vocab(state.tokenizer), state.num_spec_tokens)
    await state.engine.start()
    stats = None if args.disable_log_stats else asyncio.ensure_future(log_stats(state.engine))
    api = Api(state)
    watch_engine_core(state, api, asyncio.get_running_loop())
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
    state.stopping = True
    logfmt.uvicorn("Shutting down")
    api.ready = False
    state.engine.abort_all()
    if stats:
        stats.cancel()
    logfmt.uvicorn("Waiting for application shutdown.")
    await runner.cleanup()
    logfmt.uvicorn("Application shutdown complete.")
    logfmt.uvicorn(f"Finished server process [{os.getpid()}]")


def watch_engine_core(state, api, loop):
    """MPClient's engine monitor (core_client.py:549-572): a thread waits for EngineCore_0 to exit. If it dies while
    the server runs (kill -9, OOM killer), 0.10.1.1 logs it and calls its client finalizer from that thread, which
    needs an event loop the thread does not have: the thread dies with a RuntimeError (vllm-project/vllm#24230,
    fixed in 0.10.2 by #24540), the output handler is never woken, so the server stays up with the engine marked
    dead: /health and /ping answer 500, completions 500, requests in flight stall, and the process does not exit
    (the launcher stops only when the output handler has finished). docs/vllm-twin.md, "Engine death"."""

    def wait():
        try:
            os.waitpid(state.engine_pid, 0)
        except ChildProcessError:
            pass
        if not state.stopping:
            loop.call_soon_threadsafe(engine_died, state, api)

    threading.Thread(target=wait, name="MPClientEngineMonitor", daemon=True).start()


def engine_died(state, api):
    if state.stopping or api.dead:
        return
    logfmt.log("ERROR", "core_client.py:562", "Engine core proc %s died unexpectedly, shutting down client.", "EngineCore_0")
    sys.stderr.write(errors.MONITOR_THREAD_CRASH + "\n")
    sys.stderr.flush()
    api.dead = True
    state.engine.die()


def run(args, nondefault):
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
