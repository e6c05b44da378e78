"""`sgpa serve` as a real server process on a loopback port, talked to over HTTP with httpx.

The models are the shipped ones (the CTC recogniser explains its own transcript quickly); explanation jobs use
``max_players`` to keep the coalition space small.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from sgpa.service.process import start_server  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sample(name: str) -> tuple[bytes, str]:
    return (SAMPLES / f"{name}.wav").read_bytes(), (SAMPLES / f"{name}.txt").read_text().strip()


def wav_bytes(waveform: np.ndarray, sample_rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, format="WAV")
    return buffer.getvalue()


def wait_for(client: httpx.Client, job_id: str, statuses: tuple[str, ...] = ("done", "failed", "cancelled"),
             timeout_s: float = 120.0, **headers: str) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/explanations/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s")


def submit(client: httpx.Client, name: str = "slt_0000", **fields) -> httpx.Response:
    audio, transcript = sample(name)
    data = {"transcript": transcript, **{key: str(value) for key, value in fields.items()}}
    return client.post("/v1/explanations", files={"audio": (f"{name}.wav", audio, "audio/wav")}, data=data)


def assert_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "\n" not in message and message.strip() == message
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server with a token and small limits: 1 MiB uploads, 10 s of audio, 2 queued jobs, 1 alignment at a time."""
    server = start_server(tmp_path_factory.mktemp("serve") / "data", "--token", TOKEN, "--max-upload-mb", "1",
                          "--max-duration", "10", "--max-queue", "2", "--max-aligns", "1", "--max-waiting-aligns",
                          "0", "--max-budget", "5000")
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        yield server, client
    server.stop()


# --- the token ---------------------------------------------------------------------------------------------


