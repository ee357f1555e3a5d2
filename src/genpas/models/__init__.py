"""Models: pure torch, no file formats. Item codes arrive shifted by one (0 = padding); scores cover real items."""

from genpas.models.hstu import HSTU, HSTUConfig
from genpas.models.popularity import Popularity
from genpas.models.sasrec import SASRec, SASRecConfig
from genpas.models.tiger import TIGER, TIGERConfig

__all__ = ["HSTU", "HSTUConfig", "Popularity", "SASRec", "SASRecConfig", "TIGER", "TIGERConfig"]
