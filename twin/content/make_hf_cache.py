#!/usr/bin/env python3
"""Write twin Hugging Face hub caches for the workshop's models (stdlib only, deterministic).

Each repo gets the real HF cache layout (``models--org--name/{blobs,refs/main,snapshots/<rev>}``, snapshot
entries are relative symlinks into ``blobs/``), the real ``config.json`` shape, generation config, the model's
real tokenizer (tokenizer.json, tokenizer_config.json with the chat template, special_tokens_map.json) and
weights as valid safetensors shards (a torch zip for the EAGLE3 head) whose sizes are the real checkpoint's
divided by ``--scale``. The scale is recorded in the index metadata (``twin_scale``) so that nominal bytes =
actual bytes x scale; everything derived from it is simulated.

The tokenizer files and the tiktoken encodings come from ``--tokenizers DIR``, the output of
``twin/content/tokenizers/build_tokenizers.py`` (converted at build time from pinned registry packages). In a
checkout the default is ``build/tokenizers``, built on first use; elsewhere (a twin unit) give the directory.

    python3 twin/content/make_hf_cache.py --hub-dir /tmp/hf/hub --scale 100000 --encodings /tmp/enc
"""

import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

DEFAULT_SCALE = 100_000
BLOCK = 1 << 20

LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3",
    "use_cache": True,
    "vocab_size": 128256,
}
LLAMA_GENERATION = {
    "bos_token_id": 128000,
    "do_sample": True,
    "eos_token_id": [128001, 128008, 128009],
    "temperature": 0.6,
    "top_p": 0.9,
    "transformers_version": "4.42.3",
}


def modelopt(algo):
    """config.json quantization_config and hf_quant_config.json of an NVIDIA ModelOpt checkpoint."""
    quant = {"quant_algo": algo, "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}
    if algo == "NVFP4":
        quant["group_size"] = 16
    return ({"quant_method": "modelopt", **quant}, {"producer": {"name": "modelopt", "version": "0.29.0"}, "quantization": quant})


def llama_variant(quant_algo=None):
    config = dict(LLAMA_31_8B)
    extra = {}
    if quant_algo:
        config["quantization_config"], extra["hf_quant_config.json"] = modelopt(quant_algo)
        config["transformers_version"] = "4.48.1"
    return config, extra


GPT_OSS_120B = {
    "architectures": ["GptOssForCausalLM"],
    "attention_bias": True,
    "attention_dropout": 0.0,
    "eos_token_id": 200002,
    "experts_per_token": 4,
    "head_dim": 64,
    "hidden_act": "silu",
    "hidden_size": 2880,
    "initial_context_length": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 18,
    "max_position_embeddings": 131072,
    "model_type": "gpt_oss",
    "num_attention_heads": 64,
    "num_experts_per_tok": 4,
    "num_hidden_layers": 36,
    "num_key_value_heads": 8,
    "num_local_experts": 128,
    "output_router_logits": False,
    "pad_token_id": 199999,
    "quantization_config": {
        "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
        "quant_method": "mxfp4",
    },
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "factor": 32.0,
        "original_max_position_embeddings": 4096,
        "rope_type": "yarn",
        "truncate": False,
    },
    "rope_theta": 150000,
    "router_aux_loss_coef": 0.9,
    "sliding_window": 128,
    "swiglu_limit": 7.0,
    "tie_word_embeddings": False,
    "transformers_version": "4.55.0.dev0",
    "use_cache": True,
    "vocab_size": 201088,
}
EAGLE3_LLAMA = {
    "architectures": ["LlamaForCausalLMEagle3"],
    "bos_token_id": 128000,
    "draft_vocab_size": 32000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 2048,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 1,
    "num_key_value_heads": 8,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.28.1",
    "use_cache": True,
    "vocab_size": 128256,
}

LLAMA_LAYER = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]
GPT_OSS_LAYER = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "self_attn.sinks",
    "mlp.router.weight",
    "mlp.experts.gate_up_proj_blocks",
    "mlp.experts.gate_up_proj_scales",
    "mlp.experts.down_proj_blocks",
    "mlp.experts.down_proj_scales",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]


