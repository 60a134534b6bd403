"""The Lightning callback, on real Lightning runs (examples/lightning_digits.py)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("lightning")

from classgap.audit import read_predictions
from classgap.cli import run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lightning_digits.py"


def test_the_last_validation_epoch_and_the_test_set_make_files_the_audit_reads(base: Path,
                                                                              capsys) -> None:
    # 8 epochs, 0 to 7 as Lightning numbers them; the seed is seed_everything's
    assert {p.name for p in base.glob("*.npz")} == {"val_epoch7.npz", "test.npz"}
    test = read_predictions(base / "test.npz")
    assert test.classes == tuple(str(c) for c in range(10)) and test.seed == 0
    assert len(test.y_true) == 540 and test.scores.shape == (540, 10)  # every test sample once
    assert (test.y_pred == test.y_true).mean() > 0.8
    val = read_predictions(base / "val_epoch7.npz")
    assert len(val.y_true) == 252
    assert run(["audit", str(base / "test.npz")]) == 0
    assert "Per-class accuracy" in capsys.readouterr().out


def _logged(run_dir: Path, key: str) -> list[tuple[int, int]]:
    """(epoch, step) of each row of a CSVLogger's metrics that holds ``key``."""
    with open(next(run_dir.rglob("metrics.csv")), newline="") as fh:
        return [(int(r["epoch"]), int(r["step"])) for r in csv.DictReader(fh) if r.get(key)]


def test_per_class_accuracy_with_its_interval_reaches_the_logger(base: Path) -> None:
    with open(next((base / "logs").rglob("metrics.csv")), newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val_class_acc/3")]
    assert len(rows) == 8  # one per validation epoch
    # with the epoch, on the step of Lightning's own validation metrics
    assert _logged(base / "logs", "val_class_acc/3") == _logged(base / "logs", "val_loss")
    assert [int(r["epoch"]) for r in rows] == list(range(8))
    low, acc, high = (float(rows[-1][f"val_class_acc/3{s}"]) for s in ("_low", "", "_high"))
    assert 0 <= low <= acc <= high <= 1
    val = read_predictions(base / "val_epoch7.npz")
    mine = val.y_true == 3
    assert acc == pytest.approx(float((val.y_pred[mine] == 3).mean()))


def test_the_gate_fails_on_a_planted_drop_and_passes_without(
        example: ModuleType, base: Path, tmp_path: Path) -> None:
    planted = example.main(["--out", str(tmp_path / "bad"), "--drop-class", "3", "--epochs", "8",
                            "--baseline", str(base / "test.npz")])
    assert planted == 3
    clean = example.main(["--out", str(tmp_path / "same"), "--seed", "1", "--epochs", "8",
                          "--baseline", str(base / "test.npz"), "--fail-on-drop", "10"])
    assert clean == 0
    assert np.isfinite(read_predictions(tmp_path / "same" / "test.npz").scores).all()


def _trainer(tmp_path: Path, writer, logger=None, epochs: int = 1):
    import lightning as L

    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=logger or False,
                     callbacks=[writer], enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False)


