"""What the machine did during a measurement: CPU time stolen by the hypervisor.

On a shared VM the hypervisor may take CPU away ("steal"); figures measured while much is
stolen are not comparable to others. Every bench prints the stolen share of its run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _cpu_ticks() -> list[int]:
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:]]
    except OSError:  # not Linux
        return []


@dataclass
class StealMeter:
    """Use as a context manager; ``steal`` is the stolen share of all CPU time meanwhile."""

    start: list[int] = field(default_factory=list)
    steal: float = 0.0

    def __enter__(self) -> StealMeter:
        self.start = _cpu_ticks()
        return self

    def __exit__(self, *exc_info: object) -> None:
        end = _cpu_ticks()
        if not self.start or not end:
            return
        delta = [b - a for a, b in zip(self.start, end, strict=False)]
        total = sum(delta)
        # /proc/stat columns: user nice system idle iowait irq softirq steal ...
        self.steal = delta[7] / total if total and len(delta) > 7 else 0.0

    def describe(self) -> str:
        """One line for the report, with a warning when the figures are unreliable."""
        line = f"CPU stolen by the hypervisor during the run: {self.steal:.0%}"
        if self.steal > 0.05:
            line += "  (WARNING: figures are depressed; rerun when the machine is quiet)"
        return line
