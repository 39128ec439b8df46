"""The truth oracle: each particle's hits as one track, noise left out.

Not a reconstruction: the upper bound every method is compared with (it scores 1.0 by construction) and a
check of the plumbing from event to score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DeepRecoError
from ..event import Event
from .base import Method, register


@register("truth")
class TruthTracks(Method):
    def _reconstruct(self, event: Event) -> pd.DataFrame:
        if event.truth is None:
            raise DeepRecoError("the truth method needs the event's truth")
        truth = event.truth[event.truth["particle_id"] != 0]
        _, track_id = np.unique(truth["particle_id"].to_numpy(), return_inverse=True)
        return pd.DataFrame({"hit_id": truth["hit_id"].to_numpy(), "track_id": track_id + 1})
