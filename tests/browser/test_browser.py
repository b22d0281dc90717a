"""End to end, in a real browser: the real Open WebUI (PyPI open-webui 0.12.4) started with exactly the environment the
open_webui role renders, in front of the vLLM twin (docker run thor-twin/vllm:25.09-py3); headless Debian chromium,
driven by Playwright, signs in as the admin, picks the stage's model, sends the workshop prompt and sees the answer
stream in. The official openai client streams a chat from the vLLM endpoint and through Open WebUI's
OpenAI-compatible API, and the collection's open_webui_api module runs against the real Open WebUI.

Run with `make browser-test` (tests/browser/run.sh): it installs what this needs (tests/browser/setup.sh) and runs this
file with build/venvs/browser/bin/pytest. Artefacts (screenshots, logs, timings) go to build/browser/.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "browser"
SHOTS = OUT / "screenshots"
MAIN_VENV = ROOT / ".venv" / "bin"
VLLM_IMAGE = "thor-twin/vllm:25.09-py3"
VLLM_CONTAINER = "thor-browser-vllm"
VLLM_PORT = int(os.environ.get("BROWSER_TEST_VLLM_PORT", "18000"))
WEBUI_PORT = int(os.environ.get("BROWSER_TEST_WEBUI_PORT", "18080"))
VLLM_KEY = "browser-test-vllm-key"
ADMIN_PASSWORD = "browser-test-admin-pw"  # a throw-away instance on loopback
STAGE = {"name": "fp8", "served_name": "nvidia/Llama-3.1-8B-Instruct-FP8", "ready": True}
MODEL = STAGE["served_name"]
# The workshop's prompt (workshop-procedure.md, "Baseline prompt & measurements").
PROMPT = "Write a 5-sentence paragraph explaining the main benefit of using Jetson Thor for an autonomous robotics developer."
TIMINGS: dict[str, float] = {}


def _http(method, url, body=None, token=None, timeout=30):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None, headers=headers, method=method
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _wait(url, seconds, proc=None, log=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}; see {log}")
        try:
            if _http("GET", url, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds} s; see {log}")


@pytest.fixture(scope="session", autouse=True)
def artefacts():
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield
    (OUT / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.fixture(scope="session")
def rendered():
    """The role's environment, rendered by the role itself (tests/unit/roles/files/open_webui_render_env.yml, which the
    unit tests run too)."""
    dest = OUT / "env.json"
    extra = {
        "open_webui_admin_password": ADMIN_PASSWORD,
        "open_webui_vllm_base_url": f"http://127.0.0.1:{VLLM_PORT}/v1",
        "open_webui_vllm_api_key": VLLM_KEY,
        "open_webui_port": WEBUI_PORT,
        "vllm_stage_state": STAGE,
    }
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    argv = [
        str(MAIN_VENV / "ansible-playbook"),
        "-i",
        "localhost,",
        str(ROOT / "tests/unit/roles/files/open_webui_render_env.yml"),
    ]
    argv += ["-e", f"render_env_dest={dest}", "-e", json.dumps(extra)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(dest.read_text())


@pytest.fixture(scope="session")
def vllm():
    """The vLLM twin in a container on the host network (no NVIDIA runtime here: a simulated GPU directory is mounted
    where the unit's runtime shim would put it, docs/vllm-twin.md)."""
    hub, gpu = OUT / "hf" / "hub", OUT / "gpu"
    if not (hub / "models--nvidia--Llama-3.1-8B-Instruct-FP8").exists():
        subprocess.run(
            [
                str(MAIN_VENV / "python"),
                str(ROOT / "twin/content/make_hf_cache.py"),
                "--hub-dir",
                str(hub),
                "--models",
                "llama-fp8",
            ],
            check=True,
            timeout=300,
        )
    gpu.mkdir(parents=True, exist_ok=True)
    (gpu / "device.json").write_text(
        json.dumps({"name": "NVIDIA Thor", "total_bytes": 131881500672, "nvml_ok": True, "simulated": True})
    )
    (gpu / "meminfo").write_text("MemTotal:       128790528 kB\nMemFree:        125000000 kB\n")
    subprocess.run(["docker", "rm", "-f", VLLM_CONTAINER], capture_output=True, check=False)
    start = time.monotonic()
    subprocess.run(
        ["docker", "run", "-d", "--name", VLLM_CONTAINER, "--network", "host", "--shm-size", "1g",
         "-v", f"{hub.parent}:/root/.cache/huggingface", "-v", f"{gpu}:/run/nvidia-twin",
         "-e", "HF_HUB_OFFLINE=1", "-e", "VLLM_TWIN_TIME_SCALE=0.25",
         VLLM_IMAGE, "vllm", "serve", MODEL, "--host", "127.0.0.1", "--port", str(VLLM_PORT), "--api-key", VLLM_KEY],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{VLLM_PORT}/health", 120, log="docker logs " + VLLM_CONTAINER)
        TIMINGS["vllm_twin_ready_s"] = round(time.monotonic() - start, 1)
        yield f"http://127.0.0.1:{VLLM_PORT}/v1"
    finally:
        logs = subprocess.run(["docker", "logs", VLLM_CONTAINER], capture_output=True, text=True, check=False)
        (OUT / "vllm.log").write_text(logs.stdout + logs.stderr)
        subprocess.run(["docker", "rm", "-f", VLLM_CONTAINER], capture_output=True, check=False)


@pytest.fixture(scope="session")
def webui(rendered, vllm):
    """The real Open WebUI, `open-webui serve`, with the role's environment. Only what the image itself sets
    (DATA_DIR) and the secret key the role keeps on the unit (a fresh one here) are added."""
    data = OUT / "data"
    subprocess.run(["rm", "-rf", str(data)], check=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(OUT / "home"), "LANG": "C.UTF-8"}
    env.update(rendered["env"])
    env.update({"DATA_DIR": str(data), "WEBUI_SECRET_KEY": secrets.token_urlsafe(48)})
    log = (OUT / "open-webui.log").open("w")
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "open-webui"), "serve", "--host", "127.0.0.1", "--port", rendered["env"]["PORT"]],
        env=env, cwd=OUT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{rendered['env']['PORT']}"
    try:
        _wait(url + "/health", 300, proc=proc, log=OUT / "open-webui.log")
        TIMINGS["open_webui_health_s"] = round(time.monotonic() - start, 1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _signin(webui, email, password):
    status, body = _http("POST", webui + "/api/v1/auths/signin", {"email": email, "password": password})
    assert status == 200, body
    return body


@pytest.fixture(scope="session")
def api_check(webui, rendered):
    """The collection's open_webui_api module (what the role's verify step runs on a unit) against the real Open WebUI,
    twice, through tests/browser/api_check.yml. Returns both results."""
    spec = {
        "url": webui,
        "email": rendered["admin"]["email"],
        "password": rendered["admin"]["password"],
        "settings": rendered["settings"],
        "openai_api_keys": [VLLM_KEY],
        "expected_model": rendered["expected_model"],
    }
    spec_file = OUT / "api_check_in.json"
    spec_file.write_text(json.dumps({"api_check": spec}))
    os.chmod(spec_file, 0o600)
    results = []
    for run in (1, 2):
        out = OUT / f"api_check_{run}.json"
        argv = [str(MAIN_VENV / "ansible-playbook"), "-i", "localhost,", str(ROOT / "tests/browser/api_check.yml")]
        argv += ["-e", f"@{spec_file}", "-e", f"api_check_out={out}"]
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ADMIN_PASSWORD not in proc.stdout and VLLM_KEY not in proc.stdout
        results.append(json.loads(out.read_text()))
    TIMINGS["module_first_run_updated"] = results[0]["updated"]
    return results


def test_the_role_module_keeps_the_settings_and_finds_the_model(api_check, rendered):
    """The first run may put back ENABLE_SIGNUP (Open WebUI turns sign-up off, in memory, after it creates the admin
    from the environment); the second changes nothing."""
    first, second = api_check
    assert rendered["expected_model"] == MODEL
    assert first["expected_model_listed"] is True and first["user"]["role"] == "admin"
    assert set(first["updated"]) <= {"ENABLE_SIGNUP"}
    assert second["changed"] is False and second["updated"] == []
    assert second["settings"]["ENABLE_SIGNUP"] is True and second["settings"]["OPENAI_API_KEYS"] == ["(set)"]


def test_a_participant_signs_up_and_sees_the_model(webui, rendered, api_check):
    # After the role's module ran (api_check): sign-up is on, as the inventory says.
    status, user = _http(
        "POST",
        webui + "/api/v1/auths/signup",
        {"name": "Participant", "email": "p1@workshop.local", "password": "participant-pw"},
    )
    assert status == 200, user
    assert user["role"] == rendered["env"]["DEFAULT_USER_ROLE"] == "user"
    status, models = _http("GET", webui + "/api/models", token=user["token"])
    assert status == 200 and MODEL in [m["id"] for m in models["data"]]


def _stream(client, **kw):
    chunks, text, times = 0, "", []
    for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True, **kw):
        if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
            chunks += 1
            times.append(time.monotonic())
            text += chunk.choices[0].delta.content
    return chunks, text, times


