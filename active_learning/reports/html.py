"""The report page's command line.

::

    python -m active_learning.reports.html RUN_DIR [--images DIR] [--output DIR]

builds the static page of an existing run folder (``run_folder.report_for_run``). A program
builds the page of a round from plain data with ``page.write_report`` (``page.Selection``,
``page.ChosenImage``) and the map fields of a run's cycle (``run_folder.map_fields``). The
modules: ``page.py`` (the page, from the Jinja2 templates in ``assets/``), ``thumbnails.py``,
``class_histogram.py``, ``embedding_map.py`` (t-SNE), ``image_cache.py`` and ``run_folder.py``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from active_learning.errors import ConfigError, UserError
from active_learning.reports.embedding_map import MAX_MAP_POINTS
from active_learning.reports.run_folder import report_for_run


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m active_learning.reports.html",
        description="Build the static report page (index.html and its images) of a run folder.")
    parser.add_argument("run_dir", help="the run folder (runs/<task>/<dataset>/<strategy>/seed<k>)")
    parser.add_argument("--output", default=None, help="the report folder (default RUN_DIR/report)")
    parser.add_argument("--images", default=None,
                        help="the folder the item names are relative to, for thumbnails")
    parser.add_argument("--class-names", default=None,
                        help="a text file of class names, one per line (for the embeddings' "
                             "classes)")
    parser.add_argument("--max-thumbnails", type=int, default=48,
                        help="thumbnails per cycle (default 48)")
    parser.add_argument("--max-map-points", type=int, default=MAX_MAP_POINTS,
                        help=f"points per t-SNE map (default {MAX_MAP_POINTS})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report; returns 0, or 2 with one message on stderr for unusable input."""
    args = get_args_parser().parse_args(argv)
    try:
        names: list[str] = []
        if args.class_names:
            try:
                text = Path(args.class_names).read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError(f"--class-names {args.class_names}: {error.strerror}") from None
            names = [line.strip() for line in text.splitlines() if line.strip()]
        index = report_for_run(args.run_dir, args.output, images=args.images, class_names=names,
                               max_thumbnails=args.max_thumbnails,
                               max_map_points=args.max_map_points)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
