"""Track parameters for any method's tracks: ACTS's Kalman fitter on the hits of each track.

Each track (its hits, from any method or a submission) becomes an ACTS proto-track of measurements
(`convert.to_acts`). Its starting parameters come from its three innermost space points on three different layers
(ACTS's ``ProtoTracksToParameters``, then ``TrackParamsEstimationAlgorithm`` for a loose starting covariance); the
``KalmanFitter`` then follows the track through the generic detector's material (multiple scattering and
energy loss) in the 2 T field, filters and smooths, and expresses the result on the perigee surface of the
beam line (x = y = 0). Everything runs inside one ACTS sequencer event, with a Python algorithm putting the
measurements and proto-tracks on its whiteboard and another one reading the fitted tracks back.

The table (`fit_tracks`) has one row per track: ``track_id, fitted`` (False when the fit failed: fewer than three
layers, no starting parameters, or the fitter gave up), ``n_hits, n_measurements, chi2, ndf, chi2_ndf``, the
parameters ``d0, z0, phi, theta, qop`` [mm, rad, e/GeV] (ACTS's perigee convention) with their 5 x 5 covariance
``cov_<a>_<b>``, and the derived ``pt, charge, eta`` with ``sigma_pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DeepRecoError
from ..event import Event
from . import require
from .convert import to_acts
from .geometry import acts_geometry

PARAMETERS = ("d0", "z0", "phi", "theta", "qop")
COV_COLUMNS = tuple(f"cov_{a}_{b}" for i, a in enumerate(PARAMETERS) for b in PARAMETERS[i:])
COLUMNS = ("track_id", "fitted", "n_hits", "n_measurements", "chi2", "ndf", "chi2_ndf", *PARAMETERS,
           "pt", "charge", "eta", "sigma_pt", *COV_COLUMNS)


def _vector(v) -> np.ndarray:  # ACTS's Eigen vectors index but do not convert
    return np.array([v[i] for i in range(5)])


def _matrix(m) -> np.ndarray:
    return np.array([[m[i, j] for j in range(5)] for i in range(5)])


def _empty_rows(track_ids: np.ndarray, n_hits: np.ndarray) -> pd.DataFrame:
    n = len(track_ids)
    table = pd.DataFrame({c: np.full(n, np.nan) for c in COLUMNS})
    table["track_id"] = track_ids
    table["fitted"] = False
    table["n_hits"] = n_hits
    table["n_measurements"] = 0
    return table


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
    u = acts.UnitConstants

    if not {"hit_id", "track_id"} <= set(tracks.columns):
        raise DeepRecoError("tracks need the columns hit_id and track_id")
    geo = acts_geometry()
    measured = to_acts(event, geo)
    index_of_hit = pd.Series(np.arange(len(measured)), index=measured.hit_id)
    hit_index = index_of_hit.reindex(tracks["hit_id"].to_numpy(np.int64)).to_numpy()
    if np.isnan(hit_index).any():
        raise DeepRecoError(f"{int(np.isnan(hit_index).sum())} track hit(s) are not in the event")
    track_ids, inverse = np.unique(tracks["track_id"].to_numpy(np.int64), return_inverse=True)
    n_hits = np.bincount(inverse, minlength=len(track_ids))
    table = _empty_rows(track_ids, n_hits)
    to_fit = np.flatnonzero(n_hits >= min_hits)
    if len(to_fit) == 0:
        return table
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(n_hits)])
    members = hit_index[order].astype(np.int64)

    measurements = measured.measurements()
    proto = acts.examples.ProtoTrackContainer()
    for t in to_fit:
        proto.append(acts.examples.ProtoTrack(members[starts[t]:starts[t + 1]].tolist()))
    found: dict[int, dict] = {}

    class Source(acts.examples.IAlgorithm):
        """Puts this event's measurements and proto-tracks on the whiteboard."""

        def __init__(self):
            super().__init__("DeepRecoSource", acts.logging.WARNING)
            self.out_measurements = acts.examples.WriteDataHandle(self, acts.examples.MeasurementContainer, "M")
            self.out_measurements.initialize("measurements")
            self.out_proto = acts.examples.WriteDataHandle(self, acts.examples.ProtoTrackContainer, "P")
            self.out_proto.initialize("prototracks")

        def execute(self, context):
            self.out_measurements(context, measurements)
            self.out_proto(context, proto)
            return acts.examples.ProcessCode.SUCCESS

    class Subset(acts.examples.IAlgorithm):
        """All measurements as a subset (what the space-point maker reads), pointing into the whiteboard's copy."""

        def __init__(self):
            super().__init__("DeepRecoSubset", acts.logging.WARNING)
            self.in_measurements = acts.examples.ReadDataHandle(self, acts.examples.MeasurementContainer, "R")
            self.in_measurements.initialize("measurements")
            self.out_subset = acts.examples.WriteDataHandle(self, acts.examples.MeasurementSubset, "S")
            self.out_subset.initialize("measurement_subset")

        def execute(self, context):
            stored = self.in_measurements(context.eventStore)
            self.out_subset(context, acts.examples.MeasurementSubset(stored, list(range(len(stored)))))
            return acts.examples.ProcessCode.SUCCESS

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

    sequencer = acts.examples.Sequencer(events=1, numThreads=1, logLevel=acts.logging.WARNING, trackFpes=False)
    # the Python algorithms must outlive the run: the sequencer holds only their C++ part
    source, subset, sink = Source(), Subset(), Sink()
    sequencer.addAlgorithm(source)
    sequencer.addAlgorithm(subset)
    spacepoints = acts.examples.SpacePointMaker(
        level=acts.logging.WARNING, trackingGeometry=geo.tracking_geometry, inputMeasurements="measurement_subset",
        outputSpacePoints="spacepoints",
        geometrySelection=[acts.GeometryIdentifier(volume=int(v)) for v in np.unique(geo.detector.ids[:, 0])])
    sequencer.addAlgorithm(spacepoints)
    # the seed of each proto-track: its three innermost space points (on three layers), and a helix through them
    sequencer.addAlgorithm(acts.examples.ProtoTracksToParameters(
        level=acts.logging.WARNING, geometry=geo.tracking_geometry, magneticField=geo.field,
        inputProtoTracks="prototracks", inputSpacePoints="spacepoints", outputParameters="seed_parameters",
        outputProtoTracks="seeded_prototracks", outputSeeds="prototrack_seeds",
        spacePointSelection=acts.examples.SeedSpacePointSelection.InnermostTriplet))
    # the starting parameters again, with a loose covariance: the fit keeps its prior, and the tight one of
    # ProtoTracksToParameters pulled theta and z0 to the seed (pulls 3.3 and 2.3 wide on a muon gun, now 0.6 to 0.9)
    sequencer.addAlgorithm(acts.examples.TrackParamsEstimationAlgorithm(
        level=acts.logging.WARNING, inputSeeds="prototrack_seeds", inputProtoTracks="seeded_prototracks",
        outputTrackParameters="start_parameters", outputSeeds="start_seeds", outputProtoTracks="start_prototracks",
        trackingGeometry=geo.tracking_geometry, magneticField=geo.field,
        initialSigmas=[1 * u.mm, 1 * u.mm, 1 * u.degree, 1 * u.degree, 0 * u.e / u.GeV, 1 * u.ns],
        initialSigmaQoverPt=0.1 * u.e / u.GeV, initialSigmaPtRel=0.1, initialVarInflation=[1.0] * 6))
    fitter = acts.examples.makeKalmanFitterFunction(
        geo.tracking_geometry, geo.field, multiple_scattering, energy_loss, 0.0, 1.0,
        acts.examples.FreeToBoundCorrection(False), np.inf, False, acts.logging.WARNING)
    sequencer.addAlgorithm(acts.examples.TrackFittingAlgorithm(
        level=acts.logging.WARNING, inputMeasurements="measurements", inputProtoTracks="start_prototracks",
        inputInitialTrackParameters="start_parameters", outputTracks="fitted_tracks",
        calibrator=acts.examples.makePassThroughCalibrator(), fit=fitter,
        pickTrack=-1))
    sequencer.addAlgorithm(sink)
    sequencer.run()

    # the track of a fit: the proto-track that holds its first measurement (a measurement is in one track)
    owner = np.full(len(measured), -1, np.int64)
    owner[members] = np.repeat(np.arange(len(track_ids)), n_hits)
    rows = {int(owner[m]): f for m, f in found.items()}
    if not rows:
        return table
    at = np.array(sorted(rows), np.int64)
    params = np.array([rows[r]["params"] for r in at])
    cov = np.array([rows[r]["cov"] for r in at])
    table.loc[at, "fitted"] = True
    for name in ("chi2", "ndf", "n_measurements"):
        table.loc[at, name] = [rows[r][name] for r in at]
    for k, name in enumerate(PARAMETERS):
        table.loc[at, name] = params[:, k]
    for i, a in enumerate(PARAMETERS):
        for j in range(i, 5):
            table.loc[at, f"cov_{a}_{PARAMETERS[j]}"] = cov[:, i, j]
    theta, qop = params[:, 3], params[:, 4]
    pt = np.sin(theta) / np.abs(qop)
    # d pT / d theta = cos(theta) / |qop|,  d pT / d qop = -pT / qop
    grad = np.column_stack([np.cos(theta) / np.abs(qop), -pt / qop])
    var_pt = np.einsum("ni,nij,nj->n", grad, cov[:, 3:5, 3:5], grad)
    table.loc[at, "pt"] = pt
    table.loc[at, "charge"] = np.sign(qop)
    table.loc[at, "eta"] = -np.log(np.tan(theta / 2.0))
    table.loc[at, "sigma_pt"] = np.sqrt(np.maximum(var_pt, 0.0))
    ndf = table["ndf"].to_numpy(np.float64)
    table["chi2_ndf"] = np.where(ndf > 0, table["chi2"].to_numpy(np.float64) / np.maximum(ndf, 1), np.nan)
    table["n_measurements"] = table["n_measurements"].astype(np.int64)
    return table


