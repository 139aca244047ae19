"""Quality and speed of the triage engine on the team's corpus, by 5-fold cross-validation.

Folds are stratified by primary category (non-cases by their reason); each fold's model is
trained on the other four with the same code as `hotline triage train` (thresholds chosen
inside the training folds), so nothing of a test fold is seen in training. Prints primary-
category accuracy, per-category precision/recall, emergency recall/precision, mandatory-
situation recall, non-case precision/recall (and emergencies among non-cases), jurisdiction
accuracy where the text names a place, the same per register, the misjudged emergencies,
time per judgement p50/p99 and the shipped artefact's load time and size. Then the shipped
artefact (trained on the whole corpus) on the independent hold-out set written by someone
else and never trained on (bench/data/triage_holdout.jsonl).

    python -m bench.bench_triage [--corpus DIR] [--folds 5]
"""

import argparse
import os
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from workflows.config import path
from workflows.triage.judge import judge_with
from workflows.triage.judgement import Judgement
from workflows.triage.model import MODEL_FILE, from_dict, read
from workflows.triage.text import warm
from workflows.triage.train import (
    SEED,
    CorpusError,
    Example,
    corpus_dir,
    fit,
    load_corpus,
    prepare_examples,
)

HOLDOUT = Path(__file__).parent / "data"


def stratum(example: Example) -> str:
    return example.categories[0] if example.categories else f"none:{example.not_a_case}"


def ratio(hit: int, total: int) -> str:
    return f"{hit / total:6.1%} ({hit}/{total})" if total else "     - (0/0)"


def cross_validate(examples: list[Example], folds: int) -> tuple[
        dict[str, Judgement], list[tuple[float, float]]]:
    rows = prepare_examples(examples)
    labels = [stratum(e) for e in examples]
    split = StratifiedKFold(folds, shuffle=True, random_state=SEED)
    judged: dict[str, Judgement] = {}
    times: list[tuple[float, float]] = []
    for number, (train_at, test_at) in enumerate(split.split(np.zeros(len(rows)), labels), 1):
        started = time.perf_counter()
        trained = from_dict(fit([rows[i] for i in train_at]))
        print(f"  fold {number}: trained on {len(train_at)} in "
              f"{time.perf_counter() - started:.1f} s, testing {len(test_at)}")
        for i in test_at:
            example = examples[i]
            started, cpu = time.perf_counter(), time.thread_time()
            judged[example.id] = judge_with(trained, example.text, channel=example.register)
            times.append((time.perf_counter() - started, time.thread_time() - cpu))
    return judged, times


def report(examples: list[Example], judged: dict[str, Judgement], title: str,
           detail: bool) -> None:
    cases = [e for e in examples if e.categories]
    print(f"\n== {title}: {len(examples)} reports ({len(cases)} cases)")
    primary = sum(judged[e.id].categories[0] == e.categories[0] for e in cases)
    print(f"primary category accuracy       {ratio(primary, len(cases))}")
    any_right = sum(judged[e.id].categories[0] in e.categories for e in cases)
    print(f"first category among the labels {ratio(any_right, len(cases))}")
    gold_e = [e for e in examples if e.emergency]
    said_e = [e for e in examples if judged[e.id].emergency]
    both = sum(e.emergency for e in said_e)
    print(f"emergency recall                {ratio(both, len(gold_e))}")
    print(f"emergency precision             {ratio(both, len(said_e))}")
    pairs = [(e, s) for e in examples for s in e.situations]
    found = sum(s in judged[e.id].situations for e, s in pairs)
    said_s = [(e, s) for e in examples for s in judged[e.id].situations]
    right_s = sum(s in e.situations for e, s in said_s)
    print(f"mandatory-situation recall      {ratio(found, len(pairs))}")
    print(f"mandatory-situation precision   {ratio(right_s, len(said_s))}")
    flagged = [e for e in examples if e.situations]
    any_s = sum(bool(judged[e.id].situations) for e in flagged)
    print(f"mandatory reports recognised    {ratio(any_s, len(flagged))}")
    gold_n = [e for e in examples if e.not_a_case]
    said_n = [e for e in examples if judged[e.id].not_a_case]
    right_n = sum(bool(e.not_a_case) for e in said_n)
    print(f"non-case recall                 {ratio(right_n, len(gold_n))}")
    print(f"non-case precision              {ratio(right_n, len(said_n))}")
    reason = sum(judged[e.id].not_a_case == e.not_a_case for e in gold_n)
    print(f"non-case reason right           {ratio(reason, len(gold_n))}")
    among = sum(e.emergency for e in said_n) + sum(judged[e.id].emergency for e in said_n)
    print(f"emergencies among non-cases     {among}")
    placed = [e for e in examples if e.jurisdiction]
    right_j = sum(judged[e.id].jurisdiction == e.jurisdiction for e in placed)
    print(f"jurisdiction accuracy (named)   {ratio(right_j, len(placed))}")
    unplaced = [e for e in examples if not e.jurisdiction]
    wrong_j = sum(judged[e.id].jurisdiction is not None for e in unplaced)
    print(f"place read where none is named  {ratio(wrong_j, len(unplaced))}")
    if not detail:
        return
    print("\nper category (over cases; a category counts when listed at all)")
    print(f"  {'category':22} {'precision':>18} {'recall':>18}")
    codes = sorted({c for e in cases for c in e.categories})
    for code in codes:
        said = [e for e in cases if code in judged[e.id].categories]
        gold = [e for e in cases if code in e.categories]
        hit = sum(code in e.categories for e in said)
        print(f"  {code:22} {ratio(hit, len(said)):>18} {ratio(hit, len(gold)):>18}")


