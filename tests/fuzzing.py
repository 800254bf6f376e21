"""How many examples a fuzz property tries: a quick, fixed set in `make test`, more in
`make fuzz` (REFUND_RECON_FUZZ_SCALE multiplies them)."""

from __future__ import annotations

import os


def examples(quick: int) -> int:
    """`quick` examples, scaled by REFUND_RECON_FUZZ_SCALE (default 1)."""
    return max(1, round(quick * float(os.environ.get("REFUND_RECON_FUZZ_SCALE", "1"))))
