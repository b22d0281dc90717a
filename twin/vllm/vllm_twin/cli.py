"""`vllm` command line, argparse-compatible with vLLM 0.10.1.1 (vllm-ground-truth.md §4).

The `vllm serve` options are not written out here: they are built from serve_args.json, the real parser's
option list (every flag, dest, type, default, choices and nargs, in the real order) extracted from the
vllm==0.10.1.1 wheel. FlexibleArgumentParser's rewriting (`--flag_name`, `-O3`, `--json-arg.key value`,
`--config file.yaml`) and its deprecation warnings are reproduced; the checks vLLM makes right after parsing
(chat template, auto tool choice) fail as they do there.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from vllm_twin import VERSION, errors, logfmt
from vllm_twin.timing import PHASE_SECONDS, simulate

SERVE_ARGS = json.loads((Path(__file__).with_name("serve_args.json")).read_text())
ACTIONS = SERVE_ARGS["actions"]
COMPILATION_DEFAULT = SERVE_ARGS["compilation_config_default"]
SUBCOMMANDS = ["chat", "complete", "serve", "bench", "collect-env", "run-batch"]
MODEL_FLAG_ERROR = (
    "ValueError: With `vllm serve`, you should provide the model as a positional argument or in a "
    "config file instead of via the `--model` option."
)
DISABLE_LOG_REQUESTS_WARNING = (
    "argument '--disable-log-requests' is deprecated and replaced with '--enable-log-requests'. This will be removed in v0.12.0."
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


def parse_type(return_type):
    """vLLM's parse_type: a ValueError becomes `Value X cannot be converted to <type>.`"""

    def _parse_type(val):
        try:
            return return_type(val)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"Value {val} cannot be converted to {return_type}.") from exc

    return _parse_type


def optional_type(return_type):
    def _optional_type(val):
        if val in ("", "None"):
            return None
        return parse_type(return_type)(val)

    return _optional_type


json_value = optional_type(json.loads)  # --speculative-config (kept for callers)


def union_dict_and_str(val):
    if not re.match(r"(?s)^\s*{.*}\s*$", val):
        return str(val)
    return optional_type(json.loads)(val)


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


def _validation(cls, loc, detail, kind):
    head = f"1 validation error for {cls}\n" + (f"{loc}\n" if loc else "")
    return f"{head}  {detail}\n    For further information visit {errors.PYDANTIC_URL}{kind}"


def _json_dataclass(cls, val):
    """`TypeAdapter(cls).validate_json`: a JSON object, errors as repr(ValidationError)."""
    try:
        data = json.loads(val)
    except ValueError as err:
        detail, kind = _jiter_error(val, err)
        raise argparse.ArgumentTypeError(_validation(cls, None, detail, kind)) from err
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(
            _validation(
                cls,
                None,
                f"Input should be a dictionary or an instance of {cls} "
                f"[type=dataclass_type, input_value={_pyd_repr(data)}, input_type={type(data).__name__}]",
                "dataclass_type",
            )
        )
    return data


class CompilationConfig(dict):
    """The given --compilation-config keys; printed as vLLM prints its CompilationConfig (every field, compact JSON)."""

    def __repr__(self):
        known = {k: self[k] for k in COMPILATION_DEFAULT if k in self}
        return json.dumps({**COMPILATION_DEFAULT, **known}, separators=(",", ":"))

    def __eq__(self, other):
        if isinstance(other, CompilationConfig):
            return repr(self) == repr(other)
        return NotImplemented

    __hash__ = None

    @property
    def level(self):
        return self.get("level")


def compilation_config(val):
    """`TypeAdapter(CompilationConfig).validate_json`, with vLLM's `-O3` shorthand; errors as repr(ValidationError)."""
    if val in ("0", "1", "2", "3"):
        return CompilationConfig(level=int(val))
    data = _json_dataclass("CompilationConfig", val)
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


