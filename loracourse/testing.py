"""What the lessons' test cells use besides plain asserts. Not an exercise: no answer lives here.

One slip should cost one exercise. When an exercise builds on an earlier one (lesson 1's
`lora_params_for` calls `count_lora_params`), its test cell swaps in the course's reference for the
earlier function while it runs, so a wrong earlier answer cannot fail the later test:

    with replaced(globals(), count_lora_params=reference_count):
        assert lora_params_for(config, 8, ["q_proj"]) == 2_097_152, "..."
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_MISSING = object()


@contextmanager
def replaced(namespace: dict[str, Any], **names: Any) -> Iterator[None]:
    """Bind `names` in `namespace` (a notebook's globals()) for the with-block, then restore what was there."""
    saved = {name: namespace.get(name, _MISSING) for name in names}
    namespace.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value
