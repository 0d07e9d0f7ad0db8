"""A compared blob's status, shared by the report and its console table."""

from enum import Enum


class Status(str, Enum):
    OK = "ok"
    DIVERGED = "diverged"
    SHAPE_MISMATCH = "shape_mismatch"
    NOT_COMPARED = "not_compared"
    INPUT = "input"
