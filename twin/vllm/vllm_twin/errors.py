"""Failures as the real vLLM 0.10.1.1 prints them: tracebacks with the real frames (vllm-ground-truth.md §1, §2).

The frames are those of the real code path, so what a user (or a role parsing logs) sees has the real shape;
the line numbers of frames the ground truth does not give are plausible, not verified.
"""

import os
import random

from vllm_twin import device, logfmt

SP = "/usr/local/lib/python3.12/dist-packages"
PY = "/usr/lib/python3.12"
CAUSE = "\n\nThe above exception was the direct cause of the following exception:\n\n"
PYDANTIC_URL = "https://errors.pydantic.dev/2.11/v/"


class VllmFailure(Exception):
    """What the real process prints to stderr when it dies (a traceback), and its exit code."""

    def __init__(self, text, code=1):
        super().__init__(text.splitlines()[-1])
        self.text, self.code = text, code


def render(frames, exc):
    """A Python traceback; a frame may carry a 5th element, Python 3.12's caret line under the code."""
    lines = ["Traceback (most recent call last):"]
    for path, line, func, code, *caret in frames:
        lines.append(f'  File "{path}", line {line}, in {func}')
        if code:
            lines.append(f"    {code}")
        if caret:
            lines.append(caret[0])
    lines.append(exc)
    return "\n".join(lines)


def sp(rel):
    return f"{SP}/{rel}"


ENTRY = [
    ("/usr/local/bin/vllm", 8, "<module>", "sys.exit(main())"),
    (sp("vllm/entrypoints/cli/main.py"), 54, "main", "args.dispatch_function(args)"),
]
SERVE = [
    *ENTRY,
    (sp("vllm/entrypoints/cli/serve.py"), 50, "cmd", "uvloop.run(run_server(args))"),
    (sp("uvloop/__init__.py"), 109, "run", "return __asyncio.run("),
    (f"{PY}/asyncio/runners.py", 195, "run", "return runner.run(main)"),
    (f"{PY}/asyncio/runners.py", 118, "run", "return self._loop.run_until_complete(task)"),
    ("uvloop/loop.pyx", 1518, "uvloop.loop.Loop.run_until_complete", None),
    (sp("uvloop/__init__.py"), 61, "wrapper", "return await main"),
    (
        sp("vllm/entrypoints/openai/api_server.py"),
        1850,
        "run_server",
        "await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)",
    ),
]
ENGINE_CLIENT = [
    *SERVE,
    (sp("vllm/entrypoints/openai/api_server.py"), 1870, "run_server_worker", "async with build_async_engine_client("),
    (f"{PY}/contextlib.py", 210, "__aenter__", "return await anext(self.gen)"),
    (
        sp("vllm/entrypoints/openai/api_server.py"),
        178,
        "build_async_engine_client",
        "async with build_async_engine_client_from_engine_args(",
    ),
    (f"{PY}/contextlib.py", 210, "__aenter__", "return await anext(self.gen)"),
]
ENGINE_CONFIG = [
    *ENGINE_CLIENT,
    (
        sp("vllm/entrypoints/openai/api_server.py"),
        204,
        "build_async_engine_client_from_engine_args",
        "vllm_config = engine_args.create_engine_config(usage_context=usage_context)",
    ),
    (sp("vllm/engine/arg_utils.py"), 1057, "create_engine_config", "model_config = self.create_model_config()"),
    (sp("vllm/engine/arg_utils.py"), 904, "create_model_config", "return ModelConfig("),
    (
        sp("pydantic/_internal/_dataclasses.py"),
        123,
        "__init__",
        "s.__pydantic_validator__.validate_python(ArgsKwargs(args, kwargs), self_instance=s)",
    ),
]


def bind_failed(exc):
    """setup_server() binds the API socket first thing; a port in use fails there."""
    frames = [
        *SERVE[:-1],
        (sp("vllm/entrypoints/openai/api_server.py"), 1846, "run_server", "listen_address, sock = setup_server(args)"),
        (sp("vllm/entrypoints/openai/api_server.py"), 1826, "setup_server", "sock = create_server_socket(sock_addr)"),
        (sp("vllm/entrypoints/openai/api_server.py"), 1779, "create_server_socket", "sock.bind(addr)"),
    ]
    return VllmFailure(render(frames, f"OSError: [Errno {exc.errno}] {exc.strerror}"))


