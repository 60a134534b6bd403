"""What a newcomer hit in training (issue 10): short runs evaluate sanely, run files hold
y_pred, and files are written with the usual mode."""

from __future__ import annotations

import warnings

import pytest
import torch

from classgap.config import load_config


def test_run_directory_predictions_hold_y_pred(tmp_path) -> None:
    import numpy as np

    from classgap.train import train

    cfg = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                 "train.progress=false", "train.threads=1"])
    train(cfg, tmp_path / "run")
    for split in ("val", "test"):
        data = np.load(tmp_path / "run" / f"{split}.npz")
        assert {"y_true", "y_pred", "logits"} <= set(data.files)
        np.testing.assert_array_equal(data["y_pred"], data["logits"].argmax(1))


def test_atomic_writes_have_the_usual_mode(tmp_path) -> None:
    import os

    from classgap._files import atomic_write, write_json

    umask = os.umask(0)
    os.umask(umask)
    with open(tmp_path / "plain.txt", "w"):  # what open() gives a new file: 0666 less the umask
        pass
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (write_json(tmp_path / "summary.json", {"a": 1}).stat().st_mode & 0o777
            == 0o666 & ~umask)
    path = atomic_write(tmp_path / "x.txt", "hello")
    os.chmod(path, 0o640)
    assert atomic_write(path, b"again").stat().st_mode & 0o777 == 0o640  # replaced: kept
    old = os.umask(0o027)
    try:  # a new file follows the umask, as open() does
        assert atomic_write(tmp_path / "private.txt", "x").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_atomic_writes_make_their_directory_skip_taken_names_and_leave_nothing_on_error(
        tmp_path, monkeypatch) -> None:
    import classgap._files as files

    names = iter(["taken", "taken", "free"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(names))
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / ".x.txt.taken.tmp").write_text("another writer's")
    assert files.atomic_write(tmp_path / "new" / "x.txt", "one").read_text() == "one"
    monkeypatch.undo()
    assert files.atomic_write(tmp_path / "a" / "b" / "y.txt", "two").read_text() == "two"

    def failing(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        files.atomic_write(tmp_path / "new" / "x.txt", failing)
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [".x.txt.taken.tmp", "x.txt"]
    assert (tmp_path / "new" / "x.txt").read_text() == "one"


def test_recompute_bn_is_the_plain_average_of_training_batches() -> None:
    from classgap.train.trainer import recompute_bn

    class Loader:  # the DeviceLoader interface recompute_bn uses
        device = torch.device("cpu")

        def __init__(self, batches):
            self.batches = batches

        def epoch(self, epoch):
            return ((x, None, None) for x in self.batches)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3))
    batches = [torch.randn(8, 1, 6, 6) * (i + 1) + i for i in range(4)]
    model.eval()
    recompute_bn(model, Loader(batches), epoch=0, bf16=False)
    conv, bn = model[0], model[1]
    with torch.no_grad():
        means = torch.stack([conv(x).mean(dim=(0, 2, 3)) for x in batches])
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    assert bn.momentum == 0.1 and not model.training  # restored


def test_short_runs_recompute_bn_and_evaluate_above_chance(tmp_path) -> None:
    from classgap.train import train

    # No warm-up: the start at the full rate whose stale BatchNorm statistics break evaluation
    # (with the default warm-up they drift less). How far they break it depends on the CPU's
    # precision path (14.9% in fp32, 15.4% in bf16 on an AMD EPYC), so the test asserts the
    # break and that the warning comes exactly when the trainer's rule says "at chance".
    base = ["data.dataset=digits", "model.name=cnn", "train.epochs=1", "train.progress=false",
            "train.threads=1", "optim.batch_size=64", "data.val_size=300",
            "schedule.warmup_epochs=0"]
    fresh = train(load_config(overrides=base))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stale = train(load_config(overrides=[*base, "train.bn_recompute=false"]))
    assert fresh.test_accuracy > 0.3  # 20 steps: trained and evaluated sanely
    assert stale.test_accuracy < fresh.test_accuracy - 0.3  # the stale statistics break it
    at_chance = stale.test_accuracy < 1.5 / 10 and stale.history[-1]["train_acc"] > 3.0 / 10
    assert any("at chance" in str(w.message) for w in caught) == at_chance
