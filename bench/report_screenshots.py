"""The task READMEs' report screenshots: one labeling round per task on tiny synthetic data,
its page (``round_001/proposals/report/index.html``) shot in headless chromium.

    python bench/report_screenshots.py                       # docs/report_<task>.png
    python bench/report_screenshots.py --tasks segmentation --keep /tmp/shots

Data: Fashion-MNIST items as PNG files with a ``name,label`` CSV export (classification); the
CPU benchmark scenes of ``python -m synthetic`` with the exports ``bench/bench_rounds.py``
writes (a VOC XML folder, class-id masks, COCO keypoints with the persons' boxes). Each round
uses its task's CPU settings with a few epochs: the page, not the model, is what is shown.

The browser is Debian's ``chromium`` driven by its ``chromium-driver`` through Selenium (the dev
extra), as ``tests/test_report_browser.py`` drives it (``make browser`` installs both). The
whole page is shot at 1,000 pixels wide, then stored as a PNG of at most 96 colours (under
300 KB).
"""
from __future__ import annotations

import argparse
import csv
import importlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

logger = logging.getLogger("active_learning")

# Each task's round: its strategy and flags (tiny models, a few epochs, a small budget).
ROUNDS = {
    "classification": ["--strategy", "entropy", "--width", "8", "--image-size", "28",
                       "--epochs", "30", "--batch-size", "16", "--lr", "0.05", "--budget", "9"],
    # (a detector trained longer on 40 images keeps dozens of weak boxes above 0.5 per image)
    "object_detection": ["--preset", "synthetic-cpu", "--strategy", "entropy", "--epochs", "4",
                         "--budget", "8"],
    "segmentation": ["--preset", "synthetic-cpu", "--strategy", "mc_entropy", "--epochs", "4",
                     "--budget", "8"],
    "human_pose_estimation": ["--preset", "synthetic-cpu", "--strategy",
                              "heatmap_uncertainty", "--epochs", "20", "--budget", "6"],
}
SIZES = {"classification": (80, 320), "object_detection": (40, 100), "segmentation": (30, 90),
         "human_pose_estimation": (30, 70)}      # (labeled, unlabeled) images


def classification_round_data(folder: Path, labeled: int, pool: int) -> tuple[Path, Path]:
    """Fashion-MNIST training items as PNGs under ``folder/images/<k // 100>/``, and a
    ``name,label`` CSV of the first ``labeled``: (images folder, the export)."""
    from PIL import Image

    from classification.fashion_mnist import FASHION_MNIST_CLASSES
    from synthetic.scenes import load_fashion_mnist

    items, labels = load_fashion_mnist()
    images = folder / "images"
    names = []
    for index in range(labeled + pool):
        name = f"{index // 100:02d}/item_{index:05d}.png"
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(items[index]).save(images / name)
        names.append(name)
    export = folder / "export.csv"
    with open(export, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label"])
        writer.writerows([name, FASHION_MNIST_CLASSES[int(labels[index])]]
                         for index, name in enumerate(names[:labeled]))
    return images, export


def run_round(task: str, folder: Path) -> Path:
    """One round of ``task`` on its tiny data; returns the round's report page."""
    labeled, pool = SIZES[task]
    extra: list[str] = []
    if task == "classification":
        images, labels = classification_round_data(folder / task, labeled, pool)
    else:
        import bench_rounds

        data, export = folder / task / "data", folder / task / "export"
        bench_rounds.scenes(task, data, labeled + pool)
        images, extra = bench_rounds.EXPORTS[task](data, labeled, export)
        labels = export / "annotations" / "person_keypoints_default.json" \
            if task == "human_pose_estimation" else export
    main = importlib.import_module(f"{task}.train").main
    round_dir = main(["round", "--images", str(images), "--labels", str(labels), "--workspace",
                      str(folder / task / "ws"), *ROUNDS[task], "--no-progress", "--device",
                      "cpu", "--threads", "1", *extra])
    return Path(round_dir) / "proposals" / "report" / "index.html"


def screenshot(page: Path, target: Path, width: int = 1000, colours: int = 96) -> None:
    """The whole page at ``width`` CSS pixels, as a PNG of at most ``colours`` colours."""
    import io

    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (browser and driver_path):
        raise SystemExit("error: no headless browser: apt-get install chromium chromium-driver "
                         "(make browser)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--hide-scrollbars",
                     "--force-device-scale-factor=1", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_window_size(width, 800)
        driver.get(page.resolve().as_uri())
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, int(height) + 20)
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    with Image.open(io.BytesIO(png)) as shot:
        reduced = shot.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
        target.parent.mkdir(parents=True, exist_ok=True)
        reduced.save(target, format="PNG", optimize=True)
    logger.info("%s: %d KB", target, target.stat().st_size // 1024)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(ROUNDS), choices=list(ROUNDS))
    parser.add_argument("--output", default=str(ROOT / "docs"),
                        help="where report_<task>.png go")
    parser.add_argument("--keep", default=None, help="write the data and rounds here, kept")
    args = parser.parse_args(argv)
    from active_learning.console import configure_logging

    configure_logging()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="report_screenshots_"))
    os.environ.setdefault("XDG_CACHE_HOME", str(folder / "cache"))
    try:
        for task in args.tasks:
            screenshot(run_round(task, folder), Path(args.output) / f"report_{task}.png")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
