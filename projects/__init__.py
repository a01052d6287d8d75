"""Baseline pre-training methods (mmdet3d projects convention), built on clap_plugin."""
