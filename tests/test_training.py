"""The one trainer (`deepreco.training`): data-parallel training under torchrun, resuming a killed run, settings
files, and the one-line errors of bad model files, checkpoints and settings. Tiny data, a tiny LSTM: seconds."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from deepreco.cli import app
from deepreco.modelfile import load
from deepreco.training import GlobalBatches, fit, seeded_order, settings_for

pytest.importorskip("lightning")
torch.set_num_threads(1)
runner = CliRunner()
SETTINGS = {"epochs": 3, "seed": 3, "hidden": [16], "batch_size": 16, "learning_rate": 0.01}
SHIPPED_GNN = Path(__file__).parents[1] / "src" / "deepreco" / "data" / "models" / "gnn_tracks.pt"


@pytest.fixture(scope="module")
def config(pion_set, tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "lstm.yaml"
    path.write_text(yaml.safe_dump({**SETTINGS, "data": str(pion_set)}))
    return path


@pytest.fixture(scope="module")
def uninterrupted(config, tmp_path_factory):
    """One process, start to end."""
    out = tmp_path_factory.mktemp("one") / "lstm.pt"
    record = fit("lstm", settings_for("lstm", config), out, progress=False)
    return out, record


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def test_global_batches_split_each_batch_over_the_processes():
    order = seeded_order(10, 0)
    one = list(GlobalBatches(10, 4, 0, 1, lambda: 0, order))
    two = [list(GlobalBatches(10, 4, r, 2, lambda: 0, order)) for r in range(2)]
    assert [len(b) for b in one] == [4, 4, 2]
    for k, batch in enumerate(one):  # the same global batches, each cut in two
        assert [i for i, _ in two[0][k] + two[1][k]] == [i for i, _ in batch]
        assert {n for _, n in two[0][k] + two[1][k]} == {len(batch)}
    assert [i for i, _ in one[0]] != [i for i, _ in next(iter(GlobalBatches(10, 4, 0, 1, lambda: 1, order)))]


def test_two_processes_under_torchrun_take_the_steps_of_one(uninterrupted, config, tmp_path):
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "deepreco", "train", "lstm", "--config", str(config), "--out", str(out)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = load(uninterrupted[0], "lstm"), load(out, "lstm")
    assert two.record["processes"] == 2 and one.record["processes"] == 1
    # the same global batch gives the same gradient: the curves and weights agree up to float rounding
    assert np.allclose(two.record["train_loss"], one.record["train_loss"], rtol=1e-5, atol=0)
    assert np.allclose(two.record["val_loss"], one.record["val_loss"], rtol=1e-5, atol=0)
    for k, w in one.weights["net"].items():
        assert torch.allclose(two.weights["net"][k], w, atol=1e-5), k
    assert two.settings == one.settings


def test_a_killed_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(uninterrupted, config, tmp_path):
    out = tmp_path / "killed.pt"
    script = textwrap.dedent(f"""
        import os, signal, torch
        import lightning.pytorch as pl
        from deepreco.training import fit, settings_for
        torch.set_num_threads(1)

        class Kill(pl.Callback):  # SIGKILL in the middle of the last epoch
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                if trainer.current_epoch == 2 and batch_idx == 3:
                    os.kill(os.getpid(), signal.SIGKILL)

        settings = settings_for("lstm", {str(config)!r}, {{"checkpoint_every_steps": 2}})
        fit("lstm", settings, {str(out)!r}, progress=False, callbacks=[Kill()])
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and not out.exists()
    ckpts = out.with_name("killed.pt.checkpoints")
    names = sorted(p.name for p in ckpts.iterdir())
    # 7 steps an epoch: epochs 1 and 2 done, the last checkpoint (step 16) after 2 steps of epoch 3; none at step 14,
    # the last of epoch 2, where the epoch's checkpoint follows
    assert names == ["epoch000.ckpt", "epoch001.ckpt", "last.ckpt"] + [f"step{s:06d}.ckpt" for s in range(2, 17, 2)
                                                                       if s != 14]
    result = runner.invoke(app, ["train", "lstm", "--out", str(out), "--resume", str(ckpts / "last.ckpt")])
    assert result.exit_code == 0, result.output
    resumed, whole = load(out, "lstm"), load(uninterrupted[0], "lstm")
    assert resumed.record["train_loss"] == whole.record["train_loss"]  # the same curve, continued
    assert resumed.record["val_loss"] == whole.record["val_loss"]
    assert all(torch.equal(resumed.weights["net"][k], w) for k, w in whole.weights["net"].items())
    assert {**resumed.settings, "checkpoint_every_steps": None} == whole.settings
    # any checkpoint, not only the last one: an epoch's end, and the middle of an epoch
    for name in ("epoch000.ckpt", "step000010.ckpt"):
        again = fit("lstm", whole.settings, tmp_path / "again.pt", resume=ckpts / name, progress=False,
                    checkpoints=False)
        assert again["train_loss"] == whole.record["train_loss"], name
        assert all(torch.equal(again["net"].state_dict()[k], w) for k, w in whole.weights["net"].items()), name


