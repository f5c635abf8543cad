"""``python -m active_learning.export fiftyone ROUND_DIR``: see the package doc."""
from active_learning.export import main

if __name__ == "__main__":
    raise SystemExit(main())
