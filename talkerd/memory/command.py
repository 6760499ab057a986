"""``talkerd plan --config F [--json]``: the memory plan, printed without loading anything.

Exit 0 when the config fits (after shrinking the LLM context, if the policy allows it), 78 when it
does not (the table still goes to stdout so the operator sees every component), 78 as well for an
invalid config, with one line on stderr naming the problem.
"""
from __future__ import annotations

import json
import sys

from ..config import load_config
from ..errors import BudgetError, ExitCode, TalkerError
from .plan import enforce_budget, plan_memory


def plan_command(argv_config_path: str, as_json: bool) -> int:
    """Print the plan for the config file; return the process exit code."""
    try:
        config = load_config(argv_config_path)
        try:
            _, plan = enforce_budget(config)
            error = None
        except BudgetError as exc:
            plan, error = plan_memory(config), exc
    except TalkerError as exc:
        print(f"talkerd plan: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if as_json:
        print(json.dumps({**plan.to_dict(), "policy": config.memory.policy, "config": argv_config_path}, indent=2))
    else:
        print(f"memory plan for {argv_config_path} (policy {config.memory.policy})")
        print(plan.table())
    if error is not None:
        print(f"talkerd plan: over budget: does not fit in memory.budget_mb = {plan.budget_mb}"
              + (" even with the smallest LLM context" if config.memory.policy == "shrink" else ""), file=sys.stderr)
        return error.exit_code
    return ExitCode.OK
