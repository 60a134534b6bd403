"""The Hugging Face callback, on a real ``transformers.Trainer`` run (examples/hf_digits.py).

The model is a ``PreTrainedModel`` subclass built in the example: nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from classgap.audit import read_predictions
from classgap.cli import run
from classgap.errors import ClassgapError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hf_digits.py"
BASE_ARGS = ["--report-to", "tensorboard"]


def test_the_last_evaluation_and_the_test_set_make_files_the_audit_reads(base: Path,
                                                                          capsys) -> None:
    assert {p.name for p in base.glob("*.npz")} == {"val_epoch8.npz", "test.npz"}  # 8 epochs
    test = read_predictions(base / "test.npz")
    # names from model.config.id2label, the seed from TrainingArguments.seed
    assert test.classes == tuple(str(c) for c in range(10)) and test.seed == 0
    assert len(test.y_true) == 540 and test.scores.shape == (540, 10)
    assert (test.y_pred == test.y_true).mean() > 0.8
    assert len(read_predictions(base / "val_epoch8.npz").y_true) == 252
    assert run(["audit", str(base / "test.npz")]) == 0
    assert "Per-class accuracy" in capsys.readouterr().out


def test_per_class_accuracy_reaches_tensorboard(base: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next(base.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    acc = events.Scalars("eval/class_acc/3")
    low, high = events.Scalars("eval/class_acc/3_low"), events.Scalars("eval/class_acc/3_high")
    assert len(acc) == 8  # one per evaluation
    assert 0 <= low[-1].value <= acc[-1].value <= high[-1].value <= 1
    val = read_predictions(base / "val_epoch8.npz")
    mine = val.y_true == 3
    assert acc[-1].value == pytest.approx(float((val.y_pred[mine] == 3).mean()))


def test_the_gate_fails_on_a_planted_drop_and_passes_without(
        example: ModuleType, base: Path, tmp_path: Path, capsys) -> None:
    planted = example.main(["--out", str(tmp_path / "bad"), "--drop-class", "3", "--epochs", "8",
                            "--baseline", str(base / "test.npz")])
    assert planted == 3 and "3 (" in capsys.readouterr().err
    clean = example.main(["--out", str(tmp_path / "same"), "--seed", "1", "--epochs", "8",
                          "--baseline", str(base / "test.npz"), "--fail-on-drop", "10"])
    assert clean == 0
    assert np.isfinite(read_predictions(tmp_path / "same" / "test.npz").scores).all()


def test_step_evaluations_and_a_test_prefix_name_their_files(example: ModuleType,
                                                              tmp_path: Path) -> None:
    from classgap.integrations.hf import PredictionWriterCallback

    writer = PredictionWriterCallback(tmp_path, every_n_epochs=2, classes=list("abcdefghij"),
                                      seed=7, metrics=lambda p: {"n": float(len(p.label_ids))})
    trainer = example.trainer_for(tmp_path, writer, epochs=1, seed=0)
    trainer.args.eval_strategy, trainer.args.eval_steps = "steps", 4  # 16 steps: 4 evaluations
    trainer.train()
    metrics = trainer.evaluate(example.datasets()[2], metric_key_prefix="test")
    assert metrics["test_n"] == 540  # the user's own compute_metrics still reports
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["test.npz", "val_step16.npz",
                                                              "val_step8.npz"]
    test = read_predictions(tmp_path / "test.npz")
    assert test.classes == tuple("abcdefghij") and test.seed == 7


def test_every_n_epochs_writes_as_they_end_and_an_evaluate_outside_training_at_once(
        example: ModuleType, tmp_path: Path) -> None:
    from classgap.integrations.hf import PredictionWriterCallback

    every = PredictionWriterCallback(tmp_path / "every", every_n_epochs=1)
    trainer = example.trainer_for(tmp_path, every, epochs=2, seed=0)
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "every").glob("*.npz")) == [
        "val_epoch1.npz", "val_epoch2.npz"]
    # numbered as the Trainer numbers the epochs it logs beside each evaluation's metrics
    assert [h["epoch"] for h in trainer.state.log_history if "eval_runtime" in h] == [1, 2]
    last = PredictionWriterCallback(tmp_path / "last")
    trainer = example.trainer_for(tmp_path, last, epochs=1, seed=0)
    trainer.evaluate()  # before training: written at once, not kept for the end of a train
    assert [p.name for p in (tmp_path / "last").glob("*.npz")] == ["val_epoch0.npz"]
    never = PredictionWriterCallback(tmp_path / "never", every_n_epochs=0)
    example.trainer_for(tmp_path, never, epochs=1, seed=0).train()
    assert not (tmp_path / "never").exists()


def test_several_eval_datasets_and_test_sets_get_a_file_each(example: ModuleType,
                                                             tmp_path: Path) -> None:
    from classgap.integrations.hf import PredictionWriterCallback

    writer = PredictionWriterCallback(tmp_path)
    trainer = example.trainer_for(tmp_path, writer, epochs=1, seed=0)
    _, val, test = example.datasets()
    trainer.eval_dataset = {"clean": val, "held": test}
    trainer.train()
    trainer.predict(test, metric_key_prefix="test_held")
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "test_held.npz", "val_clean_epoch1.npz", "val_held_epoch1.npz"]
    assert len(read_predictions(tmp_path / "val_held_epoch1.npz").y_true) == len(test)


def test_missing_predictions_are_one_clear_error(example: ModuleType, tmp_path: Path) -> None:
    from transformers import Trainer

    from classgap.integrations.hf import PredictionWriterCallback

    writer = PredictionWriterCallback(tmp_path)
    trainer = example.trainer_for(tmp_path, None, epochs=1, seed=0)
    trainer.add_callback(writer)  # ... but compute_metrics was not passed
    with pytest.raises(ClassgapError, match=r"compute_metrics=writer\.compute_metrics"):
        trainer.evaluate()
    with pytest.warns(RuntimeWarning, match="no test file"):  # inference still works
        assert trainer.predict(example.datasets()[2]).predictions.shape == (540, 10)
    argmax = Trainer(model=trainer.model, args=trainer.args, eval_dataset=trainer.eval_dataset,
                     callbacks=[writer], compute_metrics=writer.compute_metrics,
                     preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1))
    with pytest.raises(ClassgapError, match=r"logits of shape \(N, K\).*argmax"):
        argmax.evaluate()
    with pytest.raises(ClassgapError, match="every_n_epochs"):
        PredictionWriterCallback(tmp_path, every_n_epochs=-1)
    with pytest.raises(ClassgapError, match="'fail_on_drop' must be in"):  # before training
        PredictionWriterCallback(tmp_path, baseline="base.npz", fail_on_drop="5")
    assert not list(tmp_path.glob("*.npz"))


def test_two_processes_write_one_file_of_every_sample(tmp_path: Path) -> None:
    """torchrun with two CPU processes: the Trainer gathers the predictions (dropping its
    sampler's repeats) and only the main process writes."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                           "2", str(EXAMPLE), "--out", str(tmp_path / "out"), "--epochs", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(read_predictions(tmp_path / "out" / "test.npz").y_true) == 540
    assert len(read_predictions(tmp_path / "out" / "val_epoch2.npz").y_true) == 252


def test_only_the_main_process_writes(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from transformers import EvalPrediction

    from classgap.integrations.hf import PredictionWriterCallback

    args = SimpleNamespace(eval_strategy="epoch", seed=0)
    for rank, main in ((1, False), (0, True)):
        writer = PredictionWriterCallback(tmp_path / str(rank))
        writer.compute_metrics(EvalPrediction(np.eye(3), np.arange(3)))
        state = SimpleNamespace(is_world_process_zero=main, epoch=1.0, global_step=5)
        writer.on_evaluate(args, state, None, metrics={"eval_loss": 0.1})
        assert (tmp_path / str(rank) / "val_epoch1.npz").exists() == main
