"""Data for the simulated hardware: the NMEA capture the fake GNSS receiver plays, and its generator."""
