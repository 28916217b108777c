"""The feature-track contract: one finite number per character of a text (:func:`check_feature_track_spec`)."""

from __future__ import annotations

from workbench.testing.contract_base import fail as _fail
from workbench.testing.contract_base import who_is as _who


def check_feature_track_spec(spec) -> None:
    import numpy as np
    who = _who("feature track", spec)
    fix = "return one finite number per character of the text (a numpy array of len(text))"
    fn = spec.load()
    for text in ("", "a = 'b'  # c\n(1, [2])\n"):
        try:
            values = np.asarray(fn(text), dtype=np.float64).reshape(-1)
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "feature-track.values", f"the track raised {type(exc).__name__}: {exc} for "
                                                     f"{text!r}", fix) from exc
        if values.shape != (len(text),) or not np.isfinite(values).all():
            raise _fail(who, "feature-track.values", f"{values.shape[0]} values (finite: "
                                                     f"{bool(np.isfinite(values).all())}) for {len(text)} characters",
                        fix)

