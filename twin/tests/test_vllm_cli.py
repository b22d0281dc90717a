"""`vllm` argument handling: usage lines, messages and exit codes of vLLM 0.10.1.1 (ground truth §4)."""

import argparse

import pytest

from twin_support import run_vllm
from vllm_twin import cli


@pytest.fixture
def env(hub, device):
    from twin_support import twin_env

    return twin_env(hub, device)


def test_unknown_flags_are_top_level_errors(env):
    rc, _, err = run_vllm(["serve", "m", "--foo", "bar", "--baz"], env)
    assert rc == 2
    assert err.splitlines() == [
        "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...",
        "vllm: error: unrecognized arguments: --foo bar --baz",
    ]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--speculative-config",
            "{bad json",
            "argument --speculative-config: Value {bad json cannot be converted to <function loads at 0x",
        ),
        (
            "--compilation-config",
            "{bad json",
            "argument --compilation-config/-O: 1 validation error for CompilationConfig\n"
            "  Invalid JSON: key must be a string at line 1 column 2 [type=json_invalid, "
            "input_value='{bad json', input_type=str]\n    For further information visit "
            "https://errors.pydantic.dev/2.11/v/json_invalid",
        ),
        (
            "-O",
            '{"level": 3,}',
            "Invalid JSON: trailing comma at line 1 column 13 [type=json_invalid, input_value='{\"level\": 3,}', input_type=str]",
        ),
        (
            "-O",
            '{"level": "x"}',
            "CompilationConfig\nlevel\n  Input should be a valid integer, unable to parse string as an "
            "integer [type=int_parsing, input_value='x', input_type=str]",
        ),
        (
            "--dtype",
            "foo",
            "argument --dtype: invalid choice: 'foo' (choose from 'auto', 'bfloat16', 'float', 'float16', 'float32', 'half')",
        ),
        ("--max-model-len", "abc", "argument --max-model-len: invalid human_readable_int value: 'abc'"),
    ],
)
def test_argument_errors_exit_2_with_serve_usage(env, flag, value, message):
    rc, _, err = run_vllm(["serve", "m", flag, value], env)
    assert rc == 2
    assert err.startswith("usage: vllm serve [model_tag] [options]\nvllm serve: error: ")
    assert message in err


def test_model_flag_is_a_value_error_exit_1(env):
    rc, _, err = run_vllm(["serve", "--model", "x"], env)
    assert rc == 1
    assert err.rstrip().endswith(
        "ValueError: With `vllm serve`, you should provide the model as a positional argument "
        "or in a config file instead of via the `--model` option."
    )
    assert err.startswith("Traceback (most recent call last):")


def test_version(env):
    rc, out, _ = run_vllm(["--version"], env)
    first, last = out.strip().splitlines()  # platform detection runs while the CLI modules are imported
    assert first.endswith("[__init__.py:241] Automatically detected platform cuda.")
    assert rc == 0 and last.startswith("0.10.1.1+") and last.endswith(".twin")


def test_human_readable_int_and_flexible_underscores():
    assert cli.human_readable_int("4096") == 4096
    assert cli.human_readable_int("4k") == 4000
    assert cli.human_readable_int("4K") == 4096
    with pytest.raises(argparse.ArgumentTypeError):
        cli.human_readable_int("1.5K")
    assert cli.normalize(["serve", "--trust_remote_code", "--max_model_len=4k"]) == [
        "serve",
        "--trust-remote-code",
        "--max-model-len=4k",
    ]


def test_level_shorthand_and_unknown_keys_are_accepted():
    assert cli.compilation_config("3").level == 3
    assert cli.compilation_config('{"mode": 0}').level is None
    # printed as vLLM prints a CompilationConfig: every field, compact JSON
    assert repr(cli.compilation_config('{"level": 0}')).startswith('{"level":0,"debug_dump_path":"","cache_dir":""')
    assert cli.compilation_config('{"mode": 0}') == cli.CompilationConfig()


def parse(*argv):
    parser = cli.build_parser()
    args = parser.parse_args(cli.normalize(["serve", "m", *argv]))
    args.model = args.model_tag
    return args, cli.non_default_args(parser, args)


