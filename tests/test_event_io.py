"""The event model and its files: round trips, datasets, real TrackML files, and every kind of bad input."""

import gzip
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_event

from deepreco.errors import EventError, FormatError, MissingFileError
from deepreco.event import Event
from deepreco.io import (
    Dataset,
    example_event,
    read_event,
    read_submission,
    read_table,
    write_event,
    write_submission,
)


def test_event_casts_to_trackml_dtypes(tiny_event):
    assert tiny_event.hits["hit_id"].dtype == np.int32
    assert tiny_event.hits["x"].dtype == np.float32
    assert tiny_event.particles["particle_id"].dtype == np.int64
    assert tiny_event.truth["particle_id"].dtype == np.int64
    assert tiny_event.summary()["noise_fraction"] == pytest.approx(3 / 18)


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_write_read_round_trip(tmp_path, tiny_event, fmt):
    paths = write_event(tiny_event, tmp_path, format=fmt)
    assert sorted(p.name for p in paths) == sorted(f"event000000042-{part}.{fmt}"
                                                   for part in ("hits", "particles", "truth"))
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"
    back = read_event(tmp_path / "event000000042")          # by prefix
    same = read_event(paths[0])                              # by any of its files
    for ev in (back, same):
        assert ev.event_id == 42
        for part in ("hits", "particles", "truth"):
            pd.testing.assert_frame_equal(getattr(ev, part), getattr(tiny_event, part))
        assert ev.cells is None


def test_gzip_output_is_byte_identical(tmp_path, tiny_event):
    a = write_event(tiny_event, tmp_path / "a", format="csv.gz")
    b = write_event(tiny_event, tmp_path / "b", format="csv.gz")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_dataset_directory_and_zip_any_prefix(tmp_path):
    events = [make_tiny_event(seed=s) for s in range(3)]
    for i, ev in enumerate(events):
        ev.event_id = 1000 + i
        write_event(ev, tmp_path / "dir" / "train_1", format="csv")
    ds = Dataset(tmp_path / "dir")
    assert ds.event_ids == [1000, 1001, 1002]
    assert ds.names[0] == "train_1/event000001000"
    it = iter(ds)  # lazy: nothing read before next()
    assert next(it).event_id == 1000
    with zipfile.ZipFile(tmp_path / "events.zip", "w") as zf:
        for f in sorted((tmp_path / "dir" / "train_1").iterdir()):
            zf.write(f, f"somewhere/train_1/{f.name}")
    zds = Dataset(tmp_path / "events.zip")
    assert len(zds) == 3
    ev = zds.read(1001)
    pd.testing.assert_frame_equal(ev.truth, events[1].truth)
    with pytest.raises(MissingFileError, match="no event 7"):
        zds.read(7)


def test_read_only_some_parts_and_missing_part(tmp_path, tiny_event):
    write_event(tiny_event, tmp_path)
    ev = read_event(tmp_path / "event000000042-hits.csv", parts=["hits"])
    assert ev.truth is None and ev.particles is None
    with pytest.raises(MissingFileError, match="no cells file"):
        read_event(tmp_path / "event000000042", parts=["hits", "cells"])


def test_shipped_event_matches_the_figures_of_the_data_readme():
    summary = example_event().summary()
    assert summary["n_hits"] == 93_680
    assert summary["n_particles"] == 8_915
    assert summary["n_particles_with_hits"] == 7_699
    assert summary["n_particles_pt_gt_1"] == 896
    assert summary["particle_hits"] == 76_210
    assert summary["noise_fraction_estimate"] == pytest.approx(0.186, abs=5e-4)


def test_real_trackml_files_load_unchanged(shared_trackml):
    ev = read_event(shared_trackml / "train" / "event000001003-hits.csv.gz")
    raw = pd.read_csv(shared_trackml / "train" / "event000001003-hits.csv.gz")
    assert ev.n_hits == len(raw)
    np.testing.assert_array_equal(ev.hits["x"].to_numpy(), raw["x"].to_numpy(np.float32))
    assert ev.particles is not None and ev.truth is None
    ds = Dataset(shared_trackml / "test")
    assert ds.event_ids == [2, 3, 5, 6]


def test_empty_event_is_valid(tmp_path):
    cols = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
    ev = Event(hits=pd.DataFrame(columns=cols), event_id=5)
    assert ev.n_hits == 0
    write_event(ev, tmp_path)
    assert read_event(tmp_path / "event000000005").n_hits == 0


# --- bad input: one clear error naming the file and the fault, nothing half-read ---------------------------

