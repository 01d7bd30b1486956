"""SASS as data: the disassembly of a cubin (``nvdisasm -c -gi``) parsed into functions of
instructions with their inlined source chains, and the count of one steady-state iteration of a
kernel's main loop.

The loop is found by its back edge: the backward branch that carries the loop's ``for`` line in its
inlined source chain (the widest such branch when several do); its target is the loop head. One
iteration is a walk from the head back to it, and a *case* (a FULL tile, a PARTIAL one) chooses the
walk: the source functions it must pass through and those it must not, and the instructions it
must issue (the next tile's copies). The shortest such walk is counted, with two rules that keep it
real: a conditional branch, taken or not, fixes its predicate until an instruction writes it
again (no walk takes two branches that contradict each other), and inner loops are walked as often
as the case needs. Every instruction on the walk counts once, predicated-off ones included: they
are issued.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Tensor-core instructions: mma.sync (HMMA) and Hopper's warpgroup mma (HGMMA).
MMA_OPCODES = ("HMMA", "HGMMA")

_LINE = re.compile(r'\s*//## File "(?P<file>[^"]+)", line (?P<line>\d+)')
_INSTR = re.compile(r"\s*/\*(?P<addr>[0-9a-f]{4,})\*/\s+(?P<body>.*?)\s*;")
_LABEL = re.compile(r"^(?P<label>\.L_x_\d+):")
_FUNC = re.compile(r"^\s*\.text\.(?P<name>\S+):")
_TARGET = re.compile(r"`\((?P<label>\.L_x_\d+)\)")

Location = tuple[str, int]  # (file name without directories, line)


@dataclass(frozen=True)
class Instr:
    addr: int
    guard: str  # "" or the predicate, e.g. "@!P0"
    opcode: str  # full mnemonic, e.g. "HMMA.16816.F32.BF16"
    operands: str
    chain: tuple[Location, ...]  # inlined source locations, innermost first, the function's own line last
    target: int | None  # address a branch jumps to

    @property
    def base(self) -> str:
        """The opcode without modifiers: HMMA, LDSM, BAR, ..."""
        return self.opcode.split(".")[0]

    @property
    def is_branch(self) -> bool:
        return self.base in ("BRA", "BRX", "JMP", "JMX") and self.target is not None

    @property
    def ends_flow(self) -> bool:
        """Control never falls through to the next instruction."""
        unconditional = self.guard in ("", "@PT")
        return unconditional and (self.base in ("BRA", "JMP", "EXIT", "RET", "BRX", "JMX"))


_PRED = re.compile(r"^!?U?P[T0-9]$")


def _predicate(text: str) -> tuple[str, bool] | None:
    """("P3", True) for "P3", ("P3", False) for "!P3"; None for PT and non-predicates."""
    text = text.strip().lstrip("@")
    if not _PRED.match(text) or text.endswith("PT"):
        return None
    return (text.lstrip("!"), not text.startswith("!"))


def written_predicates(ins: Instr) -> set[str] | None:
    """Predicates an instruction writes; None for all of them (R2P writes the predicate file)."""
    if ins.base == "R2P":
        return None
    ops = [o.strip() for o in ins.operands.split(",")]
    if ins.base.endswith("SETP") or ins.base in ("PLOP3", "ISETP"):
        dests = ops[:2]
    elif ops and _PRED.match(ops[0]):
        dests = ops[:1]  # LOP3.LUT P0, ..., and the like
    else:
        return set()
    return {d for d in dests if _PRED.match(d) and not d.endswith("PT")}


def branch_condition(ins: Instr) -> list[tuple[str, bool]]:
    """The predicate literals whose conjunction makes a branch taken: its guard and, in the form
    "BRA Px, target", Px."""
    conds = []
    if ins.guard and (g := _predicate(ins.guard)):
        conds.append(g)
    first = ins.operands.split(",")[0]
    if "`" not in first and (extra := _predicate(first)):
        conds.append(extra)
    return conds


@dataclass
class Function:
    name: str
    instrs: list[Instr] = field(default_factory=list)

    def index_of(self, addr: int) -> int:
        for i, ins in enumerate(self.instrs):
            if ins.addr == addr:
                return i
        raise KeyError(hex(addr))


def disassemble(cubin: Path, nvdisasm: Path) -> str:
    return subprocess.run([str(nvdisasm), "-c", "-gi", str(cubin)], check=True, capture_output=True, text=True).stdout


def parse(sass: str) -> dict[str, Function]:
    """Functions of an ``nvdisasm -c -gi`` listing, by (mangled) name."""
    funcs: dict[str, Function] = {}
    func: Function | None = None
    chain: list[Location] = []
    pending_chain: list[Location] = []
    labels: dict[str, int] = {}
    pending_labels: list[str] = []
    raw: list[tuple[int, str, str, str, tuple[Location, ...], str | None]] = []

    def close() -> None:
        if func is not None:
            func.instrs = [Instr(a, g, op, ops, ch, labels.get(t) if t else None) for a, g, op, ops, ch, t in raw]
            funcs[func.name] = func

    for text in sass.splitlines():
        m = _FUNC.match(text)
        if m:
            close()
            func, raw, labels, pending_labels, chain = Function(m["name"]), [], {}, [], []
            continue
        if func is None:
            continue
        m = _LINE.match(text)
        if m:
            pending_chain.append((m["file"].rsplit("/", 1)[-1], int(m["line"])))
            continue
        m = _LABEL.match(text)
        if m:
            pending_labels.append(m["label"])
            continue
        m = _INSTR.match(text)
        if not m:
            continue
        if pending_chain:  # a new location block replaces the current one
            chain, pending_chain = pending_chain, []
        addr = int(m["addr"], 16)
        for label in pending_labels:
            labels[label] = addr
        pending_labels = []
        body = m["body"].strip()
        guard = ""
        if body.startswith("@"):
            guard, body = body.split(None, 1)
        opcode, _, operands = body.partition(" ")
        target = _TARGET.search(operands)
        raw.append((addr, guard, opcode, operands.strip(), tuple(chain), target["label"] if target else None))
    close()
    return funcs


# --- source functions, by line range ---------------------------------------------------------


@dataclass(frozen=True)
class SourceSpan:
    """Lines [first, last] of a function in a source file (file name without directories)."""

    file: str
    first: int
    last: int

    def contains(self, loc: Location) -> bool:
        return loc[0] == self.file and self.first <= loc[1] <= self.last


def function_span(path: Path, name: str) -> SourceSpan:
    """The lines of the definition of function ``name`` in ``path``: from its name up to the brace
    that closes its body. Raises if there is not exactly one definition."""
    lines = path.read_text().splitlines()
    pattern = re.compile(rf"\b{re.escape(name)}\s*\(")
    spans = []
    for i, line in enumerate(lines):
        if not pattern.search(line) or line.lstrip().startswith("//"):
            continue
        # A definition: the first of '{' and ';' after the name is '{'.
        rest = "\n".join(lines[i:])
        after = rest[pattern.search(rest).end() :]
        brace, semi = after.find("{"), after.find(";")
        if brace < 0 or (0 <= semi < brace):
            continue
        depth, end = 0, None
        for j in range(i, len(lines)):
            text = lines[j] if j > i else lines[j][pattern.search(lines[j]).end() :]
            for ch in re.sub(r"//.*", "", text):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        end = j
                        break
            if end is not None:
                break
        spans.append(SourceSpan(path.name, i + 1, end + 1))
    if len(spans) != 1:
        raise ValueError(f"{path}: expected one definition of {name}, found {len(spans)}")
    return spans[0]


def marker_line(path: Path, marker: str, occurrence: int = 1) -> Location:
    """(file name, line) of the ``occurrence``-th line of ``path`` containing ``marker``."""
    hits = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if marker in line]
    if len(hits) < occurrence:
        raise ValueError(f"{path}: {marker!r} occurs {len(hits)} times, wanted occurrence {occurrence}")
    return (path.name, hits[occurrence - 1])


# --- the steady-state loop --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Which iteration to count: the path passes through every span of ``through``, through none
    of ``avoid``, and holds at least ``count`` instructions of each ``(opcode, count)`` of
    ``opcodes`` (the copies of the next tile, the tensor-core instructions of a whole tile)."""

    name: str
    through: tuple[SourceSpan, ...] = ()
    avoid: tuple[SourceSpan, ...] = ()
    opcodes: tuple[tuple[str, int], ...] = ()


