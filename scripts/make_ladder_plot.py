"""Write docs/ladder.png: the predicted interval at the target for the proposed ladder and the IsoFLOP baseline.

The README's guide example: target C = 1e24 FLOPs, probe budget P = 1e21 FLOPs, the default law
(Besiroglu et al. 2024) as the prior and the stated default noise (1% in log loss), H100 prices. The plot is
``planner ladder ... --plot`` (planner.ladder_report.plot_ladder). The script also checks the design by
simulation (planner.ladder_design.simulate_errors: simulated losses at both designs' runs, least-squares refits,
realized error at C) and prints the RMS errors and their ratio.

Run from the repository root: ``python scripts/make_ladder_plot.py [--seeds 1000]`` (deterministic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "ladder.png"
TARGET, PROBE = 1e24, 1e21


def main() -> None:
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1000)
    args = ap.parse_args()
    from laws import get_law
    from planner.ladder_design import ladder, simulate_errors, theta_of
    from planner.ladder_report import plot_ladder

    res = ladder(TARGET, PROBE, gpu="h100")
    plot_ladder(res, OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")
    for name, pred in (("proposed", res.predicted), ("IsoFLOP", res.baseline.predicted)):
        print(f"{name:>9}: loss_opt 95% [{pred.loss_ci[0]:.4f}, {pred.loss_ci[1]:.4f}], "
              f"N_opt 95% [{pred.params_opt_ci[0]:.3g}, {pred.params_opt_ci[1]:.3g}]")
    theta = theta_of(get_law(None).coefficients)
    rms = []
    for runs in (res.runs, res.baseline.runs):
        n, d = np.array([r.params for r in runs]), np.array([r.tokens for r in runs])
        e = simulate_errors(theta, n, d, res.noise, TARGET, seeds=args.seeds, seed=11)
        rms.append(np.sqrt(np.mean(e**2, axis=0)))
    ratio = rms[0] / rms[1]
    print(f"simulated over {args.seeds} seeds: RMS error of loss_opt {rms[0][0]:.4f} vs {rms[1][0]:.4f} nats "
          f"(ratio {ratio[0]:.2f}), of log N_opt {rms[0][1]:.3f} vs {rms[1][1]:.3f} (ratio {ratio[1]:.2f})")


if __name__ == "__main__":
    main()