def _dataclass_type(name):
    if name == "CompilationConfig":
        return compilation_config

    def parse_dataclass(val):
        return _json_dataclass(name, val)

    return parse_dataclass


def type_of(spec):
    """The argparse type callable for a type name of serve_args.json (named as vLLM's, for argparse's messages)."""
    if spec is None:
        return None
    if spec.startswith("optional:"):
        inner = spec[len("optional:") :]
        if inner == "json" or inner.startswith("dataclass:"):
            inner_type = type_of(inner)

            def _optional_type(val):
                return None if val in ("", "None") else inner_type(val)

            return _optional_type
        return optional_type(type_of(inner))
    if spec.startswith("dataclass:"):
        return _dataclass_type(spec.split(":", 1)[1])
    return {
        "int": int,
        "float": float,
        "str": str,
        "human_readable_int": human_readable_int,
        "json": parse_type(json.loads),
        "union_dict_and_str": union_dict_and_str,
    }[spec]


class LoRAParserAction(argparse.Action):
    """--lora-modules name=path or JSON (kept as given; the twin serves no LoRA)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, list(values) if values else None)


class FlexibleArgumentParser(argparse.ArgumentParser):
    deprecated: set = set()  # noqa: RUF012 (one set shared by all parsers, as vLLM's _deprecated)


def _add(parser, spec):
    kind, flags = spec["kind"], spec["flags"]
    kwargs = {"default": spec.get("default")}
    if kwargs["default"] == {"__dataclass__": "CompilationConfig"}:
        kwargs["default"] = CompilationConfig()
    if kind == "store_true":
        action = parser.add_argument(*flags, dest=spec["dest"], action="store_true", default=bool(kwargs["default"]))
    elif kind == "boolean_optional":
        positive = [f for f in flags if not f.startswith("--no-")]
        action = parser.add_argument(*positive, dest=spec["dest"], action=argparse.BooleanOptionalAction, **kwargs)
    else:
        for key in ("nargs", "choices", "metavar"):
            if key in spec:
                kwargs[key] = spec[key]
        if kind == "append":
            kwargs["action"] = "append"
        elif kind == "lora_modules":
            kwargs["action"] = LoRAParserAction
        if not flags:  # the positional model_tag
            action = parser.add_argument(spec["dest"], type=type_of(spec.get("type")), **kwargs)
        else:
            action = parser.add_argument(*flags, dest=spec["dest"], type=type_of(spec.get("type")), **kwargs)
    if spec.get("deprecated"):
        FlexibleArgumentParser.deprecated.add(action)
    return action


def _serve_parser(sub):
    p = sub.add_parser(
        "serve",
        usage="vllm serve [model_tag] [options]",
        help="Start the vLLM OpenAI Compatible API server.",
        description="Start the vLLM OpenAI Compatible API server.",
    )
    groups = {}
    for spec in ACTIONS:
        title = spec.get("group", "options")
        if title in ("options", "positional arguments"):
            target = p
        else:
            target = groups.get(title) or groups.setdefault(title, p.add_argument_group(title))
        _add(target, spec)
    return p


def build_parser():
    parser = FlexibleArgumentParser(prog="vllm", description="vLLM CLI")
    parser.add_argument("-v", "--version", action="version", version=VERSION)
    sub = parser.add_subparsers(required=False, dest="subparser")
    for name in SUBCOMMANDS:
        if name == "serve":
            _serve_parser(sub)
        else:
            sub.add_parser(name, help=f"{name} (not emulated by the vLLM twin)")
    return parser


def serve_parser(parser):
    return parser._subparsers._group_actions[0].choices["serve"]


def _config_scalar(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _config_args(path, store_true):
    """FlexibleArgumentParser._load_config_file for a flat YAML mapping of scalars (what vLLM expects)."""
    if path.split(".")[-1] not in ("yaml", "yml"):
        raise errors.VllmFailure(
            errors.render(
                [*errors.ENTRY[:1], (errors.sp("vllm/utils/__init__.py"), 1999, "_load_config_file", "raise ValueError(")],
                f"ValueError: ('Config file must be of a yaml/yml type.                              %s supplied', "
                f"'{path.split('.')[-1]}')",
            )
        )
    out = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].rstrip()
            if not line.strip() or ":" not in line:
                continue
            key, _, value = line.partition(":")
            value = _config_scalar(value)
            if isinstance(value, bool) and key.strip() not in store_true:
                if value:
                    out.append("--" + key.strip())
            else:
                out += ["--" + key.strip(), str(value)]
    return out


def normalize(argv):
    """FlexibleArgumentParser.parse_args' rewriting: `--flag_name` means `--flag-name` (up to the first `.`),
    `-O3`/`-O 3` mean `-O.level 3`, and `--json-arg.key value` (or `.key+ a,b`) is merged into one JSON argument."""
    processed = []
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            key, eq, value = arg.partition("=")
            head, dot, tail = key[2:].partition(".")
            processed.append("--" + head.replace("_", "-") + dot + tail + eq + value)
        elif arg.startswith("-O") and arg != "-O" and arg[2] != ".":
            processed.append(f"-O.level={arg[3:] if arg[2] == '=' else arg[2:]}")
        elif arg == "-O" and i + 1 < len(argv) and argv[i + 1] in {"0", "1", "2", "3"}:
            processed.append("-O.level")
        else:
            processed.append(arg)
    delete, dict_args, duplicates = set(), {}, set()
    for i, arg in enumerate(processed):
        if i in delete or not (arg.startswith("-") and "." in arg):
            continue
        if "=" in arg:
            arg, value_str = arg.split("=", 1)
            if "." not in arg:
                continue
        elif i + 1 < len(processed):
            value_str = processed[i + 1]
            delete.add(i + 1)
        else:
            continue
        if arg.endswith("+"):
            arg, value_str = arg[:-1], json.dumps(value_str.split(","))
        key, *keys = arg.split(".")
        try:
            value = json.loads(value_str)
        except ValueError:
            value = value_str
        for k in reversed(keys):
            value = {k: value}
        duplicates |= {f"{key}.{d}" for d in _merge(dict_args.setdefault(key, {}), value)}
        delete.add(i)
    if duplicates:
        logfmt.warning("__init__.py:1888", "Found duplicate keys %s", ", ".join(sorted(duplicates)))
    out = [a for i, a in enumerate(processed) if i not in delete]
    for key, value in dict_args.items():
        out += [key, json.dumps(value)]
    return out


def _merge(original, update):
    """Merge nested dicts (lists are extended); returns the keys that were overwritten."""
    duplicates = set()
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(original.get(k), dict):
            duplicates |= {f"{k}.{d}" for d in _merge(original[k], v)}
        elif isinstance(v, list) and isinstance(original.get(k), list):
            original[k] += v
        else:
            if k in original:
                duplicates.add(k)
            original[k] = v
    return duplicates


def pull_config(argv, parser):
    """`--config file.yaml`: its options go right after `serve [model_tag]`, so the command line wins."""
    if "--config" not in argv:
        return argv
    index = argv.index("--config")
    if index == len(argv) - 1:
        raise errors.VllmFailure(
            errors.render(
                [
                    *errors.ENTRY[:1],
                    (
                        errors.sp("vllm/utils/__init__.py"),
                        1948,
                        "_pull_args_from_config",
                        'raise ValueError("No config file specified! \\',
                    ),
                ],
                "ValueError: No config file specified!                              Please check your command-line arguments.",
            )
        )
    store_true = {a.dest for a in serve_parser(parser)._actions if isinstance(a, argparse._StoreTrueAction)}
    config = _config_args(argv[index + 1], store_true)
    rest = argv[:index] + argv[index + 2 :]
    if rest and rest[0] == "serve" and len(rest) > 1 and not rest[1].startswith("-"):
        return rest[:2] + config + rest[2:]
    return rest[:1] + config + rest[1:]


def deprecation_warnings(argv, args):
    """FlexibleArgumentParser.parse_known_args (Python < 3.13): once-only warnings for deprecated options."""
    if "--disable-log-requests" in argv:
        logfmt.warning("__init__.py:1726", DISABLE_LOG_REQUESTS_WARNING)
    for action in sorted(FlexibleArgumentParser.deprecated, key=lambda a: [s["dest"] for s in ACTIONS].index(a.dest)):
        if hasattr(args, action.dest) and getattr(args, action.dest) != action.default:
            logfmt.warning("__init__.py:1734", "argument '%s' is deprecated", action.dest)


def non_default_args(parser, args):
    """The dict vLLM logs as `non-default args:` (values that differ from the defaults, in the parser's order)."""
    serve = serve_parser(parser)
    out = {}
    for a in serve._actions:
        if a.dest == "help" or a.dest in out:
            continue
        if getattr(args, a.dest, None) != a.default:
            out[a.dest] = getattr(args, a.dest)
    return out


def validate_serve_args(args):
    """validate_parsed_serve_args (cli_args.py:263), called by main() right after parsing."""
    validate = [
        *errors.ENTRY[:1],
        (errors.sp("vllm/entrypoints/cli/main.py"), 51, "main", "cmds[args.subparser].validate(args)"),
        (errors.sp("vllm/entrypoints/cli/serve.py"), 53, "validate", "validate_parsed_serve_args(args)"),
    ]
    template = args.chat_template
    if template is not None and not any(c in template for c in "{}\n") and not Path(template).exists():
        frames = [
            *validate,
            (
                errors.sp("vllm/entrypoints/openai/cli_args.py"),
                269,
                "validate_parsed_serve_args",
                "validate_chat_template(args.chat_template)",
            ),
            (errors.sp("vllm/entrypoints/chat_utils.py"), 819, "validate_chat_template", "raise ValueError("),
        ]
        raise errors.VllmFailure(
            errors.render(
                frames, f"ValueError: The supplied chat template string ({template}) appears path-like, but doesn't exist!"
            )
        )
    if args.enable_auto_tool_choice and not args.tool_call_parser:
        frames = [
            *validate,
            (
                errors.sp("vllm/entrypoints/openai/cli_args.py"),
                273,
                "validate_parsed_serve_args",
                'raise TypeError("Error: --enable-auto-tool-choice requires "',
            ),
        ]
        raise errors.VllmFailure(errors.render(frames, "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser"))


def tool_parsers():
    spec = next(a for a in ACTIONS if a["dest"] == "tool_call_parser")
    return spec["metavar"].split("}")[0].lstrip("{").split(",")


def main(argv=None):
    simulate(PHASE_SECONDS["imports"])
    raw = sys.argv[1:] if argv is None else argv
    try:
        errors.check_platform()
        logfmt.info("__init__.py:241", "Automatically detected platform cuda.")
        parser = build_parser()
        if raw and raw[0] == "serve" and "--model" in raw:
            frames = [
                *errors.ENTRY[:1],
                (errors.sp("vllm/entrypoints/cli/main.py"), 49, "main", "args = parser.parse_args()"),
                (errors.sp("vllm/utils/__init__.py"), 1779, "parse_args", "raise ValueError("),
            ]
            raise errors.VllmFailure(errors.render(frames, MODEL_FLAG_ERROR))
        argv = normalize(pull_config(list(raw), parser))
        args = parser.parse_args(argv)
        deprecation_warnings(argv, args)
        if args.subparser == "serve":
            validate_serve_args(args)
    except errors.VllmFailure as failure:
        sys.stderr.write(failure.text + "\n")
        return failure.code
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