def test_the_whole_0_10_1_1_flag_surface_is_accepted():
    """serve_args.json is the real parser's option list (172 options of vllm==0.10.1.1), not a hand-picked subset."""
    serve = cli.serve_parser(cli.build_parser())
    options = {o for a in serve._actions for o in a.option_strings}
    assert len([a for a in serve._actions if a.dest != "help"]) == 172
    for flag in (
        "--enable-prompt-tokens-details",
        "--api-server-count",
        "-asc",
        "--tool-call-parser",
        "--chat-template",
        "--reasoning-parser",
        "--no-enable-prefix-caching",
        "--enable-auto-tool-choice",
        "--uds",
        "--max-num-partial-prefills",
        "--kv-transfer-config",
        "-tp",
        "-q",
        "-O",
    ):
        assert flag in options, flag
    args, nondefault = parse(
        "--enable-prompt-tokens-details",
        "--api-server-count",
        "2",
        "--tool-call-parser",
        "hermes",
        "--chat-template",
        "{{ messages }}",
        "--reasoning-parser",
        "deepseek_r1",
        "--no-enable-prefix-caching",
        "--api-key",
        "a",
        "b",
    )
    assert args.enable_prefix_caching is False and args.api_key == ["a", "b"]
    # vLLM's order: the parser's actions (frontend options, then engine options), model after the frontend ones
    assert list(nondefault) == [
        "model_tag",
        "api_server_count",
        "api_key",
        "chat_template",
        "tool_call_parser",
        "enable_prompt_tokens_details",
        "model",
        "reasoning_parser",
        "enable_prefix_caching",
    ]
    assert parse("--enable-prefix-caching")[0].enable_prefix_caching is True
    assert parse()[0].enable_prefix_caching is None  # V1 turns it on by default for generative models


def test_flexible_argument_parser_rewriting():
    assert cli.normalize(["serve", "m", "-O3", "--max_num_seqs=4", "--compilation-config.cudagraph_capture_sizes+", "1,2"]) == [
        "serve",
        "m",
        "--max-num-seqs=4",
        "-O",
        '{"level": 3}',
        "--compilation-config",
        '{"cudagraph_capture_sizes": ["1", "2"]}',
    ]
    args, _ = parse("--speculative-config.method", "eagle3", "--speculative_config.num_speculative_tokens=3")
    assert args.speculative_config == {"method": "eagle3", "num_speculative_tokens": 3}
    assert parse("-O", "0")[0].compilation_config.level == 0


def test_config_file_options_come_before_the_command_line(env, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("port: 8123\nenable-prompt-tokens-details: true\nmax-num-seqs: 8\n")
    parser = cli.build_parser()
    argv = cli.normalize(cli.pull_config(["serve", "m", "--config", str(config), "--max-num-seqs", "4"], parser))
    args = parser.parse_args(argv)
    assert (args.port, args.enable_prompt_tokens_details, args.max_num_seqs) == (8123, True, 4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api-server-count", "x"], "argument --api-server-count/-asc: invalid int value: 'x'"),
        (["--port", "x"], "argument --port: invalid int value: 'x'"),
        (["--max-num-seqs", "None"], "argument --max-num-seqs: invalid int value: 'None'"),
        (
            ["--kv-transfer-config", "{bad"],
            "argument --kv-transfer-config: 1 validation error for KVTransferConfig\n"
            "  Invalid JSON: key must be a string at line 1 column 2 [type=json_invalid, input_value='{bad', input_type=str]",
        ),
        (
            ["-O.level=x"],
            "argument --compilation-config/-O: 1 validation error for CompilationConfig\nlevel\n"
            "  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, "
            "input_value='x', input_type=str]",
        ),
        (["--reasoning-parser", "nope"], "argument --reasoning-parser: invalid choice: 'nope' (choose from 'deepseek_r1', "),
    ],
)
def test_new_flags_have_the_real_argument_errors(env, argv, message):
    """Texts as the real 0.10.1.1 parser printed them for the same arguments."""
    rc, _, err = run_vllm(["serve", "m", *argv], env)
    assert rc == 2 and err.startswith("usage: vllm serve [model_tag] [options]\nvllm serve: error: ") and message in err


def test_boolean_flags_take_no_value(env):
    rc, _, err = run_vllm(["serve", "m", "--enable-prefix-caching", "foo"], env)
    assert rc == 2 and err.splitlines()[-1] == "vllm: error: unrecognized arguments: foo"


