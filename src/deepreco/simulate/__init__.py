"""Fast simulation on the real TrackML detector: particles in, TrackML event out.

``simulate_event(particles)`` propagates the charged particles as helices in the solenoid field through
every module they cross (:mod:`.propagate`, with the material of :mod:`.material` and the particle ends of
:mod:`.lineage`), turns each crossing into cells and a hit (:mod:`.digitize`), adds noise (:mod:`.noise`)
and returns an :class:`deepreco.event.Event` with hits, cells, truth (with weights) and particles (with
``nhits``). :mod:`.compare` checks the result against a real event's hits.
"""

from .compare import comparison_table, nhits_by_class, plot_hits_per_layer, summary_numbers
from .fastsim import check_particles, default_detector, simulate_event

__all__ = ["check_particles", "comparison_table", "default_detector", "nhits_by_class", "plot_hits_per_layer",
           "simulate_event", "summary_numbers"]
