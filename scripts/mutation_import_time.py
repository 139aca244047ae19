"""Judge mutants of import-time code for scripts/mutation (run inside a module's scratch copy).

mutmut switches a mutant on only after the module was imported, so a helper that runs while
the class body is built (the state machines' `_state`, `_event`) is never mutated in effect.
Here each such mutant's source is written over the module, and the tests run in a child
forked from this process: third-party imports are done once, our own packages are imported
afresh by each child (and no bytecode is cached, so a same-size mutant is never stale).

usage: python mutation_import_time.py MUTANTS.json RESULTS.json -- PYTEST-ARGS...
MUTANTS.json maps a module path to {mutant name: mutated source}.
"""

import json
import os
import signal
import sys
from pathlib import Path

sys.dont_write_bytecode = True
TIMEOUT_SECONDS = 30
# Re-imported by each child. Not db: its tables register in SQLModel's one global metadata
# (and by the layout rule db imports nothing of ours, so it never holds a mutant).
OURS = ("workflows", "channels", "dispatch", "tests")


def _purge_ours() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in OURS]:
        del sys.modules[name]


def main() -> int:
    mutants_file, results_file, dash, *pytest_args = sys.argv[1:]
    assert dash == "--"
    import pytest

    import tests.conftest  # noqa: F401  (the heavy third-party imports, once)

    wanted = json.loads(Path(mutants_file).read_text())
    results: dict[str, int] = {}
    for path, mutants in wanted.items():
        source = Path(path)
        original = source.read_text()
        try:
            # The control: unmutated, the tests must pass here, or no verdict means anything.
            for name, text in {"": original, **mutants}.items():
                source.write_text(text)
                child = os.fork()
                if child == 0:
                    signal.alarm(TIMEOUT_SECONDS)  # a mutant that loops forever is caught too
                    _purge_ours()
                    os._exit(int(pytest.main(["-x", "-q", "-p", "no:cacheprovider",
                                              *pytest_args])))
                _, status = os.waitpid(child, 0)
                results[name] = os.waitstatus_to_exitcode(status)
                if not name and results.pop(name) != 0:
                    raise SystemExit(f"the tests fail on the unmutated {path}: no verdicts")
        finally:
            source.write_text(original)
    Path(results_file).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
