"""Track parameters for any method's tracks: ACTS's Kalman fitter on the hits of each track.

Each track (its hits, from any method or a submission) becomes an ACTS proto-track of measurements
(`convert.to_acts`). Its starting parameters come from its three innermost space points on three different layers
(ACTS's ``ProtoTracksToParameters``, then ``TrackParamsEstimationAlgorithm`` for a loose starting covariance); the
``KalmanFitter`` then follows the track through the generic detector's material (multiple scattering and
energy loss) in the 2 T field, filters and smooths, and expresses the result on the perigee surface of the
beam line (x = y = 0). Everything runs inside one ACTS sequencer event, with a Python algorithm putting the
measurements and proto-tracks on its whiteboard and another one reading the fitted tracks back.

The table (`fit_tracks`) is `deepreco.fit`'s, the same as deepreco's own fitter gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..event import Event
from ..fit import COLUMNS, PARAMETERS, empty_table, fill_table, fit_event, fitted_path, track_members
from . import require
from .convert import to_acts
from .geometry import acts_geometry
from .sequence import add_inputs, sequencer, start_parameters

__all__ = ["COLUMNS", "PARAMETERS", "fit_event", "fit_tracks", "fitted_path"]


def _vector(v) -> np.ndarray:  # ACTS's Eigen vectors index but do not convert
    return np.array([v[i] for i in range(5)])


def _matrix(m) -> np.ndarray:
    return np.array([[m[i, j] for j in range(5)] for i in range(5)])


def fit_tracks(event: Event, tracks: pd.DataFrame, min_hits: int = 3, multiple_scattering: bool = True,
               energy_loss: bool = True) -> pd.DataFrame:
    """Fit every track of ``tracks`` (hit_id, track_id) on ``event`` with ACTS's Kalman fitter.

    Parameters
    ----------
    event : Event
        The event the tracks were found in (its hits and cells).
    tracks : DataFrame
        ``hit_id, track_id``, as every method returns; hits not in a track may be left out.
    min_hits : int
        Tracks with fewer hits are not fitted (their row says ``fitted`` False).
    multiple_scattering, energy_loss : bool
        The material effects the fitter accounts for.

    Returns
    -------
    DataFrame
        One row per track id, the columns of ``COLUMNS``, sorted by track_id.
    """
    acts = require()  # with acts.examples imported

    geo = acts_geometry()
    measured = to_acts(event, geo)
    track_ids, n_hits, starts, members = track_members(event, tracks, measured.hit_id)
    table = empty_table(track_ids, n_hits)
    to_fit = np.flatnonzero(n_hits >= min_hits)
    if len(to_fit) == 0:
        return table

    measurements = measured.measurements()
    proto = acts.examples.ProtoTrackContainer()
    for t in to_fit:
        proto.append(acts.examples.ProtoTrack(members[starts[t]:starts[t + 1]].tolist()))
    found: dict[int, dict] = {}

    class Sink(acts.examples.IAlgorithm):
        """Reads the fitted tracks back: the measurements of each, to know which proto-track it was."""

        def __init__(self):
            super().__init__("DeepRecoSink", acts.logging.WARNING)
            self.tracks = acts.examples.ReadDataHandle(self, acts.examples.ConstTrackContainer, "T")
            self.tracks.initialize("fitted_tracks")

        def execute(self, context):
            container = self.tracks(context.eventStore)
            for i in range(len(container)):
                track = container.getTrack(i)
                if not track.hasReferenceSurface:
                    continue
                first = None
                for state in track.trackStates:
                    if state.typeFlags.isMeasurement if hasattr(state, "typeFlags") else True:
                        if state.hasUncalibratedSourceLink:
                            sl = acts.examples.IndexSourceLink.fromSourceLink(state.uncalibratedSourceLink)
                            first = sl.index()
                            break
                if first is None:
                    continue
                found.setdefault(first, {
                    "params": _vector(track.parameters), "cov": _matrix(track.covariance),
                    "chi2": track.chi2, "ndf": track.nDoF, "n_measurements": track.nMeasurements})
            return acts.examples.ProcessCode.SUCCESS

    seq = sequencer(acts.logging.WARNING)
    # the Python algorithms must outlive the run: the sequencer holds only their C++ part
    inputs, sink = add_inputs(seq, measurements, proto), Sink()
    spacepoints = acts.examples.SpacePointMaker(
        level=acts.logging.WARNING, trackingGeometry=geo.tracking_geometry, inputMeasurements="measurement_subset",
        outputSpacePoints="spacepoints",
        geometrySelection=[acts.GeometryIdentifier(volume=int(v)) for v in np.unique(geo.detector.ids[:, 0])])
    seq.addAlgorithm(spacepoints)
    # the seed of each proto-track: its three innermost space points (on three layers), and a helix through them
    seq.addAlgorithm(acts.examples.ProtoTracksToParameters(
        level=acts.logging.WARNING, geometry=geo.tracking_geometry, magneticField=geo.field,
        inputProtoTracks="prototracks", inputSpacePoints="spacepoints", outputParameters="seed_parameters",
        outputProtoTracks="seeded_prototracks", outputSeeds="prototrack_seeds",
        spacePointSelection=acts.examples.SeedSpacePointSelection.InnermostTriplet))
    # the starting parameters again, with a loose covariance: the fit keeps its prior, and the tight one of
    # ProtoTracksToParameters pulled theta and z0 to the seed (pulls 3.3 and 2.3 wide on a muon gun, now 0.6 to 0.9)
    seq.addAlgorithm(start_parameters(
        geo, acts.logging.WARNING, inputSeeds="prototrack_seeds", inputProtoTracks="seeded_prototracks",
        outputTrackParameters="start_parameters", outputSeeds="start_seeds", outputProtoTracks="start_prototracks"))
    fitter = acts.examples.makeKalmanFitterFunction(
        geo.tracking_geometry, geo.field, multiple_scattering, energy_loss, 0.0, 1.0,
        acts.examples.FreeToBoundCorrection(False), np.inf, False, acts.logging.WARNING)
    seq.addAlgorithm(acts.examples.TrackFittingAlgorithm(
        level=acts.logging.WARNING, inputMeasurements="measurements", inputProtoTracks="start_prototracks",
        inputInitialTrackParameters="start_parameters", outputTracks="fitted_tracks",
        calibrator=acts.examples.makePassThroughCalibrator(), fit=fitter,
        pickTrack=-1))
    seq.addAlgorithm(sink)
    seq.run()
    del inputs  # held through the run

    # the track of a fit: the proto-track that holds its first measurement (a measurement is in one track)
    owner = np.full(len(measured), -1, np.int64)
    owner[members] = np.repeat(np.arange(len(track_ids)), n_hits)
    rows = {int(owner[m]): f for m, f in found.items()}
    if not rows:
        return table
    at = np.array(sorted(rows), np.int64)
    return fill_table(table, at, np.array([rows[r]["params"] for r in at]).reshape(-1, 5),
                      np.array([rows[r]["cov"] for r in at]).reshape(-1, 5, 5), [rows[r]["chi2"] for r in at],
                      [rows[r]["ndf"] for r in at], [rows[r]["n_measurements"] for r in at])
