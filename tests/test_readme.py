"""The README's ```bash and ```python blocks, run as a reader would: in order, in one new folder, each block's
files there for the next. The long ones run with small sizes (SMALL below: every change is listed, and each
must still find its text in the README); a block marked ``<!-- readme-test: skip (reason) -->`` is reported
as skipped with its reason. The installation lines are CI's own steps (.ci/run), not run again here.

Most blocks take a minute or more on two cores even small (the demo, the Dask cluster, training, export,
serving): they run only with ``DEEPRECO_README=all``, which ``.ci/readme`` sets; without it they are reported
as skipped, saying so, and the synopsis and the blocks marked ``quick`` run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from deepreco.export.serve import free_port_pair

README = Path(__file__).resolve().parents[1] / "README.md"
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(skip|synopsis)\s*\((.+)\)\s*-->")
# What each block is run with: the block is found by a piece of its text; each (old, new) replaces text that
# must be in it ({port} is a free port here, {port1} the next one). Why, in a word, beside each.
SMALL: dict[str, dict] = {
    # the quick start: installing and the test suite are CI's own steps (.ci/run); the demo runs as written
    "deepreco demo\n": {"changes": [
        ('python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && '
         'pip install -e ".[sim,fast]" && ', ""),
        ('python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[test]" && '
         "pytest", ""),
    ]},
    # three mu = 200 events take minutes to reconstruct: two at mu = 5 here
    "deepreco simulate -g ttbar --pileup 200 -n 3": {"changes": [("--pileup 200 -n 3", "--pileup 5 -n 2")]},
    "particles = ttbar_with_pileup(mu=200": {"changes": [("mu=200", "mu=5"), ('"epochs": 5', '"epochs": 1')]},
    # a cluster by hand: the scheduler and the workers in the background on this machine, two events
    "dask scheduler --port 8786": {"changes": [
        ("dask scheduler --port 8786", "dask scheduler --port {port} --no-dashboard > scheduler.log 2>&1 &"),
        ("dask worker tcp://HOST:8786 --nworkers 32 --nthreads 1",
         "dask worker tcp://127.0.0.1:{port} --nworkers 2 --nthreads 1 --no-dashboard > workers.log 2>&1 &"),
        ("--pileup 200 -n 10000", "--pileup 5 -n 2"), ("/shared/ttbar", "shared/ttbar"),
        ("tcp://HOST:8786", "tcp://127.0.0.1:{port}"),
    ]},
    "--out sim/train": {"changes": [
        ("--pileup 200 -n 20", "--pileup 5 -n 4"), ("epochs: 20", "epochs: 1"), ("events: 300", "events: 3"),
        ("max_steps: 5500", "max_steps: 3"),
        ("val_events: 100", "val_events: 2"),
    ]},
    "--resume bilstm.pt.checkpoints/last.ckpt": {"changes": []},
    "torchrun --standalone --nproc-per-node 2 -m deepreco train lstm": {"changes": []},
    "deepreco train gnn --data sim/train": {"changes": [
        ("--gnn-epochs 10", "--gnn-epochs 1 --filter-epochs 1 --val 1"),
        ("gnn_epochs: 10", "gnn_epochs: 1\nfilter_epochs: 1\nval: 2"),
    ]},
    "deepreco export all --out onnx": {"changes": [
        ("deepreco serve triton-repo --port 8000",
         "deepreco serve triton-repo --port {port} > serve.log 2>&1 & wait_for {port1}"),
        ("localhost:8001", "localhost:{port1}"),
    ]},
    "client.infer(\"lstm\"": {"server": True, "changes": [("127.0.0.1:8001", "127.0.0.1:{port1}")]},
}
SMALL["from deepreco.deepcore.events import make_event"] = {"quick": True, "changes": []}
SMALL["from deepreco.deepcore.strips import strip_hits"] = {"quick": True, "changes": []}
# bash helpers the changes above use; background jobs end with the block
PRELUDE = """trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
wait_for() {  # a port that answers (a server started in the background)
    for _ in $(seq 240); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.5; done; return 1
}
"""


@dataclass
class Block:
    line: int  # of the opening fence
    lang: str
    code: str
    directive: tuple[str, str] | None  # (skip | synopsis, reason) from the comment just above the fence

    @property
    def id(self) -> str:
        return f"{self.lang}-line{self.line}"


def readme_blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(bash|python)\s*$", lines[i])
        if m is None:
            i += 1
            continue
        start = i
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        above = next((x for x in reversed(lines[:start]) if x.strip()), "")
        d = DIRECTIVE.search(above)
        blocks.append(Block(start + 1, m.group(1), "\n".join(lines[start + 1:j]) + "\n",
                            (d.group(1), d.group(2)) if d else None))
        i = j + 1
    return blocks


BLOCKS = readme_blocks()


def _entry(block: Block) -> dict:
    found = [key for key in SMALL if key in block.code]
    assert len(found) <= 1, f"README line {block.line}: several SMALL entries match ({found})"
    return SMALL[found[0]] if found else {"changes": []}


def _as_run(block: Block, port: int) -> str:
    code = block.code
    for old, new in _entry(block)["changes"]:
        assert old in code, f"README line {block.line}: the test's change of {old!r} no longer applies"
        code = code.replace(old, new.format(port=port, port1=port + 1))
    return code


def test_every_change_finds_its_block():
    for key in SMALL:
        assert sum(key in b.code for b in BLOCKS) == 1, f"SMALL entry {key!r} matches no block, or several"
    assert len(BLOCKS) >= 10 and sum(b.directive is not None and b.directive[0] == "skip" for b in BLOCKS) <= 3


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("readme")


def _env() -> dict:
    env = dict(os.environ)
    # the commands of this environment (deepreco, dask, torchrun) first; this checkout's code first
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    src = str(README.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run in its own session, so that whatever it started in the background goes with it."""
    proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out)


