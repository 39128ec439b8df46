"""``acts-ckf``: ACTS's own chain (triplet seeding, combinatorial Kalman filter, greedy ambiguity resolution).

The field's reference tracker beside deepreco's `ckf`, run inside an ACTS sequencer on the event's measurements
(`convert.to_acts`): space points on the pixel layers, ACTS's grid triplet seeding, starting parameters from
each seed, the CKF through the generic detector (with the simulation's material, `geometry`), then the greedy
resolution of tracks that share hits. Configured for this detector as issue 24 measured it (ACTS's example
configuration scores 0.37 on a real-list event, these changes 0.70):

- every one of the 18 pixel layers seeds (the example's seeding list leaves out the six outer disks);
- |eta| up to 4 (``cotThetaMax`` = sinh 4 = 27.3), seeds and tracks from ``pt_min`` = 0.2 GeV;

and two more found here (`benchmarks/acts_losses.py`: nearly every particle acts-ckf lost above 1 GeV was never
seeded, the CKF and the ambiguity resolution keep what is seeded):

- middle space points anywhere in the pixel detector (``middle_r`` = 20-200 mm; ACTS's grid seeding takes them at
  60-120 mm only, which leaves a forward track few middle points: at 3 < |eta| < 4 its disk hits lie at r < 60 mm
  up to |z| ~ 1 m);
- impact parameter up to ``impact_max`` = 1 mm (was 10 mm, as the issue had it): fewer fake triplets compete for
  the few seeds kept per middle space point.

The tracks come back as (hit_id, track_id) through their measurements' indices.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..event import Event
from ..reconstruct.base import Method, register

PIXEL_VOLUMES = (7, 8, 9)
# z bins of the seeding grid [mm], symmetric, over the pixel detector (disks up to |z| = 1.5 m); without them
# ACTS sizes its z bins as cotThetaMax x deltaRMax, which at |eta| < 4 is one bin for everything
Z_EDGES = (-1600.0, -1100.0, -700.0, -400.0, -200.0, 0.0, 200.0, 400.0, 700.0, 1100.0, 1600.0)


def _seeding_layers(det) -> list[dict]:
    pairs = np.unique(det.ids[np.isin(det.ids[:, 0], PIXEL_VOLUMES)][:, :2], axis=0)
    return [{"volume": int(v), "layer": int(lay)} for v, lay in pairs]


@register("acts-ckf")
class ActsCKF(Method):
    """ACTS seeding + CKF + ambiguity resolution (the ``acts`` extra).

    Parameters: ``pt_min`` [GeV] of seeds and tracks; ``eta_max`` of seeds; ``impact_max`` [mm] of seeds;
    ``min_measurements`` a track needs; ``chi2_max`` the CKF's gate on a measurement; ``max_shared`` hits a
    track may share after the ambiguity resolution; ``max_seeds_per_middle`` seeds kept per middle space point;
    ``material``: the detector with the simulation's material (default False: as ACTS builds it, a tenth of it);
    ``z_bins``: the seeding grid's z bins of ``Z_EDGES``; ``middle_r`` [mm] the radii of middle space points.

    Tuned on development list 1001 (deepreco-simulated, pT > 1 GeV double-majority efficiency): the issue's four
    changes 0.693; 3 seeds per middle space point instead of 1: 0.764; with ``Z_EDGES``: 0.770; middle space
    points at 20-200 mm (``middle_r``) instead of ACTS's 60-120 mm: 0.853; ``impact_max`` 1 mm instead of 10: 0.905
    (`benchmarks/results/acts_losses_before.txt`, ``_middle``, ``acts_losses.txt``; score 0.605 -> 0.721,
    ``acts_tracking.txt`` -> ``acts_tracking_tuned.txt``). With the simulation's material (measured before the last
    two changes) the score is the same (0.544 against 0.540) at 3.4 times the CPU time and twice the fakes, so the
    default leaves it out.
    """

    def __init__(self, pt_min: float = 0.2, eta_max: float = 4.0, impact_max: float = 1.0,
                 min_measurements: int = 7, chi2_max: float = 15.0, max_shared: int = 3,
                 max_seeds_per_middle: int = 3, material: bool = False, z_bins: bool = True,
                 middle_r: tuple = (20.0, 200.0)):
        self.pt_min = pt_min
        self.eta_max = eta_max
        self.impact_max = impact_max
        self.min_measurements = min_measurements
        self.chi2_max = chi2_max
        self.max_shared = max_shared
        self.max_seeds_per_middle = max_seeds_per_middle
        self.material = material
        self.z_bins = z_bins
        self.middle_r = tuple(float(r) for r in middle_r)

    def _reconstruct(self, event: Event) -> pd.DataFrame:
        return self.find(event)["tracks"]

    def find(self, event: Event, stages: bool = False) -> dict:
        """The tracks (``tracks``: hit_id, track_id) and, with ``stages``, what each stage made, for inspection:
        ``seeds`` (n, 3) and ``candidates`` (the CKF's tracks before the ambiguity resolution, a list of arrays),
        as hit ids."""
        from . import require
        from .convert import to_acts
        from .geometry import acts_geometry
        from .sequence import add_inputs, sequencer, start_parameters

        acts = require()
        import acts.examples.reconstruction as chain

        u = acts.UnitConstants
        geo = acts_geometry(self.material)
        measured = to_acts(event, geo)
        measurements = measured.measurements()
        found: list[list[int]] = []
        seed_rows: list[list[int]] = []
        candidates: list[list[int]] = []

        def measurement_rows(track) -> list[int]:
            return [acts.examples.IndexSourceLink.fromSourceLink(state.uncalibratedSourceLink).index()
                    for state in track.trackStatesReversed  # from the tip: CKF tracks have no stem
                    if state.typeFlags.isMeasurement and state.hasUncalibratedSourceLink]

        class Sink(acts.examples.IAlgorithm):
            def __init__(self):
                super().__init__("DeepRecoSink", acts.logging.WARNING)
                self.inp = acts.examples.ReadDataHandle(self, acts.examples.ConstTrackContainer, "T")
                self.inp.initialize("resolved_tracks")
                if stages:
                    self.ckf = acts.examples.ReadDataHandle(self, acts.examples.ConstTrackContainer, "C")
                    self.ckf.initialize("ckf_tracks")
                    self.seeds = acts.examples.ReadDataHandle(self, acts.examples.ProtoTrackContainer, "P")
                    self.seeds.initialize("seed_prototracks")

            def execute(self, context):
                tracks = self.inp(context.eventStore)
                for i in range(len(tracks)):
                    found.append(measurement_rows(tracks.getTrack(i)))
                if stages:
                    tracks = self.ckf(context.eventStore)
                    candidates.extend(measurement_rows(tracks.getTrack(i)) for i in range(len(tracks)))
                    seed_rows.extend(list(p) for p in self.seeds(context.eventStore))
                return acts.examples.ProcessCode.SUCCESS

        level = acts.logging.WARNING
        s = sequencer(level)
        inputs, sink = add_inputs(s, measurements), Sink()  # alive through the run: the sequencer holds the C++ part
        s.addAlgorithm(acts.examples.SpacePointMaker(
            level=level, trackingGeometry=geo.tracking_geometry, inputMeasurements="measurement_subset",
            outputSpacePoints="spacepoints", geometrySelection=[
                acts.GeometryIdentifier(volume=d["volume"], layer=d["layer"]) for d in _seeding_layers(geo.detector)]))
        seeds = chain.addGridTripletSeeding(
            s, "spacepoints", chain.SeedingAlgorithmConfigArg(),
            chain.SeedFinderConfigArg(
                r=(None, 200 * u.mm), deltaR=(1 * u.mm, 300 * u.mm), collisionRegion=(-250 * u.mm, 250 * u.mm),
                z=(-Z_EDGES[-1] * u.mm, Z_EDGES[-1] * u.mm), maxSeedsPerSpM=self.max_seeds_per_middle,
                sigmaScattering=5, zBinEdges=[e * u.mm for e in Z_EDGES] if self.z_bins else None,
                radLengthPerSeed=0.1, rMinMiddle=self.middle_r[0] * u.mm, rMaxMiddle=self.middle_r[1] * u.mm,
                minPt=self.pt_min * u.GeV, impactMax=self.impact_max * u.mm,
                cotThetaMax=math.sinh(self.eta_max)),
            chain.SeedFinderOptionsArg(bFieldInZ=2 * u.T, beamPos=(0.0, 0.0)), chain.SeedFilterConfigArg(),
            chain.SpacePointGridConfigArg(), level, outputSeeds="seeds")
        if stages:
            config = acts.examples.SeedsToProtoTracks.Config()
            config.inputSeeds, config.outputProtoTracks = seeds, "seed_prototracks"
            s.addAlgorithm(acts.examples.SeedsToProtoTracks(config, level))
        s.addAlgorithm(start_parameters(geo, level, inputSeeds=seeds, outputTrackParameters="estimatedparameters",
                                        outputSeeds="estimatedseeds"))
        selector = acts.TrackSelector.Config()
        selector.ptMin = self.pt_min * u.GeV
        selector.minMeasurements = self.min_measurements
        cuts = acts.MeasurementSelector.Config([(acts.GeometryIdentifier(), ([], [self.chi2_max], [25.0], [10]))])
        finder = acts.examples.TrackFindingAlgorithm(
            # FATAL: it reports every failed extrapolation of a seed's branch as an ERROR line
            level=acts.logging.FATAL, measurementSelectorCfg=cuts, inputMeasurements="measurement_subset",
            inputInitialTrackParameters="estimatedparameters", inputSeeds="estimatedseeds",
            outputTracks="ckf_tracks",
            findTracks=acts.examples.TrackFindingAlgorithm.makeTrackFinderFunction(
                geo.tracking_geometry, geo.field, level),
            findTracksBrem=acts.examples.TrackFindingAlgorithm.makeBremTrackFinderFunction(
                geo.tracking_geometry, geo.field, level),
            trackingGeometry=geo.tracking_geometry, magneticField=geo.field, trackSelectorCfg=selector,
            twoWay=True, seedDeduplication=True, stayOnSeed=True)
        s.addAlgorithm(finder)
        s.addAlgorithm(acts.examples.GreedyAmbiguityResolutionAlgorithm(
            level=level, inputTracks="ckf_tracks", outputTracks="resolved_tracks",
            maximumSharedHits=self.max_shared, nMeasurementsMin=self.min_measurements, maximumIterations=100000))
        s.addAlgorithm(sink)
        s.run()
        del inputs  # held through the run

        # a measurement in two tracks (a shared hit the resolution allowed) stays with the first, the longer
        track_of = np.full(len(measured), -1, np.int64)
        for t in sorted(range(len(found)), key=lambda i: -len(found[i])):
            idx = np.array(found[t], np.int64)
            free = idx[track_of[idx] < 0]
            track_of[free] = t
        rows = np.flatnonzero(track_of >= 0)
        out = {"tracks": pd.DataFrame({"hit_id": measured.hit_id[rows], "track_id": track_of[rows]})}
        if stages:
            out["seeds"] = measured.hit_id[np.array(seed_rows, np.int64).reshape(-1, 3)]
            out["candidates"] = [measured.hit_id[np.array(c, np.int64)] for c in candidates]
        return out
