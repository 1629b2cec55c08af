"""Single-point mutants of C source: a small set of operators that model real kernel bugs.

Each operator rewrites one line of a function body and nothing else:

| operator | what it does |
|---|---|
| if_negate | `if (C)` becomes `if (!(C))` |
| if_drop_operand | one operand of a top-level `&&`/`||` chain in an `if` is dropped |
| drop_early_exit | a `return -E…;` or `goto label;` that an `if` guards becomes `{ }` |
| relational | `<` and `<=`, `>` and `>=` swap (the bound moves by one) |
| bound_plus_one | the right side of a comparison in an `if` gains `+ 1` |
| off_by_one | `+ 1` and `- 1` swap |
| logical | `&&` and `||` swap |
| bitwise | `|` and `&` swap (flag masks) |
| swap_args | the two arguments of a two-argument call swap |
| constant_neighbour | a constant is replaced by its neighbour of the same family used in the file (`-EINVAL` by `-ENODEV`, `FALLOC_FL_KEEP_SIZE` by `FALLOC_FL_PUNCH_HOLE`, …) |

Lines are matched as text, with strings and comments blanked first; a mutant that does not
compile is reported as a build failure and not counted.
"""
import difflib
import hashlib
import re
from dataclasses import asdict, dataclass

OPERATORS = ("if_negate", "if_drop_operand", "drop_early_exit", "relational", "bound_plus_one",
             "off_by_one", "logical", "bitwise", "swap_args", "constant_neighbour")

_FUNC_NAME = re.compile(r"([A-Za-z_]\w*)\s*\(")
_IF = re.compile(r"\bif\s*\(")
_EARLY_EXIT = re.compile(r"^\s*(return\s+-E[A-Z0-9]+\s*;|goto\s+\w+\s*;)\s*$")
_RELATIONAL = re.compile(r"(?<=\s)(<=|>=|<|>)(?=\s)")
_PLUS_MINUS_ONE = re.compile(r"(?<=\s)([+-]) 1\b")
_LOGICAL = re.compile(r"(?<=\s)(&&|\|\|)(?=\s)")
_BITWISE = re.compile(r"(?<=\s)([|&])(?=\s)")
_CALL2 = re.compile(r"\b([a-z_]\w*)\(\s*([\w.>-]+)\s*,\s*([\w.>-]+)\s*\)")
_ERRNO = re.compile(r"(?<=-)E[A-Z0-9]{2,}\b")
_PREFIXES = ("GUEST_MEMFD_FLAG", "FALLOC_FL", "KVM_MEMORY_ATTRIBUTE", "KVM_MEMORY_EXIT_FLAG", "KVM_MEM",
             "KVM_X86", "KVM_CAP", "FGP", "FOLL", "VM", "MAP", "PROT", "AS", "SEAL", "O")
_CONSTANT = re.compile(r"\b(?:" + "|".join(_PREFIXES) + r")_[A-Z0-9_]+\b")
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "typeof", "__typeof__", "defined"}


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    function: str
    line: int          # 1-based
    operator: str
    original: str
    mutated: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff([self.original + "\n"], [self.mutated + "\n"],
                                            f"a/{self.file}", f"b/{self.file}", n=0,
                                            lineterm="\n")).replace("@@ -1 +1 @@", f"@@ -{self.line} +{self.line} @@")

    def to_json(self) -> dict:
        return asdict(self)


def blank_strings_and_comments(line: str, in_comment: bool) -> tuple[str, bool]:
    """`line` with string/char literals and comments replaced by spaces (same length), and
    whether a block comment is still open at its end."""
    out, i = [], 0
    while i < len(line):
        if in_comment:
            end = line.find("*/", i)
            stop = len(line) if end < 0 else end + 2
            out.append(" " * (stop - i))
            in_comment, i = end < 0, stop
        elif line.startswith("/*", i):
            in_comment = True
        elif line.startswith("//", i):
            out.append(" " * (len(line) - i))
            i = len(line)
        elif line[i] in "\"'":
            quote, j = line[i], i + 1
            while j < len(line) and line[j] != quote:
                j += 2 if line[j] == "\\" else 1
            out.append(quote + " " * (min(j, len(line)) - i - 1) + (quote if j < len(line) else ""))
            i = j + 1
        else:
            out.append(line[i])
            i += 1
    return "".join(out)[:len(line)], in_comment


