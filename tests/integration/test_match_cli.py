"""`safeguard match generate | evaluate | train` as a user runs them, with exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.adapters.store import Store
from tests.integration.test_cli import cli, in_process
from tests.support.world import REFERENCE

pytestmark = pytest.mark.integration


def test_a_generated_labelled_set_is_evaluated_with_every_figure(tmp_path: Path) -> None:
    made = cli(tmp_path, "match", "generate", "--out", str(tmp_path / "set"), "--seed", "9", "--pupils", "400",
               "--events", "300")
    assert made.returncode == 0, made.stderr
    files = {name: str(tmp_path / "set" / name) for name in ("pupils.csv", "events.jsonl", "truth.csv")}
    result = cli(tmp_path, "match", "evaluate", "--roll", files["pupils.csv"], "--events", files["events.jsonl"],
                 "--truth", files["truth.csv"])
    assert result.returncode == 0, result.stderr
    figures = dict(re.findall(r"^([a-z0-9 -]+): ([0-9.]+)", result.stdout, re.M))
    assert set(figures) >= {"precision", "recall", "f1", "review rate", "no-match rate"}
    assert float(figures["precision"]) >= 0.99 and float(figures["recall"]) >= 0.95
    assert float(figures["review rate"]) < 0.2
    missing = cli(tmp_path, "match", "evaluate", "--roll", str(tmp_path / "nope.csv"), "--events",
                  files["events.jsonl"], "--truth", files["truth.csv"])
    assert missing.returncode == 2


def test_train_stores_a_new_model_version_from_the_loaded_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("schools", "teams", "pupils", "ehe", "involvements"):  # loaded in process: seconds saved
        (tmp_path / f"{kind}.csv").write_text(REFERENCE[kind], encoding="utf-8")
        assert in_process(tmp_path, monkeypatch, "load", kind, str(tmp_path / f"{kind}.csv")).exit_code == 0
    trained = cli(tmp_path, "match", "train")
    assert trained.returncode == 0, trained.stderr
    version = trained.stdout.split()[1].rstrip(":")
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    with store.read() as session:
        stored = session.exec(select(t.MatchModel)).all()
        changes = session.exec(select(t.ReferenceChange)).all()
    assert [m.version for m in stored] == [version] and version.startswith("fs-")
    assert len(changes) >= 9 and all(c.kind in ("schools", "pupils", "ehe", "involvements", "teams") for c in changes)
