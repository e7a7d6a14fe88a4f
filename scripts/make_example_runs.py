"""Write laws/examples/runs.csv: SYNTHETIC training runs for trying ``planner fit`` (not measurements).

The losses follow a known Chinchilla-form law, L = E + A/N^alpha + B/D^beta with the Epoch AI refit of
Chinchilla (Besiroglu et al. 2024, arXiv 2404.10102, v2 table: E 1.8172, A 482.01, B 2085.43, alpha 0.3478,
beta 0.3658), times log-normal noise of 0.5% (seeded). The runs sit on five isoFLOP lines (6·N·D = C for
C = 1e18 ... 1e20 FLOPs), nine model sizes each, around each line's optimum: the design of Hoffmann et al. 2022
Approach 2. A fit of these runs should recover the law within its bootstrap intervals.

Run from the repository root: ``python scripts/make_example_runs.py`` (the output is deterministic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LAW = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}  # Besiroglu et al. 2024, v2 table
BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20)  # training FLOPs of the isoFLOP lines
SIZES = 9  # model sizes per line, N_opt/8 ... 8·N_opt
NOISE = 0.005  # log-normal noise on the loss
SEED = 2024
OUT = Path(__file__).resolve().parents[1] / "laws" / "examples" / "runs.csv"


def runs() -> list[tuple[str, float, float, float]]:
    rng = np.random.default_rng(SEED)
    c = LAW
    g = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1 / (c["alpha"] + c["beta"]))
    out = []
    for budget in BUDGETS:
        n_opt = g * (budget / 6) ** (c["beta"] / (c["alpha"] + c["beta"]))
        for n in n_opt * np.geomspace(1 / 8, 8, SIZES):
            n = float(f"{n:.3g}")
            d = float(f"{budget / (6 * n):.3g}")
            loss = (c["E"] + c["A"] * n ** -c["alpha"] + c["B"] * d ** -c["beta"]) * np.exp(rng.normal(0, NOISE))
            out.append((f"c{budget:.0e}-n{n:.2e}".replace("+", ""), n, d, round(float(loss), 5)))
    return out


def text() -> str:
    head = [
        "# SYNTHETIC example runs for `planner fit` -- not measurements (scripts/make_example_runs.py).",
        "# loss = E + A/N^alpha + B/D^beta with Besiroglu et al. 2024 (arXiv 2404.10102) v2 constants",
        "# E 1.8172, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658, times 0.5% log-normal noise (seed 2024).",
        "run,params,tokens,loss",
    ]
    return "\n".join(head + [f"{r},{n:.3g},{d:.3g},{loss:.5f}" for r, n, d, loss in runs()]) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text(), encoding="utf-8")
    print(f"wrote {OUT} ({len(runs())} runs)")
