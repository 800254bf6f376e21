import sys
from pathlib import Path

# The fixture builders in tests/exports.py are imported as a plain module.
sys.path.insert(0, str(Path(__file__).parent))
