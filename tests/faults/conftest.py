# The fault scenario lives in benchmarks/ (it is also `make chaos`): make the repository importable.
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:
    sys.path.insert(0, REPO)
