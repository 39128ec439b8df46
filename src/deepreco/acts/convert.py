"""deepreco events to ACTS's event data and back.

ACTS addresses a measurement by its module's 64-bit geometry identifier and its local coordinates (loc0, loc1)
= (u, v) on that module, with a covariance; its particles and simulated hits are the tables of its CSV event
format (``particle_id, particle_type, process, vx, vy, vz, vt, px, py, pz, m, q`` and ``particle_id,
geometry_id, tx, ty, tz, tt, tpx, tpy, tpz, te, index``), the cells are ``measurement_id, geometry_id, channel0,
channel1, timestamp, value``. `ActsEvent` holds these as arrays, one measurement per deepreco hit, ordered by
geometry identifier (the order ACTS keeps its measurements in), and builds ACTS's own containers from them
(`ActsEvent.measurements`, `ActsEvent.measurement_subset`).

The measurement's variance is that of a uniform distribution over one cell of the module's pitch, ``p^2 / 12``
along each local axis (a strip's length along v). The cluster's width in cells does not help: on a real-list
event (1001) of deepreco's simulation the residual of the hit (the centroid of its cells) against the true
crossing is 0.7 to 1.0 of p / sqrt(12) for every width from 1 to 12 cells, pixels and strips alike, because a
wide cluster is an inclined crossing whose centroid is as uncertain as a single cell's centre.

TrackML particle ids are ACTS barcodes already (the TrackML data set was made with ACTS), so they are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..event import Event
from .geometry import ActsGeometry, acts_geometry

__all__ = ["ActsEvent", "from_acts", "to_acts"]

_MUON_MASS = 0.1056583755
_PION_MASS = 0.13957039


@dataclass
class ActsEvent:
    """One event in ACTS's terms: measurements (one per deepreco hit), particles, simulated hits, cells.

    ``hit_id`` (n,) the deepreco hit of each measurement; ``geometry_id`` (n,) uint64; ``local`` (n, 2) [mm];
    ``variance`` (n, 2) [mm^2]; ``particles`` (ACTS CSV particle columns) or None; ``simhits`` (ACTS CSV
    simhit columns, ``index`` = measurement index; particle_id 0 for noise) or None; ``cells`` or None.
    """

    event_id: int
    hit_id: np.ndarray
    geometry_id: np.ndarray
    local: np.ndarray
    variance: np.ndarray
    particles: pd.DataFrame | None = None
    simhits: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.hit_id)

    def measurements(self):
        """ACTS's ``MeasurementContainer``: a 2D bound measurement (loc0, loc1) per hit, in this order."""
        from . import require

        acts = require()
        container = acts.examples.MeasurementContainer()
        container.reserve(len(self))
        ident = acts.GeometryIdentifier
        for gid, loc, var in zip(self.geometry_id.tolist(), self.local.tolist(), self.variance.tolist(), strict=True):
            container.emplaceMeasurement(ident(gid), [0, 1], loc, var)  # diagonal covariance
        return container

    def measurement_subset(self, container):
        """ACTS's ``MeasurementSubset`` of every measurement of ``container`` (what its seeding reads)."""
        from . import require

        return require().examples.MeasurementSubset(container, list(range(len(self))))


def _pdg_mass(pdg: np.ndarray) -> np.ndarray:
    return np.where(np.abs(pdg) == 13, _MUON_MASS, np.where(np.abs(pdg) == 11, 0.51099895e-3, _PION_MASS))


