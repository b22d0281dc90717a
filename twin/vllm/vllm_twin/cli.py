"""`vllm` command line, argparse-compatible with vLLM 0.10.1.1 (vllm-ground-truth.md §4)."""

import argparse
import json
import re
import sys

from vllm_twin import VERSION, errors

DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DTYPES = ["auto", "bfloat16", "float", "float16", "float32", "half"]
QUANTIZATIONS = [
    "aqlm",
    "awq",
    "deepspeedfp",
    "tpu_int8",
    "fp8",
    "ptpc_fp8",
    "fbgemm_fp8",
    "modelopt",
    "modelopt_fp4",
    "marlin",
    "bitblas",
    "gguf",
    "gptq_marlin_24",
    "gptq_marlin",
    "gptq_bitblas",
    "awq_marlin",
    "gptq",
    "compressed-tensors",
    "bitsandbytes",
    "qqq",
    "hqq",
    "experts_int8",
    "neuron_quant",
    "ipex",
    "quark",
    "moe_wna16",
    "torchao",
    "auto-round",
    "rtn",
    "inc",
    "mxfp4",
    "petit_nvfp4",
]
SUBCOMMANDS = ["chat", "complete", "serve", "bench", "collect-env", "run-batch"]
MODEL_FLAG_ERROR = (
    "ValueError: With `vllm serve`, you should provide the model as a positional argument or in a "
    "config file instead of via the `--model` option."
)


def human_readable_int(value):
    """vLLM's parser for --max-model-len: 4096, 4k (x1000), 4K (x1024), 1m, 1M, ..."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value)
    if match:
        number, suffix = match.groups()
        if suffix in "kmgt":
            return int(float(number) * 1000 ** ("kmgt".index(suffix) + 1))
        if "." in number:
            raise argparse.ArgumentTypeError(
                f"Decimals are not allowed with binary suffixes like {suffix}. "
                f"Did you mean to use {number}{suffix.lower()} instead?"
            )
        return int(number) * 1024 ** ("KMGT".index(suffix) + 1)
    return int(value)


def json_value(val):
    """`optional_type(json.loads)` as vLLM's parse_type reports it."""
    if val in ("", "None"):
        return None
    try:
        return json.loads(val)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"Value {val} cannot be converted to {json.loads}.") from exc


def _pyd_repr(value):
    text = repr(value)
    return text if len(text) <= 50 else text[:25] + "..." + text[-24:]


def _jiter_error(text, err):
    """Python's json error, said the way pydantic's JSON parser (jiter) says it."""
    msg, pos = err.msg, err.pos
    at_end = pos >= len(text.rstrip())
    if msg.startswith("Expecting property name"):
        before = text[:pos].rstrip()
        if at_end:
            kind = "EOF while parsing an object"
        elif text[pos] == "}" and before.endswith(","):
            kind = "trailing comma"
        else:
            kind = "key must be a string"
    elif msg == "Expecting ',' delimiter":
        kind = "EOF while parsing an object" if at_end else "expected `,` or `}`"
    elif msg == "Expecting ':' delimiter":
        kind = "expected `:`"
    elif msg == "Extra data":
        kind = "trailing characters"
    elif msg.startswith("Unterminated string"):
        kind = "EOF while parsing a string"
    else:
        kind = "EOF while parsing a value" if at_end else "expected value"
    line, col = err.lineno, err.colno if not at_end else len(text.splitlines()[-1] if text else "")
    return (
        f"Invalid JSON: {kind} at line {line} column {max(col, 1)} "
        f"[type=json_invalid, input_value={_pyd_repr(text)}, input_type=str]",
        "json_invalid",
    )


class CompilationConfig(dict):
    """The parsed --compilation-config; printed as vLLM prints its CompilationConfig (compact JSON)."""

    def __repr__(self):
        return json.dumps({"level": self.get("level"), **self}, separators=(",", ":"))

    @property
    def level(self):
        return self.get("level")


