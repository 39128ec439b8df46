"""Progress a user sees on long work (stages inside one event), and tables that fit 80 columns."""

import io
import json
import shutil
import time

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from deepreco import console as console_module
from deepreco.cli import app
from deepreco.distributed import EventRunner
from deepreco.generate import particle_gun
from deepreco.io import write_event, write_submission
from deepreco.metrics import add_weights
from deepreco.progress import listen, stage
from deepreco.reconstruct import get_method
from deepreco.simulate import simulate_event

runner = CliRunner()


class Heard:
    """A listener that notes each stage and how far it went."""

    def __init__(self):
        self.stages: list[list] = []  # [name, total, steps advanced]

    def __call__(self, name, total):
        entry = [name, total, 0]
        self.stages.append(entry)

        def advance(n=1):
            entry[2] += n
        return advance

    @property
    def names(self):
        return [s[0] for s in self.stages]


def test_a_stage_with_nobody_listening_does_nothing_and_listening_ends_with_its_context():
    with stage("alone", total=3) as advance:
        advance()  # no listener: a no-op
    heard = Heard()
    with listen(heard):
        with stage("a", total=2) as advance:
            advance()
            advance()
        with stage("b"):
            pass
    with stage("after"):
        pass
    assert heard.stages == [["a", 2, 2], ["b", None, 0]]


@pytest.fixture(scope="module")
def gun_event():
    particles = particle_gun(n=30, pdg=[13, -13], pt=(1.0, 10.0), eta=(-2.0, 2.0), seed=5)
    return simulate_event(particles, seed=5, event_id=5, noise_fraction=0.02)


@pytest.mark.parametrize("method, stages", [("ckf", ["seeding", "following", "displaced seeding", "displaced following",
                                                     "outer seeding", "outer following", "joining"]),
                                            ("lstm", ["seeding", "prediction", "assignment"]),
                                            ("gnn", ["graph + filter", "network", "building", "kalman following",
                                                     "displaced seeding", "displaced following", "outer seeding",
                                                     "outer following", "joining"])])
def test_every_tracking_method_marks_its_stages_and_finds_the_same_tracks(gun_event, method, stages):
    algo = get_method(method)
    quiet = algo.reconstruct(gun_event)
    heard = Heard()
    with listen(heard):
        tracks = algo.reconstruct(gun_event)
    assert heard.names == stages
    for name, total, done in heard.stages:
        assert total is None or 0 <= done <= total, (name, total, done)
    assert tracks.equals(quiet)


def _terminal(monkeypatch) -> io.StringIO:
    """stderr as an 80-column terminal, written to a string."""
    buffer = io.StringIO()
    monkeypatch.setattr(console_module, "err_console", Console(file=buffer, force_terminal=True, width=80))
    return buffer


def _slow_event(item):
    with stage("thinking", total=2) as advance:
        time.sleep(0.3)  # the bar redraws ten times a second: it shows the stage under way
        advance()
        time.sleep(0.3)
        advance()
    return item


def test_the_event_bar_shows_the_stage_in_hand_on_a_terminal(monkeypatch):
    buffer = _terminal(monkeypatch)
    with EventRunner(progress=True) as r:
        assert r.run(_slow_event, [1], label="things") == [1]
    shown = buffer.getvalue()
    assert "things" in shown and "  thinking" in shown and "1/2" in shown


def test_a_training_s_preparation_counts_its_events_on_a_terminal(monkeypatch):
    buffer = _terminal(monkeypatch)
    seen = []
    for item in console_module.counted(iter(range(3)), "train events", total=3):
        time.sleep(0.15)
        seen.append(item)
    assert seen == [0, 1, 2] and "train events" in buffer.getvalue()
    monkeypatch.setenv("RANK", "1")  # the other processes of a torchrun draw nothing
    buffer.seek(0)
    buffer.truncate()
    assert list(console_module.counted(range(2), "train events")) == [0, 1] and buffer.getvalue() == ""


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(console_module, "err_console", Console(file=buffer, force_terminal=False, width=80))
    with console_module.progress_bar("things", 1) as advance:
        assert advance is None
        with stage("thinking"):  # nobody listens
            pass
    assert buffer.getvalue() == ""


# ---- tables in 80 columns ---------------------------------------------------------------------------------------
@pytest.fixture
def narrow(monkeypatch):
    """stdout as an 80-column console (the title line may run longer: a path is never broken)."""
    monkeypatch.setattr(console_module.console, "_width", 80)

    def check(argv):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines and all(len(line) <= 80 for line in lines[1:]), "\n".join(lines)
        assert "…" not in result.stdout, result.stdout  # nothing cut short
        return result.stdout
    return check


@pytest.fixture
def event_dir(tmp_path, tiny_event):
    tiny_event.truth = add_weights(tiny_event.truth, tiny_event.particles)
    write_event(tiny_event, tmp_path / "ev")
    return tmp_path / "ev"


