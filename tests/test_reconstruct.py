"""Reconstruction methods on small simulated events: the interface contract and first figures."""

import numpy as np
import pandas as pd
import pytest

from deepreco.event import Event
from deepreco.generate import particle_gun
from deepreco.metrics import evaluate
from deepreco.reconstruct import available_methods, get_method, reconstruct
from deepreco.simulate import simulate_event


@pytest.fixture(scope="module")
def muons():
    """20 muons of 1 to 10 GeV from the origin, with the real noise rates of TrackML events."""
    return simulate_event(particle_gun(n=20, pdg=13, pt=(1.0, 10.0), seed=5), seed=5, event_id=1)


def test_methods_are_found_by_name():
    assert {"truth", "dbscan", "ckf"} <= set(available_methods())
    with pytest.raises(Exception, match="unknown method 'nope'"):
        get_method("nope")


@pytest.mark.parametrize("method", ["dbscan"])
def test_muon_gun_is_found(muons, method):
    tracks = reconstruct(muons, method)
    assert tracks["hit_id"].is_unique
    result = evaluate(muons.truth, muons.particles, tracks)
    assert result["efficiency"] > 0.95
    assert result["score"] > 0.9


@pytest.mark.parametrize("method", ["dbscan", "truth"])
def test_empty_event_gives_an_empty_submission(method):
    cols = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
    tracks = reconstruct(Event(hits=pd.DataFrame(columns=cols)), method)
    assert len(tracks) == 0 and list(tracks.columns) == ["hit_id", "track_id"]


def test_dbscan_needs_no_truth(muons):
    hits_only = Event(hits=muons.hits, event_id=1)
    tracks = reconstruct(hits_only, "dbscan")
    assert len(np.unique(tracks["track_id"])) >= 19
