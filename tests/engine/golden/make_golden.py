"""Regenerate the golden fingerprint after an intended change of the hash scheme.

Run from the repository root: ``python tests/engine/golden/make_golden.py``.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiofp.engine.fingerprint import fingerprint_for_index  # noqa: E402
from audiofp.engine.params import DEFAULT_PARAMS  # noqa: E402
from audiofp.engine.types import Audio  # noqa: E402
from test_engine import GOLDEN, SR, melody  # noqa: E402

fp = fingerprint_for_index(Audio(melody(), SR), DEFAULT_PARAMS)
np.savez_compressed(GOLDEN, hashes=fp.hashes, postings=fp.postings(1), digest=np.array(DEFAULT_PARAMS.digest()))
print(f"wrote {GOLDEN}: {len(fp)} hashes")
