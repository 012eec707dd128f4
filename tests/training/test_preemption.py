"""Training under the ways clusters stop jobs: SIGTERM / Ctrl-C mid-run, failures, bad settings, resumes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from chrono.checkpoint import read_checkpoint
from chrono.errors import ConfigError
from chrono.training.runtime import check_settings

REPO = Path(__file__).resolve().parents[2]
QUICK = ["experiment=smoke", "val.every=0", "final_eval=false", "dataset.num_tracks=16", "dataset.num_frames=6",
         "log_every=1", "checkpoint_every=1000"]


def _mlflow_runs(env):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("chrono-train")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def _start(args, env):
    return subprocess.Popen([sys.executable, "-m", "chrono.train", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _signal_after_step(proc, step: int, signum: int, timeout: float = 300) -> str:
    """Read the run's stderr until it reports ``step``, send ``signum``, then return all of stderr."""
    lines, deadline = [], time.time() + timeout
    for line in proc.stderr:
        lines.append(line)
        if re.search(rf"\[train\] step {step}/", line):
            proc.send_signal(signum)
            break
        assert time.time() < deadline, "".join(lines)[-2000:]
    rest = proc.stderr.read()  # the same buffered reader: communicate() would lose what it read ahead
    proc.wait(timeout=timeout)
    return "".join(lines) + rest


def _weights(path):
    return read_checkpoint(path)["model"]


def _stop(tmp_path, isolated, signum, args):
    """Start a run, stop it with ``signum`` after step 3; (step reached, the run's stderr)."""
    first = _start([*args, f"hydra.run.dir={tmp_path / 'runs' / 'a'}"], isolated)
    err = _signal_after_step(first, 3, signum)
    name = signal.Signals(signum).name
    assert first.returncode == 128 + signum, err[-3000:]
    stopped = re.search(rf"stopped by {name} at step (\d+); (\S+) written; continue with: (.*)", err)
    assert stopped, err[-3000:]
    reached, ckpt = int(stopped.group(1)), Path(stopped.group(2))
    assert "resume=auto" in stopped.group(3) and "Traceback" not in err
    assert ckpt == tmp_path / "runs" / "a" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(ckpt)["progress"]["step"] == reached >= 3
    (run,) = _mlflow_runs(isolated)
    assert run.info.status == "KILLED"
    assert not list((tmp_path / "runs" / "a").glob("*.log"))  # no empty train.log
    return reached, err


@pytest.mark.slow
def test_ctrl_c_saves_and_marks_the_run_killed(tmp_path, isolated):
    _stop(tmp_path, isolated, signal.SIGINT, [*QUICK, "steps=10"])


