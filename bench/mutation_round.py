"""A seeded mutation round: small plausible bugs put into modules one at a time, each run
against the tests that execute the mutated line; a mutant no test fails on "survived".

    python bench/mutation_round.py --seed 31 --count 70 --out docs/mutation_round_31

Mutants are generated from the modules' syntax trees (``ast``), in source order, by these
operators: a comparison flipped (``==``/``!=``, ``<``/``<=``, ``>``/``>=``, ``in``/``not in``,
``is``/``is not``), ``and``/``or`` swapped, a ``not`` removed, an ``if`` condition negated, an
integer constant changed by one (off by one), ``True``/``False`` swapped, ``+``/``-`` swapped,
``min``/``max`` and ``any``/``all`` swapped, a call's first two positional arguments swapped,
and a check dropped (an ``if`` whose body only raises, returns or continues, made ``pass``).
Code that only builds a message (log calls, exception arguments, f-strings), docstrings and
annotations is left alone. ``--count`` of them are sampled with ``--seed`` (random.Random).

Each mutant is one exact (file, offset, original snippet, replacement); the script checks that
the snippet is still there, writes the mutant, runs pytest (``-x -q -p no:xdist``, one process,
under ``timeout``) and restores the file with ``git checkout`` whatever happens (Ctrl-C
included). It refuses to start when a target file has uncommitted changes.

Which tests run: with ``--coverage`` (a ``.coverage`` file of a ``pytest-cov
--cov-context=test`` run over ``--tests``; ``--record-coverage`` makes it, needs pytest-cov),
the tests that executed one of the mutated lines, else every file of ``--tests``. A mutant on a
line no test executes is reported "not run by any test" (a survivor). A test run that times
out counts as killed (the mutant hangs).

Survivors that are equivalent (no behaviour changes) are listed with their reason in
``--equivalents`` (JSON: mutant key -> reason); they are counted apart, and the kill rate is
over the others. Results: ``OUT.json`` (every mutant and its outcome) and ``OUT.md`` (table).
``--only KEY,...`` re-runs chosen mutants (e.g. the survivors after adding tests).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules of issue 31's round: the rounds, the label readers, the run identity.
DEFAULT_TARGETS = ["active_learning/rounds/*.py", "active_learning/labels/*.py",
                   "active_learning/loop/identity.py", "active_learning/loop/pool.py",
                   "active_learning/files/fingerprint.py"]
# The tests that exercise them (a round's tests drive every label reader through the CLI).
DEFAULT_TESTS = ["tests/test_pool.py", "tests/test_workspace.py", "tests/labels",
                 "tests/classification/test_round_safety.py",
                 "tests/classification/test_classification_round.py",
                 "tests/segmentation/test_segmentation_round.py",
                 "tests/object_detection/test_detection_round.py",
                 "tests/human_pose_estimation/test_pose_round.py", "tests/test_loop.py",
                 "tests/segmentation/test_segmentation_train.py",
                 "tests/object_detection/test_detection_data.py",   # VOCdevkit's 1-based boxes
                 # the run identity's content fingerprints, through a task's files
                 "tests/classification/test_classification_train.py::test_a_resumed_run_"
                 "refuses_an_image_replaced_under_its_name_even_with_its_mtime_restored"]

FLIPPED_COMPARISONS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
                       ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
                       ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAPPED_NAMES = {"min": "max", "max": "min", "any": "all", "all": "any"}
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


@dataclass
class Mutant:
    """One small change: ``original`` at ``offset`` of ``path`` becomes ``replacement``."""

    path: str
    line: int
    end_line: int
    offset: int
    original: str
    replacement: str
    operator: str
    key: str = ""
    outcome: str = ""           # killed / survived / timeout / not run / invalid
    killed_by: str = ""
    seconds: float = 0.0
    tests: list[str] = field(default_factory=list)
    statement_line: int = 0     # where the statement holding the change starts (coverage)

    def __post_init__(self) -> None:
        if not self.key:
            text = f"{self.path}:{self.line}:{self.operator}:{self.original}->{self.replacement}"
            self.key = hashlib.sha1(text.encode()).hexdigest()[:8]


# ------------------------------------------------------------------------------ generation
def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _left_alone(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True for code that only builds a message, a docstring, or an annotation."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.JoinedStr):
            return True
        if isinstance(parent, ast.Raise):   # the exception and its message
            return True
        if isinstance(parent, ast.Call) and child is not parent.func and \
                isinstance(parent.func, ast.Attribute) and parent.func.attr in LOG_METHODS:
            return True
        if isinstance(parent, ast.arg) and child is parent.annotation or \
                isinstance(parent, ast.AnnAssign) and child is parent.annotation or \
                isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                child is parent.returns:
            return True
        child, parent = parent, parents.get(parent)
    return False


def _replace_node(node: ast.AST, mutated: ast.AST) -> str:
    return f"({ast.unparse(mutated)})"


def _clone(node: ast.AST) -> ast.AST:
    return ast.parse(ast.unparse(node), mode="eval").body


def _mutations(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[tuple[str, str]]:
    """(operator, replacement text) for ``node``'s whole source segment."""
    out: list[tuple[str, str]] = []
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            if type(op) in FLIPPED_COMPARISONS:
                mutated = _clone(node)
                assert isinstance(mutated, ast.Compare)
                mutated.ops[position] = FLIPPED_COMPARISONS[type(op)]()
                out.append(("flip comparison", _replace_node(node, mutated)))
    elif isinstance(node, ast.BoolOp):
        mutated = _clone(node)
        assert isinstance(mutated, ast.BoolOp)
        mutated.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append(("swap and/or", _replace_node(node, mutated)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(("remove not", f"({ast.unparse(node.operand)})"))
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        out.append(("swap True/False", str(not node.value)))
    elif isinstance(node, ast.Constant) and type(node.value) is int and not _in_table(node,
                                                                                    parents):
        out.append(("off by one", str(node.value + 1)))
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and \
            not _builds_text(node):
        mutated = _clone(node)
        assert isinstance(mutated, ast.BinOp)
        mutated.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        out.append(("swap +/-", _replace_node(node, mutated)))
    elif isinstance(node, ast.Name) and node.id in SWAPPED_NAMES and \
            isinstance(parents.get(node), ast.Call) and parents[node].func is node:
        out.append((f"{node.id} -> {SWAPPED_NAMES[node.id]}", SWAPPED_NAMES[node.id]))
    elif isinstance(node, ast.Call) and len(node.args) >= 2 and _project_call(node) and \
            not any(isinstance(arg, ast.Starred) for arg in node.args[:2]):
        mutated = _clone(node)
        assert isinstance(mutated, ast.Call)
        mutated.args[0], mutated.args[1] = mutated.args[1], mutated.args[0]
        if ast.unparse(mutated) != ast.unparse(node):
            out.append(("swap arguments", ast.unparse(mutated)))
    return out


def _in_table(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """A constant among four or more in a literal table (data, not logic)."""
    parent = parents.get(node)
    if isinstance(parent, ast.UnaryOp):
        parent = parents.get(parent)
    if isinstance(parent, ast.Tuple) and isinstance(parents.get(parent), (ast.List, ast.Dict)):
        parent = parents.get(parent)
    elements = getattr(parent, "elts", None) or getattr(parent, "values", None)
    return isinstance(parent, (ast.List, ast.Tuple, ast.Set, ast.Dict)) and len(elements) >= 4


def _builds_text(node: ast.AST) -> bool:
    """An expression with text in it (a ``+`` of strings is not arithmetic)."""
    return any(isinstance(child, ast.JoinedStr) or isinstance(child, ast.Constant) and
               isinstance(child.value, str) or isinstance(child, ast.Attribute) and
               child.attr == "join" for child in ast.walk(node))


PROJECT_FUNCTIONS: set[str] = set()   # functions the targets define (filled by main)


def _project_call(node: ast.Call) -> bool:
    """A call of a function the targets define: swapping a builtin's arguments
    (``isinstance``, ``getattr``) is a type error, not a plausible bug."""
    name = node.func.id if isinstance(node.func, ast.Name) else \
        node.func.attr if isinstance(node.func, ast.Attribute) else None
    return name in PROJECT_FUNCTIONS


def _statement_mutations(node: ast.stmt) -> list[tuple[str, str]]:
    out = []
    if isinstance(node, ast.If) and not node.orelse and len(node.body) == 1 and \
            isinstance(node.body[0], (ast.Raise, ast.Return, ast.Continue)):
        out.append(("drop check", "pass"))
    if isinstance(node, (ast.If, ast.While)) and not isinstance(
            node.test, (ast.Compare, ast.BoolOp, ast.UnaryOp)):
        out.append(("negate condition", ""))   # the header is written by generate
    return out


def generate(path: Path) -> list[Mutant]:
    """Every mutant of the module at ``path``, in source order."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    parents = _parents(tree)
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line.encode("utf-8")))
    data = source.encode("utf-8")
    relative = str(path.resolve().relative_to(ROOT))
    mutants = []

    def offset(line: int, col: int) -> int:   # ast's columns count UTF-8 bytes
        return line_starts[line - 1] + col

    docstrings = {id(body[0].value) for body in
                  [getattr(n, "body", None) for n in ast.walk(tree)]
                  if isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                  and isinstance(body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or id(node) in docstrings or _left_alone(node, parents):
            continue
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            continue
        start = offset(node.lineno, node.col_offset)
        end = offset(node.end_lineno, node.end_col_offset)
        original = data[start:end].decode("utf-8")
        if isinstance(node, ast.stmt):
            for operator, replacement in _statement_mutations(node):
                if operator == "negate condition":   # only the statement's header line
                    header_end = offset(node.test.end_lineno, node.test.end_col_offset)
                    colon = data.index(b":", header_end)
                    header = data[start:colon + 1].decode("utf-8")
                    keyword = header.split(" ", 1)[0]
                    if keyword not in ("if", "elif", "while"):
                        continue
                    mutants.append(Mutant(relative, node.lineno, node.test.end_lineno, start,
                                          header, f"{keyword} not ({ast.unparse(node.test)}):",
                                          operator))
                else:
                    mutants.append(Mutant(relative, node.lineno, node.end_lineno, start,
                                          original, replacement, operator))
            continue
        statement = node
        while not isinstance(statement, ast.stmt) and statement in parents:
            statement = parents[statement]
        for operator, replacement in _mutations(node, parents):
            mutants.append(Mutant(relative, node.lineno, node.end_lineno, start, original,
                                  replacement, operator,
                                  statement_line=getattr(statement, "lineno", node.lineno)))
    return [mutant for mutant in mutants if _compiles(data, mutant)]


def _apply(data: bytes, mutant: Mutant) -> bytes:
    original = mutant.original.encode("utf-8")
    if data[mutant.offset:mutant.offset + len(original)] != original:
        raise RuntimeError(f"{mutant.path}:{mutant.line}: the snippet {mutant.original!r} is not "
                           "where the mutant expects it (the module changed: generate again)")
    return data[:mutant.offset] + mutant.replacement.encode("utf-8") + \
        data[mutant.offset + len(original):]


def _compiles(data: bytes, mutant: Mutant) -> bool:
    try:
        compile(_apply(data, mutant), mutant.path, "exec")
    except SyntaxError:
        return False
    return True


# ---------------------------------------------------------------------------------- running
def covering_tests(coverage_file: Path) -> dict[str, dict[int, set[str]]]:
    """file (relative) -> line -> the test node ids that executed it."""
    from coverage import CoverageData

    data = CoverageData(basename=str(coverage_file))
    data.read()
    out: dict[str, dict[int, set[str]]] = {}
    for filename in data.measured_files():
        try:
            relative = str(Path(filename).resolve().relative_to(ROOT))
        except ValueError:
            continue
        lines: dict[int, set[str]] = {}
        for line, contexts in data.contexts_by_lineno(filename).items():
            tests = {context.rsplit("|", 1)[0] for context in contexts if "::" in context}
            if contexts and not tests:   # run at import (a decorator, a constant): every test
                tests = {EVERY_TEST}
            if tests:
                lines[line] = tests
        out[relative] = lines
    return out


EVERY_TEST = "*"   # a line every test depends on: run every file of --tests


def _order(tests: set[str], test_paths: list[str]) -> list[str]:
    """``tests`` (node ids) in the order of ``test_paths`` (cheap files first), then by id."""
    def rank(test: str) -> tuple[int, str]:
        for position, path in enumerate(test_paths):
            if test.startswith(path):
                return position, test
        return len(test_paths), test
    return sorted(tests, key=rank)


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):   # SIGTERM: restore the file as Ctrl-C does
    raise _Interrupted


def run_mutant(mutant: Mutant, tests: list[str], timeout: int) -> None:
    """Apply ``mutant``, run ``tests``, record the outcome, restore the file (always)."""
    path = ROOT / mutant.path
    data = path.read_bytes()
    started = time.monotonic()
    try:
        path.write_bytes(_apply(data, mutant))
        command = ["timeout", str(timeout), sys.executable, "-m", "pytest", "-x", "-q",
                   "-p", "no:xdist", "-p", "no:cacheprovider", "-o", "addopts=",
                   "-W", "ignore", *tests]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    finally:
        # a second Ctrl-C or SIGTERM (``timeout`` forwards one) waits until the file is back
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            path.write_bytes(data)
            subprocess.run(["git", "checkout", "--", mutant.path], cwd=ROOT, check=True)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    mutant.seconds = round(time.monotonic() - started, 1)
    if result.returncode in (124, 137):
        mutant.outcome, mutant.killed_by = "timeout", "(hangs: killed by the time limit)"
    elif result.returncode == 0:
        mutant.outcome = "survived"
    else:
        mutant.outcome = "killed"
        failed = [line.split(" ", 1)[1].split(" - ")[0] for line in result.stdout.splitlines()
                  if line.startswith(("FAILED ", "ERROR "))]
        mutant.killed_by = failed[0] if failed else f"(pytest exit {result.returncode})"


def _check_clean(paths: list[str]) -> None:
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    if dirty:
        sys.exit(f"uncommitted changes in target files (git checkout would lose them):\n{dirty}")


# ---------------------------------------------------------------------------------- report
def write_report(mutants: list[Mutant], equivalents: dict[str, str], out: Path,
                 header: str) -> str:
    out.with_suffix(".json").write_text(json.dumps([asdict(m) for m in mutants], indent=1) + "\n")
    killed = [m for m in mutants if m.outcome in ("killed", "timeout")]
    equivalent = [m for m in mutants if m.outcome not in ("killed", "timeout")
                  and m.key in equivalents]
    survived = [m for m in mutants if m.outcome not in ("killed", "timeout")
                and m.key not in equivalents]
    scored = len(mutants) - len(equivalent)
    rate = 100.0 * len(killed) / scored if scored else 100.0
    summary = (f"{len(mutants)} mutants: {len(killed)} killed, {len(equivalent)} equivalent, "
               f"{len(survived)} survived; {rate:.1f}% of the {scored} non-equivalent killed")

    def cell(text: str, limit: int = 70) -> str:
        text = " ".join(text.split())
        text = text if len(text) <= limit else text[:limit - 3] + "..."
        return text.replace("|", "\\|").replace("`", "'")

    rows = ["| key | file:line | operator | change | outcome |", "|---|---|---|---|---|"]
    for m in mutants:
        if m.key in equivalents and m in equivalent:
            outcome = f"equivalent: {cell(equivalents[m.key], 400)}"
        elif m.outcome in ("killed", "timeout"):
            outcome = f"killed by `{cell(m.killed_by, 400)}`"
        else:
            outcome = f"**{m.outcome}**"
        rows.append(f"| {m.key} | {m.path}:{m.line} | {m.operator} | `{cell(m.original)}` -> "
                    f"`{cell(m.replacement)}` | {outcome} |")
    text = f"{header}\n\n**{summary}**\n\n" + "\n".join(rows) + "\n"
    out.with_suffix(".md").write_text(text)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--count", type=int, default=70)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per mutant's tests")
    parser.add_argument("--coverage", type=Path, default=None)
    parser.add_argument("--record-coverage", action="store_true",
                        help="first run --tests under pytest-cov, writing --coverage")
    parser.add_argument("--equivalents", type=Path, default=None)
    parser.add_argument("--only", default=None, help="comma-separated keys to (re-)run")
    parser.add_argument("--previous", type=Path, default=None,
                        help="an earlier OUT.json: mutants not re-run keep its outcomes")
    parser.add_argument("--list", action="store_true", help="print the sample and stop")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "mutation_round")
    args = parser.parse_args()

    paths = sorted({str(p.relative_to(ROOT)) for pattern in args.targets
                    for p in ROOT.glob(pattern)})
    for path in paths:
        PROJECT_FUNCTIONS.update(node.name for node in ast.walk(ast.parse(
            (ROOT / path).read_text(encoding="utf-8")))
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)))
    candidates = [m for path in paths for m in generate(ROOT / path)]
    sample = random.Random(args.seed).sample(candidates, min(args.count, len(candidates)))
    sample.sort(key=lambda m: (m.path, m.line, m.offset, m.key))
    print(f"{len(candidates)} candidate mutants in {len(paths)} modules; sampled "
          f"{len(sample)} with seed {args.seed}", flush=True)
    if args.list:
        for m in sample:
            print(f"{m.key} {m.path}:{m.line} {m.operator}: {m.original!r} -> {m.replacement!r}")
        return
    _check_clean(paths)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    if args.record_coverage:
        coverage = args.coverage or ROOT / ".coverage.mutation"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-o",
                        "addopts=", "-W", "ignore", "--cov=active_learning", "--cov-context=test",
                        "--cov-report=",
                        *args.tests], cwd=ROOT, check=True,
                       env={**os.environ, "COVERAGE_FILE": str(coverage)})
        args.coverage = coverage
    covered = covering_tests(args.coverage) if args.coverage else None
    equivalents = json.loads(args.equivalents.read_text()) if args.equivalents else {}
    previous = {}
    if args.previous and args.previous.exists():
        previous = {m["key"]: m for m in json.loads(args.previous.read_text())}
    only = set(args.only.split(",")) if args.only else None
    try:
        for number, mutant in enumerate(sample, 1):
            if only is not None and mutant.key not in only:
                if mutant.key in previous:   # its earlier outcome stands
                    for name in ("outcome", "killed_by", "seconds", "tests"):
                        setattr(mutant, name, previous[mutant.key][name])
                continue
            if covered is not None:
                lines = covered.get(mutant.path, {})
                tests = set().union(*(lines.get(line, set()) for line in
                                      range(mutant.statement_line or mutant.line,
                                            mutant.end_line + 1)))
                mutant.tests = list(args.tests) if EVERY_TEST in tests else \
                    _order(tests, args.tests)
                if not tests:
                    mutant.outcome = "not run by any test"
            else:
                mutant.tests = list(args.tests)
            if mutant.outcome != "not run by any test":
                run_mutant(mutant, mutant.tests, args.timeout)
            print(f"[{number}/{len(sample)}] {mutant.key} {mutant.path}:{mutant.line} "
                  f"{mutant.operator}: {mutant.outcome} {mutant.killed_by} ({mutant.seconds} s, "
                  f"{len(mutant.tests)} tests)", flush=True)
    except (KeyboardInterrupt, _Interrupted):
        print("interrupted: the mutated file was restored; partial results written",
              file=sys.stderr)
    sample = [m for m in sample if m.outcome]   # with --only and no --previous: those run
    header = (f"# Mutation round (seed {args.seed}, {len(sample)} of {len(candidates)} candidate "
              f"mutants)\n\nTargets: {', '.join(args.targets)}. Re-run: `python "
              f"bench/mutation_round.py --seed {args.seed} --count {args.count} ...` (see the "
              "script's docstring).")
    print(write_report(sample, equivalents, args.out, header))


if __name__ == "__main__":
    main()
