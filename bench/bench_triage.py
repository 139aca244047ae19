"""Throughput of workflows.triage.classify on the sample intakes, Simplified and Traditional,
in one process (no service, no database); also the one-off cost of building the converter.

    python -m bench.bench_triage [--seconds 3]
"""

import argparse
import json
import time
from pathlib import Path

from opencc_purepy import OpenCC

from workflows import triage

SAMPLES = Path(__file__).parent.parent / "tests" / "data" / "intakes.jsonl"


def texts_per_second(texts: list[str], seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for text in texts:
            triage.classify(text)
        done += len(texts)
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()
    simplified = [json.loads(line)["text"] for line in SAMPLES.read_text().splitlines() if line]

    started = time.perf_counter()
    triage.classify(simplified[0])  # builds the t2s converter and reads triage.toml
    print(f"first call (converter build + config): {(time.perf_counter() - started) * 1e3:.1f} ms")
    traditional = [OpenCC("s2t").s2t(text) for text in simplified]

    for name, texts in (("simplified", simplified), ("traditional", traditional)):
        rate = texts_per_second(texts, args.seconds)
        print(f"{name:12} {rate:10,.0f} texts/s  ({1e6 / rate:.1f} µs per text)")


if __name__ == "__main__":
    main()