def test_per_class_accuracy_reaches_tensorboard(example: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from classgap.integrations.lightning import PredictionWriter

    writer = PredictionWriter(tmp_path, log_per_class=True)
    train, val, _ = example.loaders()
    _trainer(tmp_path, writer, TensorBoardLogger(tmp_path / "tb", name=""), epochs=2).fit(
        example.Digits(), train, val)
    events = EventAccumulator(str(next((tmp_path / "tb").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    acc = events.Scalars("val_class_acc/3")
    # the step of Lightning's own validation metrics: 15 batches stepped when the last one's
    # validation runs (global_step is already 16 there), and the epoch beside it
    assert [e.step for e in acc] == [e.step for e in events.Scalars("val_loss")] == [15, 31]
    assert {(e.step, e.value) for e in events.Scalars("epoch")} == {(15, 0), (31, 1)}
    low = events.Scalars("val_class_acc/3_low")[-1].value
    high = events.Scalars("val_class_acc/3_high")[-1].value
    val_pred = read_predictions(tmp_path / "val_epoch1.npz")
    mine = val_pred.y_true == 3
    assert acc[-1].value == pytest.approx(float((val_pred.y_pred[mine] == 3).mean()))
    assert 0 <= low <= acc[-1].value <= high <= 1


def test_logits_come_from_the_step_the_hook_or_one_more_forward(example: ModuleType,
                                                                tmp_path: Path) -> None:
    import torch

    from classgap.integrations.lightning import PredictionWriter

    class Inner(example.Digits):
        def test_step(self, batch, batch_idx):
            self.net(batch[0])  # the inner net, not self(x): the hook sees no call

    _, _, test = example.loaders()
    results = {}
    for name, model in (("hook", example.Digits()), ("forward", Inner())):
        torch.manual_seed(0)
        model.load_state_dict(example.Digits().state_dict())
        writer = PredictionWriter(tmp_path / name)
        _trainer(tmp_path, writer).test(model, test, verbose=False)
        assert not model._forward_hooks  # removed when the evaluation ends
        results[name] = read_predictions(tmp_path / name / "test.npz")
        with torch.no_grad():
            expected = torch.cat([model(x) for x, _ in test]).numpy()
        np.testing.assert_allclose(results[name].scores, expected, rtol=1e-6)
    np.testing.assert_array_equal(results["hook"].y_true, results["forward"].y_true)


def test_two_processes_gather_into_one_file(tmp_path: Path) -> None:
    """DDP on two CPU processes (gloo): rank 0 writes what ``all_gather`` collected. The test
    steps return sample ids, so the sampler's padded repeat is dropped; the validation steps
    do not, so its repeat stays in (as documented)."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    script = Path(__file__).with_name("ddp_digits.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "out")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    test = read_predictions(tmp_path / "out" / "test.npz")
    order = np.argsort(test.sample_id)
    np.testing.assert_array_equal(test.sample_id[order], np.arange(1258, 1797))  # 539, once
    np.testing.assert_array_equal(test.y_true[order], load_digits().target[1258:])
    assert len(read_predictions(tmp_path / "out" / "val_epoch0.npz").y_true) == 254  # 253 + 1


def test_a_failed_run_leaves_no_hook_on_the_module(example: ModuleType, tmp_path: Path) -> None:
    from classgap.integrations.lightning import PredictionWriter

    class Failing(example.Digits):
        def validation_step(self, batch, batch_idx):
            self(batch[0])
            raise RuntimeError("boom")

    model = Failing()
    train, val, _ = example.loaders()
    trainer = _trainer(tmp_path, PredictionWriter(tmp_path))
    trainer.num_sanity_val_steps = 0
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(model, train, val)
    assert not model._forward_hooks and not list(tmp_path.glob("*.npz"))


def test_every_n_epochs_writes_as_they_end_and_a_stopped_fit_keeps_its_last_epoch(
        example: ModuleType, tmp_path: Path) -> None:
    from classgap.integrations.lightning import PredictionWriter

    train, val, _ = example.loaders()
    for every, expected in ((2, ["val_epoch1.npz", "val_epoch3.npz"]), (0, [])):
        _trainer(tmp_path, PredictionWriter(tmp_path / str(every), every_n_epochs=every),
                 epochs=4).fit(example.Digits(), train, val)
        assert sorted(p.name for p in (tmp_path / str(every)).glob("*.npz")) == expected

    class Stopping(example.Digits):
        def on_train_epoch_start(self):
            if self.current_epoch == 2:
                raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):  # Ctrl-C goes the same way
        _trainer(tmp_path, PredictionWriter(tmp_path / "stopped"), epochs=4).fit(
            Stopping(), train, val)
    assert [p.name for p in (tmp_path / "stopped").glob("*.npz")] == ["val_epoch1.npz"]


PL_ONLY = """
import sys, tempfile, os
sys.modules["lightning"] = sys.modules["lightning.pytorch"] = None  # only the old import name
import pytorch_lightning as pl, torch
from torch.utils.data import DataLoader, TensorDataset
from classgap.integrations.lightning import PredictionWriter

class M(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 3)
    def forward(self, x):
        return self.net(x)
    def training_step(self, batch, i):
        return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])
    def test_step(self, batch, i):
        self(batch[0])
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

assert issubclass(PredictionWriter, pl.Callback)
data = DataLoader(TensorDataset(torch.randn(40, 4), torch.randint(0, 3, (40,))), batch_size=8)
out = tempfile.mkdtemp()
trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                     enable_checkpointing=False, callbacks=[PredictionWriter(out)])
trainer.fit(M(), data)
trainer.test(M(), data, verbose=False)
print(sorted(os.listdir(out)))
"""


def test_works_with_the_pytorch_lightning_import_name() -> None:
    pytest.importorskip("pytorch_lightning")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PL_ONLY], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "['test.npz']" in done.stdout


def test_bad_options_fail_when_the_callback_is_built(tmp_path: Path) -> None:
    from classgap.errors import ClassgapError
    from classgap.integrations.lightning import PredictionWriter

    for bad in ({"every_n_epochs": 1.5}, {"every_n_epochs": True}, {"fail_on_drop": -1},
                {"fail_on_drop": "5"}):
        with pytest.raises(ClassgapError, match=next(iter(bad))):
            PredictionWriter(tmp_path, **bad)


def test_several_dataloaders_get_a_file_each(example: ModuleType, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    from classgap.integrations.lightning import PredictionWriter

    class Two(example.Digits):
        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            return {"logits": self(batch[0]), "targets": batch[1]}

        def test_step(self, batch, batch_idx, dataloader_idx=0):
            self(batch[0])

    train, val, test = example.loaders()
    writer = PredictionWriter(tmp_path, log_per_class=True)
    trainer = _trainer(tmp_path, writer, CSVLogger(tmp_path / "logs", name=""))
    model = Two()
    trainer.fit(model, train, [val, test])
    trainer.test(model, [test, val], verbose=False)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "test_dl0.npz", "test_dl1.npz", "val_dl0_epoch0.npz", "val_dl1_epoch0.npz"]
    assert len(read_predictions(tmp_path / "val_dl1_epoch0.npz").y_true) == 540  # the test set
    assert len(read_predictions(tmp_path / "test_dl1.npz").y_true) == 252  # the validation set
    with open(next((tmp_path / "logs").rglob("metrics.csv")), newline="") as fh:
        header = next(csv.reader(fh))
    assert {"val_dl0_class_acc/3", "val_dl1_class_acc/3_high"} <= set(header)


def test_steps_that_hide_the_logits_get_one_clear_error(example: ModuleType,
                                                       tmp_path: Path) -> None:
    import torch
    from torch.utils.data import DataLoader

    from classgap.errors import ClassgapError
    from classgap.integrations.lightning import PredictionWriter

    class DictBatches(example.Digits):
        def test_step(self, batch, batch_idx):
            self.net(batch["x"])  # neither returned nor seen through self(x)
            return {"targets": batch["y"]}

    rows = [{"x": torch.zeros(64), "y": torch.tensor(1)} for _ in range(8)]
    with pytest.raises(ClassgapError, match="could not find the logits"):
        _trainer(tmp_path, PredictionWriter(tmp_path)).test(
            DictBatches(), DataLoader(rows, batch_size=4), verbose=False)


def test_per_class_metrics_share_lightnings_step_when_a_batch_steps_two_optimizers(
        example: ModuleType, tmp_path: Path) -> None:
    """Lightning logs validation metrics at the count of batches that stepped, not at
    ``global_step``, which counts optimizer steps: two a batch here."""
    import torch
    from lightning.pytorch.loggers import CSVLogger

    from classgap.integrations.lightning import PredictionWriter

    class TwoOptimizers(example.Digits):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            for opt in self.optimizers():
                opt.zero_grad()
                self.manual_backward(torch.nn.functional.cross_entropy(self(batch[0]), batch[1]))
                opt.step()

        def configure_optimizers(self):
            return [torch.optim.SGD(self.net[0].parameters(), lr=0.1),
                    torch.optim.SGD(self.net[2].parameters(), lr=0.1)]

    train, val, _ = example.loaders()
    trainer = _trainer(tmp_path, PredictionWriter(tmp_path, log_per_class=True),
                       CSVLogger(tmp_path / "logs", name=""), epochs=2)
    trainer.fit(TwoOptimizers(), train, val)
    assert trainer.global_step == 64  # 16 batches x 2 optimizers x 2 epochs
    logged = _logged(tmp_path / "logs", "val_class_acc/3")
    assert logged == _logged(tmp_path / "logs", "val_loss") == [(0, 15), (1, 31)]


def test_file_names_number_epochs_as_model_checkpoint_does(example: ModuleType,
                                                           tmp_path: Path) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from classgap.integrations.lightning import PredictionWriter

    train, val, _ = example.loaders()
    for every in (2, None):  # every other epoch as each ends; the last one when fit ends
        out = tmp_path / str(every)
        checkpoints = ModelCheckpoint(out / "ckpt", filename="{epoch}", save_top_k=-1,
                                      every_n_epochs=every or 4)  # 4: the last epoch only
        L.Trainer(max_epochs=4, accelerator="cpu", devices=1, logger=False,
                  callbacks=[PredictionWriter(out, every_n_epochs=every), checkpoints],
                  enable_progress_bar=False, enable_model_summary=False).fit(
            example.Digits(), train, val)
        saved = sorted(p.stem.removeprefix("epoch=") for p in (out / "ckpt").glob("*.ckpt"))
        written = sorted(p.stem.removeprefix("val_epoch") for p in out.glob("*.npz"))
        assert written == saved == (["1", "3"] if every else ["3"])


def test_the_seed_is_seed_everythings_unless_one_is_given(example: ModuleType, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning as L

    from classgap.integrations.lightning import PredictionWriter

    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # so that the test leaves it as it found it
    monkeypatch.delenv("PL_GLOBAL_SEED")
    train, val, test = example.loaders()
    seeds = {}
    for name, seed, everything in (("none", None, None), ("global", None, 123),
                                   ("given", 7, 123)):
        if everything is not None:
            L.seed_everything(everything, verbose=False)
        trainer = _trainer(tmp_path, PredictionWriter(tmp_path / name, seed=seed))
        model = example.Digits()
        trainer.fit(model, train, val)
        trainer.test(model, test, verbose=False)
        seeds[name] = {read_predictions(p).seed for p in (tmp_path / name).glob("*.npz")}
    assert seeds == {"none": {None}, "global": {123}, "given": {7}}
