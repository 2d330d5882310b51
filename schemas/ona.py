"""The National Reception Office (ONA): periodic reports to the General Secretariat.

A report covers a period of calendar days and carries its key figures as
labelled integers (applications received, places occupied, ...), each label once.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.types import Line, Payload, Text

MAX_FIGURES = 100
#: Figures are counts or differences of counts; a trillion is out of any range.
MAX_FIGURE = 10**12


class Figure(BaseModel):
    """One labelled figure of a report."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=300)

    label: Line
    value: int = Field(ge=-MAX_FIGURE, le=MAX_FIGURE, strict=True)


class OnaReport(Payload):
    """ONA's report on a period (both ends included)."""

    message_type: ClassVar[str] = "ona.report"
    version: ClassVar[int] = 1

    period_start: date
    period_end: date
    title: Line
    summary: Text
    figures: tuple[Figure, ...] = Field(default=(), max_length=MAX_FIGURES)

    @field_validator("period_end")
    @classmethod
    def _end_not_before_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("period_start")
        if start is not None and value < start:
            raise ValueError("period_end must not be before period_start")
        return value

    @field_validator("figures")
    @classmethod
    def _distinct_labels(cls, value: tuple[Figure, ...]) -> tuple[Figure, ...]:
        labels = [figure.label for figure in value]
        if len(set(labels)) != len(labels):
            raise ValueError("figure labels must not repeat")
        return value


MODELS: tuple[type[Payload], ...] = (OnaReport,)

__all__ = ["MODELS", "Figure", "OnaReport"]