def compilation_config(val):
    """`TypeAdapter(CompilationConfig).validate_json`, with vLLM's `-O3` shorthand; errors as repr(ValidationError)."""
    if val in ("0", "1", "2", "3"):
        return CompilationConfig(level=int(val))
    try:
        data = json.loads(val)
    except ValueError as err:
        detail, kind = _jiter_error(val, err)
        raise argparse.ArgumentTypeError(_validation("CompilationConfig", None, detail, kind)) from err
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(
            _validation(
                "CompilationConfig",
                None,
                "Input should be a dictionary or an instance of CompilationConfig "
                f"[type=dataclass_type, input_value={_pyd_repr(data)}, input_type={type(data).__name__}]",
                "dataclass_type",
            )
        )
    level = data.get("level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        if isinstance(level, str) and re.fullmatch(r"\s*[+-]?\d+\s*", level):
            data["level"] = int(level)
        elif isinstance(level, float) and level.is_integer():
            data["level"] = int(level)
        else:
            kind, text = (
                ("int_parsing", "unable to parse string as an integer")
                if isinstance(level, str)
                else (
                    ("int_from_float", "got a number with a fractional part") if isinstance(level, float) else ("int_type", None)
                )
            )
            detail = "Input should be a valid integer" + (f", {text}" if text else "")
            raise argparse.ArgumentTypeError(
                _validation(
                    "CompilationConfig",
                    "level",
                    f"{detail} [type={kind}, input_value={_pyd_repr(level)}, input_type={type(level).__name__}]",
                    kind,
                )
            )
    return CompilationConfig(data)


def _validation(cls, loc, detail, kind):
    head = f"1 validation error for {cls}\n" + (f"{loc}\n" if loc else "")
    return f"{head}  {detail}\n    For further information visit {errors.PYDANTIC_URL}{kind}"


def _serve_parser(sub):
    p = sub.add_parser(
        "serve",
        usage="vllm serve [model_tag] [options]",
        help="Start the vLLM OpenAI Compatible API server.",
        description="Start the vLLM OpenAI Compatible API server.",
    )
    p.add_argument("model_tag", nargs="?", help="The model tag to serve (optional if specified in config)")
    # Front end (the order of vLLM's own parser, which orders the `non-default args` line).
    p.add_argument("--host", default=None, help="Host name.")
    p.add_argument("--port", type=int, default=8000, help="Port number.")
    p.add_argument("--uvicorn-log-level", default="info", choices=["debug", "info", "warning", "error", "critical", "trace"])
    p.add_argument("--disable-uvicorn-access-log", action="store_true")
    p.add_argument("--api-key", default=None, help="If provided, the server will require this key in the header.")
    p.add_argument("--enable-force-include-usage", action="store_true")
    p.add_argument("--disable-fastapi-docs", action="store_true")
    # Engine.
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--dtype", default="auto", choices=DTYPES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-model-len", type=human_readable_int, default=None)
    p.add_argument("--quantization", "-q", default=None, choices=QUANTIZATIONS)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--generation-config", default="auto")
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--disable-custom-all-reduce", action="store_true")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--kv-cache-dtype", default="auto", choices=["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"])
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--max-num-batched-tokens", type=int, default=None)
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--disable-log-stats", action="store_true")
    p.add_argument("--speculative-config", type=json_value, default=None)
    p.add_argument("--compilation-config", "-O", type=compilation_config, default=None)
    return p


def build_parser():
    parser = argparse.ArgumentParser(prog="vllm", description="vLLM CLI")
    parser.add_argument("-v", "--version", action="version", version=VERSION)
    sub = parser.add_subparsers(required=False, dest="subparser")
    for name in SUBCOMMANDS:
        if name == "serve":
            _serve_parser(sub)
        else:
            sub.add_parser(name, help=f"{name} (not emulated by the vLLM twin)")
    return parser


def normalize(argv):
    """FlexibleArgumentParser: `--flag_name` means `--flag-name` (so `--trust_remote_code` works)."""
    out = []
    for arg in argv:
        if arg.startswith("--"):
            key, eq, value = arg.partition("=")
            arg = key.replace("_", "-") + eq + value
        out.append(arg)
    return out


def non_default_args(parser, args):
    """The dict vLLM logs as `non-default args:` (argparse values that differ from the defaults)."""
    serve = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog == "vllm serve")
    return {
        a.dest: getattr(args, a.dest) for a in serve._actions if a.dest != "help" and getattr(args, a.dest, None) != a.default
    }


def main(argv=None):
    argv = normalize(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve" and "--model" in argv:
        frames = [
            *errors.ENTRY[:1],
            (errors.sp("vllm/entrypoints/cli/main.py"), 46, "main", "args = parser.parse_args()"),
            (errors.sp("vllm/utils/__init__.py"), 1779, "parse_args", "raise ValueError("),
        ]
        sys.stderr.write(errors.render(frames, MODEL_FLAG_ERROR) + "\n")
        return 1
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.subparser != "serve":
        if args.subparser is None:
            parser.print_help()
            return 0
        sys.stderr.write(f"vllm twin: `vllm {args.subparser}` is not emulated; only `vllm serve` is.\n")
        return 1
    if args.model_tag:
        args.model = args.model_tag
    from vllm_twin.serve import run

    return run(args, non_default_args(parser, args))