def validation_error(cls, message, input_repr):
    return (
        f"pydantic_core._pydantic_core.ValidationError: 1 validation error for {cls}\n"
        f"  Value error, {message} [type=value_error, input_value={input_repr}, input_type=ArgsKwargs]\n"
        f"    For further information visit {PYDANTIC_URL}value_error"
    )


def model_config_error(message):
    """A ValueError raised in ModelConfig.__post_init__, as pydantic wraps it (§2b)."""
    return VllmFailure(
        render(ENGINE_CONFIG, validation_error("ModelConfig", message, "ArgsKwargs((), {'model': ...gits_processors': None})"))
    )


# From the API server down to SpeculativeConfig's pydantic validation.
SPECULATIVE_CONFIG = [
    *ENGINE_CLIENT,
    (
        sp("vllm/entrypoints/openai/api_server.py"),
        204,
        "build_async_engine_client_from_engine_args",
        "vllm_config = engine_args.create_engine_config(usage_context=usage_context)",
    ),
    (sp("vllm/engine/arg_utils.py"), 1268, "create_engine_config", "speculative_config = self.create_speculative_config("),
    (
        sp("vllm/engine/arg_utils.py"),
        1043,
        "create_speculative_config",
        "return SpeculativeConfig(**self.speculative_config)",
    ),
    (
        sp("pydantic/_internal/_dataclasses.py"),
        123,
        "__init__",
        "s.__pydantic_validator__.validate_python(ArgsKwargs(args, kwargs), self_instance=s)",
    ),
]


def speculative_config_error(message):
    frames = [
        *SPECULATIVE_CONFIG,
    ]
    address = f"0x7f{random.getrandbits(40):010x}"
    return VllmFailure(
        render(frames, validation_error("SpeculativeConfig", message, f"ArgsKwargs((), {{'model': ...ide at {address}>}})"))
    )


