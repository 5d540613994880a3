"""Fees in euro cents (spec section 6), shared by rentals and the a-bike request check."""

from __future__ import annotations

from typing import Final

UNLOCK_FEE: Final = {"BIKE": 80, "EBIKE": 120, "ABIKE": 200}
PER_MINUTE_FEE: Final = {"BIKE": 5, "EBIKE": 10, "ABIKE": 10}
HOLD_SECONDS: Final = 10.0
CHARGE_PERIOD_SECONDS: Final = 60.0