@dataclass
class Iteration:
    case: str
    instructions: int
    mma: int
    ldsm: int
    barriers: int
    opcodes: Counter

    @property
    def per_mma(self) -> float:
        return self.instructions / self.mma if self.mma else float("nan")

    @property
    def ldsm_per_mma(self) -> float:
        return self.ldsm / self.mma if self.mma else float("nan")


def find_loop(func: Function, loop_line: Location) -> tuple[int, int]:
    """(head index, back-edge index) of the loop whose ``for`` is at ``loop_line``: the backward
    branch carrying that line (at any depth of inlining) that spans the most instructions."""
    best = None
    for i, ins in enumerate(func.instrs):
        if not ins.is_branch or ins.target >= ins.addr or loop_line not in ins.chain:
            continue
        head = func.index_of(ins.target)
        if best is None or i - head > best[1] - best[0]:
            best = (head, i)
    if best is None:
        raise ValueError(f"{func.name}: no back edge at {loop_line[0]}:{loop_line[1]}")
    return best


def _in_any(ins: Instr, spans: Iterable[SourceSpan]) -> int:
    """Bit mask of the spans some location of the instruction's chain falls in."""
    mask = 0
    for k, span in enumerate(spans):
        if any(span.contains(loc) for loc in ins.chain):
            mask |= 1 << k
    return mask