def fitted_path(submission) -> Path:
    """Where the fitted parameters of a submission go: beside it, ``<name>-fit.csv``."""
    path = Path(submission)
    name = path.name
    for ext in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return path.with_name(f"{name}-fit.csv")


def fit_event(event_path, submission=None, method: str | None = None, out=None) -> dict:
    """Fit the tracks of one event, from a submission file or from a method run here; write the table.

    Exactly one of ``submission`` and ``method`` is given. The table goes to ``out`` (default: beside the
    submission as ``<name>-fit.csv``, or ``<event>-<method>-fit.csv`` beside the event), written atomically.
    Returns ``{"path", "fits", "summary"}``; the summary (`deepreco.metrics.fit.fit_summary`) needs the event's
    truth and particles, and is None without them.
    """
    from ..io import read_event, read_submission
    from ..metrics.fit import fit_summary, match_fits

    if (submission is None) == (method is None):
        raise DeepRecoError("fit: give either a submission (--tracks) or a method (-m), not both")
    require()
    event = read_event(event_path)
    if submission is not None:
        tracks = read_submission(submission, event_id=event.event_id)
        path = Path(out) if out is not None else fitted_path(submission)
    else:
        from ..reconstruct import get_method

        tracks = get_method(method).reconstruct(event)
        stem = Path(event_path).name.split("-")[0]
        path = Path(out) if out is not None else Path(event_path).with_name(f"{stem}-{method}-fit.csv")
    fits = fit_tracks(event, tracks)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fits.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    summary = None
    if event.truth is not None and event.particles is not None:
        summary = fit_summary(fits, match_fits(fits, tracks, event.truth, event.particles))
    return {"path": path, "fits": fits, "summary": summary}
