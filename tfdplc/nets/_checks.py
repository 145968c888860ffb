"""Argument checks shared by the network constructors."""

__all__ = ["check_positive_int"]


def check_positive_int(value, what: str, allow_zero: bool = False) -> int:
    """Returns `value` if it is an int >= 1 (>= 0 with `allow_zero`), else raises a clear ValueError."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value!r}.")
    return value
