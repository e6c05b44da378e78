"""The service's parts on constructed inputs: the job store's life cycle and recovery, the admission gate, labels."""

from __future__ import annotations

import threading

import pytest

from sgpa.service.jobs import CANCELLED, DONE, FAILED, MAX_ATTEMPTS, QUEUED, RUNNING, JobStore


def test_jobs_are_claimed_oldest_first_and_finish_once(tmp_path):
    store = JobStore(tmp_path)
    ids = []
    for n in range(3):
        job_id, _ = store.new_folder()
        store.add(job_id, {"n": n}, f"clip{n}.wav")
        ids.append(job_id)
    first = store.claim_next()
    assert first.id == ids[0] and first.status == RUNNING and first.attempts == 1
    assert store.count(QUEUED) == 2 and store.count(RUNNING) == 1
    store.set_progress(first.id, 5, 10)
    assert (store.get(first.id).evaluations_done, store.get(first.id).evaluations_planned) == (5, 10)
    assert store.finish(first.id, DONE) and not store.finish(first.id, FAILED)  # a finished job stays finished
    assert store.cancel(ids[1]) and not store.cancel(ids[1]) and store.get(ids[1]).status == CANCELLED
    assert store.claim_next().id == ids[2]  # the cancelled job is skipped
    assert store.claim_next() is None


def test_a_job_cancelled_while_running_cannot_be_marked_done(tmp_path):
    store = JobStore(tmp_path)
    job_id, _ = store.new_folder()
    store.add(job_id, {}, "a.wav")
    store.claim_next()
    assert store.cancel(job_id)
    assert not store.finish(job_id, DONE) and store.get(job_id).status == CANCELLED


def test_recovery_requeues_running_jobs_fails_exhausted_ones_and_drops_orphan_uploads(tmp_path):
    store = JobStore(tmp_path)
    job_ids = []
    for _ in range(2):
        job_id, _ = store.new_folder()
        store.add(job_id, {}, "a.wav")
        job_ids.append(job_id)
    orphan, orphan_folder = store.new_folder()  # an upload whose request died before the job row was written
    for _ in range(MAX_ATTEMPTS):  # the second job killed the server on every run
        store._connection.execute("UPDATE jobs SET status=?, attempts=attempts+1 WHERE id=?", (RUNNING, job_ids[1]))
    store.claim_next()  # the first job is running when the process dies
    store.close()

    reopened = JobStore(tmp_path)
    assert reopened.recover() == 1
    assert reopened.get(job_ids[0]).status == QUEUED and reopened.get(job_ids[0]).evaluations_done == 0
    assert reopened.get(job_ids[1]).status == FAILED and "3 runs" in reopened.get(job_ids[1]).error
    assert not orphan_folder.exists() and reopened.folder(job_ids[0]).exists()
    assert reopened.claim_next().attempts == 2


def test_removing_a_job_deletes_its_row_and_files(tmp_path):
    store = JobStore(tmp_path)
    job_id, folder = store.new_folder()
    (folder / JobStore.AUDIO_FILE).write_bytes(b"x")
    store.add(job_id, {}, "a.wav")
    store.remove(job_id)
    assert store.get(job_id) is None and not folder.exists()


def test_the_admission_gate_turns_away_what_exceeds_its_slots_and_line():
    pytest.importorskip("fastapi")
    from sgpa.service.app import AdmissionGate, ServiceError

    gate = AdmissionGate(running=1, waiting=1)
    holding, waiting_started, release = threading.Event(), threading.Event(), threading.Event()
    order = []

    def hold() -> None:
        with gate.enter():
            holding.set()
            release.wait(5)
            order.append("first")

    def wait_in_line() -> None:
        waiting_started.set()
        with gate.enter():
            order.append("second")

    first = threading.Thread(target=hold)
    first.start()
    holding.wait(5)
    second = threading.Thread(target=wait_in_line)
    second.start()
    waiting_started.wait(5)
    deadline = threading.Event()
    while gate._inside < 2 and not deadline.wait(0.01):
        pass
    with pytest.raises(ServiceError) as refused:
        with gate.enter():
            pass
    assert refused.value.status_code == 503
    release.set()
    first.join(5)
    second.join(5)
    assert order == ["first", "second"]
    with gate.enter():  # free again
        pass


def test_client_file_names_become_harmless_labels_and_settings_take_the_cli_units():
    pytest.importorskip("fastapi")
    from sgpa.errors import InputError
    from sgpa.service.app import _client_label, alignment_settings

    assert _client_label("../../etc/passwd") == "passwd"
    assert _client_label("C:\\\\Users\\\\me\\\\clip one.wav") == "clip one.wav"
    assert _client_label("..") == "upload" and _client_label(None) == "upload"
    assert _client_label("a;rm -rf$(x).wav") == "a_rm -rf__x_.wav"
    config = alignment_settings(grid="whisper", min_pause_ms=250, padding_ms=40, max_players=4)
    assert (config.grid, config.min_pause_s, config.padding_s, config.max_players) == ("whisper", 0.25, 0.04, 4)
    assert alignment_settings(token_duration_ms=40).grid == 0.04
    with pytest.raises(InputError, match="unknown grid"):
        alignment_settings(grid="telegraph")
    with pytest.raises(InputError, match="max_players"):
        alignment_settings(max_players=0)
