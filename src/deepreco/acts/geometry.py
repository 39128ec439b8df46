"""The TrackML detector as ACTS builds it: ``acts.examples.GenericDetector()``, and its module-id table.

The generic detector is the TrackML detector module for module (18,728 modules, the same volume and layer ids,
centres within 4 um, the same local axes u, v and bounds). Its modules are addressed by a 64-bit
``Acts::GeometryIdentifier`` (volume, layer, sensitive); the barrel's ``sensitive`` number is TrackML's
``module_id``, the endcaps count their modules in another order. The table between the two numberings is made
here from the geometry, by matching each deepreco module centre to the nearest ACTS surface centre, and checked:
one-to-one, same volume and layer, centres closer than ``MATCH_TOLERANCE``. It is built once per process.

Material: built bare, the generic detector's modules carry their own silicon only (0.15 mm in the pixels, 0.16 %
X0), a tenth of what deepreco's simulation puts in a layer (`deepreco.simulate.material`: module plus a silicon
slab for supports and services, 1.72 % X0 per pixel layer), and a Kalman fit through it underestimates the
scattering (q/p pulls 1.26 wide on a muon gun, 0.90 with the material below). So the detector is built with a
material decorator that gives every module the silicon of its layer as the simulation has it (module thickness
plus ``LAYER_SLAB_MM`` of its volume), written as an ACTS JSON material map.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ..detector import Detector
from ..errors import DeepRecoError
from ..simulate.material import LAYER_SLAB_MM, SILICON
from . import require

MATCH_TOLERANCE = 0.01  # mm; the two geometries agree to 4 um, a neighbouring module is centimetres away
FIELD_TESLA = 2.0  # the TrackML solenoid


@dataclass(frozen=True)
class ActsGeometry:
    """The ACTS tracking geometry of the TrackML detector with the table between the module numberings.

    ``geometry_id`` (N,) uint64: the ACTS identifier of each deepreco module row (`Detector` row order);
    ``surfaces``: the ACTS surface of each row; ``context``: the nominal geometry context; ``field``: the 2 T
    solenoid as an ACTS field; ``detector``: deepreco's `Detector`.
    """

    detector: Detector
    acts_detector: object
    tracking_geometry: object
    context: object
    field: object
    geometry_id: np.ndarray
    surfaces: tuple

    def rows_of(self, geometry_id) -> np.ndarray:
        """`Detector` row of each ACTS geometry identifier; an unknown one is a `DeepRecoError`."""
        gid = np.asarray(geometry_id, np.uint64)
        order = np.argsort(self.geometry_id)
        pos = np.clip(np.searchsorted(self.geometry_id[order], gid), 0, len(order) - 1)
        rows = order[pos]
        bad = self.geometry_id[rows] != gid
        if bad.any():
            raise DeepRecoError(f"{int(bad.sum())} ACTS geometry id(s) name no TrackML module, "
                                f"e.g. {int(gid[np.argmax(bad)])}")
        return rows

    def table(self):
        """The module-id table as a DataFrame: volume_id, layer_id, module_id (TrackML), geometry_id (ACTS)."""
        import pandas as pd

        ids = self.detector.ids
        return pd.DataFrame({"volume_id": ids[:, 0], "layer_id": ids[:, 1], "module_id": ids[:, 2],
                             "geometry_id": self.geometry_id})


def _sensitive_surfaces(tracking_geometry, context):
    found = []

    def visit(surface):
        if surface.isSensitive:
            centre = surface.center(context)
            found.append((surface.geometryId.value, (centre[0], centre[1], centre[2]), surface))

    tracking_geometry.visitSurfaces(visit)
    return found


def _material_map(acts, det: Detector, geometry_id: np.ndarray, path: Path) -> None:
    """An ACTS JSON material map: each module homogeneous silicon, as thick as its layer's in the simulation."""
    # ACTS's material parameters: X0 [mm], L0 [mm], Ar, Z, molar density [mol / mm^3]
    silicon = [SILICON.x0_mm, SILICON.lambda_mm, 28.0855, 14.0, 2.329e-3 / 28.0855]
    entries = []
    for gid, row in zip(geometry_id.tolist(), range(len(det)), strict=True):
        ident = acts.GeometryIdentifier(int(gid))
        thickness = float(det.thickness[row] + LAYER_SLAB_MM[int(det.ids[row, 0])])
        entries.append({"volume": ident.volume, "layer": ident.layer, "sensitive": ident.sensitive, "value": {
            "material": {"type": "homogeneous", "mapMaterial": True, "mappingType": "Default",
                         "data": [[{"material": silicon, "thickness": thickness}]]}}})
    header = {"format-version": 0, "value-identifier": "Material Surface Map"}
    volumes = {"format-version": 0, "value-identifier": "Material Volume Map"}
    path.write_text(json.dumps({"Volumes": {"acts-geometry-hierarchy-map": volumes, "entries": []},
                                "Surfaces": {"acts-geometry-hierarchy-map": header, "entries": entries}}))