def test_every_api_request_needs_the_token_but_liveness_and_the_viewer_do_not(guarded):
    server, _ = guarded
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/healthz").json()["status"] == "ok"
        assert anonymous.get("/").status_code == 200 and "sgpa" in anonymous.get("/").text
        docs = anonymous.get("/docs").text  # the API docs work offline: Swagger UI is served, not fetched from a CDN
        assert "/docs/assets/swagger-ui-bundle.js" in docs and "cdn." not in docs
        assert anonymous.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert "/v1/explanations/{job_id}" in anonymous.get("/openapi.json").json()["paths"]
        assert_error(anonymous.get("/v1/models"), 401, "token")
        assert anonymous.get("/v1/models").headers["www-authenticate"] == "Bearer"
        assert_error(anonymous.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(anonymous.get("/v1/models", headers={"Authorization": TOKEN}), 401)  # no scheme
        assert_error(anonymous.post("/v1/align"), 401)
        models = anonymous.get("/v1/models", headers=AUTH).json()
    assert [m["name"] for m in models["models"]] == ["sgpa-ctc-en", "sgpa-lfm2-oracle"]
    assert models["limits"]["max_duration_s"] == 10


# --- alignment ---------------------------------------------------------------------------------------------


def test_align_gives_the_segmentation_of_the_api_and_a_textgrid(guarded):
    import sgpa

    _, client = guarded
    audio, transcript = sample("slt_0000")
    response = client.post("/v1/align", files={"audio": ("my clip.wav", audio)}, data={"transcript": transcript})
    assert response.status_code == 200, response.text
    served = response.json()
    local = sgpa.align(SAMPLES / "slt_0000.wav", transcript).to_dict()
    assert [(w["text"], w["start"], w["end"]) for w in served["words"]] == \
        [(w["text"], w["start"], w["end"]) for w in local["words"]]
    assert served["audio"]["sha256"] == local["audio"]["sha256"]
    assert served["audio"]["path"] == "my clip.wav"  # the client's name as a label, no server path

    whisper = client.post("/v1/align", files={"audio": ("a.wav", audio)},
                          data={"transcript": transcript, "grid": "whisper", "max_players": "3"}).json()
    assert whisper["grid"]["token_duration_s"] == pytest.approx(0.02) and len(whisper["words"]) == 3

    textgrid = client.post("/v1/align?format=textgrid", files={"audio": ("a.wav", audio)},
                           data={"transcript": transcript})
    assert textgrid.status_code == 200 and textgrid.text.startswith('File type = "ooTextFile"')
    assert all(f'"{word}"' in textgrid.text for word in transcript.split())
    assert 'filename="a.TextGrid"' in textgrid.headers["content-disposition"]


def test_align_refuses_bad_input_with_one_line_and_the_right_status(guarded):
    _, client = guarded
    audio, transcript = sample("slt_0000")
    assert_error(client.post("/v1/align", files={"audio": ("x.wav", b"RIFF not really a wave file")},
                             data={"transcript": transcript}), 422, "cannot read audio")
    assert_error(client.post("/v1/align", files={"audio": ("x.wav", audio)}, data={"transcript": "   "}), 422,
                 "transcript is empty")
    assert_error(client.post("/v1/align", files={"audio": ("x.wav", audio)}), 422, "transcript")
    assert_error(client.post("/v1/align", files={"audio": ("x.wav", audio)},
                             data={"transcript": transcript, "grid": "telegraph"}), 422, "unknown grid")
    assert_error(client.post("/v1/align", files={"audio": ("x.wav", audio)},
                             data={"transcript": transcript, "alpha": "7"}), 422, "alpha")
    assert_error(client.post("/v1/align?format=praat", files={"audio": ("x.wav", audio)},
                             data={"transcript": transcript}), 422, "format")
    long_audio = wav_bytes(0.1 * np.sin(np.arange(16000 * 12) * 0.05).astype(np.float32))  # 12 s > 10 s
    assert_error(client.post("/v1/align", files={"audio": ("long.wav", long_audio)}, data={"transcript": "a b"}),
                 422, "long.wav")
    too_big = wav_bytes(np.zeros(16000 * 40, dtype=np.float32))  # 1.2 MiB > 1 MiB
    assert_error(client.post("/v1/align", files={"audio": ("big.wav", too_big)}, data={"transcript": "a"}), 413,
                 "1 MiB")

    def chunks():  # no Content-Length: refused once the body grows past the limit
        yield b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        for _ in range(40):
            yield b"x" * 65536

    chunked = client.post("/v1/align", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_error(chunked, 413, "1 MiB")


def test_a_burst_of_alignments_beyond_the_slots_is_turned_away_with_503(guarded):
    _, client = guarded
    audio, transcript = sample("librivox_0000")

    def align_once(_: int) -> int:
        return client.post("/v1/align", files={"audio": ("a.wav", audio)}, data={"transcript": transcript}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(align_once, range(8)))
    assert set(statuses) <= {200, 503} and 200 in statuses


# --- explanation jobs ------------------------------------------------------------------------------------


def test_an_explanation_job_runs_to_a_complete_result(guarded):
    _, client = guarded
    response = submit(client, "slt_0000", max_players=3)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/explanations/{job['id']}"
    assert job["status"] in ("queued", "running") and job["parameters"]["model"] == "sgpa-ctc-en"
    done = wait_for(client, job["id"])
    assert done["status"] == "done", done
    explanation = done["explanation"]
    assert len(explanation["players"]) == 3 and explanation["method"] == "exact"
    assert done["progress"]["evaluations_done"] == explanation["cost"]["n_evaluations"] == 8
    assert sum(explanation["phi_total"]) == pytest.approx(explanation["v_full_total"] - explanation["v_empty_total"])
    assert explanation["audio"]["path"] == "slt_0000.wav"

    base = f"/v1/explanations/{job['id']}"
    assert client.get(f"{base}/plot.png").content.startswith(b"\x89PNG")
    assert client.get(f"{base}/spectrogram.png").content.startswith(b"\x89PNG")
    assert client.get(f"{base}/audio").content == (SAMPLES / "slt_0000.wav").read_bytes()
    assert client.get(f"{base}/textgrid").text.startswith('File type = "ooTextFile"')
    assert len(client.get(f"{base}/segments").json()["words"]) == 3
    assert job["id"] in [j["id"] for j in client.get("/v1/explanations").json()["jobs"]]

    assert client.delete(base).json() == {"id": job["id"], "status": "deleted"}
    assert_error(client.get(base), 404)


def test_explanation_requests_are_checked_before_they_are_queued(guarded):
    _, client = guarded
    assert_error(submit(client, model="whisper-giant"), 422, "unknown model", "sgpa-ctc-en")
    assert_error(submit(client, estimator="guess"), 422, "unknown attribution method")
    assert_error(submit(client, budget=100_000), 422, "5000")
    assert_error(submit(client, masking="embedding-mean"), 422, "unknown masking", "silence")
    assert_error(submit(client, text_players="true"), 422, "text players")
    assert_error(submit(client, normalization="loud"), 422, "unknown normalization", "per-input")
    assert_error(submit(client, seed=-1), 422, "seed")
    empty = client.post("/v1/explanations", files={"audio": ("a.wav", sample("slt_0000")[0])},
                        data={"transcript": "?!"})
    assert_error(empty, 422, "transcript is empty")
    corrupt = client.post("/v1/explanations", files={"audio": ("bad.flac", b"fLaC garbage")},
                          data={"transcript": "hello"})
    assert_error(corrupt, 422, "bad.flac", "cannot read audio")
    for unknown in ("0123456789abcdef0123456789abcdef", "../../etc/passwd", "x"):
        assert client.get(f"/v1/explanations/{unknown}").status_code == 404
        assert client.delete(f"/v1/explanations/{unknown}").status_code == 404
    assert client.get("/v1/explanations").json()["jobs"] == []  # nothing was queued


def test_a_full_queue_answers_429_and_cancelling_stops_a_running_job(guarded):
    _, client = guarded
    long_job = submit(client, "slt_0000", estimator="permutation", budget=4000).json()  # minutes if left to run
    wait_for(client, long_job["id"], statuses=("running",))
    queued = [submit(client, "slt_0000", max_players=2).json() for _ in range(2)]
    assert all(job["status"] == "queued" for job in queued)
    assert_error(submit(client, "slt_0000", max_players=2), 429, "queue is full")

    assert client.delete(f"/v1/explanations/{queued[1]['id']}").json()["status"] == "cancelled"
    started = time.monotonic()
    assert client.delete(f"/v1/explanations/{long_job['id']}").json()["status"] == "cancelled"
    first_queued = wait_for(client, queued[0]["id"])  # the worker is free again at once
    assert first_queued["status"] == "done" and time.monotonic() - started < 60
    stopped = client.get(f"/v1/explanations/{long_job['id']}").json()
    assert stopped["status"] == "cancelled" and stopped["progress"]["evaluations_done"] < 4000
    assert "explanation" not in stopped
    assert client.get(f"/v1/explanations/{long_job['id']}/plot.png").status_code == 404
    assert client.get(f"/v1/explanations/{queued[1]['id']}").json()["status"] == "cancelled"


# --- durability ----------------------------------------------------------------------------------------


def test_after_kill_9_finished_results_are_kept_and_unfinished_jobs_run_again(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            finished = submit(client, "slt_0000", max_players=2).json()
            finished_result = wait_for(client, finished["id"])["explanation"]
            running = submit(client, "slt_0000", max_players=8).json()  # 256 evaluations
            queued = submit(client, "slt_task_0000").json()
            wait_for(client, running["id"], statuses=("running",))
            deadline = time.monotonic() + 60
            while client.get(f"/v1/explanations/{running['id']}").json()["progress"]["evaluations_done"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        server.kill()
        assert not (data_dir / "jobs" / running["id"] / "explanation.json").exists()

        server = start_server(data_dir)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get(f"/v1/explanations/{finished['id']}").json()["explanation"] == finished_result
            rerun = wait_for(client, running["id"], timeout_s=300)
            assert rerun["status"] == "done" and rerun["attempts"] == 2
            assert rerun["explanation"]["cost"]["n_evaluations"] == 256
            assert wait_for(client, queued["id"])["status"] == "done"
            interrupted = submit(client, "slt_0000", estimator="permutation", budget=4000).json()
            wait_for(client, interrupted["id"], statuses=("running",))
        assert server.stop() != 0  # SIGTERM: a graceful stop queues the running job again for the next start
        leftovers = [path.name for path in data_dir.rglob("*") if path.name.endswith(".tmp")]
        assert leftovers == []  # nothing half-written
        import sqlite3

        with sqlite3.connect(data_dir / "sgpa-serve.sqlite3") as database:
            status = database.execute("SELECT status FROM jobs WHERE id=?", (interrupted["id"],)).fetchone()[0]
        assert status == "queued"
    finally:
        server.stop()


def test_serve_refuses_a_taken_port_and_bad_settings_with_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    def serve(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sgpa.cli.main", "serve", "--data-dir", str(tmp_path / "d"),
                               *args], capture_output=True, text=True, timeout=120)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = serve("--port", str(taken.getsockname()[1]))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("sgpa: error: cannot listen on 127.0.0.1:")
    result = serve("--workers", "0")
    assert result.returncode == 2 and "workers must be at least 1" in result.stderr
    result = serve("--model", "=nothing")
    assert result.returncode == 2 and "NAME=SOURCE" in result.stderr
    result = serve("--preload", "nope")
    assert result.returncode == 2 and "unknown model 'nope'" in result.stderr


# --- the web viewer in a real browser -----------------------------------------------------------------------


def test_the_viewer_explains_an_upload_and_plays_a_clicked_word(guarded):
    """Headless Chromium: enter the token, upload a data sample, wait for the words, click one, hear its segment."""
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from sgpa.service.process import headless_chromium

    server, client = guarded
    try:
        driver = headless_chromium()
    except RuntimeError as error:
        pytest.skip(str(error))
    try:
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, 120, poll_frequency=0.2)
        wait.until(lambda d: d.find_element(By.ID, "token-box").is_displayed())  # the server asked for a token
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
        driver.find_element(By.ID, "audio").send_keys(str(SAMPLES / "slt_task_0000.wav"))
        transcript = (SAMPLES / "slt_task_0000.txt").read_text().strip()
        driver.find_element(By.ID, "transcript").send_keys(transcript)
        driver.find_element(By.ID, "submit").click()
        wait.until(lambda d: d.execute_script("return window.sgpaViewer.ready"))

        words = [span.get_attribute("data-word") for span in driver.find_elements(By.CSS_SELECTOR, "#spans .span")]
        assert words == transcript.split()
        # the default estimator is exact for a sentence this short: every coalition of its words, once
        assert driver.find_element(By.ID, "status-text").text.startswith(f"Done: {2 ** len(words)} evaluations")
        explanation = driver.execute_script("return window.sgpaViewer.state.explanation")
        target = explanation["players"][3]
        driver.find_elements(By.CSS_SELECTOR, "#spans .span")[3].click()
        wait.until(lambda d: d.execute_script("return window.sgpaViewer.lastPlayback"))
        played = driver.execute_script("return window.sgpaViewer.lastPlayback")
        assert played["word"] == target["name"] and played["context_state"] == "running"
        assert played["start_s"] == pytest.approx(target["start_s"])
        assert played["duration_s"] == pytest.approx(target["end_s"] - target["start_s"])
        assert "playing" in driver.find_elements(By.CSS_SELECTOR, "#spans .span")[3].get_attribute("class")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#bars rect")) == len(words)

        artefacts = Path(__file__).resolve().parent.parent / "test-artifacts"
        artefacts.mkdir(exist_ok=True)
        driver.save_screenshot(str(artefacts / "viewer.png"))
        driver.find_element(By.ID, "tab-matrix").click()
        cells = driver.find_elements(By.CSS_SELECTOR, "#matrix td")
        assert len(cells) == len(words) * len(explanation["response"]["tokens"])
        severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
                  and "/v1/models - Failed to load resource: the server responded with a status of 401" not in
                  entry["message"]]  # the first call, before the token was entered
        assert severe == []
    finally:
        driver.quit()
