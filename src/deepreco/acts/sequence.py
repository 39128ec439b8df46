"""What every deepreco chain inside an ACTS sequencer shares (`ckf.ActsCKF`, `fit.fit_tracks`): the sequencer of
one event on one thread, the Python algorithms that put this event's measurements (and proto-tracks) on its
whiteboard, and the starting parameters with the loose covariance both chains start from.
"""

from __future__ import annotations

from . import require


def sequencer(level):
    """One event, one thread, no floating-point traps (ACTS's own checks of them stop a run on a warning)."""
    acts = require()
    return acts.examples.Sequencer(events=1, numThreads=1, logLevel=level, trackFpes=False)


def add_inputs(seq, measurements, proto=None) -> list:
    """Add to ``seq`` the algorithms that write ``measurements`` (as "measurements"), ``proto`` (as
    "prototracks", when given) and the subset of all measurements ("measurement_subset", what the space-point
    maker reads). Returns them: the caller keeps them alive through the run (the sequencer holds their C++ part
    only)."""
    acts = require()

    class Source(acts.examples.IAlgorithm):
        def __init__(self):
            super().__init__("DeepRecoSource", acts.logging.WARNING)
            self.out = acts.examples.WriteDataHandle(self, acts.examples.MeasurementContainer, "M")
            self.out.initialize("measurements")
            if proto is not None:
                self.out_proto = acts.examples.WriteDataHandle(self, acts.examples.ProtoTrackContainer, "P")
                self.out_proto.initialize("prototracks")

        def execute(self, context):
            self.out(context, measurements)
            if proto is not None:
                self.out_proto(context, proto)
            return acts.examples.ProcessCode.SUCCESS

    class Subset(acts.examples.IAlgorithm):
        def __init__(self):
            super().__init__("DeepRecoSubset", acts.logging.WARNING)
            self.inp = acts.examples.ReadDataHandle(self, acts.examples.MeasurementContainer, "R")
            self.inp.initialize("measurements")
            self.out = acts.examples.WriteDataHandle(self, acts.examples.MeasurementSubset, "S")
            self.out.initialize("measurement_subset")

        def execute(self, context):
            stored = self.inp(context.eventStore)
            self.out(context, acts.examples.MeasurementSubset(stored, list(range(len(stored)))))
            return acts.examples.ProcessCode.SUCCESS

    algorithms = [Source(), Subset()]
    for algorithm in algorithms:
        seq.addAlgorithm(algorithm)
    return algorithms


def start_parameters(geo, level, **names):
    """ACTS's ``TrackParamsEstimationAlgorithm`` with the loose starting covariance of both chains (1 mm, 1
    degree, 10 % in q/pT): a tight one pulls the fit to its seed. ``names``: its input and output names."""
    acts = require()
    u = acts.UnitConstants
    return acts.examples.TrackParamsEstimationAlgorithm(
        level=level, trackingGeometry=geo.tracking_geometry, magneticField=geo.field,
        initialSigmas=[1 * u.mm, 1 * u.mm, 1 * u.degree, 1 * u.degree, 0 * u.e / u.GeV, 1 * u.ns],
        initialSigmaQoverPt=0.1 * u.e / u.GeV, initialSigmaPtRel=0.1, initialVarInflation=[1.0] * 6, **names)
