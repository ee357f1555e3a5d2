"""Reading a YAML config file safely (safe_load, a key given twice refused), every problem one line naming the
file: the options it sets, which TrainConfig validates."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from genpas.errors import GenpasError


def read_mapping(path: Path) -> dict:
    """The options a YAML file sets (validated by TrainConfig.from_dict when used); {} for an empty file."""
    path = Path(path)
    if not path.exists():
        raise GenpasError(f"{path}: no such config file")
    if not path.is_file():
        raise GenpasError(f"{path}: not a file; give a YAML config file")
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError:
        raise GenpasError(f"{path}: not UTF-8 text; a config is a YAML file") from None
    except OSError as exc:
        raise GenpasError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f" ({problem})" if problem and problem.startswith("duplicate key") else ""
        raise GenpasError(f"{path}: {where}invalid YAML{detail}") from None
    if values is None:  # an empty file sets nothing
        return {}
    if not isinstance(values, dict):  # [] and false too
        raise GenpasError(f"{path}: expected a mapping of option: value")
    return values


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class says so
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1, which PyYAML reads, takes a float only with a dot: `lr: 1e-3` would be the string "1e-3" and be refused.
# YAML 1.2 and every config author read it as a number, so this loader does too (1e-3, 5E4, -2.5e-4).
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                       re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                       list("-+0123456789"))
