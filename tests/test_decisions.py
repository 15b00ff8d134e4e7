"""The decision files (classifier/data/review.py) never lose a line: concurrent
writers each keep theirs, and a writer killed at any point leaves a file that parses."""

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from classifier.data import review
from classifier.files import replaced
from classifier.paths import LABELLED, RELABEL
from conftest import ROOT, environment

PER_WRITER = 50
WRITE = f"""
import os, sys
os.chdir(sys.argv[1])
from classifier.data import review
from classifier.paths import LABELLED
for i in range({PER_WRITER}):
    review.append(LABELLED, [f"{{sys.argv[2]}}/{{i}}.jpg", "cat", ""])
"""


def write_labels(name):
    for i in range(PER_WRITER):
        review.append(LABELLED, [f"{name}/{i}.jpg", "cat", ""])


def test_four_concurrent_writers_keep_all_200_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Two processes (two app processes, a script) and two threads (two sessions of one app).
    processes = [subprocess.Popen([sys.executable, "-c", WRITE, str(tmp_path), f"process{n}"], env=environment(),
                                  cwd=ROOT) for n in range(2)]
    threads = [threading.Thread(target=write_labels, args=(f"thread{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    table = pd.read_csv(LABELLED)
    assert len(table) == 4 * PER_WRITER == table.path.nunique()
    assert not [name for name in os.listdir("data") if name.startswith(".labelled.csv")]  # no temporary file left


def append_forever(folder, start):
    os.chdir(folder)
    for i in range(start, start + 100_000):
        review.append(RELABEL, [f"data/clean/images/cat/{i}.jpg", "caf\u00e9"])  # UTF-8 whatever the locale


def test_a_writer_killed_at_any_point_leaves_a_file_that_parses(tmp_path):
    context = multiprocessing.get_context("fork")  # the test's modules already imported: a child starts at once
    rng = random.Random(0)
    lines = 0
    for kill in range(50):
        child = context.Process(target=append_forever, args=(tmp_path, 1000 * kill))
        child.start()
        time.sleep(rng.uniform(0.005, 0.05))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        text = (tmp_path / RELABEL).read_text(encoding="utf-8") if (tmp_path / RELABEL).exists() else "path,label\n"
        table = pd.read_csv(tmp_path / RELABEL) if (tmp_path / RELABEL).exists() else pd.DataFrame()
        assert text.startswith("path,label\n") and text.endswith("\n"), kill
        assert len(table) >= lines and (table.get("label", pd.Series(dtype=str)) == "caf\u00e9").all(), kill
        lines = len(table)
    assert lines > 0  # the kills came after some writes, not all before the first


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "queue.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), replaced(target) as part:
        part.write_text("half of the new")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["queue.csv"]
    with replaced(target) as part:
        part.write_text("new\n")
    assert target.read_text() == "new\n" and os.listdir(tmp_path) == ["queue.csv"]


def test_a_new_file_gets_the_mode_any_new_file_gets(tmp_path):
    """Not mkstemp's owner-only 0600: teammates sharing a project read its metrics and decisions."""
    (tmp_path / "plain").write_text("")
    with replaced(tmp_path / "new.json") as part:
        part.write_text("{}\n")
    assert os.stat(tmp_path / "new.json").st_mode == os.stat(tmp_path / "plain").st_mode
    os.chmod(tmp_path / "new.json", 0o640)  # and a file that exists keeps its own
    with replaced(tmp_path / "new.json") as part:
        part.write_text("[]\n")
    assert os.stat(tmp_path / "new.json").st_mode & 0o777 == 0o640
