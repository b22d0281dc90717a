"""Expected sha256 of the tiktoken encodings gpt-oss needs (openai_harmony checks them).

The defaults are the hashes of the twin's deterministic stand-ins (twin/content/make_hf_cache.py --encodings);
set VLLM_TWIN_TIKTOKEN_O200K_SHA256 / VLLM_TWIN_TIKTOKEN_CL100K_SHA256 to require other files, e.g. the real
published ones (446a9538… and 223921b7…, platform-facts §2.6).
"""

import os

STANDIN_SHA256 = {
    "o200k_base.tiktoken": "80be729de6e38a3c522d22d945057b3842aaa466355cc7053a792527823296d7",
    "cl100k_base.tiktoken": "50200d788a1947e83c214dbd4da6d4bad38110fd2049371fcc31a52782703623",
}
ENV = {"o200k_base.tiktoken": "VLLM_TWIN_TIKTOKEN_O200K_SHA256", "cl100k_base.tiktoken": "VLLM_TWIN_TIKTOKEN_CL100K_SHA256"}


def expected_sha256():
    return {name: os.environ.get(ENV[name]) or digest for name, digest in STANDIN_SHA256.items()}
