"""LAI from Sentinel-2 L2A reflectances: the SNAP biophysical processor's neural network.

The network (Weiss, M. and Baret, F., "S2ToolBox Level 2 products: LAI, FAPAR, FCOVER",
ATBD version 1.1, INRA, 2016, https://step.esa.int/docs/extra/ATBD_S2ToolBox_L2B_V1.1.pdf)
maps eight L2A surface reflectances (B3, B4, B5, B6, B7, B8A, B11, B12) and the cosines of
the view zenith, sun zenith and relative azimuth angles to LAI: each input is scaled to
[-1, 1] with fixed bounds, then one hidden layer of five tansig neurons and a linear output,
scaled back from [-1, 1] to LAI. The published figures below are those of the ATBD as
transcribed in sentinel-hub custom-scripts, ``sentinel-2/lai/script.js``
(https://github.com/sentinel-hub/custom-scripts); that script divides its output by 3 for
display, which is not done here.

The processor flags LAI outside [0, 8] (its definition domain; :data:`VALID_RANGE`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BANDS = ("B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
VALID_RANGE = (0.0, 8.0)  # LAI output domain of the processor

# (min, max) that map each input to [-1, 1]: bands, then cos(view zenith), cos(sun zenith)
_INPUT_BOUNDS = np.array([
    (0.0, 0.253061520471542),
    (0.0, 0.290393577911328),
    (0.0, 0.305398915248555),
    (0.006637972542253, 0.608900395797889),
    (0.013972727018939, 0.753827384322927),
    (0.026690138082061, 0.782011770669178),
    (0.016388074192258, 0.493761397883092),
    (0.0, 0.493025984460231),
    (0.918595400582046, 1.0),
    (0.342022871159208, 0.936206429175402),
])
# hidden layer: 5 neurons x 11 inputs (8 bands, cos view zenith, cos sun zenith, cos relative azimuth)
_W1 = np.array([
    [-0.023406878966470, 0.921655164636366, 0.135576544080099, -1.938331472397950, -3.342495816122680,
     0.902277648009576, 0.205363538258614, -0.040607844721716, -0.083196409727092, 0.260029270773809,
     0.284761567218845],
    [-0.132555480856684, -0.139574837333540, -1.014606016898920, -1.330890038649270, 0.031730624503341,
     -1.433583541317050, -0.959637898574699, 1.133115706551000, 0.216603876541632, 0.410652303762839,
     0.064760155543506],
    [0.086015977724868, 0.616648776881434, 0.678003876446556, 0.141102398644968, -0.096682206883546,
     -1.128832638862200, 0.302189102741375, 0.434494937299725, -0.021903699490589, -0.228492476802263,
     -0.039460537589826],
    [-0.109366593670404, -0.071046262972729, 0.064582411478320, 2.906325236823160, -0.673873108979163,
     -3.838051868280840, 1.695979344531530, 0.046950296081713, -0.049709652688365, 0.021829545430994,
     0.057483827104091],
    [-0.089939416159969, 0.175395483106147, -0.081847329172620, 2.219895367487790, 1.713873975136850,
     0.713069186099534, 0.138970813499201, -0.060771761518025, 0.124263341255473, 0.210086140404351,
     -0.183878138700341],
])
_B1 = np.array([4.96238030555279, 1.416008443981500, 1.075897047213310, 1.533988264655420, 3.024115930757230])
_W2 = np.array([-1.500135489728730, -0.096283269121503, -0.194935930577094, -0.352305895755591, 0.075107415847473])
_B2 = 1.096963107077220
_OUTPUT_BOUNDS = (0.000319182538301, 14.4675094548151)


@dataclass(frozen=True)
class Angles:
    """Mean acquisition geometry of a scene, in degrees (from the L2A metadata, MTD_TL.xml)."""

    view_zenith: float
    sun_zenith: float
    relative_azimuth: float  # sun azimuth minus view azimuth

    def check(self) -> None:
        for name in ("view_zenith", "sun_zenith"):
            value = getattr(self, name)
            if not 0 <= value < 90:
                raise ValueError(f"angle {name} must lie in [0, 90) degrees, got {value}")


def snap_lai(reflectance: np.ndarray, angles: Angles) -> np.ndarray:
    """LAI (m2/m2) from L2A surface reflectance ``(8, ...)`` in :data:`BANDS` order (0..1, not DN).

    Returns float32 of the spatial shape; NaN where any input band is not finite. Values are the
    network's raw output: compare with :data:`VALID_RANGE` to flag them as the processor does.
    """
    angles.check()
    refl = np.asarray(reflectance, np.float64)
    if refl.shape[0] != len(BANDS):
        raise ValueError(f"reflectance must have {len(BANDS)} bands first ({', '.join(BANDS)}), got shape {refl.shape}")
    cosines = np.cos(np.deg2rad([angles.view_zenith, angles.sun_zenith]))
    lo, hi = _INPUT_BOUNDS[:, 0], _INPUT_BOUNDS[:, 1]
    shape = refl.shape[1:]
    x = np.empty((11, *shape))
    x[:8] = refl
    x[8:10] = cosines.reshape(2, *([1] * len(shape)))
    x[:10] = 2 * (x[:10] - lo.reshape(-1, *([1] * len(shape)))) / (hi - lo).reshape(-1, *([1] * len(shape))) - 1
    x[10] = np.cos(np.deg2rad(angles.relative_azimuth))  # not normalised, as in the processor
    hidden = np.tanh(np.tensordot(_W1, x, axes=1) + _B1.reshape(-1, *([1] * len(shape))))  # tansig == tanh
    out = np.tensordot(_W2, hidden, axes=1) + _B2
    low, high = _OUTPUT_BOUNDS
    return (0.5 * (out + 1) * (high - low) + low).astype(np.float32)