@pytest.mark.slow
def test_sigterm_saves_marks_killed_and_resume_continues_bit_exactly(tmp_path, isolated):
    args = [*QUICK, "steps=8"]
    reached, _ = _stop(tmp_path, isolated, signal.SIGTERM, args)
    resumed = subprocess.run([sys.executable, "-m", "chrono.train", *args, "resume=auto",
                              f"hydra.run.dir={tmp_path / 'runs' / 'b'}"], cwd=REPO, env=isolated,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {reached}" in resumed.stderr
    straight = subprocess.run([sys.executable, "-m", "chrono.train", *args, f"hydra.run.dir={tmp_path / 'straight'}"],
                              cwd=REPO, env=isolated, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    got, want = _weights(tmp_path / "runs" / "b" / "checkpoints" / "last.ckpt"), _weights(
        tmp_path / "straight" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_a_failing_run_is_marked_failed_in_mlflow(tmp_path, isolated, trainer, fast, monkeypatch):
    import chrono.train as train_module

    def broken_loss(*args, **kwargs):
        raise RuntimeError("a bug in the loss")

    monkeypatch.setattr(train_module, "tracking_loss", broken_loss)
    with pytest.raises(RuntimeError, match="a bug in the loss"):
        trainer([o for o in fast if not o.startswith("mlflow")], tmp_path / "run")
    (run,) = _mlflow_runs(isolated)
    assert run.info.status == "FAILED"


@pytest.mark.parametrize("override,message", [
    ("steps=abc", "steps=abc: expected an integer >= 1"),
    ("steps=2.7", "steps=2.7: expected an integer >= 1"),
    ("checkpoint_every=0", "checkpoint_every=0: expected an integer >= 1"),
    ("log_every=0", "log_every=0: expected an integer >= 1"),
    ("precision=fp64", "precision=fp64: expected one of auto, fp32, bf16, fp16"),
    ("stop_after=-1", "stop_after=-1: expected an integer >= 1 or null"),
])
def test_settings_are_checked_before_any_work(composer, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_settings(composer(["experiment=smoke", override]))


def test_bad_settings_and_overrides_are_one_line_with_exit_2(tmp_path, command):
    for args, message in ((["steps=abc"], "chrono.train: error: steps=abc: expected an integer >= 1"),
                          (["stepz=3"], "chrono.train: error: Could not override 'stepz'")):
        proc = command(["-m", "chrono.train", *QUICK, *args, f"hydra.run.dir={tmp_path / 'run'}"])
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith(message) and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_resume_with_another_schedule_stops_and_names_the_settings(tmp_path, trainer, fast):
    trainer([*fast, "steps=2"], tmp_path / "runs" / "a")
    before = (tmp_path / "runs" / "a" / "checkpoints" / "last.ckpt").read_bytes()
    from chrono.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=r"cannot resume with other schedule settings \(optim.lr: 0.0001 -> "
                                              r"0.001; steps: 2 -> 5\)"):
        trainer([*fast, "steps=5", "optim.lr=1e-3", "resume=auto"], tmp_path / "runs" / "b")
    assert (tmp_path / "runs" / "a" / "checkpoints" / "last.ckpt").read_bytes() == before  # nothing lost


def test_leftovers_of_a_hard_kill_are_removed_when_the_run_resumes(tmp_path, trainer, fast):
    trainer([*fast, "steps=3", "stop_after=1"], tmp_path / "runs" / "a")
    leftover = tmp_path / "runs" / "a" / "checkpoints" / ".last.ckpt.x1y2z3.tmp"
    leftover.write_bytes(b"half a checkpoint")
    trainer([*fast, "steps=3", "stop_after=1", "resume=auto"], tmp_path / "runs" / "b")
    assert not leftover.exists()
    assert (tmp_path / "runs" / "a" / "checkpoints" / "last.ckpt").is_file()


def test_a_missing_shard_fails_before_step_one(tmp_path, command, isolated):
    from chrono.data.synthetic.store import write_train_shards

    root = write_train_shards(tmp_path / "shards", num_clips=4, seed=0, clips_per_shard=2, workers=1,
                              height=32, width=32, num_frames=6, num_objects=1, grid_stride=2, progress=False)
    (root / "train-00001.h5").unlink()
    proc = command(["-m", "chrono.train", *QUICK, "steps=3", f"dataset.root={root}", "mlflow.enabled=false",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"chrono.train: error: {root / 'train-00001.h5'}: shard file not found"
    assert "[train] step" not in proc.stderr


def test_damaged_shard_bytes_stop_training_with_one_line(tmp_path, command):
    import h5py

    from chrono.data.synthetic.store import write_train_shards

    root = write_train_shards(tmp_path / "shards", num_clips=2, seed=0, clips_per_shard=2, workers=1,
                              height=32, width=32, num_frames=6, num_objects=1, grid_stride=2, progress=False)
    shard = root / "train-00000.h5"
    with h5py.File(shard) as f:
        offsets = [f[name]["grid/tracks"].id.get_chunk_info(0).byte_offset for name in f]
    data = bytearray(shard.read_bytes())
    for offset in offsets:
        data[offset + 5] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = command(["-m", "chrono.train", *QUICK, "steps=3", f"dataset.root={root}", "mlflow.enabled=false",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(rf"chrono\.train: error: {re.escape(str(shard))} clip 'clip_00000\d': cannot read the data "
                    r"\(damaged file: checksum", last), last
    assert not list((tmp_path / "run").glob("*.log"))  # no empty train.log


def test_the_stop_handler_hands_the_signal_to_a_scheduler_handler_after_saving():
    from chrono.training.stopping import GracefulStop

    received = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: received.append(signum))  # e.g. submitit's
    try:
        with GracefulStop() as stop:
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.1)
            assert stop.requested and stop.signum == signal.SIGUSR2 and received == []  # only a flag so far
            stop.hand_over()  # after last.ckpt is written: the scheduler's requeue
            assert received == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