def test_the_model_file_keeps_the_settings_that_remake_it(uninterrupted, tmp_path):
    out, record = uninterrupted
    mf = load(out, "lstm")
    assert mf.settings["hidden"] == [16] and mf.settings["epochs"] == 3 and mf.settings["model"] == "lstm"
    assert len(mf.record["train_loss"]) == 3 and mf.record["seconds"] > 0 and mf.record["threads"] >= 1
    config = tmp_path / "from_model.yaml"
    config.write_text(yaml.safe_dump(mf.settings))
    result = runner.invoke(app, ["train", "lstm", "--config", str(config), "--out", str(tmp_path / "remade.pt")])
    assert result.exit_code == 0, result.output
    remade = load(tmp_path / "remade.pt", "lstm")
    assert remade.record["train_loss"] == mf.record["train_loss"]
    assert all(torch.equal(remade.weights["net"][k], w) for k, w in mf.weights["net"].items())


def _one_line_and_nothing_written(result, out, message):
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr, result.stderr
    assert not out.exists() and not out.with_name(out.name + ".checkpoints").exists()


def test_bad_checkpoints_model_files_and_settings_give_one_line(pion_set, tmp_path):
    out = tmp_path / "m.pt"
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"PK\x03\x04 not a checkpoint")
    cases = [
        (["--resume", str(SHIPPED_GNN)], "gnn_tracks.pt: not a deepreco training checkpoint"),
        (["--resume", str(broken)], "broken.ckpt: not a deepreco checkpoint file"),
        (["--resume", str(tmp_path / "absent.ckpt")], "absent.ckpt: no such checkpoint"),
        (["--config", str(tmp_path / "absent.yaml")], "absent.yaml: no such settings file"),
    ]
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("epochs: [1,\n")
    cases.append((["--config", str(bad_yaml)], "bad.yaml: not valid YAML"))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("epochz: 3\n")
    cases.append((["--config", str(unknown)], "unknown.yaml: unknown lstm setting epochz"))
    for args, message in cases:
        result = runner.invoke(app, ["train", "lstm", "--data", str(pion_set), "--out", str(out), *args])
        _one_line_and_nothing_written(result, out, message)
    # a model file of another kind, a broken one and a missing one where a model is read
    for model, message in [(SHIPPED_GNN, "gnn_tracks.pt: a model of kind 'gnn', expected kind 'lstm'"),
                           (broken, "broken.ckpt: not a deepreco model file"),
                           (tmp_path / "absent.pt", "absent.pt: no such model file")]:
        result = runner.invoke(app, ["reconstruct", str(pion_set), "-m", "lstm", "--model", str(model), "--out",
                                     str(out)])
        _one_line_and_nothing_written(result, out, message)


def test_ctrl_c_stops_a_training_with_one_line_and_it_resumes(uninterrupted, config, tmp_path):
    """SIGINT mid-run: exit 130 (128 + SIGINT), one `error:` line naming the checkpoint to resume from, no model
    file, no process."""
    import signal
    import time

    out = tmp_path / "stopped.pt"
    settings = tmp_path / "slow.yaml"
    settings.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "epochs": 400}))
    proc = subprocess.Popen([sys.executable, "-m", "deepreco", "train", "lstm", "--config", str(settings), "--out",
                             str(out)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpts = out.with_name("stopped.pt.checkpoints")
    deadline = time.monotonic() + 120
    while not (ckpts / "epoch001.ckpt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 10
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 130 and lines[-1].startswith("error: training stopped; resume with --resume"), stderr
    assert "Traceback" not in stderr and not out.exists()
    done = torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"]
    result = runner.invoke(app, ["train", "lstm", "--out", str(out), "--resume", str(ckpts / "last.ckpt"),
                                 "--epochs", str(done)])
    assert result.exit_code == 1 and f"ask for at least {done + 1} epochs" in result.output and not out.exists()
    result = runner.invoke(app, ["train", "lstm", "--out", str(out), "--resume", str(ckpts / "last.ckpt"),
                                 "--epochs", str(done + 1)])
    assert result.exit_code == 0, result.output
