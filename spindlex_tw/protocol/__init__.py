"""Public protocol constants of spindlex_tw (mirrors ``spindlex.protocol``)."""
