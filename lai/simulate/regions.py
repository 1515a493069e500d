"""The land classes and the table of European agricultural regions (landscape, phenology and climate presets)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lai.simulate.clouds import monthly_climate

CLASSES = ("winter_cereal", "maize", "sunflower", "grassland", "deciduous", "conifer", "bare_urban", "water")
CEREAL, MAIZE, SUNFLOWER, GRASS, DECIDUOUS, CONIFER, BARE, WATER = range(8)
ARABLE = (CEREAL, MAIZE, SUNFLOWER)
CROPS = (CEREAL, MAIZE, SUNFLOWER, GRASS)  # herbaceous fields whose LAI the radar sees through the WCM


@dataclass(frozen=True)
class Region:
    """A European agricultural region: landscape, phenology and climate presets."""

    country: str
    area: str
    latitude: float
    longitude: float
    epsg: int  # UTM zone (WGS 84) of the region
    crop_mix: dict  # class name (see CLASSES) -> share of fields
    phenology_shift: float = 0.0  # days added to green-up and senescence dates
    cloud_monthly: tuple = monthly_climate(0.75, 0.45)  # mean cloud fraction, January..December
    snow_risk: float = 0.0  # probability of snow on a mid-winter date
    soil_moisture: tuple = (10.0, 30.0)  # vol. % of the dry (summer) and wet (winter) seasons
    field_ha: float = 8.0  # typical field size
    irrigation: float = 0.0  # share of maize fields irrigated in summer

    @property
    def name(self) -> str:
        return f"{self.country}_{self.area}"

    def mix(self) -> np.ndarray:
        """Class probabilities in CLASSES order."""
        unknown = set(self.crop_mix) - set(CLASSES)
        if unknown:
            raise ValueError(f"region {self.name}: unknown classes {sorted(unknown)}")
        p = np.array([float(self.crop_mix.get(c, 0.0)) for c in CLASSES])
        return p / p.sum()

    def origin(self) -> tuple[float, float]:
        """Approximate UTM easting/northing of the region's upper-left corner (10 m aligned)."""
        zone = self.epsg % 100
        central = -183 + 6 * zone
        east = 500_000 + (self.longitude - central) * 111_320 * math.cos(math.radians(self.latitude))
        north = self.latitude * 110_950
        return round(east, -1), round(north, -1)


def _mix(cereal, maize, sunflower, grass, deciduous, conifer, bare, water) -> dict:
    return dict(zip(CLASSES, (cereal, maize, sunflower, grass, deciduous, conifer, bare, water)))


_REGION_LIST = [
    Region("SPAIN", "BADAJOZ", 38.88, -6.97, 32629, _mix(.30, .10, .12, .18, .08, .02, .16, .04), -18, monthly_climate(0.39, 0.05), 0.0, (6, 28), 10, .8),
    Region("PORTUGAL", "ALENTEJO", 38.57, -7.91, 32629, _mix(.28, .08, .10, .24, .09, .03, .14, .04), -15, monthly_climate(0.37, 0.05), 0.0, (6, 27), 12, .6),
    Region("FRANCE", "BEAUCE", 48.30, 1.60, 32631, _mix(.52, .10, .04, .06, .08, .02, .14, .04), 0, monthly_climate(0.57, 0.30), .08, (10, 32), 15, .3),
    Region("BELGIUM", "HAINAUT", 50.45, 3.95, 32631, _mix(.35, .15, .00, .20, .10, .02, .15, .03), 3, monthly_climate(0.61, 0.36), .12, (14, 34), 6, 0),
    Region("NETHERLANDS", "FLEVOLAND", 52.53, 5.60, 32631, _mix(.30, .10, .00, .22, .08, .03, .20, .07), 5, monthly_climate(0.61, 0.36), .10, (15, 36), 8, 0),
    Region("GERMANY", "BRANDENBURG", 52.40, 13.60, 32633, _mix(.36, .14, .01, .12, .07, .18, .07, .05), 6, monthly_climate(0.57, 0.32), .30, (7, 26), 18, .05),
    Region("POLAND", "MAZOWSZE", 52.20, 21.00, 32634, _mix(.34, .12, .01, .20, .08, .13, .08, .04), 10, monthly_climate(0.59, 0.32), .45, (9, 30), 3, 0),
    Region("CZECHIA", "VYSOCINA", 49.40, 15.60, 32633, _mix(.36, .10, .01, .18, .07, .20, .05, .03), 12, monthly_climate(0.59, 0.34), .50, (12, 33), 10, 0),
    Region("ITALY", "PIEMONTE", 44.90, 8.00, 32632, _mix(.20, .30, .03, .14, .13, .03, .13, .04), -8, monthly_climate(0.42, 0.21), .12, (12, 32), 5, .7),
    Region("AUSTRIA", "WEINVIERTEL", 48.60, 16.50, 32633, _mix(.42, .12, .08, .08, .10, .05, .12, .03), 0, monthly_climate(0.54, 0.29), .30, (9, 29), 6, .1),
    Region("HUNGARY", "BEKES", 46.70, 21.10, 32634, _mix(.30, .28, .18, .08, .05, .01, .07, .03), -5, monthly_climate(0.52, 0.22), .25, (9, 30), 18, .1),
    Region("ROMANIA", "TIMIS", 45.75, 21.20, 32634, _mix(.32, .26, .14, .10, .07, .01, .07, .03), -6, monthly_climate(0.50, 0.22), .25, (9, 30), 10, .05),
    Region("DENMARK", "MIDTJYLLAND", 56.20, 9.50, 32632, _mix(.40, .12, .00, .18, .06, .10, .10, .04), 15, monthly_climate(0.63, 0.36), .30, (10, 32), 12, .1),
    Region("SWEDEN", "SKANE", 55.80, 13.50, 32633, _mix(.45, .03, .00, .16, .10, .08, .14, .04), 16, monthly_climate(0.63, 0.34), .35, (12, 33), 14, 0),
    Region("LITHUANIA", "KAUNAS", 54.90, 23.90, 32634, _mix(.38, .06, .00, .20, .10, .12, .10, .04), 18, monthly_climate(0.64, 0.32), .60, (12, 33), 8, 0),
    Region("IRELAND", "MEATH", 53.60, -6.70, 32629, _mix(.15, .02, .00, .60, .07, .05, .07, .04), 8, monthly_climate(0.68, 0.44), .05, (18, 38), 4, 0),
]
REGIONS: dict[str, Region] = {r.name: r for r in _REGION_LIST}