def misjudged(examples: list[Example], judged: dict[str, Judgement]) -> None:
    missed = [e for e in examples if e.emergency and not judged[e.id].emergency]
    false = [e for e in examples if not e.emergency and judged[e.id].emergency]
    print(f"\nmissed emergencies: {len(missed)}")
    for e in missed:
        print(f"  {e.id}: {e.text[:70]!r}")
    print(f"emergencies raised on non-emergencies: {len(false)}")
    for e in false:
        print(f"  {e.id}: {judged[e.id].evidence.get('emergency')} {e.text[:60]!r}")
    wrong = [e for e in examples if e.not_a_case and not judged[e.id].not_a_case]
    print(f"non-cases judged as cases: {len(wrong)}")
    for e in wrong:
        print(f"  {e.id} ({e.not_a_case}): {e.text[:60]!r}")


def artefact() -> None:
    file = path(MODEL_FILE)
    if not file.exists():
        print(f"\nno shipped artefact at {file}")
        return
    loads = []
    for _ in range(3):
        started = time.perf_counter()
        shipped = read(file)
        loads.append(time.perf_counter() - started)
    print(f"\nartefact {shipped.version}: {file.stat().st_size / 1024:.0f} KiB gzipped, "
          f"{len(shipped.features)} features, load {min(loads) * 1e3:.0f} ms (best of 3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--holdout-only", action="store_true", help="skip cross-validation")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # small strata in StratifiedKFold
    started = time.perf_counter()
    warm()
    print(f"warm-up (jieba, lexicon, converter, model): {time.perf_counter() - started:.2f} s")
    if args.holdout_only:
        artefact()
        holdout()
        return
    examples = load_corpus(args.corpus or corpus_dir())
    print(f"corpus: {len(examples)} reports, "
          + ", ".join(f"{r} {n}" for r, n in sorted(Counter(e.register for e in examples).items())))
    judged, times = cross_validate(examples, args.folds)
    report(examples, judged, "all registers", detail=True)
    by_register: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_register[e.register].append(e)
    for register, group in sorted(by_register.items()):
        report(group, judged, f"register {register}", detail=False)
    misjudged(examples, judged)
    for name, column in (("wall clock", 0), ("CPU (this thread)", 1)):
        ms = np.array([t[column] for t in times]) * 1e3
        print(f"\ntime per judgement, {name}: p50 {np.percentile(ms, 50):.2f} ms, "
              f"p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms ({len(ms)} texts)",
              end="")
    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (other work inflates wall clock)")
    artefact()
    holdout()


def holdout() -> None:
    try:
        examples = load_corpus(HOLDOUT)
    except CorpusError as exc:
        print(f"\nno hold-out set: {exc}")
        return
    shipped = read(path(MODEL_FILE))
    judged = {e.id: judge_with(shipped, e.text, channel=e.register) for e in examples}
    report(examples, judged, f"hold-out set, shipped artefact {shipped.version}", detail=True)
    misjudged(examples, judged)


if __name__ == "__main__":
    main()