def speculative_type_error(message):
    """A TypeError in SpeculativeConfig.__post_init__ (num_speculative_tokens is SkipValidation[int], so a missing
    or non-integer value reaches `range(...)`); pydantic passes a TypeError through unwrapped."""
    frames = [
        *SPECULATIVE_CONFIG,
        (
            sp("vllm/config/__init__.py"),
            2207,
            "__post_init__",
            "for i in range(self.num_speculative_tokens)",
            "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        ),
    ]
    return VllmFailure(render(frames, f"TypeError: {message}"))


def draft_not_found(model):
    return speculative_config_error(
        f"Invalid repository ID or local directory specified: '{model}'.\n"
        "Please verify the following requirements:\n"
        "1. Provide a valid Hugging Face repository ID.\n"
        "2. Specify a local directory that contains a recognized configuration file.\n"
        "   - For Hugging Face models: ensure the presence of a 'config.json'.\n"
        "   - For Mistral models: ensure the presence of a 'params.json'.\n"
        "3. For GGUF: pass the local path of the GGUF checkpoint.\n"
        "   Loading GGUF from a remote repo directly is not yet supported.\n"
    )


HUB_DOWNLOAD = [
    (sp("transformers/utils/hub.py"), 479, "cached_files", "hf_hub_download("),
    (sp("huggingface_hub/utils/_validators.py"), 114, "_inner_fn", "return fn(*args, **kwargs)"),
    (sp("huggingface_hub/file_download.py"), 1010, "hf_hub_download", "return _hf_hub_download_to_cache_dir("),
    (
        sp("huggingface_hub/file_download.py"),
        1117,
        "_hf_hub_download_to_cache_dir",
        "_raise_on_head_call_error(head_call_error, force_download, local_files_only)",
    ),
    (sp("huggingface_hub/file_download.py"), 1649, "_raise_on_head_call_error", "raise LocalEntryNotFoundError("),
]
CONFIG_PROBE = [
    *ENGINE_CONFIG,
    (
        sp("vllm/config/__init__.py"),
        529,
        "__post_init__",
        "self.model, self.tokenizer = maybe_override_with_speculators_target_model(",
    ),
    (
        sp("vllm/transformers_utils/config.py"),
        338,
        "maybe_override_with_speculators_target_model",
        "config_dict, _ = PretrainedConfig.get_config_dict(",
    ),
    (
        sp("transformers/configuration_utils.py"),
        649,
        "get_config_dict",
        "config_dict, kwargs = cls._get_config_dict(pretrained_model_name_or_path, **kwargs)",
    ),
    (sp("transformers/configuration_utils.py"), 708, "_get_config_dict", "resolved_config_file = cached_file("),
]
OFFLINE_MISS = (
    "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache "
    "and outgoing traffic has been disabled. To enable hf.co look-ups and downloads online, set "
    "'local_files_only' to False."
)
ONLINE_MISS = (
    "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file "
    "on the Hub and we cannot find the requested files in the local cache. Please check your connection "
    "and try again or make sure your Internet connection is on."
)


def model_not_cached(offline):
    """§2a: a hub id that is not in the cache (the twin never downloads)."""
    first = render(HUB_DOWNLOAD, OFFLINE_MISS if offline else ONLINE_MISS)
    second = render(
        [
            *CONFIG_PROBE,
            (
                sp("transformers/utils/hub.py"),
                321,
                "cached_file",
                "file = cached_files(path_or_repo_id=path_or_repo_id, filenames=[filename], **kwargs)",
            ),
            (sp("transformers/utils/hub.py"), 553, "cached_files", "raise OSError("),
        ],
        "OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the "
        "cached files.\nCheck your internet connection or see how to run the library in offline mode at "
        "'https://huggingface.co/docs/transformers/installation#offline-mode'.",
    )
    return VllmFailure(first + CAUSE + second)


def local_path_missing(path):
    """§2a related case: a local path that does not exist."""
    hfv = (
        f"huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or "
        f"'namespace/repo_name': '{path}'. Use `repo_type` argument if needed."
    )
    validate = [
        (sp("huggingface_hub/utils/_validators.py"), 106, "_inner_fn", "validate_repo_id(arg_value)"),
        (sp("huggingface_hub/utils/_validators.py"), 154, "validate_repo_id", "raise HFValidationError("),
    ]
    first = render([(sp("transformers/utils/hub.py"), 479, "cached_files", "hf_hub_download("), *validate], hfv)
    second = render(
        [
            (
                sp("transformers/utils/hub.py"),
                533,
                "cached_files",
                "resolved_files = [_get_cache_file_to_return(path_or_repo_id, filename, cache_dir, revision)",
            ),
            (sp("transformers/utils/hub.py"), 144, "_get_cache_file_to_return", "resolved_file = try_to_load_from_cache("),
            *validate,
        ],
        hfv,
    )
    third = render(
        [*CONFIG_PROBE, (sp("transformers/configuration_utils.py"), 731, "_get_config_dict", "raise OSError(")],
        f"OSError: Can't load the configuration of '{path}'. If you were trying to load it from "
        f"'https://huggingface.co/models', make sure you don't have a local directory with the same name. Otherwise, "
        f"make sure '{path}' is the correct path to a directory containing a config.json file",
    )
    return VllmFailure(
        first + "\n\nDuring handling of the above exception, another exception occurred:\n\n" + second + CAUSE + third
    )


# --- EngineCore_0 (§1) -----------------------------------------------------------------------------------------
ENGINE_CORE = [
    (sp("vllm/v1/engine/core.py"), 691, "run_engine_core", "engine_core = EngineCoreProc(*args, **kwargs)"),
    (sp("vllm/v1/engine/core.py"), 492, "__init__", "super().__init__(vllm_config, executor_class, log_stats,"),
]
EXECUTOR = [
    *ENGINE_CORE,
    (sp("vllm/v1/engine/core.py"), 80, "__init__", "self.model_executor = executor_class(vllm_config)"),
    (sp("vllm/executor/executor_base.py"), 54, "__init__", "self._init_executor()"),
]


def _rpc(method, line):
    return [
        (sp("vllm/executor/uniproc_executor.py"), line, "_init_executor", f'self.collective_rpc("{method}")'),
        (
            sp("vllm/executor/uniproc_executor.py"),
            58,
            "collective_rpc",
            "answer = run_method(self.driver_worker, method, args, kwargs)",
        ),
        (sp("vllm/utils/__init__.py"), 3007, "run_method", "return func(*args, **kwargs)"),
    ]


ENGINE_FRAMES = {
    "init_device": EXECUTOR
    + _rpc("init_device", 48)
    + [
        (sp("vllm/worker/worker_base.py"), 603, "init_device", "self.worker.init_device()  # type: ignore"),
        (sp("vllm/v1/worker/gpu_worker.py"), 177, "init_device", "raise ValueError("),
    ],
    "load_model": EXECUTOR
    + _rpc("load_model", 49)
    + [
        (sp("vllm/v1/worker/gpu_worker.py"), 212, "load_model", "self.model_runner.load_model(eep_scale_up=eep_scale_up)"),
        (sp("vllm/v1/worker/gpu_model_runner.py"), 1986, "load_model", "self.model = model_loader.load_model("),
        (sp("vllm/model_executor/model_loader/base_loader.py"), 49, "load_model", "self.load_weights(model, model_config)"),
    ],
    "kv_cache": [
        *ENGINE_CORE,
        (sp("vllm/v1/engine/core.py"), 83, "__init__", "self._initialize_kv_caches(vllm_config)"),
        (sp("vllm/v1/engine/core.py"), 149, "_initialize_kv_caches", "kv_cache_configs = ["),
        (sp("vllm/v1/engine/core.py"), 150, "<listcomp>", "get_kv_cache_config(vllm_config, kv_cache_spec_one_worker,"),
        (
            sp("vllm/v1/core/kv_cache_utils.py"),
            1019,
            "get_kv_cache_config",
            "check_enough_kv_cache_memory(vllm_config, kv_cache_spec, available_memory)",
        ),
        (sp("vllm/v1/core/kv_cache_utils.py"), 577, "check_enough_kv_cache_memory", "raise ValueError("),
    ],
}
SAFETENSORS_FRAMES = [
    (sp("vllm/model_executor/model_loader/default_loader.py"), 258, "load_weights", "loaded_weights = model.load_weights("),
    (sp("vllm/model_executor/models/llama.py"), 594, "load_weights", "return loader.load_weights("),
    (
        sp("vllm/model_executor/models/utils.py"),
        291,
        "load_weights",
        'autoloaded_weights = set(self._load_module("", self.module, weights))',
    ),
    (
        sp("vllm/model_executor/models/utils.py"),
        229,
        "_load_module",
        "for child_prefix, child_weights in self._groupby_prefix(weights):",
    ),
    (
        sp("vllm/model_executor/model_loader/default_loader.py"),
        240,
        "get_all_weights",
        "yield from self._get_weights_iterator(primary_weights)",
    ),
    (
        sp("vllm/model_executor/model_loader/default_loader.py"),
        223,
        "_get_weights_iterator",
        "return ((source.prefix + name, tensor)",
    ),
    (
        sp("vllm/model_executor/model_loader/weight_utils.py"),
        476,
        "safetensors_weights_iterator",
        'with safe_open(st_file, framework="pt") as f:',
    ),
]
PT_FRAMES = [
    *SAFETENSORS_FRAMES[:-1],
    (sp("vllm/model_executor/model_loader/weight_utils.py"), 532, "pt_weights_iterator", "state = torch.load(bin_file,"),
    (sp("torch/serialization.py"), 1530, "load", "with _open_zipfile_reader(opened_file) as opened_zipfile:"),
    (sp("torch/serialization.py"), 765, "__init__", "super().__init__(torch._C.PyTorchFileReader(name_or_buffer))"),
]
UNLOADED_FRAMES = [(sp("vllm/model_executor/model_loader/default_loader.py"), 274, "load_weights", "raise ValueError(")]


class EngineCoreError(Exception):
    """An exception inside EngineCore_0 during start-up: `where` selects the real frames, `exc` the last line."""

    def __init__(self, where, exc, extra_frames=()):
        super().__init__(exc)
        self.where, self.exc, self.extra = where, exc, list(extra_frames)

    def traceback(self):
        return render(ENGINE_FRAMES[self.where] + self.extra, self.exc)

    def process_traceback(self):
        """What multiprocessing prints after `Process EngineCore_0:`."""
        frames = [
            (f"{PY}/multiprocessing/process.py", 314, "_bootstrap", "self.run()"),
            (f"{PY}/multiprocessing/process.py", 108, "run", "self._target(*self._args, **self._kwargs)"),
            (sp("vllm/v1/engine/core.py"), 704, "run_engine_core", "raise e"),
        ]
        return render(frames + ENGINE_FRAMES[self.where][:] + self.extra, self.exc)


def engine_start_failed(exitcode):
    frames = [
        *ENGINE_CLIENT,
        (
            sp("vllm/entrypoints/openai/api_server.py"),
            225,
            "build_async_engine_client_from_engine_args",
            "async_llm = AsyncLLM.from_vllm_config(",
        ),
        (sp("vllm/utils/__init__.py"), 1557, "inner", "return fn(*args, **kwargs)"),
        (sp("vllm/v1/engine/async_llm.py"), 174, "from_vllm_config", "return cls("),
        (sp("vllm/v1/engine/async_llm.py"), 120, "__init__", "self.engine_core = EngineCoreClient.make_async_mp_client("),
        (sp("vllm/v1/engine/core_client.py"), 102, "make_async_mp_client", "return AsyncMPClient(*client_args)"),
        (sp("vllm/v1/engine/core_client.py"), 767, "__init__", "super().__init__("),
        (sp("vllm/v1/engine/core_client.py"), 446, "__init__", "with launch_core_engines(vllm_config, executor_class,"),
        (f"{PY}/contextlib.py", 144, "__exit__", "next(self.gen)"),
        (sp("vllm/v1/engine/utils.py"), 706, "launch_core_engines", "wait_for_engine_startup("),
        (sp("vllm/v1/engine/utils.py"), 759, "wait_for_engine_startup", "raise RuntimeError("),
    ]
    return VllmFailure(
        render(
            frames,
            "RuntimeError: Engine core initialization failed. See root cause above. "
            f"Failed core proc(s): {{'EngineCore_0': {exitcode}}}",
        )
    )


def harmony_vocab_error():
    """§2.6: gpt-oss without usable TIKTOKEN_ENCODINGS_BASE files, raised while the API server builds its state."""
    frames = [
        *SERVE,
        (
            sp("vllm/entrypoints/openai/api_server.py"),
            1875,
            "run_server_worker",
            "await init_app_state(engine_client, vllm_config, app.state, args)",
        ),
        (
            sp("vllm/entrypoints/openai/api_server.py"),
            1654,
            "init_app_state",
            "state.openai_serving_responses = OpenAIServingResponses(",
        ),
        (sp("vllm/entrypoints/openai/serving_responses.py"), 128, "__init__", "get_stop_tokens_for_assistant_actions())"),
        (
            sp("vllm/entrypoints/harmony_utils.py"),
            275,
            "get_stop_tokens_for_assistant_actions",
            "return get_encoding().stop_tokens_for_assistant_actions()",
        ),
        (
            sp("vllm/entrypoints/harmony_utils.py"),
            49,
            "get_encoding",
            "_harmony_encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)",
        ),
        (
            sp("openai_harmony/__init__.py"),
            689,
            "load_harmony_encoding",
            "inner: _PyHarmonyEncoding = _load_harmony_encoding(name)",
        ),
    ]
    return VllmFailure(render(frames, "openai_harmony.HarmonyError: error downloading or loading vocab file"))


def nvml_inspect_failure(arch, subprocess_error):
    """§2b/§2c: the registry's inspection subprocess dies on CUDA init; its stderr is logged, then ModelConfig fails."""
    stderr = (
        "/usr/local/lib/python3.12/dist-packages/torch/cuda/__init__.py:789: UserWarning: Can't initialize NVML\n"
        '  warnings.warn("Can\'t initialize NVML")\n'
        + render(
            [
                ("<frozen runpy>", 198, "_run_module_as_main", None),
                ("<frozen runpy>", 88, "_run_code", None),
                (sp("vllm/model_executor/models/registry.py"), 867, "<module>", "_run()"),
                (sp("vllm/model_executor/models/registry.py"), 860, "_run", "result = fn()"),
                (
                    sp("vllm/model_executor/models/registry.py"),
                    400,
                    "<lambda>",
                    "lambda: _ModelInfo.from_model_cls(self.load_model_cls()),",
                ),
                (
                    sp("vllm/model_executor/models/registry.py"),
                    403,
                    "load_model_cls",
                    "mod = importlib.import_module(self.module_name)",
                ),
            ],
            subprocess_error,
        )
    )
    inspect = render(
        [
            (sp("vllm/model_executor/models/registry.py"), 422, "_try_inspect_model_cls", "return model.inspect_model_cls()"),
            (sp("vllm/model_executor/models/registry.py"), 399, "inspect_model_cls", "return _run_in_subprocess("),
            (
                sp("vllm/model_executor/models/registry.py"),
                837,
                "_run_in_subprocess",
                'raise RuntimeError(f"Error raised in subprocess:\\n"',
            ),
        ],
        "RuntimeError: Error raised in subprocess:\n" + stderr,
    )
    failure = model_config_error(
        f"Model architectures ['{arch}'] failed to be inspected. Please check the logs for more details."
    )
    return inspect, failure


# --- no NVIDIA runtime: vLLM finds no platform and fails while building its CLI parser (§2c) -------------------
NO_DEVICE_FRAMES = [
    ("/usr/local/bin/vllm", 8, "<module>", "sys.exit(main())", "             ^^^^^^"),
    (
        sp("vllm/entrypoints/cli/main.py"),
        46,
        "main",
        "cmd.subparser_init(subparsers).set_defaults(",
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/entrypoints/cli/serve.py"),
        64,
        "subparser_init",
        "serve_parser = make_arg_parser(serve_parser)",
        "                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/entrypoints/openai/cli_args.py"),
        258,
        "make_arg_parser",
        "parser = AsyncEngineArgs.add_cli_args(parser)",
        "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/engine/arg_utils.py"),
        1747,
        "add_cli_args",
        "parser = EngineArgs.add_cli_args(parser)",
        "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/engine/arg_utils.py"),
        835,
        "add_cli_args",
        "vllm_kwargs = get_kwargs(VllmConfig)",
        "                  ^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/engine/arg_utils.py"),
        261,
        "get_kwargs",
        "return copy.deepcopy(_compute_kwargs(cls))",
        "                         ^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/engine/arg_utils.py"),
        171,
        "_compute_kwargs",
        "default = field.default_factory()",
        "              ^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("pydantic/_internal/_dataclasses.py"),
        123,
        "__init__",
        "s.__pydantic_validator__.validate_python(ArgsKwargs(args, kwargs), self_instance=s)",
    ),
    (sp("vllm/config/__init__.py"), 1882, "__post_init__", "raise RuntimeError("),
]
NO_DEVICE_ERROR = (
    "RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` "
    "to turn on verbose logging to help debug the issue."
)


