"""lm-eval's own IFEval scoring functions, re-exported for the local task YAML beside this file."""

from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

__all__ = ["agg_inst_level_acc", "process_results"]
