"""Corpus builders, evaluations and diagnostics of scoresong (not part of the installed library)."""


def excerpt_span(row: dict) -> tuple[float, float | None]:
    """``(start_s, duration_s)`` of a manifest row: start 0 and duration ``None`` (to the end of
    the file) where the columns are absent or empty."""
    start = float(row.get("start_s") or 0.0)
    dur = row.get("duration_s")
    return start, (float(dur) if dur else None)
