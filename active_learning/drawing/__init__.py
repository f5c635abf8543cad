"""Pictures drawn from arrays: the model's predictions over an image (one renderer for the
report's thumbnails and the tasks' per-cycle pictures), scores over an image, learning curves
and figure files. Below the loop and the report (both draw with it); it reads no run folder."""
