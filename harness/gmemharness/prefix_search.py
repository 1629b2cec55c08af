"""Binary search for the first bad prefix of a patch series, independent of how a prefix is
built or tested (so it is unit-tested with a fake test function).

Prefix k means the base tree with patches 1..k applied; prefix 0 is the base. The search needs
the base good and the whole series bad; a prefix that cannot be tested (skip) is stepped
around, as git bisect does, and when only skipped prefixes remain between the last good and
the first bad one, the result names the range instead of a single patch."""
from dataclasses import dataclass, field
from typing import Callable

from .verdict import BAD, GOOD, SKIP


@dataclass
class SearchResult:
    culprit: int | None                 # 1-based index of the first bad patch
    last_good: int | None = None        # largest prefix known good below the culprit
    first_bad: int | None = None
    verdicts: dict[int, str] = field(default_factory=dict)   # prefix -> good/bad/skip
    message: str = ""

    @property
    def tests(self) -> int:
        return len(self.verdicts)


def first_bad_prefix(n: int, test: Callable[[int], str]) -> SearchResult:
    """Search prefixes 0..n with `test(prefix) -> "good"|"bad"|"skip"`, each prefix tested once."""
    if n < 1:
        raise ValueError("a series needs at least one patch")
    verdicts: dict[int, str] = {}

    def probe(k: int) -> str:
        verdicts[k] = test(k)
        return verdicts[k]

    whole = probe(n)
    if whole != BAD:
        why = "passes" if whole == GOOD else "could not be tested"
        return SearchResult(None, verdicts=verdicts,
                            message=f"the whole series (prefix {n}) {why}: nothing to bisect")
    base = probe(0)
    if base != GOOD:
        why = "already fails" if base == BAD else "could not be tested"
        return SearchResult(None, verdicts=verdicts,
                            message=f"the base tree without any patch {why}: nothing to bisect")
    lo, hi = 0, n
    while hi - lo > 1:
        mid = _next_probe(lo, hi, verdicts)
        if mid is None:
            return SearchResult(None, lo, hi, verdicts,
                                f"inconclusive: patches {lo + 1}..{hi} could not all be tested; "
                                f"the first bad one is among them")
        kind = probe(mid)
        if kind == GOOD:
            lo = mid
        elif kind == BAD:
            hi = mid
    return SearchResult(hi, lo, hi, verdicts, f"patch {hi} is the first bad one")


def _next_probe(lo: int, hi: int, verdicts: dict[int, str]) -> int | None:
    """The untested prefix strictly between lo and hi closest to the middle."""
    middle = (lo + hi) / 2
    candidates = [k for k in range(lo + 1, hi) if verdicts.get(k) != SKIP]
    return min(candidates, key=lambda k: (abs(k - middle), k)) if candidates else None
