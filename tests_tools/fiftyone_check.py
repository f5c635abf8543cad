"""FiftyOne's side of the export test, run with the tools' Python (``.venv-tools``): parse the
export with FiftyOne's own importer classes, which need no database (FiftyOne's database cannot
run here), and print what they read as one JSON object.

    python fiftyone_check.py EXPORT_DIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from fiftyone.utils.coco import COCODetectionDatasetImporter
from fiftyone.utils.csv import CSVDatasetImporter
from fiftyone.utils.data.importers import FiftyOneImageClassificationDatasetImporter


def _load_py(folder: Path) -> dict:
    """The loader's constants (IMAGES, FIELDS, PREDICTIONS), read from its source as it is
    (which must compile: it cannot run here, it makes a dataset in FiftyOne's database)."""
    source = (folder / "load.py").read_text()
    compile(source, str(folder / "load.py"), "exec")
    found: dict = {}
    for line in source.splitlines():
        if line.startswith(("IMAGES =", "PREDICTIONS =", "FIELDS =")):
            exec(line.split("#")[0], {}, found)
    return found


def main(folder: Path) -> dict:
    loader = _load_py(folder)
    images = loader["IMAGES"]
    samples = {}
    with CSVDatasetImporter(dataset_dir=str(folder), data_path=images,
                            labels_path=str(folder / "labels.csv"),
                            fields=loader["FIELDS"]) as importer:
        for sample in importer:
            samples[sample.filepath] = {name: sample[name] for name in loader["FIELDS"]
                                        if sample.has_field(name)}
    predictions: dict = {}
    if loader["PREDICTIONS"] == "COCODetectionDataset":
        importer = COCODetectionDatasetImporter(
            data_path=images, labels_path=str(folder / "predictions.json"),
            label_types=["detections", "segmentations", "keypoints"])
        with importer:
            for path, _, labels in importer:
                found = []
                for field, label in (labels or {}).items():
                    for item in getattr(label, "detections", None) or \
                            getattr(label, "keypoints", None) or []:
                        found.append({"field": field, "label": item.label,
                                      "confidence": item.confidence,
                                      "box": getattr(item, "bounding_box", None),
                                      "mask": None if getattr(item, "mask", None) is None
                                      else int(np.asarray(item.mask).sum()),
                                      "points": len(getattr(item, "points", None) or [])})
                predictions[path] = found
    elif loader["PREDICTIONS"] == "FiftyOneImageClassificationDataset":
        importer = FiftyOneImageClassificationDatasetImporter(
            data_path=images, labels_path=str(folder / "predictions.json"))
        with importer:
            for path, _, label in importer:
                predictions[path] = [{"label": label.label, "confidence": label.confidence}]
    points = np.load(folder / "embeddings.npz")
    return {"samples": samples, "predictions": predictions,
            "embeddings": {"names": [str(name) for name in points["names"]],
                           "shape": list(points["embeddings"].shape)}}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