def _synopsis(block: Block, cwd: Path) -> None:
    """A synopsis block: each `deepreco ...` command's --help runs and names every option the line shows."""
    commands: list[tuple[list[str], set[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("deepreco"):
            words = []
            for w in line.split()[1:]:
                if not re.fullmatch(r"[a-z][a-z-]*", w):
                    break
                words.append(w)
            commands.append((words, set()))
        elif not line.startswith(" ") or not commands:
            continue
        commands[-1][1].update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
    assert len(commands) >= 10
    for words, options in commands:
        result = _run(["deepreco", *words, "--help"], cwd, 60)
        assert result.returncode == 0, f"deepreco {' '.join(words)} --help: {result.stdout[-2000:]}"
        missing = sorted(o for o in options if re.search(rf"(?<![\w-]){o}(?![\w-])", result.stdout) is None)
        assert not missing, f"README line {block.line}: deepreco {' '.join(words)} has no {', '.join(missing)}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, workdir: Path):
    if block.directive is not None and block.directive[0] == "skip":
        pytest.skip(f"README line {block.line}: {block.directive[1]}")
    if block.directive is not None:
        return _synopsis(block, workdir)
    entry = _entry(block)
    if not entry.get("quick") and os.environ.get("DEEPRECO_README") != "all":
        pytest.skip(f"README line {block.line}: a minute or more: run by .ci/readme (DEEPRECO_README=all)")
    port = free_port_pair()
    code = _as_run(block, port)
    server = None
    if entry.get("server"):  # a client's example: the repository the export block wrote, served for it
        server = subprocess.Popen([shutil.which("deepreco", path=_env()["PATH"]) or "deepreco", "serve",
                                   "triton-repo", "--port", str(port)], cwd=workdir, env=_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        code = f"import socket, time\n{_wait_code(port + 1)}\n{code}"
    try:
        if block.lang == "bash":
            result = _run(["bash", "-euo", "pipefail", "-c", PRELUDE + code], workdir, 900)
        else:
            result = _run([sys.executable, "-c", code], workdir, 900)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert result.returncode == 0, f"README line {block.line} as run:\n{code}\n--- output:\n{result.stdout[-4000:]}"


def _wait_code(port: int) -> str:
    return (f"for _ in range(240):\n    try:\n        socket.create_connection(('127.0.0.1', {port}), 1).close()\n"
            "        break\n    except OSError:\n        time.sleep(0.5)\n")
