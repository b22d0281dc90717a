"""The twin HF cache generator: real cache layout, valid safetensors, honest scale, determinism."""

import hashlib
import json
import os
import struct
import zipfile

import make_hf_cache
import pytest

from twin_support import EAGLE, GPT_OSS, LLAMA
from vllm_twin import tiktoken_files


def repo_dir(hub, repo_id):
    return hub / "hub" / ("models--" + repo_id.replace("/", "--"))


def test_layout_refs_snapshots_and_relative_blob_links(hub):
    repo = repo_dir(hub, LLAMA)
    rev = (repo / "refs" / "main").read_text()
    assert len(rev) == 40 and not rev.endswith("\n")
    snapshot = repo / "snapshots" / rev
    for entry in snapshot.iterdir():
        assert entry.is_symlink()
        target = os.readlink(entry)
        assert target.startswith("../../blobs/"), target
        assert entry.resolve().parent == (repo / "blobs").resolve()
    config = json.loads((snapshot / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["torch_dtype"] == "bfloat16"
    assert json.loads((snapshot / "generation_config.json").read_text())["temperature"] == 0.6


def test_weights_are_valid_safetensors_with_lfs_sha256_blob_names(hub):
    snapshot = next((repo_dir(hub, LLAMA) / "snapshots").iterdir())
    index = json.loads((snapshot / "model.safetensors.index.json").read_text())
    assert index["metadata"]["twin_scale"] == make_hf_cache.DEFAULT_SCALE
    shards = sorted(set(index["weight_map"].values()))
    assert shards == [f"model-0000{i}-of-00004.safetensors" for i in range(1, 5)]
    actual = 0
    for shard in shards:
        data = (snapshot / shard).read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        assert len(data) == 8 + n + end
        assert os.path.basename(os.path.realpath(snapshot / shard)) == hashlib.sha256(data).hexdigest()
        actual += len(data)
    nominal = index["metadata"]["total_size"]
    assert abs(actual * index["metadata"]["twin_scale"] - nominal) / nominal < 0.01


def test_real_config_shapes_of_the_workshop_models(hub):
    def config(repo_id):
        snapshot = next((repo_dir(hub, repo_id) / "snapshots").iterdir())
        return json.loads((snapshot / "config.json").read_text())

    assert config(GPT_OSS)["quantization_config"]["quant_method"] == "mxfp4"
    assert config("nvidia/Llama-3.1-8B-Instruct-FP8")["quantization_config"]["quant_algo"] == "FP8"
    assert config("nvidia/Llama-3.1-8B-Instruct-FP4")["quantization_config"]["quant_algo"] == "NVFP4"
    assert config(EAGLE)["architectures"] == ["LlamaForCausalLMEagle3"]
    eagle = next((repo_dir(hub, EAGLE) / "snapshots").iterdir())
    with zipfile.ZipFile(eagle / "pytorch_model.bin") as zf:  # no wall-clock timestamps: deterministic blobs
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_deterministic_and_model_selection(tmp_path):
    for run in ("a", "b"):
        make_hf_cache.main(["--hub-dir", str(tmp_path / run), "--models", "llama-fp4,eagle3"])
    listing = {run: sorted(p.name for p in (tmp_path / run).glob("*/blobs/*")) for run in ("a", "b")}
    assert listing["a"] == listing["b"] and listing["a"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "models--nvidia--Llama-3.1-8B-Instruct-FP4",
        "models--yuhuili--EAGLE3-LLaMA3.1-Instruct-8B",
    ]


def test_encodings_are_the_published_files_the_twin_requires(hub):
    for name, digest in tiktoken_files.PUBLISHED_SHA256.items():
        data = (hub / "encodings" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        first = data.split(b"\n")[0].split(b" ")
        assert len(first) == 2 and first[1] == b"0"
    assert tiktoken_files.expected_sha256() == tiktoken_files.PUBLISHED_SHA256


def test_tokenizer_files_are_the_published_ones_stored_as_lfs_blobs(hub):
    # tokenizer.json is byte-identical to the model repos' (their LFS sha256), so the blob has the real name
    published = {
        LLAMA: "79e3e522635f3171300913bb421464a87de6222182a0570b9b2ccba2a964b2b4",
        GPT_OSS: "0614fe83cadab421296e664e1f48f4261fa8fef6e03e63bb75c20f38e37d07d3",
    }
    for repo_id, digest in published.items():
        snapshot = next((repo_dir(hub, repo_id) / "snapshots").iterdir())
        assert os.readlink(snapshot / "tokenizer.json") == f"../../blobs/{digest}"
        config = json.loads((snapshot / "tokenizer_config.json").read_text())
        assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and "{%" in config["chat_template"]
    llama = next((repo_dir(hub, LLAMA) / "snapshots").iterdir())
    config = json.loads((llama / "tokenizer_config.json").read_text())
    assert config["bos_token"] == "<|begin_of_text|>" and config["eos_token"] == "<|eot_id|>"
    assert len(config["added_tokens_decoder"]) == 256 and "Cutting Knowledge Date" in config["chat_template"]
    oss = next((repo_dir(hub, GPT_OSS) / "snapshots").iterdir())
    config = json.loads((oss / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"], config["pad_token"]) == ("<|startoftext|>", "<|return|>", "<|endoftext|>")
    assert config["added_tokens_decoder"]["200006"]["content"] == "<|start|>" and "<|channel|>" in config["chat_template"]


def test_generator_needs_converted_tokenizers_outside_a_checkout(tmp_path, capsys):
    with pytest.raises(SystemExit):
        make_hf_cache.main(["--hub-dir", str(tmp_path / "hub"), "--tokenizers", str(tmp_path / "missing")])
    assert "no converted tokenizers" in capsys.readouterr().err
