"""Matching across channels: quality on the team's labelled reports, and speed at scale.

Quality: bench/data/match_reports.csv holds reports the team wrote about 50 children, each
child's reports in the styles of the channels (a teacher's form, a 12345 operator's typing,
an anonymous SMS, a 110 order) and with the spellings that differ (same-sound names, 栋 /
号楼 / 幢, 三组 / 3队, 小区 and 附近, vague ages), plus namesakes elsewhere, siblings at one
address, one reporter about several children. Every pair of reports is a labelled pair (same
child or incident = same group). Prints precision and recall at the configured thresholds,
the precision–recall curve, blocking recall (same pairs that share a key, i.e. that `similar`
can find at all), the pairs missed or wrongly joined; then 5-fold cross-validated figures of
weights fitted on the signals (logistic regression), against the configured weights.

Speed (`--scale`, needs `--database-url` of an empty database it may fill): 100,000 cases
and 150,000 children, time to build their blocking keys, p50/p95 of one `similar` call, and
(with the ledger import) a 20,000-row ledger's dry run and import with peak memory.

    python -m bench.bench_matching [--scale --database-url postgresql://...]
"""

import argparse
import csv
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workflows.matching import Profile, score, thresholds
from workflows.matching.keys import keys, query_keys
from workflows.matching.profiles import report_profile
from workflows.matching.score import settings, signals

DATA = Path(__file__).parent / "data" / "match_reports.csv"
NOW = datetime(2026, 11, 16, 10, tzinfo=UTC)


def load(path: Path = DATA) -> list[tuple[str, str, Profile]]:
    """(group, channel, profile) per report."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            child = {
                k: v
                for k, v in {
                    "name": row["name"] or None,
                    "age": int(row["age"]) if row["age"] else None,
                    "gender": row["gender"] or None,
                }.items()
                if v is not None
            }
            profile = report_profile(
                child=child,
                address=row["address"] or None,
                phone_index=row["phone"] or None,  # any equality key: the number stands in
                jurisdiction=row["jurisdiction"] or None,
                categories=[c for c in row["categories"].split(";") if c],
                text=row["text"],
                at=NOW - timedelta(days=int(row["days"] or 0)),
            )
            out.append((row["group"], row["channel"], profile))
    return out


def pairs(reports):
    for (i, a), (j, b) in itertools.combinations(enumerate(reports), 2):
        yield i, j, a[0] == b[0]


def figures(scored: list[tuple[float, bool]], threshold: float) -> tuple[float, float, int, int]:
    tp = sum(1 for s, same in scored if s >= threshold and same)
    fp = sum(1 for s, same in scored if s >= threshold and not same)
    fn = sum(1 for s, same in scored if s < threshold and same)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, fp, fn


def quality() -> dict[str, float]:
    reports = load()
    labelled = list(pairs(reports))
    same_count = sum(1 for *_, same in labelled if same)
    channels = sorted({c for _, c, _ in reports})
    print(f"{len(reports)} reports of {len({g for g, _, _ in reports})} children/incidents, "
          f"channels {', '.join(channels)}: {len(labelled)} labelled pairs, "
          f"{same_count} same, {len(labelled) - same_count} different")
    scored, results = [], []
    for i, j, same in labelled:
        match = score(reports[i][2], reports[j][2])
        scored.append((match.score, same))
        results.append((i, j, same, match))
    out = {}
    for name, value in thresholds().model_dump().items():
        if name == "ledger_match":
            continue
        p, r, fp, fn = figures(scored, value)
        out[name] = (p, r)
        print(f"at {name} = {value}: precision {p:.3f}, recall {r:.3f} ({fp} wrongly joined, "
              f"{fn} missed)")
    print("precision–recall curve (threshold: precision / recall):")
    print("  " + "  ".join(
        f"{t:.2f}: {figures(scored, t)[0]:.2f}/{figures(scored, t)[1]:.2f}"
        for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    ))
    stored = [set(keys(p)) for _, _, p in reports]
    asked = [set(query_keys(p)) for _, _, p in reports]
    blocked = sum(1 for i, j, same in labelled if same and (asked[i] & stored[j]))
    out["blocking_recall"] = blocked / same_count
    candidates = sum(1 for i, j, _ in labelled if asked[i] & stored[j])
    for i, j, same in labelled:
        if same and not asked[i] & stored[j]:
            print(f"  not a candidate: {reports[i][0]}/{reports[i][1]} ~ {reports[j][1]}")
    print(f"blocking: {blocked}/{same_count} same pairs share a key "
          f"(recall {blocked / same_count:.3f}); {candidates} of {len(labelled)} pairs are "
          f"candidates at all")
    suggest = thresholds().suggest
    for i, j, same, match in results:
        if same != (match.score >= suggest):
            a, b = reports[i], reports[j]
            print(f"  {'missed' if same else 'joined'} {a[0]}/{a[1]} ~ {b[0]}/{b[1]}: "
                  f"{match.score:.2f} {','.join(match.signals)}")
    out.update(cross_validated(reports, labelled))
    return out


def cross_validated(reports, labelled) -> dict[str, float]:
    """Weights fitted on the signals in 5 folds, each scored on the pairs it did not see."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    names = sorted(settings().signals)
    x = np.array([
        [1.0 if n in held else 0.0 for n in names]
        for held in (set(signals(reports[i][2], reports[j][2])) for i, j, _ in labelled)
    ])
    y = np.array([1 if same else 0 for *_, same in labelled])
    predicted = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=12).split(x, y):
        model = LogisticRegression(C=1.0, max_iter=1000).fit(x[train], y[train])
        predicted[test] = model.predict_proba(x[test])[:, 1]
    p, r, _, _ = figures(list(zip(predicted, y.astype(bool), strict=True)), 0.5)
    print(f"5-fold cross-validated fitted weights at 0.5: precision {p:.3f}, recall {r:.3f}")
    return {"cv_precision": p, "cv_recall": r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--children", type=int, default=150_000)
    parser.add_argument("--ledger-rows", type=int, default=20_000)
    parser.add_argument("--reuse", action="store_true",
                        help="the database is filled and keyed already: measure only")
    args = parser.parse_args()
    quality()
    if args.scale:
        from bench.bench_matching_scale import run

        run(args.database_url, args.cases, args.children, args.ledger_rows, reuse=args.reuse)


if __name__ == "__main__":
    main()
