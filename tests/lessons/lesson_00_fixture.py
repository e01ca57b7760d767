"""Wrong answers of the fixture course's lesson (tests/fixtures/course): one per exercise."""

HIDDEN_ONLY = {"lora_scaling"}  # on purpose: the feedback tests need a failing hidden assert to hide


def count_lora_params(d_in, d_out, r):
    """The square-matrix shortcut 2 * d * r, wrong for a non-square layer."""
    return 2 * d_in * r


def lora_scaling(lora_alpha, r):
    """Integer division: 16 // 8 == 2 passes the visible test, 32 // 64 == 0 fails the hidden one."""
    return lora_alpha // r
