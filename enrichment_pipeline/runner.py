"""Run the project's Dagster jobs from the CLI, on the project's instance, so every run shows in the UI."""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg

from enrichment_pipeline.errors import UserFacingError


class RunFailed(UserFacingError):
    """A Dagster run failed; the message is its first error, in one line."""


def _first_error(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"):
                error = error.cause
            return error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name or "step failed"
    return "the run failed"


def run_job(job_name: str, *, run_config: dict[str, Any] | None = None, partition_key: str | None = None,
            tags: dict[str, str] | None = None, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Execute a job of the code location in this process against the project's instance."""
    from enrichment_pipeline.definitions import defs
    from enrichment_pipeline.instance import project_instance

    job = defs.resolve_job_def(job_name)
    # The CLI prints its own summary; the run's events still go to the event log and the UI.
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO" if logging.getLogger().level <= logging.DEBUG else "CRITICAL"}}}}
    result = job.execute_in_process(
        run_config={**quiet, **(run_config or {})}, instance=instance or project_instance(), partition_key=partition_key,
        tags=tags, raise_on_error=False,
    )
    if not result.success:
        message = _first_error(result).removeprefix("enrichment_pipeline.errors.")
        raise RunFailed(f"run {result.run_id[:8]} of {job_name} failed: {message}")
    return result


def materialization_metadata(result: dg.ExecuteInProcessResult, asset_key: str) -> dict[str, Any]:
    """The plain values of the metadata an asset's materialization recorded in this run."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
        if materialization.asset_key.to_user_string() == asset_key:
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}