def llama_repo(alias, quant_algo, count, total):
    """A Llama-3.1-8B-Instruct checkpoint (bf16, or ModelOpt FP8/NVFP4) with `count` shards of `total` bytes."""
    config, extra = llama_variant(quant_algo)
    return {
        "alias": alias,
        "config": config,
        "extra": extra,
        "tokenizer": "llama3",
        "generation": LLAMA_GENERATION,
        "shards": {
            "name": "model-{i:05d}-of-{n:05d}.safetensors",
            "count": count,
            "first": 1,
            "total": total,
            "layer": LLAMA_LAYER,
        },
    }


# repo id -> short alias, config, extra files, tokenizer kind, shard layout.
# Shard sizes are the published checkpoints' (nominal bytes); "format" bin = a torch zip checkpoint.
MODELS = {
    "openai/gpt-oss-120b": {
        "alias": "gpt-oss-120b",
        "config": GPT_OSS_120B,
        "tokenizer": "gpt-oss",
        "generation": {
            "bos_token_id": 199998,
            "do_sample": True,
            "eos_token_id": [200002, 199999, 200012],
            "pad_token_id": 199999,
            "transformers_version": "4.55.0.dev0",
        },
        "shards": {
            "name": "model-{i:05d}-of-{last:05d}.safetensors",
            "count": 15,
            "first": 0,
            "total": 65_248_815_744,
            "layer": GPT_OSS_LAYER,
        },
        # The repo also ships the original checkpoint; vLLM does not read it, but it is on disk (~122 GB total).
        "original": {"name": "original/model--{i:05d}-of-{n:05d}.safetensors", "count": 7, "total": 60_771_229_120},
    },
    "meta-llama/Llama-3.1-8B-Instruct": llama_repo("llama-fp16", None, 4, 16_060_522_496),
    "nvidia/Llama-3.1-8B-Instruct-FP8": llama_repo("llama-fp8", "FP8", 2, 9_083_844_608),
    "nvidia/Llama-3.1-8B-Instruct-FP4": llama_repo("llama-fp4", "NVFP4", 2, 6_054_416_384),
    "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B": {
        "alias": "eagle3",
        "config": EAGLE3_LLAMA,
        "tokenizer": None,
        "generation": None,
        "shards": {
            "name": "pytorch_model.bin",
            "count": 1,
            "first": 1,
            "total": 850_419_266,
            "layer": LLAMA_LAYER,
            "format": "bin",
        },
    },
}

