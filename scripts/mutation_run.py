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
from dataclasses import dataclass
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


TARGETS = {
    "receipts": Target(
        "workflows/receipts.py", ("tests/test_receipts.py", "tests/test_receipt_codes.py")
    ),
    "case_workflow": Target(
        "workflows/case_workflow.py",
        ("tests/test_workflow_rules.py", "tests/test_case_workflow_rules.py"),
    ),
    "referral_workflow": Target(
        "workflows/referral_workflow.py",
        ("tests/test_workflow_rules.py", "tests/test_referral_workflow_rules.py"),
    ),
    "deadlines": Target(
        "workflows/deadlines.py",
        ("tests/test_deadlines.py", "tests/test_holidays.py", "tests/test_deadline_rules.py"),
    ),
    "holidays": Target(
        "workflows/holidays.py",
        ("tests/test_holidays.py", "tests/test_deadlines.py", "tests/test_holiday_rules.py"),
    ),
    "partner_signature": Target(
        "channels/partner_signature.py", ("tests/test_partner_signature.py",)
    ),
    "triage_keywords": Target(
        "workflows/triage/keywords.py", ("tests/test_triage.py", "tests/test_danger_rules.py")
    ),
    "scope": Target(
        "dispatch/scope.py",
        ("tests/test_scope_rules.py",),
        pure=False,
    ),
    "auth": Target(
        "dispatch/auth.py",
        ("tests/test_auth.py", "tests/test_auth_rules.py"),
        pure=False,
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
    shutil.copy2(ROOT / "scripts" / "mutation_pure.py", folder / "mutation_pure.py")
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
    seconds: float

    @property
    def total(self) -> int:
        return self.killed + self.timeout + len(self.survived) + len(self.no_tests) + len(
            self.other
        )

    @property
    def percent(self) -> float:
        return 100.0 * (self.killed + self.timeout) / self.total if self.total else 0.0


def _score(name: str, target: Target, folder: Path, seconds: float) -> Score:
    meta = folder / "mutants" / (target.path + ".meta")
    codes: dict[str, int | None] = {}
    if meta.exists():
        codes = json.loads(meta.read_text())["exit_code_by_key"]
    score = Score(name, target.path, 0, 0, [], [], [], seconds)
    for mutant, code in sorted(codes.items()):
        if code in KILLED:
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


def _servers_env() -> dict[str, str] | None:
    """TEST_DATABASE_URL / TEST_REDIS_URL, as the test suite takes them; None without both
    (embedded servers per mutant would take far too long)."""
    env = dict(os.environ)
    if env.get("TEST_DATABASE_URL") and env.get("TEST_REDIS_URL"):
        return env
    return None


def run(name: str, target: Target, jobs: int, log: Path, revision: str | None) -> Score:
    folder = _prepare(name, target, revision)
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with log.open("w") as out:
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs)],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
        )
    return _score(name, target, folder, time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {', '.join(TARGETS)} (default all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (2)")
    parser.add_argument("--at", metavar="REVISION",
                        help="score the code and tests as committed at REVISION (a 'before')")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    options = parser.parse_args()
    unknown = set(options.modules) - set(TARGETS)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; known: {', '.join(TARGETS)}")
    names = options.modules or list(TARGETS)
    scratch = _scratch(options.at)
    scratch.mkdir(parents=True, exist_ok=True)
    has_servers = _servers_env() is not None
    scores: list[Score] = []
    started = time.monotonic()
    for name in names:
        target = TARGETS[name]
        if not target.pure and not has_servers:
            print(f"{name}: skipped, needs TEST_DATABASE_URL and TEST_REDIS_URL", flush=True)
            continue
        score = run(name, target, options.jobs, scratch / f"{name}.log", options.at)
        scores.append(score)
        print(
            f"{name:18} {score.percent:5.1f}%  {score.killed + score.timeout:4}/{score.total:<4}"
            f" killed  {len(score.survived):3} survived  {len(score.no_tests):3} no tests"
            f"  {score.seconds:6.0f}s  {target.path}",
            flush=True,
        )
        if score.other and not (score.killed or score.survived):
            print(f"  mutmut failed: see {scratch / (name + '.log')}", flush=True)
            continue
        for mutant in score.survived + score.no_tests + score.other:
            print(f"    survived: {mutant}" if mutant in score.survived else f"    {mutant}")
            if options.survivors and mutant in score.survived:
                mutmut = Path(sys.executable).with_name("mutmut")
                subprocess.run(
                    [str(mutmut), "show", mutant], cwd=scratch / name, check=False
                )
    killed = sum(s.killed + s.timeout for s in scores)
    total = sum(s.total for s in scores)
    print(
        f"{'all':18} {100.0 * killed / total if total else 0:5.1f}%  {killed:4}/{total:<4}"
        f" killed  in {time.monotonic() - started:.0f}s"
    )
    summary = [
        {"module": s.path, "killed": s.killed + s.timeout, "total": s.total,
         "survived": s.survived, "no_tests": s.no_tests, "seconds": round(s.seconds)}
        for s in scores
    ]
    (scratch / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0 if total and all(s.total for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
