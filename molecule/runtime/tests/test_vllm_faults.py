"""The vLLM twin on a real twin unit: it serves with the NVIDIA runtime and the right cache (test_runtime.py),
and each workshop fault makes `vllm serve` exit non-zero with the message users see."""

from __future__ import annotations

import shlex

import pytest

HUB = "/home/workshop/data/models/huggingface"
REPO = "models--openai--gpt-oss-120b"
CORRUPT = "/tmp/hf-corrupt"

# fault: (extra `docker run` options, environment overrides, serve arguments, text the output must contain)
FAULTS = {
    "no_nvidia_runtime": ("--runtime runc", {}, "openai/gpt-oss-120b", "RuntimeError: Failed to infer device type"),
    "missing_model": ("", {}, "meta-llama/Llama-3.1-70B-Instruct", "We couldn't connect to 'https://huggingface.co'"),
    "missing_encodings": ("", {"TIKTOKEN_ENCODINGS_BASE": "/nowhere"}, "openai/gpt-oss-120b", "HarmonyError"),
    "not_enough_memory": ("", {}, "openai/gpt-oss-120b --gpu-memory-utilization 0.99", "Free memory on device ("),
    "corrupt_shard": (
        f"-v {CORRUPT}:/root/.cache/huggingface",
        {},
        "openai/gpt-oss-120b",
        "safetensors_rust.SafetensorError",
    ),
}
# Wait until memd has processed every released GPU allocation, then drop the page cache those left behind,
# so each fault starts from the same free memory (as the gpu_memory role would before a start).
SETTLE = (
    "for i in $(seq 100); do [ -z \"$(ls -A /run/thor-twin/gpu/alloc)\" ] && break; sleep 0.2; done; "
    "sysctl -q -w vm.drop_caches=3; sleep 1"
)


@pytest.fixture(scope="module")
def corrupt_cache(host, case):
    """A copy of the unit's HF cache whose first gpt-oss shard blob lost its second half (an interrupted copy)."""
    if case != "workshop_broken":
        pytest.skip("the vLLM twin content is on thor-m1")
    host.run(f"rm -rf {CORRUPT}")
    assert host.run(f"cp -a {HUB} {CORRUPT}").rc == 0
    shard = host.check_output(f"ls {CORRUPT}/hub/{REPO}/snapshots/*/*.safetensors | head -n 1")
    path = host.check_output(f"readlink -f {shard}")
    assert "/blobs/" in path, path
    size = int(host.check_output(f"stat -c %s {path}"))
    assert host.run(f"truncate -s {size // 2} {path}").rc == 0
    yield path
    host.run(f"rm -rf {CORRUPT}")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_vllm_twin_fails_like_vllm(host, case, hostvars, corrupt_cache, fault):
    options, overrides, serve_args, expected = FAULTS[fault]
    env = {**hostvars["molecule_vllm_env"], **overrides}
    env_opts = " ".join(f"-e {k}={shlex.quote(v)}" for k, v in env.items())
    volumes = " ".join(f"-v {shlex.quote(v)}" for v in hostvars["molecule_vllm_volumes"])
    if fault == "corrupt_shard":
        volumes = " ".join(f"-v {shlex.quote(v)}" for v in hostvars["molecule_vllm_volumes"] if "huggingface" not in v)
    with host.sudo():
        host.run(SETTLE)
    result = host.run(
        f"timeout 300 docker run --rm --network host {env_opts} {volumes} {options} "
        f"{shlex.quote(hostvars['workshop_vllm_image'])} vllm serve {serve_args} 2>&1"
    )
    assert result.rc not in (0, 124), f"{fault}: vllm serve exited {result.rc}\n{result.stdout[-1500:]}"
    assert expected in result.stdout, f"{fault}: {expected!r} missing from\n{result.stdout[-2500:]}"
    assert "Application startup complete." not in result.stdout
