"""The keys file (`.env.wilton`): NAME=value lines, mode 0600, kept out of the config on purpose.

The config only names variables (`api_key_env`); values live here or in the environment, so the
config can be committed and shared while this file never is.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_ENV_FILE", "merged_environ", "read_env_file", "write_env_file"]

DEFAULT_ENV_FILE = Path(".env.wilton")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """NAME=value pairs; `export ` prefixes, comments and blank lines are accepted. Missing file: {}."""
    p = Path(path)
    if not p.exists():
        return {}
    out: dict[str, str] = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        if sep and _NAME.match(name.strip()):
            out[name.strip()] = _unquote(value)
    return out


def write_env_file(path: str | os.PathLike[str], values: Mapping[str, str]) -> Path:
    """Merge `values` into the file (existing other names are kept), atomically, mode 0600."""
    p = Path(path)
    for name, value in values.items():
        if not _NAME.match(name):
            raise ValueError(f"'{name}' is not an environment variable name")
        if "\n" in value or "\r" in value:
            raise ValueError(f"the value for {name} contains a line break")
    merged = {**read_env_file(p), **values}
    body = "# WiltonOS LLM stack keys (written by `wiltonctl setup`). Keep private: mode 0600.\n"
    body += "".join(f"{k}={v}\n" for k, v in sorted(merged.items()))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    # Created 0600 from the first byte: a chmod after writing would leave a window where the
    # keys are readable by others.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        os.write(fd, body.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)
    return p


def merged_environ(env_file: str | os.PathLike[str] | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment with the keys file's values on top of it."""
    env = dict(os.environ if base is None else base)
    if env_file is not None:
        env.update(read_env_file(env_file))
    return env
