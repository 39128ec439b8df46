"""DeepCore (CMS, seed 000): CNN track seeding in the dense cores of TeV jets, and the classical jet-core seeding.

The stages are the modules: ``detector`` (the CMS Phase-1-like pixel barrel, helix crossings), ``events``
(Pythia dijets, FastJet jets), ``pixelsim`` (charge, sharing, threshold, ADC, clusters), ``windows`` (the
network's inputs and targets, written as shards), ``model`` and ``loss`` (the CNN of the slides), ``train``,
``seeds`` (thresholds and cleaning), ``baseline`` (pairs of clusters along the jet), ``evaluate`` and ``plots``.
"""
