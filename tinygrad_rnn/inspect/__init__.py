"""tinygrad_rnn.inspect — seeing the tape: study tools built only on the engine's public hooks.

Read after engine.py. Nothing here changes how gradients are computed.

- tape.py: `trace(loss)` numbers the recorded graph as a Wengert list;
  `usage(...)` counts the gradient terms each parameter collects;
  `memory(...)` adds up the bytes the tape keeps alive, per time step.
- dot.py: `to_dot(...)` writes Graphviz text, unrolled or folded over time.
- watch.py: `backward_trace()` records each VJP as it runs;
  `detect_anomaly()` stops at the first NaN or Inf, forward or backward.
- gradflow.py: `gradient_flow(...)` watches ||dL/dh_t|| and each shared
  weight's per-step terms through time (its report: gradflow_report.py);
  health.py: `check_gradients(...)` flags NaN, Inf, zero, vanishing and
  exploding gradients.
"""

from .dot import to_dot
from .memory import MemoryReport, memory
from .tape import Entry, ParamUsage, Trace, Usage, trace, usage
from .watch import BackwardTrace, GradInfo, VJPRecord, backward_trace, detect_anomaly

__all__ = [
    "BackwardTrace",
    "Entry",
    "GradInfo",
    "MemoryReport",
    "ParamUsage",
    "Trace",
    "Usage",
    "VJPRecord",
    "backward_trace",
    "detect_anomaly",
    "memory",
    "to_dot",
    "trace",
    "usage",
]
