"""An HGCAL-like endcap sampling calorimeter: 50 silicon layers from z = 3200 mm, 1.5 < |eta| < 3.0.

The electromagnetic section (CE-E) has 28 layers of about 0.93 X0 each (26 X0, 1.3 lambda); the hadronic
section (CE-H) has 12 layers of 0.28 lambda then 10 of 0.48 lambda of steel (8.2 lambda). Cells are squares
of 10 mm (about 1 cm2) in CE-E and 20 mm in CE-H, on a grid centred on the beam; only cells whose centre lies
inside the eta acceptance at that layer's z exist.

Energies are calibrated: a hit's ``energy`` is the energy the shower left in the absorber in front of it plus
the sensor (GeV), what the silicon saw divided by the layer's sampling fraction. A minimum-ionising particle
(MIP) leaves ``mip`` GeV in a layer on that scale: dE/dx_min x X0 (7.1 MeV per X0 of lead/tungsten-like
absorber, 20 MeV per X0 of steel) times the layer's thickness in X0; 300 um of silicon sees 0.116 MeV of it.
Both endcaps exist: a layer at +z has its mirror at -z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SILICON_MIP_GEV = 0.116e-3  # 300 um of silicon at dE/dx_min (3.88 MeV/cm)
C_MM_PER_NS = 299.792458


def theta_of_eta(eta):
    return 2.0 * np.arctan(np.exp(-np.asarray(eta, dtype=np.float64)))


@dataclass(frozen=True)
class Calorimeter:
    """The layers of one endcap, front to back, and the constants of the sensors.

    Per layer (arrays of length ``n_layers``): ``z`` of the sensor plane [mm], absorber in front of it in X0
    (``x0``) and in interaction lengths (``lam``), the cumulative depth at the sensor (``depth_x0``,
    ``depth_lam``), the cell size [mm], the MIP energy on the calibrated scale (``mip`` GeV), the sampling
    fraction, the noise width (``noise_mips`` x mip) and the zero-suppression threshold (``threshold_mips``).
    """

    z_front: float = 3200.0
    eta_min: float = 1.5
    eta_max: float = 3.0
    n_em: int = 28
    em_x0_total: float = 26.0
    em_lam_total: float = 1.3
    em_pitch: float = 12.0
    had_lam: tuple = (0.28,) * 12 + (0.48,) * 10
    had_x0_per_lam: float = 168.0 / 17.6  # steel: lambda_int / X0
    had_gap: float = 25.0
    cell_em: float = 10.0
    cell_had: float = 20.0
    moliere_mm: float = 28.0  # effective Moliere radius of CE-E
    noise_mips: float = 0.15
    threshold_mips: float = 0.6
    layers: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        n_had = len(self.had_lam)
        x0 = np.concatenate([np.full(self.n_em, self.em_x0_total / self.n_em),
                             np.asarray(self.had_lam) * self.had_x0_per_lam])
        lam = np.concatenate([np.full(self.n_em, self.em_lam_total / self.n_em), np.asarray(self.had_lam)])
        steel_mm = np.asarray(self.had_lam) * 168.0
        pitch = np.concatenate([np.full(self.n_em, self.em_pitch), steel_mm + self.had_gap])
        z = self.z_front + np.cumsum(pitch)
        mev_per_x0 = np.concatenate([np.full(self.n_em, 7.1e-3), np.full(n_had, 20.0e-3)])
        mip = mev_per_x0 * x0
        cell = np.concatenate([np.full(self.n_em, self.cell_em), np.full(n_had, self.cell_had)])
        object.__setattr__(self, "layers", {
            "z": z, "x0": x0, "lam": lam, "depth_x0": np.cumsum(x0), "depth_lam": np.cumsum(lam),
            "cell": cell, "mip": mip, "sampling_fraction": SILICON_MIP_GEV / mip,
            "r_min": z * np.tan(theta_of_eta(self.eta_max)), "r_max": z * np.tan(theta_of_eta(self.eta_min)),
            "is_em": np.arange(self.n_em + n_had) < self.n_em,
        })

    @property
    def n_layers(self) -> int:
        return self.n_em + len(self.had_lam)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.layers[name]

    @property
    def z_back(self) -> float:
        return float(self.layers["z"][-1])

    def n_cells(self) -> np.ndarray:
        """Cells per layer (one endcap), from the annulus area over the cell area."""
        L = self.layers
        return np.round(np.pi * (L["r_max"] ** 2 - L["r_min"] ** 2) / L["cell"] ** 2).astype(np.int64)

    # --- cells: (layer, ix, iy) <-> id and centre -------------------------------------------------------
    # An id packs the endcap side, the layer and the grid indices; ix, iy are offset so they are positive.
    _OFF = 1 << 10

    def cell_index(self, layer: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = self.layers["cell"][layer]
        return np.floor(x / size).astype(np.int64), np.floor(y / size).astype(np.int64)

    def cell_id(self, side: np.ndarray, layer: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        side_bit = (np.asarray(side) < 0).astype(np.int64)
        return (((side_bit * 64 + layer) * 2048 + (ix + self._OFF)) * 2048) + (iy + self._OFF)

    def decode(self, cid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """side (+1/-1), layer, ix, iy of each cell id."""
        cid = np.asarray(cid, dtype=np.int64)
        iy = cid % 2048 - self._OFF
        ix = (cid // 2048) % 2048 - self._OFF
        rest = cid // (2048 * 2048)
        return np.where(rest >= 64, -1, 1), rest % 64, ix, iy

    def cell_centre(self, cid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x, y, z [mm] and layer of each cell id."""
        side, layer, ix, iy = self.decode(cid)
        size = self.layers["cell"][layer]
        return (ix + 0.5) * size, (iy + 0.5) * size, side * self.layers["z"][layer], layer

    def inside(self, layer: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points of a layer lie in its eta acceptance."""
        r = np.hypot(x, y)
        return (r >= self.layers["r_min"][layer]) & (r <= self.layers["r_max"][layer])


DEFAULT = Calorimeter()
