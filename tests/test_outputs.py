"""The output-path policy: every refusal is one line with exit code 2, and nothing the user did not name changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from genpas.cli import main


def run(args, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


@pytest.fixture
def log(tmp_path):
    from genpas.data.synth import SynthConfig, synthesize, write_table

    path = tmp_path / "ratings.csv"
    write_table(synthesize(SynthConfig(users=30, items=15, mean_length=6, seed=1)), path)
    return path


def snapshot(directory):
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


CASES = [
    # (name, command builder, expected message part)
    ("pairs into its input", lambda t, d: ["pairs", "--data", str(d), "--exact", "--out", str(d)], "is an input"),
    ("pairs over an existing file", lambda t, d: ["pairs", "--data", str(d), "--exact", "--out", str(t / "old.txt")],
     "already exists; pass --overwrite"),
    ("pairs into a directory", lambda t, d: ["pairs", "--data", str(d), "--exact", "--out", str(t / "dir")],
     "is a directory"),
    ("pairs under a file", lambda t, d: ["pairs", "--data", str(d), "--exact", "--out", str(t / "old.txt" / "x")],
     "is a file, not a directory"),
    ("analyze into its input", lambda t, d: ["analyze", "--data", str(d), "--out", str(d)], "is an input"),
    ("analyze plots into a file", lambda t, d: ["analyze", "--data", str(d), "--out", str(t / "a.json"), "--plots",
                                                str(t / "old.txt")], "--plots"),
    ("train into a file", lambda t, d: ["train", "--data", str(d), "--out", str(t / "old.txt")], "is a file"),
    ("resume of nothing", lambda t, d: ["train", "--data", str(d), "--out", str(t / "nothing"), "--resume"],
     "holds no run"),
    ("run into a file", lambda t, d: ["run", "--data", str(d), "--out", str(t / "old.txt")], "is a file"),
    ("experiment into a file", lambda t, d: ["experiment", "strategies", "--data", str(d), "--out",
                                             str(t / "old.txt")], "is a file"),
]


@pytest.mark.parametrize("name,build,message", CASES, ids=[c[0] for c in CASES])
def test_refused_outputs_change_nothing(tmp_path, log, capsys, name, build, message):
    (tmp_path / "old.txt").write_text("keep me\n")
    (tmp_path / "dir").mkdir()
    before = snapshot(tmp_path)
    code, out = run(build(tmp_path, log), capsys)
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in out.err
    after = snapshot(tmp_path)
    assert {p: b for p, b in after.items() if p in before} == before  # nothing the user had changed
    assert not [p for p in after if p not in before and ".tmp" in p.name]


@pytest.mark.parametrize("out", ["ro", "ro/run"])
def test_an_output_directory_that_cannot_be_created_is_one_line(tmp_path, log, capsys, monkeypatch, out):
    """A read-only or virtual file system (say /proc) refuses mkdir although the parent looks writable."""
    import errno
    import pathlib

    real = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == "ro":
            raise OSError(errno.EROFS, "Read-only file system")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    code, result = run(["train", "--data", str(log), "--out", str(tmp_path / out), "--epochs", "1"], capsys)
    assert code == 2 and "Traceback" not in result.err
    assert result.err.strip().splitlines() == [f"error: --out {tmp_path / out}: cannot create {tmp_path / 'ro'} "
                                               "(Read-only file system)"]
    assert not (tmp_path / "ro").exists()


def test_overwrite_replaces_only_when_asked(tmp_path, log, capsys):
    out = tmp_path / "pairs.jsonl"
    out.write_text("old\n")
    code, _ = run(["pairs", "--data", str(log), "--exact", "--out", str(out), "--overwrite"], capsys)
    assert code == 0 and out.read_text().startswith('{"user"')
    code, _ = run(["pairs", "--data", str(log), "--exact", "--out", str(tmp_path / "new" / "p.jsonl")], capsys)
    assert code == 0 and (tmp_path / "new" / "p.jsonl").exists()  # parent directories are created


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_leaves_no_temporary_file(tmp_path):
    """A SIGTERM during a long write unwinds like Ctrl-C: the temporary file is removed."""
    from genpas.data.synth import SynthConfig, synthesize, write_table

    data = tmp_path / "big.csv"
    write_table(synthesize(SynthConfig(users=3000, items=500, mean_length=60, seed=2)), data)
    out = tmp_path / "out" / "pairs.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "genpas", "pairs", "--data", str(data), "--strategy", "sw",
                             "--exact", "--out", str(out)], stderr=subprocess.PIPE, env={**os.environ})
    import time

    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "out").glob(".pairs.jsonl.tmp-*")):
        if proc.poll() is not None:
            pytest.skip("the write finished before the signal could be sent")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert proc.returncode != 0
    assert not list((tmp_path / "out").glob(".pairs.jsonl.tmp-*")) and not out.exists()


BAD_FLAGS = [
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--lr", "nan"], "--lr must be finite"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["--device", "tpu"], "--device must be auto, cpu, cuda"),
    (["--dropout", "1.5"], "--dropout must lie in [0, 1)"),
    (["--num-pairs", "0"], "--num-pairs must be >= 1"),
    (["--time-budget", "nan"], "--time-budget must be finite"),
    (["--mode", "chunked"], "--mode must be one of packed, pairs"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_train_flags_are_validated_before_any_work(tmp_path, log, capsys, flags, message):
    code, out = run(["train", "--data", str(log), "--out", str(tmp_path / "r"), *flags], capsys)
    assert code == 2 and message in out.err
    assert len(out.err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_yaml_values_of_the_wrong_type_are_one_line(tmp_path, log, capsys):
    (tmp_path / "c.yaml").write_text("lr: fast\n")
    code, out = run(["train", "--data", str(log), "--out", str(tmp_path / "r"), "--config", str(tmp_path / "c.yaml")],
                    capsys)
    assert code == 2 and "c.yaml: lr: must be a number, got 'fast'" in out.err and len(out.err.strip().splitlines()) == 1


MORE_CASES = [  # further cases of the reliability review: (name, args builder, message part)
    ("pairs to a device node", lambda t, d: ["pairs", "--data", str(d), "--exact", "--out", "/dev/null"],
     "not a regular file"),
    ("pairs seed -1", lambda t, d: ["pairs", "--data", str(d), "--seed", "-1", "--out", str(t / "p.jsonl")],
     "--seed must be >= 0"),
    ("analyze seed -1", lambda t, d: ["analyze", "--data", str(d), "--seed", "-1", "--out", str(t / "a.json")],
     "--seed >= 0"),
    ("analyze max-len 0", lambda t, d: ["analyze", "--data", str(d), "--max-len", "0", "--out", str(t / "a.json")],
     "--max-len >= 1"),
    ("analyze samples 0", lambda t, d: ["analyze", "--data", str(d), "--samples", "0", "--out", str(t / "a.json")],
     "--samples >= 1"),
    ("analyze smoothing nan", lambda t, d: ["analyze", "--data", str(d), "--smoothing", "nan", "--out",
                                            str(t / "a.json")], "--smoothing must be in [0, 1)"),
    ("synth seed -1", lambda t, d: ["synth", "--seed", "-1", "--out", str(t / "s.csv")], "--seed must be >= 0"),
    ("synth over its input", lambda t, d: ["synth", "--out", str(t / "old.txt")], "already exists"),
    ("run time-budget nan", lambda t, d: ["run", "--data", str(d), "--time-budget", "nan", "--out", str(t / "r")],
     "--time-budget must be finite"),
    ("run no strategies", lambda t, d: ["run", "--data", str(d), "--strategies", ",", "--out", str(t / "r")],
     "--strategies: empty item at position 1"),
    ("train seed as text", lambda t, d: ["train", "--data", str(d), "--seed", "x", "--out", str(t / "r")],
     "Invalid value for '--seed'"),
    ("prepare into a file", lambda t, d: ["prepare", "--data", str(d), "--out", str(t / "old.txt")],
     "not a directory"),
]


@pytest.mark.parametrize("name,build,message", MORE_CASES, ids=[c[0] for c in MORE_CASES])
def test_more_refusals_change_nothing(tmp_path, log, capsys, name, build, message):
    test_refused_outputs_change_nothing(tmp_path, log, capsys, name, build, message)
    assert not any((tmp_path / n).exists() for n in ("p.jsonl", "a.json", "s.csv", "r"))


def test_a_write_refused_without_a_file_name_is_named_by_the_output(tmp_path):
    from genpas.atomic import atomic_path

    with pytest.raises(OSError) as info:  # a full disk: write() and close() name no file
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("partial")
            raise OSError(28, "No space left on device")
    assert info.value.filename == str(tmp_path / "out.json") and "No space left on device" in info.value.strerror
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone, nothing else was written
