"""gmmav._native.Error -> the Python exception gmmav's Python API promises (docs/python.md, "Errors"):
ValueError for bad arguments, MemoryError when the call's memory cannot be had, RuntimeError for
the rest (cross-rank mismatches, timeouts, broken groups)."""


def raise_from_native(e):
    """gmmav._native.Error -> the Python exception the API promises."""
    code = getattr(e, "code", "")
    msg = str(e)
    if code in ("null_argument", "invalid_argument"):
        raise ValueError(msg) from None
    if code == "out_of_memory":
        raise MemoryError(msg) from None
    raise RuntimeError(msg) from None
