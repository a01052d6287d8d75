"""PPKT: contrastive pixel-to-point knowledge transfer (see README.md)."""
