"""Files that heal: a finished run whose files changed is trained again, with one warning.

Every file of a finished run (predictions, metrics, config, history) is truncated, deleted or
altered in one byte (same size); the next ``run_grid`` on the store names the file in one
warning, moves the run aside, trains that run (and only it) again, and ends with the
predictions an untouched study has. Also: checksums recorded at commit, a run adopted after a
kill between the rename and its row, ``verify`` changing nothing, and a store from before
checksums (old schema, no ``files.json``).
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from classgap.config import load_config
from classgap.sweep import Grid, RunSpec, Store, parse_axis, run_grid
from classgap.sweep.integrity import MANIFEST, DamagedRunWarning, file_table

FILES = ("test.npz", "val.npz", "metrics.json", "config.json", "history.csv")

# study.sqlite's table as classgap wrote it before checksums were recorded
OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'pending', point_json TEXT,
    seed INTEGER, config_json TEXT, claimed_by TEXT, claimed_at REAL, started_at REAL,
    finished_at REAL, wall_time REAL, val_acc REAL, test_acc REAL, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0)
"""


class Trainer:
    """Predictions that depend only on the run id (so a retrained run equals the original);
    records which runs it trained."""

    def __init__(self) -> None:
        self.trained: list[str] = []

    def __call__(self, spec: RunSpec, run_dir: Path) -> dict[str, float]:
        self.trained.append(spec.run_id)
        rng = np.random.default_rng(int(spec.run_id, 16) % 2**32)
        y = np.arange(60) % 5
        for split in ("val", "test"):
            np.savez(run_dir / f"{split}.npz", y_true=y, probs=rng.dirichlet(np.ones(5), 60))
        (run_dir / "history.csv").write_text("epoch,train_acc\n1,0.9\n")
        return {"val_accuracy": 0.5, "test_accuracy": 0.5}


def runs() -> list[RunSpec]:
    return Grid(load_config(overrides=["data.dataset=digits"]),
                [parse_axis("aug.mixup=0,1")], seeds=1).runs()


def train(study: Path) -> Trainer:
    trainer = Trainer()
    with Store(study) as store:
        run_grid(store, runs(), progress=False, train_fn=trainer)
    return trainer


def predictions(study: Path) -> dict[str, list[np.ndarray]]:
    with Store(study) as store:
        return {spec.run_id: [np.load(d / f"{split}.npz")[key] for split in ("val", "test")
                              for key in ("y_true", "probs")]
                for spec, d in store.done_runs()}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


def alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte: the size stays the same
    path.write_bytes(bytes(data))


def test_commit_records_the_checksum_of_every_file(tmp_path: Path) -> None:
    train(tmp_path / "s")
    with Store(tmp_path / "s") as store:
        rows = dict(store._db.execute("SELECT run_id, files_json FROM runs").fetchall())
        checks = store.verify()
    assert len(rows) == 2 and all(c.ok and not c.legacy for c in checks)
    for run_id, files_json in rows.items():
        run_dir = tmp_path / "s" / "runs" / run_id
        manifest = json.loads((run_dir / MANIFEST).read_text())["files"]
        assert set(manifest) == set(FILES)  # every file but files.json itself
        assert json.loads(files_json) == manifest == file_table(run_dir)