def test_the_openai_client_streams_from_vllm_and_through_open_webui(webui, vllm, rendered):
    from openai import OpenAI

    direct = OpenAI(base_url=vllm, api_key=VLLM_KEY)
    chunks, text, times = _stream(direct, max_tokens=64)
    assert chunks > 1 and text.strip() and times[-1] > times[0]
    token = _signin(webui, rendered["admin"]["email"], rendered["admin"]["password"])["token"]
    through = OpenAI(base_url=webui + "/api", api_key=token)
    chunks, text, times = _stream(through, max_tokens=64)
    assert chunks > 1 and text.strip() and times[-1] > times[0]
    (OUT / "openai_through_open_webui.txt").write_text(text)


def test_a_real_browser_signs_in_picks_the_model_and_sees_a_streamed_answer(webui, rendered):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            _browser_chat(page, webui, rendered)
        finally:
            page.screenshot(path=str(SHOTS / "99-last.png"), full_page=True)
            browser.close()


def _browser_chat(page, webui, rendered):
    page.set_default_timeout(60_000)
    page.goto(webui + "/auth")
    # open-webui 0.12.4's sign-in form (its frontend build): #email, #password.
    page.locator("#email").fill(rendered["admin"]["email"])
    page.locator("#password").fill(rendered["admin"]["password"])
    page.screenshot(path=str(SHOTS / "01-sign-in.png"))
    page.locator("#password").press("Enter")
    page.locator("#chat-input").wait_for(state="visible", timeout=90_000)
    # A first sign-in may open the "what's new" dialog over the chat, a moment after the page.
    page.wait_for_timeout(2000)
    for label in ("Okay, Let's Go!", "Okay", "Close"):
        button = page.get_by_role("button", name=label)
        if button.count() and button.first.is_visible():
            button.first.click()
            break
    else:
        page.keyboard.press("Escape")
    page.screenshot(path=str(SHOTS / "02-signed-in.png"))
    # The model selector: aria-label "Select a model", or "Selected model: <name>" once one is selected; its options are
    # role=option with data-value = the model id, filtered through #model-search-input.
    trigger = page.locator('[aria-label="Select a model"], [aria-label^="Selected model:"]').first
    trigger.wait_for(state="visible")
    if MODEL not in (trigger.get_attribute("aria-label") or ""):
        trigger.click()
        page.locator("#model-search-input").fill(MODEL)
        page.locator(f'[role="option"][data-value="{MODEL}"]').first.click()
    page.locator(f'[aria-label="Selected model: {MODEL}"]').first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "03-model-picked.png"))
    page.locator("#chat-input").click()
    page.keyboard.type(PROMPT)
    page.keyboard.press("Enter")
    answer = page.locator("#response-content-container").last
    answer.wait_for(state="visible", timeout=90_000)
    # Streamed: the answer is seen while it is still growing, then complete.
    lengths, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        text = answer.inner_text()
        lengths.append(len(text.strip()))
        if len(lengths) == 3:
            page.screenshot(path=str(SHOTS / "04-streaming.png"))
        if len(lengths) > 6 and lengths[-1] == lengths[-2] == lengths[-3] == lengths[-4] and lengths[-1] > 0:
            break
        time.sleep(0.25)
    page.screenshot(path=str(SHOTS / "05-answer.png"), full_page=True)
    final = answer.inner_text().strip()
    (OUT / "browser_answer.txt").write_text(final)
    growing = [n for n in lengths if 0 < n < lengths[-1]]
    TIMINGS["browser_answer_chars"] = lengths[-1]
    assert final, "no answer text in the page"
    assert growing, f"the answer did not grow while it was read (lengths seen: {lengths[:20]}...)"
