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
    assert rc == 0 and out.strip().startswith("0.10.1.1+") and out.strip().endswith(".twin")


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
    assert repr(cli.compilation_config('{"level": 0}')) == '{"level":0}'
