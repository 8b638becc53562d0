"""What long jobs report to their `progress(fraction, preview)` callback.

The fraction is a float (a callback that only wants "how far" uses it as one); `Steps` is a float that also says
how many steps of how many are done, so a caller can show "step 40 of 150" without knowing how the job counts."""
from __future__ import annotations


class Steps(float):
    """`done / total` as a float, with `.done` and `.total` (done is kept within 0..total)."""

    done: int
    total: int

    def __new__(cls, done: int, total: int) -> "Steps":
        total = max(1, int(total))
        done = max(0, min(int(done), total))
        self = super().__new__(cls, done / total)
        self.done, self.total = done, total
        return self

    def __repr__(self) -> str:
        return f"Steps({self.done}, {self.total})"
