"""Analysis of MD runs: thermodynamics (drift and equilibrated means, each with its error)."""
