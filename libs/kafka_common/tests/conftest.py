import sys
from pathlib import Path

# The stand-in clients (fakes.py) sit beside the tests; importlib mode does not add this folder.
sys.path.insert(0, str(Path(__file__).parent))