def test_checks_right_after_parsing_fail_as_in_vllm(env):
    rc, out, err = run_vllm(["serve", "m", "--chat-template", "nofile"], env)
    assert rc == 1 and "vLLM API server version" not in out
    assert err.rstrip().endswith(
        "line 819, in validate_chat_template\n    raise ValueError(\n"
        "ValueError: The supplied chat template string (nofile) appears path-like, but doesn't exist!"
    )
    rc, _, err = run_vllm(["serve", "m", "--enable-auto-tool-choice"], env)
    assert rc == 1 and err.rstrip().endswith("TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser")


def test_unknown_tool_parser_fails_in_setup_server(env):
    rc, out, err = run_vllm(["serve", "m", "--enable-auto-tool-choice", "--tool-call-parser", "x"], env)
    assert rc == 1
    assert "non-default args: {'model_tag': 'm', 'enable_auto_tool_choice': True, 'tool_call_parser': 'x', 'model': 'm'}" in out
    assert "line 1811, in setup_server" in err
    assert err.rstrip().endswith(
        "KeyError: 'invalid tool call parser: x (chose from { deepseek_v3,glm45,granite-20b-fc,granite,hermes,"
        "hunyuan_a13b,internlm,jamba,kimi_k2,llama4_pythonic,llama4_json,llama3_json,minimax,mistral,phi4_mini_json,"
        "pythonic,qwen3_coder,step3,xlam })'"
    )


def test_deprecated_options_warn_once(env):
    rc, out, _ = run_vllm(["serve", "org/absent", "--disable-log-requests", "--enable-prompt-adapter"], env)
    lines = [line for line in out.splitlines() if "deprecated" in line]
    assert rc == 1 and len(lines) == 2
    assert lines[0].endswith(
        "[__init__.py:1726] argument '--disable-log-requests' is deprecated and replaced with '--enable-log-requests'. "
        "This will be removed in v0.12.0."
    )
    assert lines[1].endswith("[__init__.py:1734] argument 'enable_prompt_adapter' is deprecated")


def test_no_nvidia_runtime_fails_while_the_parser_is_built(hub, tmp_path):
    """§2c, as the real wheel prints it with no libnvidia-ml/libcuda: before any argument is read, no prefix."""
    from twin_support import twin_env

    env = twin_env(hub, tmp_path / "no-runtime", VLLM_TWIN_JETSON_MARKERS=tmp_path / "none")
    rc, out, err = run_vllm(["serve", "openai/gpt-oss-120b", "--port", "x"], env)
    assert rc == 1
    assert [line.split("] ", 1)[1] for line in out.splitlines()] == [
        "No platform detected, vLLM is running on UnspecifiedPlatform",
        "Failed to import from vllm._C with ImportError('libcuda.so.1: cannot open shared object file: No such file "
        "or directory')",
    ]
    assert out.startswith("INFO ") and "\nWARNING " in out and "pid=" not in out + err
    assert "Can't initialize NVML" not in out + err
    assert err.startswith('Traceback (most recent call last):\n  File "/usr/local/bin/vllm", line 8, in <module>')
    assert "line 835, in add_cli_args\n    vllm_kwargs = get_kwargs(VllmConfig)" in err
    assert err.rstrip().endswith(
        "RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` "
        "to turn on verbose logging to help debug the issue."
    )


def test_no_nvidia_runtime_where_the_jetson_probe_says_cuda(hub, tmp_path):
    """With a Jetson marker visible in the container, vLLM assumes CUDA and `import vllm._C` cannot find libcuda
    (the real wheel's output on a host with /etc/nv_tegra_release and no NVIDIA libraries)."""
    from twin_support import twin_env

    marker = tmp_path / "tegra-firmware"
    marker.mkdir()
    env = twin_env(hub, tmp_path / "no-runtime", VLLM_TWIN_JETSON_MARKERS=f"{tmp_path / 'none'}:{marker}")
    rc, out, err = run_vllm(["serve", "openai/gpt-oss-120b"], env)
    assert rc == 1 and out.strip().endswith("[__init__.py:241] Automatically detected platform cuda.")
    assert "line 18, in <module>\n    import vllm._C  # noqa\n    ^^^^^^^^^^^^^^\n" in err
    assert err.rstrip().endswith("ImportError: libcuda.so.1: cannot open shared object file: No such file or directory")
    assert "Can't initialize NVML" not in out + err
