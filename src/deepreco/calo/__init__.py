"""Calorimeter reconstruction (seed 002): an HGCAL-like endcap, its showers and truth, and the clustering
methods compared on the same events.

The stages, one module each::

    guns / deepreco.generate -> propagate (helix, brems) -> showers (EM, hadronic, MIP) -> truth (cells, noise,
    fractions) = simulate -> CaloEvent
    methods: clue (CLUE), models/ (GravNet, DGCNN, DRN) + condensation (loss, inference), train
    metrics -> evaluate -> plots; cli (``deepreco calo evaluate | train``)

>>> from deepreco.calo import simulate_gun, get_method
>>> event = simulate_gun(n=2, species="gamma", energy=(30, 30), seed=3)
>>> hit_table, clusters = get_method("clue").reconstruct(event)
>>> list(hit_table.columns)
['hit_id', 'cluster_id', 'hit_class']
"""

from .clue import ClueClustering, clue
from .event import CaloEvent, check_hits
from .geometry import DEFAULT, Calorimeter
from .methods import get_method
from .simulate import gun_events, simulate, simulate_gun

__all__ = ["DEFAULT", "CaloEvent", "Calorimeter", "ClueClustering", "check_hits", "clue", "get_method", "gun_events",
           "simulate", "simulate_gun"]
