"""Makes the project importable for the domain unit tests."""

import sys
from pathlib import Path

# pytest does not put the project root on sys.path by itself (no pythonpath setting, no install).
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)