def to_acts(event: Event, geometry: ActsGeometry | None = None) -> ActsEvent:
    """An `ActsEvent` of a deepreco event: every hit a measurement on its module's ACTS surface."""
    geo = geometry or acts_geometry()
    det = geo.detector
    hits = event.hits
    rows = det.module_index(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy(), hits["module_id"].to_numpy())
    local = det.to_local(hits[["x", "y", "z"]].to_numpy(np.float64), rows)[:, :2]
    variance = det.pitch[rows] ** 2 / 12.0
    gid = geo.geometry_id[rows]
    hit_id = hits["hit_id"].to_numpy(np.int64)
    order = np.lexsort((hit_id, gid))
    index = np.empty(len(order), np.int64)
    index[order] = np.arange(len(order))  # measurement index of each hits row
    particles = simhits = cells = None
    if event.particles is not None:
        p = event.particles
        pdg = p["particle_type"].to_numpy(np.int64) if "particle_type" in p else \
            np.where(p["q"].to_numpy() < 0, 13, -13)
        particles = pd.DataFrame({
            "particle_id": p["particle_id"].to_numpy(np.uint64), "particle_type": pdg,
            "process": np.zeros(len(p), np.int32), "vx": p["vx"].to_numpy(), "vy": p["vy"].to_numpy(),
            "vz": p["vz"].to_numpy(), "vt": np.zeros(len(p)), "px": p["px"].to_numpy(), "py": p["py"].to_numpy(),
            "pz": p["pz"].to_numpy(), "m": _pdg_mass(pdg), "q": p["q"].to_numpy(np.float64)})
    if event.truth is not None:
        t = event.truth.set_index("hit_id").reindex(hit_id)
        mom = t[["tpx", "tpy", "tpz"]].to_numpy(np.float64)
        simhits = pd.DataFrame({
            "particle_id": t["particle_id"].to_numpy(np.uint64), "geometry_id": gid,
            "tx": t["tx"].to_numpy(), "ty": t["ty"].to_numpy(), "tz": t["tz"].to_numpy(), "tt": np.zeros(len(t)),
            "tpx": mom[:, 0], "tpy": mom[:, 1], "tpz": mom[:, 2], "te": np.linalg.norm(mom, axis=1),
            "index": index}).iloc[order].reset_index(drop=True)
    if event.cells is not None:
        c = event.cells
        pos = pd.Series(index, index=hit_id).reindex(c["hit_id"].to_numpy()).to_numpy(np.int64)
        cells = pd.DataFrame({"measurement_id": pos, "geometry_id": gid[order][pos], "channel0": c["ch0"].to_numpy(),
                              "channel1": c["ch1"].to_numpy(), "timestamp": np.zeros(len(c)),
                              "value": c["value"].to_numpy()})
    return ActsEvent(event_id=int(getattr(event, "event_id", 0) or 0), hit_id=hit_id[order], geometry_id=gid[order],
                     local=local[order], variance=variance[order], particles=particles, simhits=simhits, cells=cells)


def from_acts(acts_event: ActsEvent, geometry: ActsGeometry | None = None) -> Event:
    """The deepreco event of an `ActsEvent`: hits back on their TrackML modules, particles, truth, cells."""
    geo = geometry or acts_geometry()
    det = geo.detector
    rows = geo.rows_of(acts_event.geometry_id)
    n = len(acts_event)
    xyz = det.to_global(np.column_stack([acts_event.local, np.zeros(n)]), rows)
    ids = det.ids[rows]
    hits = pd.DataFrame({"hit_id": acts_event.hit_id, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                         "volume_id": ids[:, 0], "layer_id": ids[:, 1], "module_id": ids[:, 2]})
    particles = truth = cells = None
    if acts_event.particles is not None:
        p = acts_event.particles
        particles = pd.DataFrame({"particle_id": p["particle_id"].to_numpy(np.int64), "vx": p["vx"], "vy": p["vy"],
                                  "vz": p["vz"], "px": p["px"], "py": p["py"], "pz": p["pz"],
                                  "q": p["q"].to_numpy(np.int64), "particle_type": p["particle_type"]})
    if acts_event.simhits is not None:
        s = acts_event.simhits.sort_values("index")
        pid = s["particle_id"].to_numpy(np.int64)
        truth = pd.DataFrame({"hit_id": acts_event.hit_id[s["index"].to_numpy()], "particle_id": pid,
                              "tx": s["tx"].to_numpy(), "ty": s["ty"].to_numpy(), "tz": s["tz"].to_numpy(),
                              "tpx": s["tpx"].to_numpy(), "tpy": s["tpy"].to_numpy(), "tpz": s["tpz"].to_numpy()})
        if particles is not None:
            counts = pd.Series(pid[pid != 0]).value_counts()
            particles["nhits"] = counts.reindex(particles["particle_id"].to_numpy()).fillna(0).to_numpy(np.int64)
    if acts_event.cells is not None:
        c = acts_event.cells
        cells = pd.DataFrame({"hit_id": acts_event.hit_id[c["measurement_id"].to_numpy()], "ch0": c["channel0"],
                              "ch1": c["channel1"], "value": c["value"]})
    return Event(hits=hits, cells=cells, particles=particles, truth=truth, event_id=acts_event.event_id)
