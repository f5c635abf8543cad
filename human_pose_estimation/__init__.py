"""Human pose estimation: top-down HRNet on COCO person keypoints (unit = image of persons)."""
