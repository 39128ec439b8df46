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

from importlib import import_module

# Where each public name lives; imported on first use, so that `deepreco calo --help` does not load torch.
_NAMES = {"ClueClustering": "clue", "clue": "clue", "CaloEvent": "event", "check_hits": "event",
          "DEFAULT": "geometry", "Calorimeter": "geometry", "get_method": "methods", "PILEUP_MODELS": "methods",
          "gun_events": "simulate",
          "simulate": "simulate", "simulate_gun": "simulate"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)
