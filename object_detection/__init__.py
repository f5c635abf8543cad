"""Object detection: SSD300 (VGG-16) on Pascal VOC with active learning."""
