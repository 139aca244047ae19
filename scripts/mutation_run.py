"""Mutation testing (mutmut 3) of the rules that protect children; see docs/testing.md.

Each module is mutated in a scratch copy of the project of its own (.mutation/<name>/), with
a mutmut configuration that names only that module and only the tests meant to guard it;
mutmut then traces which of those tests reach each function and runs just those per mutant.
Modules marked `pure` run without the database tests of their files (scripts/mutation_pure.py).
A score counts killed and timed-out mutants over all mutants; survivors are listed by name
(`mutmut show NAME` in the module's scratch folder prints the change).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutation"
COPIED = ["db", "workflows", "channels", "dispatch", "tests", "alembic", "alembic.ini", "docs"]
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code), the ones we count.
KILLED = {1, 3}
TIMEOUT = {36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


@dataclass(frozen=True)
class Target:
    path: str
    tests: tuple[str, ...]
    pure: bool = True  # leave out tests that need PostgreSQL / Redis
    only: tuple[str, ...] = ()  # mutant name globs, when only some functions are the rules
    # Helpers that run only while the module is imported (building the state machine class):
    # mutmut imports once before it switches a mutant on, so each of these is judged apart,
    # written into the scratch copy and tested in a fresh process.
    import_time: tuple[str, ...] = ()


TARGETS = {
    "receipts": Target(
        "workflows/cases/receipts.py",
        ("tests/intake/test_receipts.py", "tests/intake/test_receipt_codes.py"),
    ),
    "case_workflow": Target(
        "workflows/cases/workflow.py",
        ("tests/cases/test_workflow_rules.py", "tests/cases/test_workflow_messages.py"),
        import_time=("*.x__state__mutmut_*", "*.x__event__mutmut_*"),
    ),
    "referral_workflow": Target(
        "workflows/referrals/workflow.py",
        ("tests/cases/test_workflow_rules.py", "tests/cases/test_workflow_messages.py"),
        import_time=("*.x__status__mutmut_*", "*.x__event__mutmut_*"),
    ),
    "deadlines": Target(
        "workflows/referrals/deadlines.py",
        ("tests/referrals/test_deadlines.py", "tests/calendar/test_holidays.py",
         "tests/calendar/test_deadline_rules.py"),
    ),
    "holidays": Target(
        "workflows/holidays.py",
        ("tests/calendar/test_holidays.py", "tests/referrals/test_deadlines.py",
         "tests/calendar/test_holiday_rules.py"),
    ),
    "partner_signature": Target(
        "channels/partners/signature.py", ("tests/partners/test_partner_signature.py",)
    ),
    "triage_keywords": Target(
        "workflows/triage/keywords.py",
        ("tests/triage/test_triage.py", "tests/test_danger_rules.py"),
    ),
    "scope": Target(
        "dispatch/staff/scope.py",
        ("tests/staff/test_scope_rules.py",),
        pure=False,
    ),
    "auth": Target(  # the role checks and what a token is worth, not the login form
        "dispatch/staff/auth.py",
        ("tests/staff/test_auth.py", "tests/staff/test_auth_rules.py"),
        pure=False,
        only=tuple(
            f"dispatch.staff.auth.{name}*"
            for name in ("x_require", "xǁPrincipalǁ", "x_verify_password", "x_hash_password",
                         "x_issue_token", "x_principal_from_token", "x_current_principal")
        ),
    ),
}


def _scratch(revision: str | None) -> Path:
    return SCRATCH / (revision or "worktree")


def _mutmut_section(target: Target, folder: Path) -> str:
    tests = [t for t in target.tests if (folder / t).exists()]
    args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]
    if target.pure:
        args += ["-p", "mutation_pure"]
    return "\n".join(
        [
            "",
            "[tool.mutmut]",
            f"source_paths = {json.dumps(['db', 'workflows', 'channels', 'dispatch'])}",
            f"only_mutate = {json.dumps([target.path])}",
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            f"pytest_add_cli_args = {json.dumps(args)}",
            f"also_copy = {json.dumps(['alembic', 'alembic.ini', 'docs', 'mutation_pure.py'])}",
            "",
        ]
    )


def _prepare(name: str, target: Target, revision: str | None) -> Path:
    """The project as it is (or as committed at `revision`, for a score before a change)."""
    folder = _scratch(revision) / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if revision:
        archive = subprocess.run(
            ["git", "archive", revision, *COPIED, "pyproject.toml"],
            cwd=ROOT, check=True, capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    else:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for entry in [*COPIED, "pyproject.toml"]:
            source = ROOT / entry
            if source.is_dir():
                shutil.copytree(source, folder / entry, ignore=ignore)
            else:
                shutil.copy2(source, folder / entry)
    for helper in ("mutation_pure.py", "mutation_import_time.py"):
        shutil.copy2(ROOT / "scripts" / helper, folder / helper)
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + _mutmut_section(target, folder))
    return folder


@dataclass
class Score:
    name: str
    path: str
    killed: int
    timeout: int
    survived: list[str]
    no_tests: list[str]
    other: list[str]
    import_time: list[str]
    seconds: float

    @property
    def total(self) -> int:
        return self.killed + self.timeout + len(self.survived) + len(self.no_tests) + len(
            self.other
        )  # import-time mutants are in killed or survived once judged

    @property
    def percent(self) -> float:
        return 100.0 * (self.killed + self.timeout) / self.total if self.total else 0.0


def _score(name: str, target: Target, folder: Path, seconds: float) -> Score:
    meta = folder / "mutants" / (target.path + ".meta")
    codes: dict[str, int | None] = {}
    if meta.exists():
        codes = json.loads(meta.read_text())["exit_code_by_key"]
    score = Score(name, target.path, 0, 0, [], [], [], [], seconds)
    for mutant, code in sorted(codes.items()):
        if target.only and not any(fnmatch(mutant, glob) for glob in target.only):
            continue
        if any(fnmatch(mutant, glob) for glob in target.import_time):
            score.import_time.append(mutant)  # judged afterwards, see _judge_import_time
        elif code in KILLED:
            score.killed += 1
        elif code in TIMEOUT:
            score.timeout += 1
        elif code in SURVIVED:
            score.survived.append(mutant)
        elif code in NO_TESTS:
            score.no_tests.append(mutant)
        else:
            score.other.append(f"{mutant} (exit {code})")
    return score


def _has_servers() -> bool:
    """Whether TEST_DATABASE_URL / TEST_REDIS_URL name servers, as the test suite takes them
    (embedded servers started per mutant would take far too long)."""
    return bool(os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL"))


def run(name: str, target: Target, jobs: int, log: Path, revision: str | None) -> Score | None:
    """Mutate one module and score it; None when none of its tests exist (at `revision`)."""
    folder = _prepare(name, target, revision)
    if not any((folder / test).exists() for test in target.tests):
        return None
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with log.open("w") as out:
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs), *target.only],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
        )
    score = _score(name, target, folder, time.monotonic() - started)
    _judge_import_time(score, target, folder)
    score.seconds = time.monotonic() - started
    return score


def _judge_import_time(score: Score, target: Target, folder: Path) -> None:
    """Each import-time mutant's source (from `mutmut apply`), judged by
    scripts/mutation_import_time.py in a child process that imports it afresh."""
    if not score.import_time:
        return
    source = folder / target.path
    original = source.read_text()
    mutmut = Path(sys.executable).with_name("mutmut")
    mutated: dict[str, str] = {}
    try:
        for mutant in score.import_time:
            subprocess.run([str(mutmut), "apply", mutant], cwd=folder, check=True,
                           capture_output=True)
            mutated[mutant] = source.read_text()
            source.write_text(original)
    finally:
        source.write_text(original)
    (folder / "import_time_mutants.json").write_text(json.dumps({target.path: mutated}))
    tests = [t for t in target.tests if (folder / t).exists()]
    plugins = ["-p", "no:randomly"] + (["-p", "mutation_pure"] if target.pure else [])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    with (folder / "import_time.log").open("w") as log:
        subprocess.run(
            [sys.executable, "mutation_import_time.py", "import_time_mutants.json",
             "import_time_results.json", "--", *plugins, *tests],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )
    for mutant, code in json.loads((folder / "import_time_results.json").read_text()).items():
        if code == 0:
            score.survived.append(mutant)
        else:
            score.killed += 1


def _report(score: Score, scratch: Path, show_diffs: bool) -> None:
    print(
        f"{score.name:18} {score.percent:5.1f}%  {score.killed + score.timeout:4}/{score.total:<4}"
        f" killed  {len(score.survived):3} survived  {len(score.no_tests):3} no tests"
        f"  {score.seconds:5.0f}s  {score.path}",
        flush=True,
    )
    if score.other and not (score.killed or score.survived):
        print(f"    mutmut failed: see {scratch / (score.name + '.log')}", flush=True)
        return
    if score.import_time:
        print(f"    {len(score.import_time)} of them import-time, judged in a fresh process each")
    for mutant in score.survived:
        print(f"    survived: {mutant}", flush=True)
        if show_diffs:
            mutmut = Path(sys.executable).with_name("mutmut")
            subprocess.run([str(mutmut), "show", mutant], cwd=scratch / score.name, check=False)
    for mutant in score.no_tests:
        print(f"    no tests: {mutant}")
    for mutant in score.other:
        print(f"    other: {mutant}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {', '.join(TARGETS)} (default all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (2)")
    parser.add_argument("--at", metavar="REVISION",
                        help="score the code and tests as committed at REVISION (a 'before')")
    parser.add_argument("--tests", nargs="+", metavar="FILE",
                        help="judge by these test files instead of the module's own list")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    options = parser.parse_args()
    unknown = set(options.modules) - set(TARGETS)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; known: {', '.join(TARGETS)}")
    names = options.modules or list(TARGETS)
    scratch = _scratch(options.at)
    scratch.mkdir(parents=True, exist_ok=True)
    scores: list[Score] = []
    started = time.monotonic()
    for name in names:
        target = TARGETS[name]
        if options.tests:
            target = replace(target, tests=tuple(options.tests))
        if not target.pure and not _has_servers():
            print(f"{name:18} skipped: needs TEST_DATABASE_URL and TEST_REDIS_URL", flush=True)
            continue
        score = run(name, target, options.jobs, scratch / f"{name}.log", options.at)
        if score is None:
            print(f"{name:18} no tests: none of {', '.join(target.tests)}", flush=True)
            continue
        scores.append(score)
        _report(score, scratch, options.survivors)
    killed = sum(s.killed + s.timeout for s in scores)
    total = sum(s.total for s in scores)
    print(
        f"{'all':18} {100.0 * killed / total if total else 0:5.1f}%  {killed:4}/{total:<4}"
        f" killed  in {time.monotonic() - started:.0f}s"
    )
    summary = [
        {"module": s.path, "killed": s.killed + s.timeout, "total": s.total,
         "survived": s.survived, "no_tests": s.no_tests, "import_time": s.import_time,
         "seconds": round(s.seconds)}
        for s in scores
    ]
    (scratch / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0 if total and all(s.total for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
