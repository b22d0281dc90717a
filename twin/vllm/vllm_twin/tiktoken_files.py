"""Expected sha256 of the tiktoken encodings gpt-oss needs (openai_harmony checks them).

The defaults are the published files' hashes (platform-facts §2.6); twin/content/make_hf_cache.py --encodings
writes those very files (converted at build time from a registry package, see docs/vllm-twin.md). Set
VLLM_TWIN_TIKTOKEN_O200K_SHA256 / VLLM_TWIN_TIKTOKEN_CL100K_SHA256 to require other files.
"""

import os

PUBLISHED_SHA256 = {
    "o200k_base.tiktoken": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base.tiktoken": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
ENV = {"o200k_base.tiktoken": "VLLM_TWIN_TIKTOKEN_O200K_SHA256", "cl100k_base.tiktoken": "VLLM_TWIN_TIKTOKEN_CL100K_SHA256"}


def expected_sha256():
    return {name: os.environ.get(ENV[name]) or digest for name, digest in PUBLISHED_SHA256.items()}