JETSON_IMPORT_FRAMES = [
    ("/usr/local/bin/vllm", 5, "<module>", "from vllm.entrypoints.cli.main import main"),
    (
        sp("vllm/entrypoints/cli/__init__.py"),
        3,
        "<module>",
        "from vllm.entrypoints.cli.benchmark.latency import BenchmarkLatencySubcommand",
    ),
    (sp("vllm/entrypoints/cli/benchmark/latency.py"), 5, "<module>", "from vllm.benchmarks.latency import add_cli_args, main"),
    (sp("vllm/benchmarks/latency.py"), 18, "<module>", "from vllm.engine.arg_utils import EngineArgs"),
    (
        sp("vllm/engine/arg_utils.py"),
        24,
        "<module>",
        "from vllm.config import (BlockSize, CacheConfig, CacheDType, CompilationConfig,",
    ),
    (
        sp("vllm/config/__init__.py"),
        36,
        "<module>",
        "from vllm.config.parallel import DistributedExecutorBackend, ParallelConfig",
    ),
    (sp("vllm/config/parallel.py"), 17, "<module>", "from vllm.platforms import current_platform"),
    (
        sp("vllm/platforms/__init__.py"),
        273,
        "__getattr__",
        "_current_platform = resolve_obj_by_qualname(",
        "                        ^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        sp("vllm/utils/__init__.py"),
        2568,
        "resolve_obj_by_qualname",
        "module = importlib.import_module(module_name)",
        "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (
        f"{PY}/importlib/__init__.py",
        90,
        "import_module",
        "return _bootstrap._gcd_import(name[level:], package, level)",
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    (sp("vllm/platforms/cuda.py"), 18, "<module>", "import vllm._C  # noqa", "    ^^^^^^^^^^^^^^"),
]
LIBCUDA_MISSING = "ImportError: libcuda.so.1: cannot open shared object file: No such file or directory"


def jetson_markers():
    """What cuda_platform_plugin's cuda_is_jetson() looks at (vllm/platforms/__init__.py:84-86); tests point it
    elsewhere with VLLM_TWIN_JETSON_MARKERS (colon-separated paths)."""
    return os.environ.get("VLLM_TWIN_JETSON_MARKERS", "/etc/nv_tegra_release:/sys/class/tegra-firmware").split(":")


def check_platform():
    """No simulated GPU: the container got no NVIDIA runtime, so neither libnvidia-ml.so.1 nor libcuda.so.1. vLLM's
    probe then gets NVMLError_LibraryNotFound (torch's "Can't initialize NVML" needs the library, so it is not
    printed) and asks cuda_is_jetson(). Both outcomes are what the real wheel prints, run here without the libraries:
    - no Jetson marker visible in the container: no platform, and the parser build fails in DeviceConfig (§2c);
    - a marker visible (/sys is the host's): CUDA is assumed and `import vllm._C` fails while the CLI imports.
    Either way before any argument is read, without process prefix, exit 1."""
    if device.probe() is not None:
        return
    if any(os.path.isfile(p) if p.startswith("/etc/") else os.path.exists(p) for p in jetson_markers() if p):
        logfmt.info("__init__.py:241", "Automatically detected platform cuda.")
        raise VllmFailure(render(JETSON_IMPORT_FRAMES, LIBCUDA_MISSING))
    logfmt.info("__init__.py:245", "No platform detected, vLLM is running on UnspecifiedPlatform")
    logfmt.warning(
        "_custom_ops.py:20",
        "Failed to import from vllm._C with ImportError('libcuda.so.1: cannot open shared object file: "
        "No such file or directory')",
    )
    raise VllmFailure(render(NO_DEVICE_FRAMES, NO_DEVICE_ERROR))


# --- EngineCore_0 dies while serving (0.10.1.1): the monitor thread's finalizer call fails --------------------
MONITOR_THREAD_CRASH = (
    f"{PY}/weakref.py:590: RuntimeWarning: No running event loop. zmq.asyncio should be used from within an "
    "asyncio loop.\n"
    "  return info.func(*info.args, **(info.kwargs or {}))\n"
    "Exception in thread MPClientEngineMonitor:\n"
    + render(
        [
            (f"{PY}/threading.py", 1075, "_bootstrap_inner", "self.run()"),
            (f"{PY}/threading.py", 1012, "run", "self._target(*self._args, **self._kwargs)"),
            (sp("vllm/v1/engine/core_client.py"), 565, "monitor_engine_cores", "_self.shutdown()"),
            (sp("vllm/v1/engine/core_client.py"), 517, "shutdown", "self._finalizer()"),
            (
                f"{PY}/weakref.py",
                590,
                "__call__",
                "return info.func(*info.args, **(info.kwargs or {}))",
                "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            ),
            (
                sp("vllm/v1/engine/core_client.py"),
                350,
                "__call__",
                "loop = self.output_socket._get_loop()",
                "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            ),
            (
                sp("zmq/_future.py"),
                59,
                "_get_loop",
                "current_loop = self._default_loop()",
                "                   ^^^^^^^^^^^^^^^^^^^^",
            ),
            (
                sp("zmq/asyncio.py"),
                116,
                "_default_loop",
                "return asyncio.get_event_loop()",
                "           ^^^^^^^^^^^^^^^^^^^^^^^^",
            ),
            (
                f"{PY}/asyncio/events.py",
                702,
                "get_event_loop",
                "raise RuntimeError('There is no current event loop in thread %r.'",
            ),
        ],
        "RuntimeError: There is no current event loop in thread 'MPClientEngineMonitor'.",
    )
)
