"""Image classification task: CIFAR ResNet-18, datasets in their on-disk formats, task adapter."""
