"""SimIPU: simple 2D image and 3D point cloud unsupervised pre-training (see README.md)."""
