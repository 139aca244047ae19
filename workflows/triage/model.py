"""The trained artefact at run time: TF-IDF weights and linear heads, read from gzipped JSON.

Plain JSON rather than pickle, so a deployment's model file is data and cannot execute code,
and the runtime needs numpy only (no scikit-learn import on the intake path). The file
(`triage_model.json.gz`, or the deployment's copy in `HOTLINE_CONFIG_DIR`) holds:
`format`, `version` (engine + corpus hash), `corpus_hash`, `features` (the vocabulary in
column order), `idf`, `heads` ({name: {kind: softmax|sigmoid, labels, coef, intercept}}) and
`thresholds` chosen at training time.
"""

import gzip
import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from workflows.config import path

FORMAT = 1
MODEL_FILE = "triage_model.json.gz"


# Rows are divided by their L2 norm, but never by less than this: a text of three words is
# not blown up to the weight of a whole report (one place name or "还在" alone would then
# decide). The typical report's norm is 50–80.
NORM_FLOOR = 30.0


def tf_idf(features: list[str], index: dict[str, int], idf: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """Column indices and weights (1 + ln tf) · idf of the known features, L2-normalised
    (by at least NORM_FLOOR)."""
    counts = Counter(f for f in features if f in index)
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    columns = np.fromiter((index[f] for f in counts), dtype=np.int64, count=len(counts))
    tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=float, count=len(counts))
    values = tf * idf[columns]
    return columns, values / max(float(np.linalg.norm(values)), NORM_FLOOR)


@dataclass(frozen=True)
class Head:
    kind: str  # "softmax" (one label) or "sigmoid" (each label on its own)
    labels: list[str]
    rows: slice  # this head's rows in Model.weights


@dataclass(frozen=True)
class Model:
    version: str
    corpus_hash: str
    features: list[str]
    index: dict[str, int]
    idf: np.ndarray
    weights: np.ndarray  # (all heads' labels) × features
    intercepts: np.ndarray
    heads: dict[str, Head]
    thresholds: dict[str, float]

    def vector(self, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return tf_idf(features, self.index, self.idf)

    def scores(self, columns: np.ndarray, values: np.ndarray) -> dict[str, dict[str, float]]:
        """Probabilities per head and label."""
        raw = self.weights[:, columns] @ values + self.intercepts
        out: dict[str, dict[str, float]] = {}
        for name, head in self.heads.items():
            z = raw[head.rows]
            if head.kind == "softmax":
                e = np.exp(z - z.max())
                p = e / e.sum()
            else:
                p = 1.0 / (1.0 + np.exp(-z))
            out[name] = {label: float(v) for label, v in zip(head.labels, p, strict=True)}
        return out

    def evidence(self, head: str, label: str, columns: np.ndarray, values: np.ndarray,
                 top: int = 8) -> list[str]:
        """The features present that pushed hardest towards this label, strongest first."""
        h = self.heads[head]
        row = h.rows.start + h.labels.index(label)
        push = self.weights[row, columns] * values
        order = np.argsort(-push, kind="stable")
        # Words in one report of twelve or more (接警, 一名, 男子, 孩子) explain nothing.
        common = math.log(12) + 1.0
        out: list[str] = []
        for i in order:
            if push[i] <= 0 or len(out) >= top:
                break
            name = self.features[columns[i]]
            if self.idf[columns[i]] > common or name[:2] in ("kw", "x:"):
                out.append(name)
        return out


def from_dict(data: dict[str, Any]) -> Model:
    if data.get("format") != FORMAT:
        raise ValueError(f"triage model format {data.get('format')!r}, expected {FORMAT}")
    features = list(data["features"])
    heads: dict[str, Head] = {}
    rows: list[list[float]] = []
    intercepts: list[float] = []
    for name, head in data["heads"].items():
        start = len(rows)
        rows += head["coef"]
        intercepts += head["intercept"]
        heads[name] = Head(head["kind"], [str(x) for x in head["labels"]], slice(start, len(rows)))
    weights = np.asarray(rows, dtype=np.float32) if rows else np.zeros((0, len(features)))
    return Model(
        version=data["version"], corpus_hash=data["corpus_hash"], features=features,
        index={f: i for i, f in enumerate(features)}, idf=np.asarray(data["idf"], dtype=float),
        weights=np.ascontiguousarray(weights, dtype=np.float64),
        intercepts=np.asarray(intercepts, dtype=float), heads=heads,
        thresholds={k: float(v) for k, v in data.get("thresholds", {}).items()})


def read(file: Path) -> Model:
    with gzip.open(file, "rt", encoding="utf-8") as fh:
        return from_dict(json.load(fh))


def write(data: dict[str, Any], file: Path) -> None:
    """Byte-for-byte reproducible: no timestamp in the gzip header, keys in a fixed order."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0,
                                              compresslevel=9) as gz:
        gz.write(raw)


@cache
def model() -> Model | None:
    """The deployment's trained model, or the shipped one; None when there is none (the
    engine then judges by its rules alone)."""
    file = path(MODEL_FILE)
    return read(file) if file.exists() else None
