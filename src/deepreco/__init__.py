"""deepreco: machine-learning reconstruction of particle tracks and calorimeter showers."""

__version__ = "0.1.0"
