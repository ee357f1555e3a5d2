"""Models: pure torch, no file formats. Item codes arrive shifted by one (0 = padding); scores cover real items."""

from genpas.models.popularity import Popularity
from genpas.models.sasrec import SASRec, SASRecConfig
from genpas.models.tiger import TIGER, TIGERConfig

__all__ = ["Popularity", "SASRec", "SASRecConfig", "TIGER", "TIGERConfig"]
