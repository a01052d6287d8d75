"""Shared helpers of the test suite: paths, fixtures, the 2-process gloo runner, BEVFusion inputs, baseline runs."""
