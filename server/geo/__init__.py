"""Where a report is: the district geofences that route it to a traffic-police unit."""

from server.geo.fences import Datum, Fence, FenceError, FenceSet, Polygon

__all__ = ["Datum", "Fence", "FenceError", "FenceSet", "Polygon"]
