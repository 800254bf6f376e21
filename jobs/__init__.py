"""refund-recon: the nightly check of TRTC monthly-package refunds against the refund policy."""

__version__ = "0.1.0"
