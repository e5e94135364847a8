"""How every file is written and JSON read: atomic writes, npz and JSON files.

Every file cxrvae writes goes through :func:`atomic_write`: written under a temporary name in
the same folder, then renamed over the final name. An interruption or a full disk therefore
never leaves a half-written file under the final name, and an error names the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``.

    Raises
    ------
    OSError
        With ``filename`` set to ``path`` (for example "No space left on device").
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_npz(path, compressed: bool = False, **arrays) -> Path:
    """``np.savez`` (or ``np.savez_compressed``) through :func:`atomic_write`."""
    save = np.savez_compressed if compressed else np.savez

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            save(f, **arrays)

    return atomic_write(path, write)


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON through :func:`atomic_write` (numpy values allowed)."""
    text = json.dumps(obj, indent=2, default=_jsonable) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path) -> dict:
    """The JSON value in ``path``."""
    return json.loads(Path(path).read_text())