def test_the_tracking_tables_fit_80_columns_and_json_has_their_figures(narrow, event_dir, tmp_path):
    from deepreco.generate import particle_gun
    from deepreco.simulate import simulate_event

    # dbscan reads events of the TrackML detector only: a small simulated one
    sim = tmp_path / "sim"
    write_event(simulate_event(particle_gun(n=5, pt=(1.0, 10.0), seed=1), seed=1), sim)
    shown = narrow(["evaluate", str(sim), "-m", "truth", "-m", "dbscan"])
    assert "dup: duplicate rate" in shown
    row = next(line.split() for line in shown.splitlines() if line.split()[:1] == ["truth"])
    figures = json.loads(runner.invoke(app, ["evaluate", str(sim), "-m", "truth", "-m", "dbscan",
                                             "--json"]).stdout)["truth"]
    assert [float(v) for v in row[1:6]] == pytest.approx(
        [figures[k] for k in ("score", "efficiency", "efficiency_perfect", "fake_rate", "duplicate_rate")], abs=1e-4)

    event = event_dir / "event000000042"
    truth = pd.read_csv(f"{event}-truth.csv")
    sub = write_submission(truth.rename(columns={"particle_id": "track_id"})[["hit_id", "track_id"]],
                           tmp_path / "sub.csv")
    narrow(["score", str(event), str(sub)])
    assert json.loads(runner.invoke(app, ["score", str(event), str(sub), "--json"]).stdout)["score"] == 1.0
    for part in event_dir.glob("event000000042-*"):  # a second event: info's table of events
        shutil.copy(part, event_dir / part.name.replace("42-", "43-"))
    narrow(["info", str(event_dir)])
    assert len(json.loads(runner.invoke(app, ["info", str(event_dir), "--json"]).stdout)) == 2
    shown = narrow(["methods"])
    assert "ckf" in shown and "gravnet" in shown and "deepcore" in shown
    assert set(json.loads(runner.invoke(app, ["methods", "--json"]).stdout)) == {"calo", "seeding", "tracking"}


def test_the_calorimeter_and_deepcore_tables_fit_80_columns(narrow):
    shown = narrow(["calo", "evaluate", "--events", "1", "--methods", "clue,clue+drn"])
    assert "clue+drn" in shown and "had: resolution of hadronic showers" in shown
    shown = narrow(["deepcore", "evaluate", "--events", "1"])
    assert "baseline_kmeans" in shown


# ---- pictures: the field's style where it fits, titles that say what they show ----------------------------------
def test_the_hep_style_holds_while_drawing_and_plain_matplotlib_without_mplhep(monkeypatch):
    import sys

    import matplotlib

    from deepreco.plotstyle import hep_style

    before = matplotlib.rcParams["xtick.direction"]
    with hep_style() as styled:
        assert styled and matplotlib.rcParams["xtick.direction"] == "in"  # the HEP ticks, inside the frame
    assert matplotlib.rcParams["xtick.direction"] == before
    monkeypatch.setitem(sys.modules, "mplhep", None)  # as if not installed
    with hep_style() as styled:
        assert not styled and matplotlib.rcParams["xtick.direction"] == before


@pytest.mark.parametrize("mplhep", [True, False])
def test_the_score_plot_and_the_display_name_the_tracks_their_score_and_the_event(event_dir, tmp_path, monkeypatch,
                                                                                  mplhep):
    import sys

    import matplotlib.figure

    from deepreco.display import tracks_title
    from deepreco.io import read_event

    if not mplhep:
        monkeypatch.setitem(sys.modules, "mplhep", None)
    event = event_dir / "event000000042"
    truth = pd.read_csv(f"{event}-truth.csv")
    sub = write_submission(truth.rename(columns={"particle_id": "track_id"})[["hit_id", "track_id"]],
                           tmp_path / "mine.csv")
    titles = []
    real = matplotlib.figure.Figure.suptitle

    def noted(self, text, **kwargs):  # the titles the pictures get
        titles.append(text)
        return real(self, text, **kwargs)
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", noted)
    result = runner.invoke(app, ["score", str(event), str(sub), "--plot", str(tmp_path / "eff.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eff.png").read_bytes()[:4] == b"\x89PNG"
    result = runner.invoke(app, ["display", str(event), "--tracks", str(sub), "--out", str(tmp_path / "d.png")])
    assert result.exit_code == 0, result.output
    assert titles[0] == "mine.csv on event 42: TrackML score 1.000"
    assert titles[1].startswith("tracks of mine.csv: TrackML score 1.000") and "event 42" in titles[1]
    ev = read_event(event)
    assert tracks_title(ev, pd.read_csv(sub), "ckf").startswith("tracks of ckf: TrackML score 1.000")