@lru_cache(maxsize=2)
def acts_geometry(material: bool = True) -> ActsGeometry:
    """The generic detector and the module-id table (built on first use, a few seconds, then cached).

    ``material``: with the simulation's material (see above); False: the generic detector as ACTS builds it.
    """
    acts = require()  # with acts.examples imported

    det = Detector.load()
    bare = _generic_detector(acts, None)
    gid = _matched_ids(acts, det, bare)
    if not material:
        return _assembled(acts, det, bare, gid)
    with tempfile.TemporaryDirectory(prefix="deepreco-acts-") as tmp:
        path = Path(tmp) / "material.json"
        _material_map(acts, det, gid, path)
        import acts.json

        decorator = acts.json.JsonMaterialDecorator(acts.json.MaterialMapJsonConverter.Config(), str(path),
                                                    acts.logging.WARNING)
        generic = _generic_detector(acts, decorator)
    return _assembled(acts, det, generic, gid)


def _assembled(acts, det: Detector, generic, gid: np.ndarray) -> ActsGeometry:
    tracking = generic.trackingGeometry()
    context = generic.nominalGeometryContext()
    surfaces = {s.geometryId.value: s for _, _, s in _sensitive_surfaces(tracking, context)}
    field = acts.ConstantBField(acts.Vector3(0.0, 0.0, FIELD_TESLA * acts.UnitConstants.T))
    return ActsGeometry(detector=det, acts_detector=generic, tracking_geometry=tracking, context=context,
                        field=field, geometry_id=gid, surfaces=tuple(surfaces[int(g)] for g in gid))


def _generic_detector(acts, decorator):
    config = acts.examples.GenericDetector.Config()
    config.logLevel = acts.logging.WARNING  # its INFO lines would go to the command's standard output
    if decorator is not None:
        config.materialDecorator = decorator
    return acts.examples.GenericDetector(config)


def _matched_ids(acts, det: Detector, generic) -> np.ndarray:
    """The ACTS geometry identifier of each `Detector` row, by nearest module centre; checked."""
    found = _sensitive_surfaces(generic.trackingGeometry(), generic.nominalGeometryContext())
    centres = np.array([c for _, c, _ in found])
    dist, nearest = cKDTree(centres).query(det.centres)
    if len(found) != len(det) or len(np.unique(nearest)) != len(det) or dist.max() > MATCH_TOLERANCE:
        raise DeepRecoError(f"ACTS's generic detector does not match the TrackML detector: {len(found)} against "
                            f"{len(det)} modules, largest centre distance {dist.max():.3g} mm")
    gid = np.array([found[i][0] for i in nearest], np.uint64)
    parts = [acts.GeometryIdentifier(int(g)) for g in gid]
    volume = np.array([p.volume for p in parts], np.int64)
    layer = np.array([p.layer for p in parts], np.int64)
    if (volume != det.ids[:, 0]).any() or (layer != det.ids[:, 1]).any():
        raise DeepRecoError("ACTS's generic detector numbers its volumes or layers unlike TrackML")
    return gid