@pytest.mark.parametrize("damage", [truncate, delete, alter], ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_file_makes_its_run_train_again(tmp_path: Path, name: str,
                                                  damage: object) -> None:
    study = tmp_path / "s"
    train(study)
    expected = predictions(study)
    victim = runs()[1].run_id
    damage(study / "runs" / victim / name)  # type: ignore[operator]
    with Store(study) as store:  # verify lists it and changes nothing
        [bad] = [c for c in store.verify() if not c.ok]
        assert (bad.run_id, [d.file for d in bad.damage]) == (victim, [name])
        assert store.counts()["done"] == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = train(study)
    lines = [str(w.message) for w in caught if w.category is DamagedRunWarning]
    assert len(lines) == 1 and len(lines[0].splitlines()) == 1, lines
    assert f"{victim}/{name}: " in lines[0] and victim in lines[0]
    problem = {"truncate": "truncated", "delete": "missing", "alter": "altered"}
    assert problem[damage.__name__] in lines[0]  # type: ignore[attr-defined]
    if name == "config.json":
        assert "no longer matches run id" in lines[0]
    assert trainer.trained == [victim]  # only the damaged run is trained again
    [aside] = (study / "runs" / ".quarantine").iterdir()  # nothing of the user's is lost
    assert aside.name.startswith(f"{victim}.")
    assert (aside / name).exists() == (damage is not delete)
    got = predictions(study)
    assert got.keys() == expected.keys()
    for run_id, arrays in expected.items():
        for a, b in zip(arrays, got[run_id], strict=True):
            np.testing.assert_array_equal(a, b)
    with Store(study) as store:
        assert all(c.ok for c in store.verify()) and store.counts()["done"] == 2


def test_config_edited_by_hand_no_longer_matches_its_run_id(tmp_path: Path) -> None:
    study = tmp_path / "s"
    train(study)
    victim = runs()[0].run_id
    path = study / "runs" / victim / "config.json"
    config = json.loads(path.read_text())
    config["optim"]["lr"] *= 2
    path.write_text(json.dumps(config))
    with pytest.warns(DamagedRunWarning, match=f"config.json: .*no longer matches run id "
                                               f"{victim}"):
        trainer = train(study)
    assert trainer.trained == [victim]


def test_a_run_committed_but_not_marked_done_is_checked_before_adoption(
        tmp_path: Path) -> None:
    """A kill after the rename, before the row said done: ``adopt`` checks files.json."""
    study = tmp_path / "s"
    train(study)
    first, second = (s.run_id for s in runs())
    with Store(study) as store:  # both rows given back: the next claim takes them again
        store._db.execute("UPDATE runs SET status = 'pending', files_json = NULL")
    truncate(study / "runs" / second / "test.npz")
    with pytest.warns(DamagedRunWarning, match=f"test.npz: truncated .*run {second}: "
                                               f"training it again"):
        trainer = train(study)
    assert trainer.trained == [second]  # the intact one is adopted, not trained
    with Store(study) as store:
        rows = dict(store._db.execute("SELECT run_id, files_json FROM runs").fetchall())
        assert json.loads(rows[first]) == file_table(study / "runs" / first)
        assert store.counts()["done"] == 2 and all(c.ok for c in store.verify())
    assert len(list((study / "runs" / ".quarantine").iterdir())) == 1


def test_verify_changes_nothing_and_a_missing_directory_is_damage(tmp_path: Path) -> None:
    study = tmp_path / "s"
    train(study)
    victim = runs()[0].run_id
    (study / "runs" / victim).rename(tmp_path / "moved")
    with Store(study) as store:
        [bad, good] = store.verify()
        assert not bad.ok and good.ok and "run directory is missing" in bad.describe()
        assert store.counts()["done"] == 2
    with pytest.warns(DamagedRunWarning, match="the run directory is missing"):
        trainer = train(study)
    assert trainer.trained == [victim] and not (study / "runs" / ".quarantine").exists()


def _make_old_store(study: Path) -> None:
    """``study`` as classgap left it before checksums: the old table, no files.json."""
    db = study / "study.sqlite"
    old = study / "old.sqlite"
    with sqlite3.connect(old) as con:
        con.execute(OLD_SCHEMA)
        con.execute("ATTACH DATABASE ? AS new", (str(db),))
        columns = ", ".join(r[1] for r in con.execute("PRAGMA main.table_info(runs)"))
        con.execute(f"INSERT INTO main.runs SELECT {columns} FROM new.runs")
    con.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    old.rename(db)
    for manifest in study.glob(f"runs/*/{MANIFEST}"):
        manifest.unlink()


def test_an_old_store_is_migrated_and_its_runs_checked_for_what_can_be(tmp_path: Path) -> None:
    study = tmp_path / "s"
    train(study)
    expected = predictions(study)
    _make_old_store(study)
    good, victim = (s.run_id for s in runs())
    truncate(study / "runs" / victim / "test.npz")
    with Store(study) as store:  # the column is added; the old runs have no checksums yet
        checks = store.verify()
        assert [c.legacy for c in checks] == [True, True]
        assert [c.ok for c in checks] == [True, False]
        assert "test.npz: unreadable" in checks[1].describe()
    with pytest.warns(DamagedRunWarning, match="test.npz: unreadable"):
        trainer = train(study)
    assert trainer.trained == [victim]
    with Store(study) as store:  # the intact old run got its checksums when it passed
        rows = dict(store._db.execute("SELECT run_id, files_json FROM runs").fetchall())
        assert json.loads(rows[good]) == file_table(study / "runs" / good)
        assert all(c.ok and not c.legacy for c in store.verify())
    got = predictions(study)
    for run_id, arrays in expected.items():
        for a, b in zip(arrays, got[run_id], strict=True):
            np.testing.assert_array_equal(a, b)
    alter(study / "runs" / good / "history.csv")  # from now on it is checked by checksum
    with pytest.warns(DamagedRunWarning, match="history.csv: altered"):
        assert train(study).trained == [good]
