"""Semantic segmentation: DRN-D-22 on Cityscapes with learning loss, MC dropout and superpixels."""