DTYPES = {"U8": 1, "BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1}


def det_bytes(seed, n):
    """n deterministic pseudo-random bytes, produced block by block."""
    for start in range(0, n, BLOCK):
        yield hashlib.shake_256(f"{seed}:{start}".encode()).digest(min(BLOCK, n - start))


def tensor_names(spec, layers):
    names = [f"model.layers.{i}.{t}" for i in layers for t in spec["layer"]]
    return names


def split_layers(n_layers, count):
    return [range(i * n_layers // count, (i + 1) * n_layers // count) for i in range(count)]


def tensor_dtype(name, config):
    quant = config.get("quantization_config", {})
    if name.endswith("_blocks") or name.endswith("_scales"):
        return "U8"
    if quant.get("quant_method") == "modelopt" and name.endswith("proj.weight"):
        return "U8" if quant.get("quant_algo") == "NVFP4" else "F8_E4M3"
    return "F16" if config.get("torch_dtype") == "float16" else "BF16"


def safetensors_header(names, config, data_bytes):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    share = max(16, data_bytes // max(1, len(names)))
    for name in names:
        dtype = tensor_dtype(name, config)
        size = max(1, share // DTYPES[dtype]) * DTYPES[dtype]
        header[name] = {"dtype": dtype, "shape": [size // DTYPES[dtype]], "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8), offset


def safetensors_file(names, config, actual_bytes, seed):
    """A valid safetensors file (u64 header length, JSON header, data) of about actual_bytes in total."""
    raw, _ = safetensors_header(names, config, actual_bytes)
    raw, data_bytes = safetensors_header(names, config, actual_bytes - 8 - len(raw))
    out = io.BytesIO()
    out.write(struct.pack("<Q", len(raw)) + raw)
    for chunk in det_bytes(seed, data_bytes):
        out.write(chunk)
    return out.getvalue()


def torch_zip(names, actual_bytes, seed):
    """A torch.save-style zip checkpoint (archive/data.pkl + archive/data/N), stored uncompressed."""
    out = io.BytesIO()
    share = max(16, actual_bytes // max(1, len(names)))
    def member(name):  # a fixed timestamp keeps the archive (and its sha256 blob name) deterministic
        return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))

    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(member("archive/data.pkl"), json.dumps({"twin_tensors": names}).encode())
        zf.writestr(member("archive/version"), b"3\n")
        for i, _name in enumerate(names):
            zf.writestr(member(f"archive/data/{i}"), b"".join(det_bytes(f"{seed}:{i}", share)))
    return out.getvalue()


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
ENCODINGS = ("o200k_base.tiktoken", "cl100k_base.tiktoken")


def tokenizer_files(kind, tokenizers):
    """The model's real tokenizer files ("llama3" or "gpt-oss"), as converted by build_tokenizers.py."""
    return {name: (Path(tokenizers) / kind / name).read_bytes() for name in TOKENIZER_FILES}


def default_tokenizers():
    """build/tokenizers of this checkout, built (or found current) by build_tokenizers.py; None outside one."""
    here = Path(__file__).resolve().parent
    builder = here / "tokenizers" / "build_tokenizers.py"
    if not builder.exists():
        return None
    out = here.parents[1] / "build" / "tokenizers"
    run = subprocess.run([sys.executable, str(builder), "--out", str(out)], capture_output=True, text=True)
    print(run.stdout + run.stderr, end="", file=sys.stderr)
    if run.returncode:
        raise SystemExit(f"{builder} failed (exit {run.returncode})")
    return out


def dumps(obj):
    return (json.dumps(obj, indent=2) + "\n").encode()


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """Writes one models--org--name directory: blobs, snapshot symlinks, refs/main."""

    def __init__(self, hub_dir, repo_id):
        self.root = Path(hub_dir) / ("models--" + repo_id.replace("/", "--"))
        self.rev = hashlib.sha1(f"thor-twin:{repo_id}".encode()).hexdigest()
        self.snapshot = self.root / "snapshots" / self.rev
        self.actual = 0

    def add(self, rel, data, lfs):
        blob = hashlib.sha256(data).hexdigest() if lfs else git_blob_id(data)
        blob_path = self.root / "blobs" / blob
        blob_path.parent.mkdir(parents=True, exist_ok=True)
        if not blob_path.exists() or blob_path.stat().st_size != len(data):
            blob_path.write_bytes(data)
        link = self.snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        depth = len(Path(rel).parts) + 1
        link.symlink_to(Path(*[".."] * depth) / "blobs" / blob)
        self.actual += len(data)

    def finish(self):
        refs = self.root / "refs"
        refs.mkdir(parents=True, exist_ok=True)
        (refs / "main").write_text(self.rev)


def write_weights(repo, repo_id, spec, scale):
    shards, config = spec["shards"], spec["config"]
    n, first = shards["count"], shards["first"]
    files = [shards["name"].format(i=first + i, n=n, last=first + n - 1) for i in range(n)]
    layer_sets = split_layers(config["num_hidden_layers"], n)
    weight_map = {}
    for idx, (fname, layers) in enumerate(zip(files, layer_sets, strict=False)):
        names = tensor_names(shards, layers)
        if idx == 0:
            names.insert(0, "model.embed_tokens.weight")
        if idx == n - 1:
            names += ["model.norm.weight", "lm_head.weight"]
        actual = shards["total"] // n // scale
        seed = f"{repo_id}:{fname}"
        if shards.get("format") == "bin":
            data = torch_zip(names, actual, seed)
        else:
            data = safetensors_file(names, config, actual, seed)
        repo.add(fname, data, lfs=True)
        weight_map.update({name: fname for name in names})
    if n > 1:
        index = {
            "metadata": {"total_size": shards["total"], "twin_scale": scale, "twin_simulated": True},
            "weight_map": weight_map,
        }
        index_name = "pytorch_model.bin.index.json" if shards.get("format") == "bin" else "model.safetensors.index.json"
        repo.add(index_name, dumps(index), lfs=False)
    else:
        repo.add("twin_scale.json", dumps({"twin_scale": scale, "twin_simulated": True}), lfs=False)
    original = spec.get("original")
    if original:
        for i in range(original["count"]):
            fname = original["name"].format(i=i + 1, n=original["count"])
            data = safetensors_file(
                [f"block.{i}.twin"], config, original["total"] // original["count"] // scale, f"{repo_id}:{fname}"
            )
            repo.add(fname, data, lfs=True)


def write_model(hub_dir, repo_id, scale, tokenizers):
    spec = MODELS[repo_id]
    repo = Repo(hub_dir, repo_id)
    repo.add("config.json", dumps(spec["config"]), lfs=False)
    if spec["generation"]:
        repo.add("generation_config.json", dumps(spec["generation"]), lfs=False)
    for name, data in spec.get("extra", {}).items():
        repo.add(name, dumps(data), lfs=False)
    if spec["tokenizer"]:
        for name, data in tokenizer_files(spec["tokenizer"], tokenizers).items():
            repo.add(name, data, lfs=name == "tokenizer.json")
    write_weights(repo, repo_id, spec, scale)
    repo.finish()
    return repo


def write_encodings(directory, tokenizers):
    """The published o200k_base / cl100k_base tiktoken files (gpt-oss's openai_harmony checks their sha256)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name in ENCODINGS:
        data = (Path(tokenizers) / "encodings" / name).read_bytes()
        (directory / name).write_bytes(data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes


def resolve_models(selection):
    if selection == "all":
        return list(MODELS)
    aliases = {spec["alias"]: repo_id for repo_id, spec in MODELS.items()}
    out = []
    for item in selection.split(","):
        item = item.strip()
        repo_id = aliases.get(item, item)
        if repo_id not in MODELS:
            raise SystemExit(f"unknown model {item!r}; known: {', '.join(list(MODELS) + list(aliases))}")
        out.append(repo_id)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub-dir", help="the hub cache directory (HF_HUB_CACHE, i.e. $HF_HOME/hub)")
    parser.add_argument("--models", default="all", help="comma-separated repo ids or aliases, or 'all'")
    parser.add_argument(
        "--scale", type=int, default=DEFAULT_SCALE, help="nominal bytes = actual bytes x scale (default %(default)s)"
    )
    parser.add_argument("--encodings", help="also write the o200k_base / cl100k_base tiktoken encodings here")
    parser.add_argument(
        "--tokenizers",
        default=os.environ.get("THOR_TWIN_TOKENIZERS"),
        help="converted tokenizers (build_tokenizers.py --out; default: this checkout's build/tokenizers)",
    )
    args = parser.parse_args(argv)
    if not args.hub_dir and not args.encodings:
        parser.error("nothing to do: give --hub-dir and/or --encodings")
    if args.scale < 1:
        parser.error("--scale must be >= 1")
    tokenizers = args.tokenizers or default_tokenizers()
    if tokenizers is None or not (Path(tokenizers) / "MANIFEST.json").exists():
        parser.error(f"no converted tokenizers at {tokenizers}: give --tokenizers (build_tokenizers.py --out)")
    if args.hub_dir:
        for repo_id in resolve_models(args.models):
            repo = write_model(args.hub_dir, repo_id, args.scale, tokenizers)
            print(f"{repo_id} rev={repo.rev} actual_bytes={repo.actual} scale={args.scale} (simulated weights)")
    if args.encodings:
        for name, digest in write_encodings(args.encodings, tokenizers).items():
            print(f"{digest}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