def count_iteration(func: Function, loop_line: Location, case: Case) -> Iteration:
    """Counts the shortest walk from the loop head back to it that meets ``case``: a breadth-first
    search over (instruction, requirements met, predicate values known). A conditional branch taken
    or not fixes its predicate until an instruction writes it again, so a walk never takes two
    branches that contradict each other (the walk's "done" test and the copy it guards). Inner loops
    may be walked as often as the case needs; branches out of the loop are not followed."""
    head, _ = find_loop(func, loop_line)
    # The walk may leave the address range of the loop and come back (a compiler may rotate or
    # merge loops): it runs over the whole function from the head until it branches to the head.
    body = func.instrs[head:] + func.instrs[:head]
    index = {ins.addr: k for k, ins in enumerate(body)}
    wanted = dict(case.opcodes)
    goal = ((1 << len(case.through)) - 1, tuple(wanted.values()))
    allowed = [not _in_any(ins, case.avoid) for ins in body]

    def met(state: tuple[int, tuple[int, ...]], ins: Instr) -> tuple[int, tuple[int, ...]]:
        mask, counts = state
        counts = tuple(min(c + (ins.base == op), need) for c, (op, need) in zip(counts, wanted.items()))
        return mask | _in_any(ins, case.through), counts

    def forget(known: frozenset, ins: Instr) -> frozenset:
        written = written_predicates(ins)
        if written is None:
            return frozenset()
        return frozenset(kv for kv in known if kv[0] not in written) if written else known

    def assume(known: frozenset, conds: list[tuple[str, bool]]) -> frozenset | None:
        """known plus every literal of conds, or None when one contradicts it."""
        values = dict(known)
        for name, value in conds:
            if values.get(name, value) != value:
                return None
            values[name] = value
        return frozenset(values.items())

    start = (0, met((0, (0,) * len(wanted)), body[0]), frozenset())
    parent: dict = {start: None}
    frontier = [start] if allowed[0] else []
    end = None
    while frontier and end is None:
        nxt = []
        for node in frontier:
            k, state, known = node
            ins = body[k]
            conds = branch_condition(ins) if ins.is_branch else []
            taken = assume(known, conds) if ins.is_branch else None
            if ins.is_branch and ins.target == body[0].addr and state == goal and taken is not None:
                end = node  # taken back to the head: one iteration
                break
            after = forget(known, ins)
            succ = []
            if not ins.ends_flow:
                # Falling through a branch: its condition is false; with one literal, that literal is.
                fall = after if len(conds) != 1 else assume(after, [(conds[0][0], not conds[0][1])])
                if fall is not None:
                    succ.append((k + 1, fall))
            if ins.is_branch and taken is not None and ins.target in index and ins.target != body[0].addr:
                succ.append((index[ins.target], forget(taken, ins)))
            for s, facts in succ:
                if s < len(body) and allowed[s]:
                    child = (s, met(state, body[s]), facts)
                    if child not in parent:
                        parent[child] = node
                        nxt.append(child)
        frontier = nxt
    if end is None:
        raise ValueError(f"{func.name}: no iteration of the loop at line {loop_line[1]} meets case {case.name!r}")
    path = []
    while end is not None:
        path.append(body[end[0]])
        end = parent[end]
    path.reverse()
    ops = Counter(ins.base for ins in path)
    return Iteration(
        case=case.name,
        instructions=len(path),
        mma=sum(ops[o] for o in MMA_OPCODES),
        ldsm=ops["LDSM"],
        barriers=ops["BAR"],
        opcodes=ops,
    )


def division_in_loop(func: Function, loop_line: Location) -> list[Instr]:
    """Integer division or reciprocal sequences inside the loop: I2F with MUFU.RCP, the signature
    of a run-time ``/`` or ``%``."""
    head, back = find_loop(func, loop_line)
    return [ins for ins in func.instrs[head : back + 1] if ins.opcode.startswith(("MUFU.RCP", "I2F"))]
