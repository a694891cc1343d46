"""Latency: lookup tables (lut), timing backends (measure), op instances (specs), and the
latency model of derived networks and of the supernet (model)."""
