"""ebike: the flagship reference system (rentals, accounting, a-bikes)."""
