"""Label Studio's side of the round-trip tests, run with the tools' Python (``.venv-tools``):
the SDK (``label_studio_sdk``) against a server the test started on 127.0.0.1.

    python studio_driver.py URL TOKEN

reads one JSON request a line, ``{"command": ..., "arguments": {...}}``, and answers each with
one JSON line: ``{"answer": {...}}`` or ``{"error": the traceback}`` (one process for the
session: the SDK takes seconds to import). The commands:

* ``create`` {title, config}: a project with the labeling config (XML text), sampling set to
  "Uncertainty sampling" -> {project, model_version};
* ``import`` {project, tasks}: import the tasks (a JSON file) -> the server's counts and the
  project's ``model_version`` after it;
* ``model_version`` {project, model_version}: set the project's model version;
* ``label`` {project, count, answers}: ``count`` times, take the task the server serves next
  (``GET /api/projects/ID/next``, what the labeling page asks), check its predictions with
  the SDK's own validator (``LabelInterface.validate_prediction``) against the project's
  config, and submit the annotation ``answers[name]`` (results; with ``"mask": [[0/1...]]``
  a brush region is encoded here with the SDK's ``converter.brush.mask2rle``), checked with
  the same validator (``validate_annotation``'s check, with its messages) -> {served, scores,
  errors};
* ``export`` {project, type, out}: Label Studio's export of that type (JSON, JSON_MIN, COCO,
  VOC) written to ``out`` (a zip is unpacked into the folder ``out``).
"""
from __future__ import annotations

import io
import json
import sys
import traceback
import zipfile
from pathlib import Path

import httpx
import numpy as np
from label_studio_sdk import LabelStudio
from label_studio_sdk.converter.brush import mask2rle
from label_studio_sdk.label_interface import LabelInterface


def _brush(result: dict) -> dict:
    """A result whose value holds a ``mask`` (rows of 0/1) with the mask as Label Studio's RLE,
    encoded by Label Studio's own converter."""
    value = dict(result["value"])
    if "mask" in value:
        mask = np.asarray(value.pop("mask"), dtype=np.uint8) * 255
        value.update(format="rle", rle=[int(v) for v in mask2rle(mask)])
    return {**result, "value": value}


def main(client: LabelStudio, http: httpx.Client, command: str, arguments: dict) -> dict:
    if command == "create":
        project = client.projects.create(title=arguments["title"],
                                         label_config=arguments["config"])
        client.projects.update(id=project.id, sampling="Uncertainty sampling")
        project = client.projects.get(id=project.id)
        return {"project": project.id, "sampling": project.sampling,
                "model_version": project.model_version}
    project_id = int(arguments["project"])
    if command == "import":
        tasks = json.loads(Path(arguments["tasks"]).read_text())
        for task in tasks:   # masks as the SDK encodes them
            for annotation in task.get("annotations", []):
                annotation["result"] = [_brush(region) for region in annotation["result"]]
        answer = client.projects.import_tasks(id=project_id, request=tasks)
        return {"tasks": answer.task_count, "predictions": answer.prediction_count,
                "annotations": answer.annotation_count,
                "model_version": client.projects.get(id=project_id).model_version}
    if command == "model_version":
        client.projects.update(id=project_id, model_version=arguments["model_version"])
        return {"model_version": client.projects.get(id=project_id).model_version}
    if command == "label":
        interface = LabelInterface(client.projects.get(id=project_id).label_config)
        answers = json.loads(Path(arguments["answers"]).read_text())
        served, scores, errors = [], [], []
        for _ in range(int(arguments["count"])):
            response = http.get(f"/api/projects/{project_id}/next")
            response.raise_for_status()
            task = response.json()
            name = task["data"]["name"]
            served.append(name)
            scores.append([prediction.get("score") for prediction in task.get("predictions", [])])
            for prediction in task.get("predictions", []):
                errors += [f"{name}: prediction: {error}" for error in
                           interface.validate_prediction(prediction, return_errors=True) or []]
            result = [_brush(region) for region in answers[name]]
            errors += [f"{name}: annotation: {error}" for error in
                       interface._validate_object({"result": result}, return_errors=True) or []]
            client.annotations.create(id=task["id"], result=result, lead_time=1.0)
        return {"served": served, "scores": scores, "errors": errors}
    if command == "export":
        data = b"".join(client.projects.exports.download_sync(
            id=project_id, export_type=arguments["type"]))
        out = Path(arguments["out"])
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(out)
        else:
            out.write_bytes(data)
        return {"bytes": len(data)}
    raise SystemExit(f"unknown command {command!r}")


def serve(url: str, token: str) -> None:
    client = LabelStudio(base_url=url, api_key=token)
    http = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"answer": main(client, http, request["command"], request["arguments"])}
        except Exception:   # the test reports it, with Label Studio's answer
            reply = {"error": traceback.format_exc()}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve(*sys.argv[1:3])