def functions(lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, first body line, last body line), 0-based, of every function defined in kernel
    style: the opening brace alone at column 0, the closing one too."""
    out = []
    for i, text in enumerate(lines):
        if text.rstrip() != "{" or i == 0:
            continue
        name = None
        for back in range(i - 1, max(-1, i - 8), -1):
            m = None
            for m in _FUNC_NAME.finditer(lines[back]):
                if m.group(1) not in _KEYWORDS:
                    break
            if m and m.group(1) not in _KEYWORDS and not lines[back].startswith((" ", "\t", "#")):
                name = m.group(1)
                break
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "}"), None)
        if name and end:
            out.append((name, i + 1, end - 1))
    return out


def _matching_paren(code: str, open_at: int) -> int | None:
    depth = 0
    for i in range(open_at, len(code)):
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        if depth == 0:
            return i
    return None


def _top_level_operands(cond: str) -> tuple[list[str], str] | None:
    """Split `cond` at top-level && or || (one kind only); None when there is no such chain."""
    depth, parts, start, ops = 0, [], 0, set()
    i = 0
    while i < len(cond):
        c = cond[i]
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0 and cond.startswith(("&&", "||"), i):
            ops.add(cond[i:i + 2])
            parts.append(cond[start:i])
            start = i = i + 2
            continue
        i += 1
    parts.append(cond[start:])
    if len(ops) != 1:
        return None
    return [p.strip() for p in parts], ops.pop()


def _rhs_end(code: str, start: int) -> int:
    """Where the right-hand operand of a comparison starting at `start` ends."""
    depth, i = 0, start
    while i < len(code):
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (code.startswith(("&&", "||"), i) or c in ",;?"):
            break
        i += 1
    while i > start and code[i - 1] == " ":
        i -= 1
    return i


def line_mutations(line: str, code: str, prev_code: str, constants: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(operator, mutated line) for one line; `code` is the line with strings/comments blanked,
    `prev_code` the previous non-blank code line."""
    out: list[tuple[str, str]] = []
    if code.lstrip().startswith("#"):
        return out
    for m in _IF.finditer(code):
        close = _matching_paren(code, m.end() - 1)
        if close is None:
            continue
        cond = line[m.end():close]
        out.append(("if_negate", f"{line[:m.end()]}!({cond}){line[close:]}"))
        split = _top_level_operands(code[m.end():close])
        if split:
            parts_code, op = split
            # Operands are cut from the real line at the same offsets as the blanked one.
            offsets, pos = [], m.end()
            for p in parts_code:
                at = code.index(p, pos)
                offsets.append((at, at + len(p)))
                pos = at + len(p)
            for k in range(len(offsets)):
                kept = [line[a:b] for j, (a, b) in enumerate(offsets) if j != k]
                out.append(("if_drop_operand", f"{line[:m.end()]}{f' {op} '.join(kept)}{line[close:]}"))
        for r in _RELATIONAL.finditer(code, m.end(), close):
            end = _rhs_end(code, r.end() + 1)
            out.append(("bound_plus_one", f"{line[:end]} + 1{line[end:]}"))
    if _EARLY_EXIT.match(code) and _IF.search(prev_code) and not prev_code.rstrip().endswith("{"):
        indent = line[:len(line) - len(line.lstrip())]
        out.append(("drop_early_exit", f"{indent}{{ }}"))
    swaps = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "+": "-", "-": "+", "&&": "||", "||": "&&",
             "|": "&", "&": "|"}
    for name, pattern in (("relational", _RELATIONAL), ("logical", _LOGICAL), ("bitwise", _BITWISE)):
        for r in pattern.finditer(code):
            out.append((name, f"{line[:r.start()]}{swaps[r.group(1)]}{line[r.end():]}"))
    for r in _PLUS_MINUS_ONE.finditer(code):
        out.append(("off_by_one", f"{line[:r.start()]}{swaps[r.group(1)]}{line[r.start() + 1:]}"))
    for r in _CALL2.finditer(code):
        a, b = r.group(2), r.group(3)
        if a != b and r.group(1) not in _KEYWORDS:
            out.append(("swap_args", f"{line[:r.start(2)]}{b}, {a}{line[r.end(3):]}"))
    for pattern in (_ERRNO, _CONSTANT):
        for r in pattern.finditer(code):
            family = constants.get(_family(r.group(0)), [])
            if len(family) > 1:
                neighbour = family[(family.index(r.group(0)) + 1) % len(family)]
                out.append(("constant_neighbour", f"{line[:r.start()]}{neighbour}{line[r.end():]}"))
    return out


def _family(constant: str) -> str:
    """"errno", or the longest known prefix: FALLOC_FL_KEEP_SIZE and FALLOC_FL_PUNCH_HOLE are one family."""
    if re.fullmatch(r"E[A-Z0-9]+", constant):
        return "errno"
    return next(p for p in _PREFIXES if constant.startswith(p + "_"))


def constant_families(code_lines: list[str]) -> dict[str, list[str]]:
    families: dict[str, set[str]] = {}
    for code in code_lines:
        for pattern in (_ERRNO, _CONSTANT):
            for m in pattern.finditer(code):
                families.setdefault(_family(m.group(0)), set()).add(m.group(0))
    return {k: sorted(v) for k, v in families.items()}


def generate(path: str, text: str, function_names: set[str] | None = None) -> list[Mutant]:
    """Every mutant of `text` (the file at `path`, relative to the tree), in functions named in
    `function_names` (all when None); duplicates (the same line rewritten alike) once."""
    lines = text.split("\n")
    code_lines, in_comment = [], False
    for line in lines:
        code, in_comment = blank_strings_and_comments(line, in_comment)
        code_lines.append(code)
    constants = constant_families(code_lines)
    seen, out = set(), []
    for name, first, last in functions(lines):
        if function_names is not None and name not in function_names:
            continue
        prev = ""
        for i in range(first, last + 1):
            if not code_lines[i].strip():
                continue
            for operator, mutated in line_mutations(lines[i], code_lines[i], prev, constants):
                key = (i, " ".join(mutated.split()))
                if mutated == lines[i] or key in seen:
                    continue
                seen.add(key)
                digest = hashlib.sha1(f"{path}:{i}:{operator}:{mutated}".encode()).hexdigest()[:12]
                out.append(Mutant(digest, path, name, i + 1, operator, lines[i], mutated))
            prev = code_lines[i]
    return out


def apply(text: str, mutant: Mutant) -> str:
    lines = text.split("\n")
    if lines[mutant.line - 1] != mutant.original:
        raise ValueError(f"{mutant.file}:{mutant.line} no longer reads {mutant.original!r}")
    lines[mutant.line - 1] = mutant.mutated
    return "\n".join(lines)


def sample(mutants: list[Mutant], limit: int | None) -> list[Mutant]:
    """At most `limit` mutants, spread over the file: a stable pseudo-random pick by id, then
    kept in file order."""
    if limit is None or len(mutants) <= limit:
        return mutants
    picked = set(m.id for m in sorted(mutants, key=lambda m: m.id)[:limit])
    return [m for m in mutants if m.id in picked]
