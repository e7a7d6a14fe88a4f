"""Write a ladder (``planner.ladder.Ladder``) as CSV rows and as a PNG of the predicted intervals at the target.

Files are written atomically (a temp file in the same folder, then rename). The plot uses matplotlib's
object API (no pyplot state), so it is safe to call from threads; matplotlib is the optional ``plot`` extra.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from planner.errors import InputError

CSV_COLUMNS = ("design", "params", "tokens", "flops", "gpu_hours", "cost_usd", "layers", "d_model", "heads",
               "kv_heads", "ffn_hidden", "vocab", "shape_params")


def _atomic_write(path: str | Path, data: bytes, field: str) -> Path:
    p = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent if str(p.parent) else ".", prefix=f".{p.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; a written report is an ordinary file
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise InputError(field, f"cannot write {p} ({e.strerror})") from None
    return p


def ladder_csv(ladder) -> str:
    """The proposed runs then the baseline's, one row each (design = proposed | baseline)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for name, runs in (("proposed", ladder.runs), ("baseline", ladder.baseline.runs)):
        for r in runs:
            s = r.shape
            w.writerow([name, f"{r.params:.6g}", f"{r.tokens:.6g}", f"{r.flops:.6g}", f"{r.gpu_hours:.6g}",
                        f"{r.cost_usd:.2f}", s["layers"], s["d_model"], s["heads"], s["kv_heads"], s["ffn_hidden"],
                        s["vocab"], s["params"]])
    return buf.getvalue()


def write_ladder_csv(ladder, path: str | Path) -> Path:
    return _atomic_write(path, ladder_csv(ladder).encode("utf-8"), "csv")


def plot_ladder(ladder, path: str | Path) -> Path:
    """Two panels: the runs of both designs in (FLOPs, params) with the N_opt interval at the target, and the
    95% interval of the loss-optimal loss at the target for both designs."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plot", "plotting needs matplotlib: install planner[plot]") from None
    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    designs = (("proposed", ladder.runs, ladder.predicted, "tab:blue", "o"),
               ("IsoFLOP baseline", ladder.baseline.runs, ladder.baseline.predicted, "tab:orange", "s"))
    c = ladder.target_flops
    for k, (name, runs, pred, color, marker) in enumerate(designs):
        ax1.scatter([r.flops for r in runs], [r.params for r in runs], s=18, color=color, marker=marker,
                    label=f"{name}: {len(runs)} runs", alpha=0.8)
        x = c * (1.25 if k else 0.8)
        lo, hi = pred.params_opt_ci
        ax1.plot([x, x], [lo, hi], color=color, lw=3)
        lo, hi = pred.loss_ci
        ax2.plot([k, k], [lo, hi], color=color, lw=6, solid_capstyle="butt")
        ax2.annotate(f"[{lo:.3f}, {hi:.3f}]", (k, hi), textcoords="offset points", xytext=(0, 5), ha="center")
    ax1.scatter([c], [ladder.point["params_opt"]], marker="*", s=120, color="black", label="N_opt at target (law)")
    ax1.set(xscale="log", yscale="log", xlabel="training FLOPs (6ND)", ylabel="params N",
            title=f"runs, and 95% interval of N_opt at {c:.2g} FLOPs")
    ax1.legend(fontsize=8, loc="upper left")
    ax2.axhline(ladder.point["loss_opt"], color="black", ls=":", lw=1, label="law's loss_opt")
    ax2.set(xticks=[0, 1], xticklabels=["proposed", "IsoFLOP baseline"], xlim=(-0.6, 1.6),
            ylabel="loss at the target (nats/token)",
            title="95% interval of the optimal loss at the target")
    lo_all = min(ladder.predicted.loss_ci[0], ladder.baseline.predicted.loss_ci[0])
    hi_all = max(ladder.predicted.loss_ci[1], ladder.baseline.predicted.loss_ci[1])
    ax2.set_ylim(lo_all - 0.05 * (hi_all - lo_all), hi_all + 0.15 * (hi_all - lo_all))
    fig.suptitle(f"ladder for {c:.2g} FLOPs: both designs spend {ladder.total_flops:.2g} probe FLOPs "
                 f"(law {ladder.law}, noise {ladder.noise:.3g} in log loss)", fontsize=10)
    ax2.legend(fontsize=8, loc="center")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    return _atomic_write(path, buf.getvalue(), "plot")


__all__ = ["ladder_csv", "plot_ladder", "write_ladder_csv"]
