"""CMCR: cross-modal comprehensive representation learning (see README.md)."""