def _hits_csv(tmp_path, text, name="event000000001-hits.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "hit_id,x,y,z,volume_id,layer_id,module_id\n"


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="event000000009.*no such file"):
        read_event(tmp_path / "event000000009-hits.csv")


def test_missing_column_names_the_file(tmp_path):
    path = _hits_csv(tmp_path, "hit_id,x,y,volume_id,layer_id,module_id\n1,1.0,2.0,8,2,1\n")
    with pytest.raises(FormatError, match=r"event000000001-hits.csv: missing column z"):
        read_event(path)


@pytest.mark.parametrize("row, fault", [
    ("1,1.0,abc,3.0,8,2,1", "non-numeric value 'abc'"),
    ("1,1.0,,3.0,8,2,1", "column y has 1 NaN"),
    ("1,1.0,nan,3.0,8,2,1", "column y has 1 NaN"),
    ("1,1.0,2.0,3.0,8.5,2,1", "non-integer value 8.5"),
])
def test_bad_values(tmp_path, row, fault):
    path = _hits_csv(tmp_path, HEADER + "2,0,0,0,8,2,1\n" + row + "\n")
    with pytest.raises(FormatError, match=f"event000000001-hits.csv: .*{fault}"):
        read_table(path, "hits")


def test_duplicated_hit_id(tmp_path):
    path = _hits_csv(tmp_path, HEADER + "1,0,0,0,8,2,1\n1,1,1,1,8,2,1\n")
    with pytest.raises(EventError, match=r"event000000001-hits.csv: 1 duplicated hit_id \(e.g. hit_id 1\)"):
        read_event(path)


def test_truncated_gzip(tmp_path, tiny_event):
    write_event(tiny_event, tmp_path, format="csv.gz")
    path = tmp_path / "event000000042-hits.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="event000000042-hits.csv.gz: truncated or corrupt"):
        read_event(path)


def test_truncated_csv_line(tmp_path, tiny_event):
    write_event(tiny_event, tmp_path)
    path = tmp_path / "event000000042-hits.csv"
    path.write_text(path.read_text()[:-12])  # cut inside the last line
    with pytest.raises(FormatError, match="event000000042-hits.csv: column"):
        read_event(path)


def test_not_gzip_and_not_parquet(tmp_path):
    (tmp_path / "event000000001-hits.csv.gz").write_bytes(b"hit_id,x\n1,2\n")
    with pytest.raises(FormatError, match="truncated or corrupt"):
        read_table(tmp_path / "event000000001-hits.csv.gz", "hits")
    (tmp_path / "event000000001-hits.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(FormatError, match="event000000001-hits.parquet: cannot read parquet"):
        read_table(tmp_path / "event000000001-hits.parquet", "hits")


def test_truth_inconsistent_with_hits_and_particles(tiny_event):
    truth = tiny_event.truth.copy()
    truth.loc[0, "hit_id"] = 999
    with pytest.raises(EventError, match="truth hit.*not in hits.*999"):
        Event(hits=tiny_event.hits, truth=truth)
    truth = tiny_event.truth.copy()
    truth.loc[0, "particle_id"] = 777
    with pytest.raises(EventError, match="particles not in particles.*777"):
        Event(hits=tiny_event.hits, truth=truth, particles=tiny_event.particles)
    with pytest.raises(EventError, match="hit.* have no truth row"):
        Event(hits=tiny_event.hits, truth=tiny_event.truth.iloc[1:])


def test_failed_write_leaves_nothing(tmp_path, tiny_event, monkeypatch):
    calls = {"n": 0}
    original = pd.DataFrame.to_csv

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_event(tiny_event, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_submission_round_trip_and_bad_submissions(tmp_path):
    sub = pd.DataFrame({"hit_id": [1, 2, 3], "track_id": [5, 5, 6]})
    path = write_submission(sub, tmp_path / "sub.csv", event_id=42)
    back = read_submission(path, event_id=42)
    pd.testing.assert_frame_equal(back, sub.astype(np.int64))
    (tmp_path / "bad.csv").write_text("hit_id,track\n1,2\n")
    with pytest.raises(FormatError, match="bad.csv: missing column track_id"):
        read_submission(tmp_path / "bad.csv")
    (tmp_path / "nan.csv").write_text("hit_id,track_id\n1,2\n2,\n")
    with pytest.raises(FormatError, match="nan.csv: column track_id has a missing"):
        read_submission(tmp_path / "nan.csv")
    with gzip.open(tmp_path / "sub.csv.gz", "wt") as f:
        f.write("hit_id,track_id\n1,2\n")
    assert len(read_submission(tmp_path / "sub.csv.gz")) == 1
